"""Plots of the fleet over time: states stacked, and one lane per machine or location."""

from __future__ import annotations

from typing import Any, Literal

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..analysis import FLEET_STATES
from ._style import (
    FAILED_MARK,
    OKABE_ITO,
    STATE_COLOURS,
    axes_or_current,
    completion_marks,
    held_steps,
    label_text,
    legend_above,
    one_rollout,
    utc_axis,
    utc_values,
)

__all__ = ["plot_burnup", "plot_swimlanes"]


@one_rollout
def plot_burnup(states: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """The fleet's states over time, stacked, with the 50 % and 90 % completed marks.

    ``states`` is :func:`~cfanalytics.analysis.fleet_states`. Completed jobs at the bottom, then
    failed, other, running, queued and waiting on top; states never taken are left out.
    Dashed lines mark 50 % and 90 % of all jobs; a dot and the time mark where ``completed``
    first reaches each. Counts hold from their poll to the next; the last poll's are drawn
    for one more (median) poll interval. ``kwargs`` go to :meth:`~matplotlib.axes.Axes.stackplot`.
    """
    if "state" not in states.columns:
        raise TypeError("plot_burnup takes fleet_states(events), not a job summary")
    ax = axes_or_current(ax)
    wide = states.pivot_table(
        index="observed_at", columns="state", values="jobs", aggfunc="sum", observed=False
    ).astype("float64")
    drawn = [s for s in STATE_COLOURS if s in wide.columns and wide[s].sum() > 0]
    total = float(wide.sum(axis=1).max()) if len(wide) else 0.0
    times = utc_values(wide.index.to_series())
    shown = held_steps(times)
    options: dict[str, Any] = {"step": "post", "linewidth": 0} | kwargs
    if drawn:
        ax.stackplot(
            shown,
            *[np.append(wide[s].to_numpy(), wide[s].iloc[-1]) for s in drawn],
            labels=drawn,
            colors=[STATE_COLOURS[s] for s in drawn],
            **options,
        )
    if total:
        completion_marks(ax, times, wide.get("completed"), total)
    utc_axis(ax)
    ax.set_ylabel(f"jobs (of {total:.0f})")
    ax.set_title("Rollout burn-up", loc="left")
    ax.set_ylim(0, max(total, 1))
    if len(times):
        ax.set_xlim(shown[0], shown[-1])
    legend_above(ax, [Patch(color=STATE_COLOURS[s], label=s) for s in drawn])
    return ax


def _lanes(intervals: pd.DataFrame, by: str) -> tuple[pd.Series, list[str]]:
    """Each interval's lane label, and the lanes in order: by location, mirrors first.

    A machine lane reads ``location · machine``; a mirror job's lane ``location · mirror``.
    """
    location = intervals["location"].astype(object).fillna("?").map(label_text)
    if by == "location":
        return location, sorted(location.unique())
    kind = intervals["kind"].astype(object).fillna("?")
    machine = intervals["machine"].astype(object).fillna(kind).map(label_text)
    label = location + " · " + machine
    keys = pd.DataFrame({"label": label, "location": location, "machine": kind != "mirror"})
    ordered = keys.drop_duplicates("label").sort_values(["location", "machine", "label"])
    return label, ordered["label"].tolist()


def _days(times: np.ndarray) -> np.ndarray:
    """Matplotlib date numbers (days) of naive UTC ``datetime64``."""
    days: np.ndarray = mdates.date2num(times)  # type: ignore[no-untyped-call]
    return days


@one_rollout
def plot_swimlanes(
    intervals: pd.DataFrame,
    *,
    by: Literal["machine", "location"] = "machine",
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """One lane per machine (or location), bars coloured by state, failures marked with an x.

    ``intervals`` is :func:`~cfanalytics.analysis.state_intervals`. Jobs sharing a lane get
    sub-rows in order of first appearance. A black x with its time (UTC) marks where each
    job was first seen failed. Lane labels shrink to fit the Axes' height; the figure's size
    is the caller's. ``kwargs`` go to :meth:`~matplotlib.axes.Axes.barh`.
    """
    if by not in ("machine", "location"):
        raise ValueError(f"by must be 'machine' or 'location', not {by!r}")
    ax = axes_or_current(ax)
    label, lanes = _lanes(intervals, by)
    data = intervals.assign(lane=label)
    row, height = _sub_rows(data, lanes)
    start, end = _days(utc_values(data["start"])), _days(utc_values(data["end"]))
    colours = [STATE_COLOURS.get(str(s), OKABE_ITO[7]) for s in data["state"]]
    options: dict[str, Any] = {"edgecolor": "none"} | kwargs
    ax.barh(row, end - start, left=start, height=height, color=colours, align="edge", **options)
    failed = (data["state"] == "failed").to_numpy(dtype=bool)
    roomy = _points_per_lane(ax, len(lanes)) * height[failed] / 0.8 >= 6  # sub-row, pt
    _mark_failures(ax, start[failed], (row + height / 2)[failed], labelled=roomy)
    ax.set_yticks(np.arange(len(lanes)) + 0.5, lanes)
    ax.set_ylim(max(len(lanes), 1), 0)  # first lane on top
    ax.tick_params(axis="y", length=0, labelsize=_lane_font(ax, len(lanes)))
    utc_axis(ax)
    ax.set_ylabel(by)
    ax.set_title(f"Jobs by {by}", loc="left")
    shown = set(data["state"].astype(str))
    order = [s for s in FLEET_STATES if s in shown]
    handles: list[Any] = [Patch(color=STATE_COLOURS[s], label=s) for s in order]
    if failed.any():
        handles.append(Line2D([], [], color=FAILED_MARK, marker="x", ls="", label="failed at"))
    legend_above(ax, handles)
    return ax


def _sub_rows(data: pd.DataFrame, lanes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each interval's bar bottom and height: its lane split evenly among the lane's jobs.

    Jobs are ordered within a lane by first appearance, then by when they left their first
    state (a staircase); bars fill 80 % of their sub-row, leaving a gap between jobs.
    """
    lane = data["lane"].map({name: i for i, name in enumerate(lanes)}).to_numpy(dtype=float)
    by_job = data.assign(lane=lane).groupby("jobid")
    jobs = pd.DataFrame(
        {
            "lane": by_job["lane"].first(),
            "first": by_job["start"].min(),
            "moved": by_job["end"].min(),
        }
    )
    jobs = jobs.sort_values(["lane", "first", "moved"], kind="stable")
    jobs["slot"] = jobs.groupby("lane").cumcount()
    jobs["slots"] = jobs.groupby("lane")["slot"].transform("size")
    slot = data["jobid"].map(jobs["slot"]).to_numpy(dtype=float)
    step = 0.9 / np.maximum(data["jobid"].map(jobs["slots"]).to_numpy(dtype=float), 1)
    return lane + 0.05 + slot * step + 0.1 * step, 0.8 * step


def _mark_failures(ax: Axes, when: np.ndarray, where: np.ndarray, *, labelled: np.ndarray) -> None:
    """An x at each failure (date numbers, rows); its time beside those ``labelled``, if few."""
    ax.scatter(when, where, marker="x", color=FAILED_MARK, s=28, linewidths=1.5, zorder=3)
    if labelled.sum() > 30:
        return
    for day, level in zip(when[labelled], where[labelled], strict=True):
        stamp = mdates.num2date(day, tz="UTC").strftime("%H:%M:%S")  # type: ignore[no-untyped-call]
        ax.annotate(
            stamp,
            (day, level),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            fontsize="x-small",
        )


def _points_per_lane(ax: Axes, lanes: int) -> float:
    """The height of one lane, in points, at the Axes' current size."""
    return float(ax.get_window_extent().height * 72 / ax.figure.dpi / max(lanes, 1))


def _lane_font(ax: Axes, lanes: int) -> float:
    """A label size (points) that fits ``lanes`` labels in the Axes' height, 4 to 9 pt."""
    return float(np.clip(0.75 * _points_per_lane(ax, lanes), 4, 9))
