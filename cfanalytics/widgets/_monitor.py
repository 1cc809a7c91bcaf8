"""The live monitor: the fleet, its forecast finish, every job and the ETA against actual
completion, as it happens."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import ipywidgets as widgets
import pandas as pd
from matplotlib.axes import Axes

from ..analysis import Forecast, History
from ..client import QueueResult
from ..live import FleetHeader, Monitor, Throttle
from ..plots import plot_burnup, plot_eta_vs_actual
from ..recording import RolloutProgress, RolloutRunner
from ..report import NA, duration, escape, png, when
from ._base import Tasks, bar, cells, classed, clock, html_table, message

__all__ = ["LiveMonitor"]

_WIDE = {"max_width": "100%"}

# What a redraw makes: header, forecast and table as HTML (None: not due), the plot's PNG.
_TO = "\u2013"  # an en dash, between a band's bounds
_Drawn = tuple[tuple[str, str, str] | None, bytes | None]

# Rows first: stragglers, then what is moving, then what is waiting, then what has ended.
_ORDER = {"running": 0, "queued": 1, "pending": 2, "waiting": 3, "failed": 4, "other": 5}


class LiveMonitor(widgets.VBox):  # type: ignore[misc]
    """Watch a rollout: fleet header, forecast finish, one row per job, a live
    ETA-vs-actual plot, Stop.

    A thin view over :class:`~cfanalytics.live.Monitor` (``monitor.monitor``). Polling is
    an asyncio task on the kernel's event loop; it starts with :meth:`start` (or the Start
    button), or when :meth:`follow` hands it jobs. The runner records every response, as
    ``cfanalytics record`` does. The table, header and forecast refresh at most every
    ``redraw_s`` seconds, the plot every ``plot_s``, and all once more at the end; when
    redrawing costs more, less often (:class:`~cfanalytics.live.Throttle`), so polls stay
    on time. The forecast (:meth:`~cfanalytics.live.Monitor.forecasts`) is made once per
    poll; ``history`` lets it learn from earlier rollouts too. ``clock`` (seconds) paces
    the redraws.
    """

    def __init__(
        self,
        runner: RolloutRunner,
        *,
        redraw_s: float = 0.5,
        plot_s: float = 2.0,
        max_rows: int = 200,
        history: History | str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        self.monitor = Monitor(runner, history=history)
        self.tasks = Tasks()
        self.max_rows = max_rows
        self._redraw, self._replot = Throttle(redraw_s, clock=clock), Throttle(plot_s, clock=clock)
        self._finish_callbacks: list[Callable[[RolloutProgress], object]] = []
        self.header = classed(widgets.HTML(), "cfa-fleet-header")
        self.forecast = classed(widgets.HTML(), "cfa-forecast")
        self.status = classed(widgets.HTML(), "cfa-monitor-status")
        self.table = classed(widgets.HTML(), "cfa-job-table", "cfa-table")
        self.plot = classed(
            widgets.Image(format="png", layout={"max_width": "100%"}), "cfa-eta-plot"
        )
        self.start_button = self.tasks.button(
            "Start", "cfa-start-button", lambda _: self.start(), icon="play"
        )
        self.stop_button = self.tasks.button(
            "Stop", "cfa-stop-button", lambda _: self.stop(), icon="stop", button_style="danger"
        )
        previous = runner.on_progress
        runner.on_progress = self.tasks.guard("showing progress", self._chain(previous))
        title = widgets.HTML(f"<b>Live rollout</b> &middot; ASID {escape(runner.asid)}")
        buttons = widgets.HBox([self.start_button, self.stop_button])
        scroll = widgets.Box([self.table], layout={"max_height": "420px", "overflow": "auto"})
        children = [
            *(title, self.header, self.forecast, self.status),
            *(buttons, scroll, self.plot, self.tasks.pane),
        ]
        super().__init__(children, **kwargs)
        classed(self, "cfa-live-monitor")
        self._polling = False
        self._draw_task: asyncio.Task[Any] | None = None
        self.refresh(force=True)

    # -- public --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the polling task is running."""
        return self._polling

    def follow(self, queued: Iterable[QueueResult]) -> None:
        """Follow these queued jobs too, and start polling if it is not running."""
        self.monitor.follow(queued)
        if not self.running:
            self.start()
        else:
            self.refresh(force=True)

    def start(self) -> None:
        """Start polling on the running event loop (nothing happens with no job to follow)."""
        if self.running or not self.monitor.following:
            self.refresh(force=True)
            return
        self.tasks.clear()
        if self.tasks.spawn("polling", self._run()) is not None:
            self._polling = True
        self.refresh(force=True)

    def stop(self) -> None:
        """Stop polling: at once if waiting between polls, else after the poll under way."""
        self.monitor.stop()

    def on_finished(self, callback: Callable[[RolloutProgress], object]) -> None:
        """Call ``callback(progress)`` each time polling ends (every job ended, or Stop)."""
        self._finish_callbacks.append(self.tasks.guard("after the rollout", callback))

    def refresh(self, *, force: bool = False) -> None:
        """Redraw header, table and plot if due (``force``: now), then status and buttons.

        The status goes last: whoever reads "Finished" then sees the final table too.
        """
        table = self._redraw.due(force=force)
        plot = bool(self.monitor.following) and self._replot.due(force=force)
        if table or plot:
            self._show(self._drawing(self.monitor.events(), table=table, plot=plot))
        self._show_status()

    # -- internals -----------------------------------------------------------------------

    def _show_status(self) -> None:
        self.status.value = self._status_html()
        self.start_button.disabled = self.running or not self.monitor.following
        self.stop_button.disabled = not self.running

    def _chain(self, previous: Callable[[RolloutProgress], object] | None) -> Callable[..., None]:
        def on_progress(progress: RolloutProgress) -> None:
            if previous is not None:
                previous(progress)
            self._show_status()
            if self._draw_task is None:  # one redraw at a time; the next poll asks again
                self._draw_task = self.tasks.spawn("drawing", self._redraw_off_loop())

        return on_progress

    async def _redraw_off_loop(self) -> None:
        """Analysis and PNG in a worker thread, so polls keep their pace; widgets set here."""
        try:
            table, plot = self._redraw.due(), self._replot.due()
            events = self.monitor.events()  # taken here: the recorder appends on this loop
            if (table or plot) and events is not None:
                throttle = self._replot if plot else self._redraw
                with throttle.timing():
                    drawn = await asyncio.to_thread(self._drawing, events, table=table, plot=plot)
                self._show(drawn)
            elif table or plot:
                self._show(self._drawing(events, table=table, plot=plot))
        finally:
            self._draw_task = None

    def _drawing(self, events: pd.DataFrame | None, *, table: bool, plot: bool) -> _Drawn:
        """Header, forecast, table and plot as HTML and PNG: pure, so it can run in a worker
        thread. The forecast costs once per poll (the monitor keeps the last one)."""
        texts = image = None
        if table:
            fleet = self.monitor.fleet_forecast(events)
            finish = (
                _forecast_html(self.monitor.forecasts(events), fleet)
                if events is not None and self.monitor.following
                else ""  # no recorder, so nothing to forecast from; or nothing to forecast
            )
            texts = (
                _header_html(self.monitor.header(fleet)),
                finish,
                _table_html(fleet, self.max_rows),
            )
        if plot and events is not None:
            states, errors = self.monitor.fleet_states(events), self.monitor.eta_errors(events)
            image = png(partial(_draw, states, errors), size=(11.0, 4.0), ncols=2, dpi=90)
        return texts, image

    def _show(self, drawn: _Drawn) -> None:
        texts, image = drawn
        if texts is not None:
            self.header.value, self.forecast.value, self.table.value = texts
        if image is not None:
            self.plot.value = image

    async def _run(self) -> None:
        try:
            progress = await self.monitor.run()
        finally:
            self._polling = False
            if self._draw_task is not None:
                await asyncio.gather(self._draw_task, return_exceptions=True)
            self.refresh(force=True)
        for callback in self._finish_callbacks:
            callback(progress)

    def _status_html(self) -> str:
        progress = self.monitor.progress
        if not self.monitor.following:
            return message("Nothing to follow yet: queue jobs, then they show here.")
        seen = f"; last response {when(progress.last_seen)}" if progress.last_seen else ""
        failed = f", {progress.failed_polls} failed" if progress.failed_polls else ""
        polls = f"{progress.polls} polls{failed}{seen}"
        stuck = "".join(  # the jobs that will not move until someone queues their mirror
            message(strand.message(self.monitor.runner.asid), "warning")
            for strand in progress.stranded
        )
        if self.running:
            every = self.monitor.runner.interval
            return message(f"Polling every {every:g} s: {polls}.") + stuck
        if progress.stop_reason:
            return message(f"Finished: {progress.stop_reason} ({polls}).")
        return message(f"Not polling: {polls}. Press Start to follow the jobs.") + stuck


def _draw(states: pd.DataFrame, errors: pd.DataFrame, left: Axes, right: Axes) -> None:
    plot_burnup(states, ax=left)
    plot_eta_vs_actual(errors, ax=right)


def _header_html(header: FleetHeader) -> str:
    if not header.jobs:
        return ""
    counts = ", ".join(f"{n} {state}" for state, n in header.counts.items())
    median = duration(header.eta_median_s)
    p90 = duration(header.eta_p90_s)
    return (
        f"<b>{header.jobs} jobs</b>: {escape(counts)} &middot; "
        f"<b>{100 * header.done_share:.0f} % done</b> &middot; "
        f"ETAs of running jobs: median in {median}, p90 in {p90}"
    )


def _table_html(fleet: pd.DataFrame, max_rows: int) -> str:
    if fleet.empty:
        return ""
    flagged = fleet["overdue"].fillna(False) | fleet["stalled"].fillna(False)
    order = fleet["state"].astype(str).map(_ORDER).fillna(9)
    ranked = fleet.assign(_flag=~flagged, _order=order).sort_values(["_flag", "_order", "jobid"])
    headers = (
        "job",
        "kind",
        "location",
        "machine / mirror",
        "state",
        "progress",
        "ETA (UTC)",
        "forecast, 80 % band (UTC)",
        "slip",
        "flags",
    )
    rows = [_row(row) for row in ranked.head(max_rows).itertuples()]
    return html_table(headers, rows, len(ranked))


def _row(row: Any) -> str:
    where = row.machine if row.kind == "machine" else row.mirror
    flags = ", ".join(name for name in ("overdue", "stalled") if _true(getattr(row, name)))
    mark = f'<span class="cfa-flag">{escape(flags)}</span>' if flags else ""
    described = cells([row.jobid, row.kind, row.location, where, row.state])
    forecast = _band(row.forecast_at, row.lower_at, row.upper_at)
    return (
        f'<tr data-jobid="{row.jobid}">{described}'
        f"<td>{bar(_shown_progress(row), 'cfa-job-progress')}</td><td>{clock(row.jobeta)}</td>"
        f'<td class="cfa-job-forecast">{escape(forecast)}</td>'
        f"<td>{duration(row.slip_s, signed=True)}</td><td>{mark}</td></tr>"
    )


def _band(median: Any, lower: Any, upper: Any, note: str = "") -> str:
    """A forecast and its interval, "09:12:00 (09:10:30 to 09:15:00)" with an en dash, and
    ``note`` after the interval; no upper bound: never."""
    if pd.isna(median):
        return NA
    last = "never" if pd.isna(upper) else clock(upper)
    return f"{clock(median)} ({clock(lower)}{_TO}{last}{note})"


def _forecast_html(forecasts: tuple[Forecast, ...], fleet: pd.DataFrame) -> str:
    """One line per rollout: when 50/90/100 % of the followed jobs will have completed."""
    if not forecasts:
        return _finish_line("too early to say: no poll yet")
    lines = []
    for found in forecasts:
        mine = fleet["rollout"].eq(found.rollout_name)
        failed = int((mine & fleet["state"].eq("failed")).sum())
        over = found.jobs.empty  # every followed job ended: what is not done never will be
        shares = [_share(row, failed, over) for row in found.rollout.itertuples()]
        said = (
            "too early to say: nothing has run long enough yet"
            if all(text.endswith("too early") for text in shares)
            else " \u00b7 ".join(shares)
        )
        of = f" of {found.rollout_name}" if len(forecasts) > 1 else ""
        lines.append(_finish_line(said, f"{of}, as of {clock(found.at)}"))
    return "".join(lines)


def _finish_line(text: str, context: str = "") -> str:
    return f"<div><b>Forecast finish</b> (UTC{escape(context)}): {escape(text)}</div>"


def _share(row: Any, failed: int, over: bool) -> str:
    """One share's finish in words: done, forecast with its band, or why there is none
    (``reach``: the share of the forecast's draws that got there at all)."""
    share = f"{row.share} %"
    if row.done:
        return f"{share} done at {clock(row.forecast_at)}"
    if over:
        return f"{share} not reached: {failed} failed"
    reach = f"reach {100 * row.reach:.0f} %"
    if pd.notna(row.forecast_at):
        note = f"; {reach}" if row.reach < 0.995 else ""
        return f"{share} {_band(row.forecast_at, row.lower_at, row.upper_at, note)}"
    if row.reach > 0:
        return f"{share} may never: failures ({reach})"
    if failed:
        return f"{share} may never: {failed} failed"
    return f"{share} too early"


def _shown_progress(row: Any) -> Any:
    """A completed job is done: its bar is full, whatever the last poll that listed it said."""
    return 100 if row.state == "completed" else row.jobprogress


def _true(value: Any) -> bool:
    return not pd.isna(value) and bool(value)
