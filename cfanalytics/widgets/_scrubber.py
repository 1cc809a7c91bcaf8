"""The replay scrubber: slide through a recorded run; the fleet as it was, and how it ended."""

from __future__ import annotations

import os
from typing import Any

import ipywidgets as widgets
import pandas as pd
from matplotlib.axes import Axes

from ..analysis import FleetTimeline, fleet_states
from ..live import FleetHeader
from ..plots import plot_burnup
from ..recording import load_source
from ..report import duration, escape, png, when
from ._base import Tasks, bar, cells, classed, clock, html_table, message

__all__ = ["ReplayScrubber"]

_WIDE = {"max_width": "100%"}
_AUTO = {"width": "auto"}


class ReplayScrubber(widgets.VBox):  # type: ignore[misc]
    """A time slider and Play button over a recorded run; :meth:`at` gives the fleet then.

    ``source`` is an events table, a cassette or event log path (:func:`~cfanalytics.load_source`)
    or anything with an ``events`` attribute, such as a :class:`~cfanalytics.LiveSession`;
    :meth:`reload` reads it again (``LiveMonitor.on_finished(scrubber.reload)`` keeps a
    scrubber up to date with a live rollout). The slider stops at every successful poll. The
    table shows each job's state, progress and ETA at that moment next to what actually
    happened later. A thin view over :class:`~cfanalytics.timeline.FleetTimeline`, of one
    rollout: ``rollout``, or the only one in the source.
    """

    def __init__(
        self, source: Any, *, max_rows: int = 200, rollout: str | None = None, **kwargs: Any
    ) -> None:
        self.source = source
        self.rollout = rollout
        self.max_rows = max_rows
        self.tasks = Tasks()
        self.events = _events_of(source)
        self.timeline = FleetTimeline(self.events, rollout=self.rollout)
        self.play = classed(widgets.Play(min=0, max=0, interval=400, step=1), "cfa-play")
        self.slider = self._slider()
        self.label = classed(widgets.HTML(), "cfa-time-label")
        buttons = [
            self.tasks.button("First", "cfa-scrub-first", lambda _: self.show(0), layout=_AUTO),
            self.tasks.button(
                "Last", "cfa-scrub-last", lambda _: self.show(len(self.timeline) - 1), layout=_AUTO
            ),
            self.tasks.button("Reload", "cfa-scrub-reload", lambda _: self.reload(), layout=_AUTO),
        ]
        self.summary = classed(widgets.HTML(), "cfa-scrub-summary")
        self.table = classed(widgets.HTML(), "cfa-snapshot", "cfa-table")
        self.plot = classed(
            widgets.Image(format="png", layout={"max_width": "100%"}), "cfa-scrub-plot"
        )
        self.controls = widgets.HBox([self.play, self.slider, self.label])
        scroll = widgets.Box([self.table], layout={"max_height": "420px", "overflow": "auto"})
        children = [
            widgets.HTML("<b>Replay</b>"),
            self.controls,
            widgets.HBox(buttons),
            self.summary,
            self.plot,
            scroll,
            self.tasks.pane,
        ]
        super().__init__(children, **kwargs)
        classed(self, "cfa-replay-scrubber")
        self._states = self._fleet_states()
        self._reset(end=False)

    # -- public --------------------------------------------------------------------------

    @property
    def time(self) -> pd.Timestamp | None:
        """The poll time the slider is at (None when nothing was recorded)."""
        return self.timeline.times[self.slider.value] if len(self.timeline) else None

    def at(self, when: pd.Timestamp | str | None = None) -> pd.DataFrame:
        """The fleet at ``when`` (default: the slider's time), with what happened later.

        Columns: :data:`~cfanalytics.timeline.SNAPSHOT_SCHEMA`.
        """
        return self.timeline.at(self.time if when is None else when)

    def show(self, index: int) -> None:
        """Move the slider to poll ``index`` (negative counts from the end)."""
        if len(self.timeline):
            self.slider.value = range(len(self.timeline))[index]

    def reload(self, *_: object) -> None:
        """Read the source again (a live session's newer events, say) and go to the end.

        Takes and ignores any arguments, so ``monitor.on_finished(scrubber.reload)`` works.
        """
        self.events = _events_of(self.source)
        self.timeline = FleetTimeline(self.events, rollout=self.rollout)
        self._states = self._fleet_states()
        self._reset(end=True)

    # -- internals -----------------------------------------------------------------------

    def _fleet_states(self) -> pd.DataFrame:
        """:func:`~cfanalytics.fleet_states` of the timeline's rollout."""
        states = fleet_states(self.events)
        if self.timeline.rollout is None:
            return states
        return states.loc[states["rollout"] == self.timeline.rollout].reset_index(drop=True)

    def _slider(self) -> widgets.IntSlider:
        """A slider over the polls, linked to Play; remade on reload (see :meth:`_reset`)."""
        last = max(len(self.timeline) - 1, 0)
        slider = classed(
            widgets.IntSlider(
                min=0,
                max=last,
                value=0,
                readout=False,
                continuous_update=False,
                layout={"width": "60%"},
            ),
            "cfa-time-slider",
        )
        self._link = widgets.link((self.play, "value"), (slider, "value"))
        slider.observe(self.tasks.guard("scrubbing", lambda _: self._render()), "value")
        return slider

    def _reset(self, *, end: bool) -> None:
        last = max(len(self.timeline) - 1, 0)
        if self.slider.max != last:
            # A new slider: the browser's slider keeps its first maximum for the End key.
            self._link.unlink()
            self.slider.close()
            self.play.max = last
            self.slider = self._slider()
            self.controls.children = (self.play, self.slider, self.label)
        self.slider.max = self.play.max = last
        self.slider.disabled = self.play.disabled = not len(self.timeline)
        index = last if end else 0
        if self.slider.value == index:
            self._render()
        self.slider.value = index

    def _render(self) -> None:
        if not len(self.timeline):
            self.label.value = ""
            self.summary.value = message("Nothing recorded yet: no successful poll to show.")
            self.table.value, self.plot.value = "", b""
            return
        fleet = self.at()
        t = self.time
        start = self.timeline.times[0]
        self.label.value = escape(f"{when(t)} (+{duration((t - start).total_seconds())})")
        self.summary.value = _summary_html(
            FleetHeader.of(fleet), self.slider.value, len(self.timeline)
        )
        self.table.value = _snapshot_html(fleet, self.max_rows)
        self.plot.value = png(self._draw, size=(9.0, 3.4), dpi=90)

    def _draw(self, ax: Axes) -> None:
        plot_burnup(self._states, ax=ax)
        if self.time is not None:
            ax.axvline(self.time, color="0.2", linewidth=1.5, label="the moment shown")


def _events_of(source: Any) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, str | os.PathLike):
        return load_source(source)
    events = getattr(source, "events", None)
    if not isinstance(events, pd.DataFrame):
        raise TypeError(
            "ReplayScrubber needs an events table, a cassette or event log path, or an object "
            f"with an events table (.events), not {type(source).__name__}"
        )
    return events


def _summary_html(header: FleetHeader, index: int, polls: int) -> str:
    counts = ", ".join(f"{n} {state}" for state, n in header.counts.items())
    return (
        f"Poll {index + 1} of {polls}: <b>{escape(counts)}</b> &middot; "
        f"{100 * header.done_share:.0f} % done"
    )


def _snapshot_html(fleet: pd.DataFrame, max_rows: int) -> str:
    headers = (
        "job",
        "kind",
        "location",
        "state then",
        "progress then",
        "ETA then (UTC)",
        "in the end",
        "ended at (UTC)",
        "actual - ETA",
    )
    return html_table(headers, [_row(row) for row in fleet.head(max_rows).itertuples()], len(fleet))


def _row(row: Any) -> str:
    ended = row.completed_at if not pd.isna(row.completed_at) else row.failed_at
    return (
        f'<tr data-jobid="{row.jobid}">{cells([row.jobid, row.kind, row.location, row.state])}'
        f"<td>{bar(row.jobprogress)}</td><td>{clock(row.jobeta)}</td>"
        f"<td>{escape(row.outcome)}</td><td>{clock(ended)}</td>"
        f"<td>{duration(row.eta_error_s, signed=True)}</td></tr>"
    )
