"""Plots of the fleet over time: states stacked, and one lane per job."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..analysis import FLEET_STATES
from ._style import (
    FAILED_MARK,
    OKABE_ITO,
    STATE_COLOURS,
    axes_or_current,
    clock_texts,
    completion_marks,
    date_numbers,
    held_steps,
    job_names,
    label_text,
    legend_above,
    one_rollout,
    set_tooltips,
    time_axis,
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
    time_axis(ax)
    ax.set_ylabel(f"jobs (of {total:.0f})")
    ax.set_title("Rollout burn-up", loc="left")
    ax.set_ylim(0, max(total, 1))
    if len(times):
        ax.set_xlim(shown[0], shown[-1])
    legend_above(ax, [Patch(color=STATE_COLOURS[s], label=s) for s in drawn])
    return ax


def _jobs(intervals: pd.DataFrame, by: str) -> pd.DataFrame:
    """One row per job, in lane order, with its lane label: by location, mirrors first, then
    by machine (``by="machine"``) or by when the job was first seen (``by="location"``)."""
    firsts = intervals.groupby("jobid", sort=False).agg(
        kind=("kind", "first"),
        location=("location", "first"),
        machine=("machine", "first"),
        first=("start", "min"),
    )
    jobs = firsts.reset_index()
    jobs["place"] = jobs["location"].astype(object).fillna("?").map(label_text)
    jobs["machine_job"] = jobs["kind"].astype(object) != "mirror"
    name = jobs["machine"].astype(object).fillna(jobs["kind"].astype(object).fillna("?"))
    jobs["label"] = (
        jobs["place"] + " · " + name.map(label_text) + " · job " + jobs["jobid"].astype(str)
    )
    order = ["place", "machine_job", "machine", "first"] if by == "machine" else ["place", "first"]
    return jobs.sort_values([*order, "jobid"], kind="stable").reset_index(drop=True)


@one_rollout
def plot_swimlanes(
    intervals: pd.DataFrame,
    *,
    by: Literal["machine", "location"] = "machine",
    failures: pd.DataFrame | None = None,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """One lane per job, labelled with its location, machine (or "mirror") and id; bars
    coloured by the state each poll saw; a failed job's lane ends where it failed, an x.

    ``intervals`` is :func:`~cfanalytics.analysis.state_intervals`. Lanes go by location
    (a thin line between locations, mirror jobs first), then by machine, or with
    ``by="location"`` by when each job was first seen. The x marks the first poll that saw
    the job failed; given ``failures`` (:func:`~cfanalytics.analysis.failures`), the failure
    time that table shows instead (the API's ``jobupdated``), the bar before it cut there.
    The failure's time is written beside the x when there are few. Time runs along the top
    and the bottom. Lane labels shrink to fit the Axes' height; the figure's size is the
    caller's. ``kwargs`` go to the bars' :class:`~matplotlib.collections.PolyCollection`.
    Each bar's and each x's hover text (:func:`tooltips`) names the job, state and times.
    """
    if by not in ("machine", "location"):
        raise ValueError(f"by must be 'machine' or 'location', not {by!r}")
    ax = axes_or_current(ax)
    jobs = _jobs(intervals, by)
    data = _cut_at_failures(intervals, failures).merge(
        jobs[["jobid", "label"]].reset_index(names="lane"), on="jobid", how="left"
    )
    failed = (data["state"] == "failed").to_numpy(dtype=bool)
    _bars(ax, data[~failed], kwargs)
    _mark_failures(ax, data[failed], len(jobs))
    _lane_axes(ax, jobs)
    ax.set_ylabel("job")
    ax.set_title(f"Jobs by {by}", loc="left")
    shown = set(data["state"].astype(str))
    order = [s for s in FLEET_STATES if s in shown and s != "failed"]
    handles: list[Any] = [Patch(color=STATE_COLOURS[s], label=s) for s in order]
    if failed.any():
        handles.append(Line2D([], [], color=FAILED_MARK, marker="x", ls="", label="failed"))
    legend_above(ax, handles, above=_TOP_TICKS)
    return ax


_TOP_TICKS = 18.0  # points: the time labels along the top, which the legend stays above


def _cut_at_failures(intervals: pd.DataFrame, failures: pd.DataFrame | None) -> pd.DataFrame:
    """``intervals`` with each job's first failed run starting at its ``failed_at`` (when
    given and earlier), and the run before it ending there."""
    if failures is None or failures.empty:
        return intervals
    at = failures.set_index("jobid")["failed_at"]
    data = intervals.reset_index(drop=True)
    first = data[data["state"] == "failed"].groupby("jobid")["start"].idxmin()
    when = first.index.map(at)
    for jobid, row, moment in zip(first.index, first.to_numpy(), when, strict=True):
        if pd.isna(moment) or moment >= data.at[row, "start"]:
            continue
        before = (data["jobid"] == jobid) & (data["end"] == data.at[row, "start"])
        data.loc[before, "end"] = data.loc[before, "start"].clip(lower=moment)  # max(start, at)
        data.at[row, "start"] = moment
    return data


def _bars(ax: Axes, data: pd.DataFrame, kwargs: dict[str, Any]) -> None:
    """One rectangle per interval on its job's lane (80 % of it), in one collection."""
    start, end = date_numbers(data["start"]), date_numbers(data["end"])
    lane = data["lane"].to_numpy(dtype=float)
    low, high = lane + 0.1, lane + 0.9
    corners = [(start, low), (start, high), (end, high), (end, low)]
    boxes = np.stack([np.column_stack(corner) for corner in corners], axis=1)
    colours = [STATE_COLOURS.get(str(s), OKABE_ITO[7]) for s in data["state"]]
    options: dict[str, Any] = {"facecolors": colours, "edgecolors": "none"} | kwargs
    bars = ax.add_collection(PolyCollection(list(boxes), **options), autolim=True)
    span = clock_texts(data["start"]) + " to " + clock_texts(data["end"])
    texts = job_names(data) + " · " + data["state"].astype(str) + " " + span
    set_tooltips(bars, texts.tolist())
    ax.autoscale_view()


def _mark_failures(ax: Axes, failed: pd.DataFrame, lanes: int) -> None:
    """An x at each failure, mid-lane; its time beside it when few and the lanes roomy."""
    when = date_numbers(failed["start"])
    where = failed["lane"].to_numpy(dtype=float) + 0.5
    marks = ax.scatter(when, where, marker="x", color=FAILED_MARK, s=28, linewidths=1.5, zorder=3)
    stamps = clock_texts(failed["start"])
    set_tooltips(marks, (job_names(failed) + " · failed " + stamps).tolist())
    if len(failed) > 30 or _points_per_lane(ax, lanes) < 7:
        return
    for day, level, stamp in zip(when, where, stamps, strict=True):
        ax.annotate(
            stamp,
            (day, level),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            fontsize="x-small",
        )


def _lane_axes(ax: Axes, jobs: pd.DataFrame) -> None:
    """Lane labels, first lane on top, a line between locations, time at top and bottom."""
    ax.set_yticks(np.arange(len(jobs)) + 0.5, jobs["label"].tolist())
    ax.set_ylim(max(len(jobs), 1), 0)
    ax.tick_params(axis="y", length=0, labelsize=_lane_font(ax, len(jobs)))
    for boundary in np.flatnonzero(jobs["place"].to_numpy()[1:] != jobs["place"].to_numpy()[:-1]):
        ax.axhline(float(boundary + 1), color="0.6", linewidth=0.6)
    time_axis(ax)
    ax.tick_params(axis="x", top=True, labeltop=True)


def _points_per_lane(ax: Axes, lanes: int) -> float:
    """The height of one lane, in points, at the Axes' current size."""
    return float(ax.get_window_extent().height * 72 / ax.figure.dpi / max(lanes, 1))


def _lane_font(ax: Axes, lanes: int) -> float:
    """A label size (points) that fits ``lanes`` labels in the Axes' height, 4 to 9 pt."""
    return float(np.clip(0.75 * _points_per_lane(ax, lanes), 4, 9))
