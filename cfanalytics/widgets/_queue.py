"""The queue panel: pick install jobs from the status list, confirm, queue, see each answer."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..client import AsyncClient, Client, QueueResult
from ..live import QueueController
from ..report import escape, table, when
from ._base import TABLE_CSS, Tasks, classed, message

__all__ = ["QueuePanel"]

_ANY = {"location": "any location", "kind": "any kind", "state": "any state"}


class QueuePanel(widgets.VBox):  # type: ignore[misc]
    """Queue install jobs of ``asid`` by hand: filter, select, confirm, and see each result.

    A thin view over :class:`~cfanalytics.queueing.QueueController` (``panel.controller``).
    Lists the queueable jobs when shown (and on Refresh); a replayed source lists what was
    recorded and keeps the Queue button disabled, saying why. ``on_queued(callback)`` hands
    each batch the API accepted to, say, :meth:`LiveMonitor.follow`.
    """

    def __init__(self, client: AsyncClient | Client, asid: int, **kwargs: Any) -> None:
        self.controller = QueueController(client, asid)
        self.tasks = Tasks()
        self._queueing = False
        self.status = classed(widgets.HTML(), "cfa-panel-status")
        self.filters = {name: self._filter(name) for name in _ANY}
        self.select = classed(
            widgets.SelectMultiple(options=[], rows=10, layout={"width": "100%"}), "cfa-job-select"
        )
        self.refresh_button = self.tasks.button(
            "Refresh", "cfa-refresh", self._on_refresh, icon="refresh"
        )
        self.select_all = self.tasks.button(
            "Select all shown", "cfa-select-all", self._on_select_all
        )
        self.queue_button = self.tasks.button(
            "Queue", "cfa-queue-button", self._on_queue, button_style="primary"
        )
        self.question = widgets.HTML()
        self.confirm_button = self.tasks.button(
            "Yes, queue them", "cfa-confirm-button", self._on_confirm, button_style="warning"
        )
        self.cancel_button = self.tasks.button("Cancel", "cfa-cancel-button", self._on_cancel)
        self.confirm = classed(
            widgets.VBox([self.question, widgets.HBox([self.confirm_button, self.cancel_button])]),
            "cfa-confirm",
        )
        self.results = classed(
            widgets.HTML(layout={"max_height": "260px", "overflow": "auto"}),
            "cfa-queue-results",
            "cfa-table",
        )
        self.select.observe(self.tasks.guard("choosing jobs", self._on_selection), "value")
        self._show_confirm(False)
        title = widgets.HTML(f"<b>Queue install jobs</b> &middot; ASID {escape(asid)}")
        buttons = widgets.HBox([self.select_all, self.queue_button, self.refresh_button])
        children = [
            title,
            self.status,
            widgets.HBox(list(self.filters.values())),
            self.select,
            buttons,
            self.confirm,
            self.results,
            self.tasks.pane,
        ]
        super().__init__(children, **kwargs)
        classed(self, "cfa-queue-panel")
        self._update_buttons()
        self.tasks.spawn("listing the jobs", self.refresh())

    # -- public --------------------------------------------------------------------------

    @property
    def queued(self) -> list[QueueResult]:
        """Every job the API accepted from this panel."""
        return self.controller.queued

    def on_queued(self, callback: Any) -> None:
        """Call ``callback(results)`` with each batch of jobs the API accepted."""
        self.controller.on_queued(self.tasks.guard("handing on the queued jobs", callback))

    async def refresh(self) -> None:
        """List the queueable jobs again and show them (filters and selection kept if valid)."""
        self.status.value = message("Listing the jobs...")
        await self.controller.refresh()
        for name, dropdown in self.filters.items():
            keep = dropdown.value
            options = [(_ANY[name], ""), *((v, v) for v in self.controller.options(name))]
            dropdown.options = options
            dropdown.value = keep if keep in dict(options).values() else ""
        self._show_choices()
        self._show_status()

    # -- view ----------------------------------------------------------------------------

    def _filter(self, name: str) -> widgets.Dropdown:
        dropdown = classed(
            # "" for any: a None value shows as a blank choice in the browser.
            widgets.Dropdown(options=[(_ANY[name], "")], value="", layout={"width": "auto"}),
            f"cfa-filter-{name}",
        )
        dropdown.observe(self.tasks.guard("filtering", lambda _: self._show_choices()), "value")
        return dropdown

    def _show_choices(self) -> None:
        shown = self.controller.choices(**{n: d.value or None for n, d in self.filters.items()})
        kept = set(self.select.value)
        self.select.value = ()  # before the options change: the browser errs on stale ones
        self.select.options = [(_label(row), int(row.jobid)) for row in shown.itertuples()]
        self.select.value = tuple(j for _, j in self.select.options if j in kept)
        self._update_buttons()

    def _show_status(self) -> None:
        reason = self.controller.read_only
        if reason is not None:
            self.status.value = message(reason, "error")
            return
        jobs = self.controller.jobs
        at = f" at {when(self.controller.listed_at)}" if self.controller.listed_at else ""
        self.status.value = message(f"{len(jobs)} queueable jobs listed{at}.")

    def _update_buttons(self) -> None:
        n = len(self.select.value)
        read_only = self.controller.read_only is not None
        self.queue_button.description = f"Queue {n} job{'' if n == 1 else 's'}"
        self.queue_button.disabled = read_only or n == 0 or self._queueing
        self.select_all.disabled = not self.select.options
        self.queue_button.tooltip = self.controller.read_only or ""

    def _show_confirm(self, shown: bool) -> None:
        self.confirm.layout.display = "flex" if shown else "none"

    def _show_results(self) -> None:
        frame = self.controller.outcome_table()
        accepted = int(frame["ok"].sum())
        frame = frame.rename(columns={"jobid": "job", "detail": "result"})[["job", "result"]]
        head = message(f"{accepted} of {len(frame)} queued on ASID {self.controller.asid}.")
        self.results.value = TABLE_CSS + head + table(frame)

    # -- callbacks -----------------------------------------------------------------------

    def _on_refresh(self, _: widgets.Button) -> None:
        self.tasks.clear()
        self.tasks.spawn("listing the jobs", self.refresh())

    def _on_select_all(self, _: widgets.Button) -> None:
        self.select.value = tuple(j for _, j in self.select.options)

    def _on_selection(self, _: Any) -> None:
        self._show_confirm(False)
        self._update_buttons()

    def _on_queue(self, _: widgets.Button) -> None:
        self.question.value = f"<b>{escape(self.controller.confirmation(self.select.value))}</b>"
        self._show_confirm(True)

    def _on_cancel(self, _: widgets.Button) -> None:
        self._show_confirm(False)

    def _on_confirm(self, _: widgets.Button) -> None:
        self._show_confirm(False)
        if self._queueing:
            return  # a second click while the first batch is under way
        self.tasks.clear()
        self._queueing = True
        self._update_buttons()
        if self.tasks.spawn("queueing", self._queue(tuple(self.select.value))) is None:
            self._queueing = False
            self._update_buttons()

    async def _queue(self, jobids: tuple[int, ...]) -> None:
        self.results.value = message(f"Queueing {len(jobids)} jobs...")
        try:
            await self.controller.queue(jobids)
        finally:
            self._show_results()
            self._show_choices()
            self._queueing = False
            self._update_buttons()


def _label(row: Any) -> str:
    where = row.machine if row.kind == "machine" else row.mirror
    parts = [str(row.jobid), row.kind, row.location, where, row.state]
    return " · ".join("?" if pd.isna(p) else str(p) for p in parts)
