"""Plots of rollout timing: matplotlib's library convention, one function per picture.

Every function takes its data first (a frame from :mod:`cfanalytics.timing` or
:mod:`cfanalytics.fleet`), options keyword-only, draws on ``ax`` (default: the current
Axes) and returns it. Nothing here computes a metric the analysis functions give,
changes global style, or calls ``plt.show``. Colours are the Okabe-Ito palette, safe for
colour-blind readers; times are UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from .fleet import FLEET_STATES

__all__ = [
    "OKABE_ITO",
    "STATE_COLOURS",
    "plot_burnup",
    "plot_completion_curve",
    "plot_error_by_decile",
    "plot_eta_trajectories",
    "plot_eta_vs_actual",
    "plot_progress_curves",
    "plot_swimlanes",
]

#: Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_KIND_COLOURS = {"mirror": OKABE_ITO[1], "machine": OKABE_ITO[0]}
# Okabe-Ito without its yellow (faint on white), vermillion next to orange moved apart.
_TRAJECTORY_COLOURS = tuple(OKABE_ITO[i] for i in (0, 1, 2, 4, 3, 5, 7))
#: A colour per fleet state (:data:`cfanalytics.fleet.FLEET_STATES`), the same in every plot.
STATE_COLOURS = {
    "completed": OKABE_ITO[2],
    "failed": OKABE_ITO[3],
    "other": OKABE_ITO[4],
    "running": OKABE_ITO[0],
    "queued": OKABE_ITO[1],
    "waiting": "#D9D9D9",
}
_FAILED_MARK = OKABE_ITO[7]  # drawn on vermillion bars: black stays visible


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # only here: pyplot picks a backend, slow to import

    return plt.gca()


def _text(value: object) -> str:
    """API text as a label: matplotlib would read ``$...$`` in a name as a formula."""
    return str(value).replace("$", r"\$")


def _hours() -> mdates.DateFormatter:
    return mdates.DateFormatter("%H:%M", tz="UTC")  # type: ignore[no-untyped-call]


def _utc_axis(ax: Axes) -> None:
    """Dates on x in UTC, whatever the local zone: hours and minutes, the day as offset."""
    locator = mdates.AutoDateLocator(tz="UTC")  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz="UTC")  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel("time (UTC)")


def _utc(times: pd.Series) -> np.ndarray:
    """Tz-aware times as naive UTC ``datetime64``: what matplotlib reads as UTC."""
    naive: np.ndarray = times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
    return naive


def _legend_above(ax: Axes, handles: list[Any]) -> None:
    """A one-row legend above the Axes on the right, beside a left-aligned title."""
    if handles:
        ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0),
                  ncol=len(handles), frameon=False, fontsize="small",
                  handlelength=1.2, columnspacing=1.0, borderaxespad=0.2)  # fmt: skip


def plot_eta_vs_actual(
    errors: pd.DataFrame, *, max_points: int = 20_000, ax: Axes | None = None, **kwargs: Any
) -> Axes:
    """Predicted against actual time to go, per observation, with the y = x line.

    Points above the line finished later than predicted. Vertical bars span the censoring
    window of completions that were not seen exactly. With more than ``max_points``
    observations, a hexagonal density (log counts) replaces the points and bars: a million
    dots only hide each other. ``kwargs`` go to :meth:`~matplotlib.axes.Axes.scatter` (or
    :meth:`~matplotlib.axes.Axes.hexbin`).
    """
    ax = _axes(ax)
    minutes = errors.assign(
        predicted=errors["predicted_remaining_s"] / 60, actual=errors["actual_remaining_s"] / 60
    )
    title = "Clanforge ETA against actual completion"
    if len(minutes) > max_points:
        both = minutes[["predicted", "actual"]].astype("float64").dropna()
        options: dict[str, Any] = {"gridsize": 60, "bins": "log", "mincnt": 1, "cmap": "Blues"}
        options |= kwargs
        ax.hexbin(both["predicted"], both["actual"], **options)
        title += f" (density of {len(both):,} observations)"
    else:
        _eta_points(ax, minutes, kwargs)
    top = pd.concat([minutes["predicted"], minutes["actual"]]).max()
    top = float(top) if pd.notna(top) and top > 0 else 1.0
    ax.plot([0, top], [0, top], color="0.4", linestyle="--", linewidth=1, label="ETA exact (y = x)")
    ax.set(xlabel="predicted time to go (min)", ylabel="actual time to go (min)", title=title)
    ax.legend(loc="upper left", frameon=False)
    return ax


def _eta_points(ax: Axes, minutes: pd.DataFrame, kwargs: dict[str, Any]) -> None:
    """One dot per observation by kind, with a bar over each censoring window."""
    for kind, part in minutes.groupby("kind", observed=True):
        censored = part[~part["exact"].fillna(False)]
        low = censored["actual"] - (censored["error_s"] - censored["error_lower_s"]) / 60
        high = censored["actual"] + (censored["error_upper_s"] - censored["error_s"]) / 60
        ax.vlines(censored["predicted"], low, high, color=_KIND_COLOURS.get(str(kind)), alpha=0.25)
        options = {"s": 12, "alpha": 0.7, "color": _KIND_COLOURS.get(str(kind))} | kwargs
        ax.scatter(part["predicted"], part["actual"], label=f"{kind} jobs", **options)


def plot_error_by_decile(errors: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """ETA error by progress decile, as box plots with a zero line (above: late)."""
    ax = _axes(ax)
    deciles = range(10)
    data = [errors.loc[errors["progress_decile"] == d, "error_s"].dropna() / 60 for d in deciles]
    options = {"showfliers": False, "patch_artist": True} | kwargs
    boxes = ax.boxplot(data, positions=list(deciles), widths=0.6, **options)
    for box in boxes["boxes"]:
        box.set(facecolor=OKABE_ITO[5], alpha=0.6)
    ax.axhline(0, color="0.3", linewidth=1)
    ax.set_xticks(list(deciles), [f"{10 * d}-{10 * d + 9}" for d in deciles], rotation=45)
    ax.set(xlabel="progress when the ETA was given (%)",
           ylabel="actual - ETA (min; above 0: late)", title="ETA error by progress")  # fmt: skip
    return ax


def plot_eta_trajectories(
    errors: pd.DataFrame, *, jobs: list[int] | None = None, ax: Axes | None = None, **kwargs: Any
) -> Axes:
    """Each job's ETA over wall time as a step line, and its actual completion (window)."""
    ax = _axes(ax)
    chosen = errors if jobs is None else errors[errors["jobid"].isin(jobs)]
    handles: list[Any] = []
    for number, (jobid, part) in enumerate(chosen.groupby("jobid")):
        colour = _TRAJECTORY_COLOURS[number % len(_TRAJECTORY_COLOURS)]
        options: dict[str, Any] = {"color": colour, "linewidth": 1.2} | kwargs
        (line,) = ax.step(part["observed_at"], part["jobeta"], where="post",
                          label=f"job {jobid}", **options)  # fmt: skip
        handles.append(line)
        done = part["completed_at"].iloc[0]
        after = done - pd.to_timedelta(
            part["error_s"].iloc[0] - part["error_lower_s"].iloc[0], unit="s"
        )
        before = done + pd.to_timedelta(
            part["error_upper_s"].iloc[0] - part["error_s"].iloc[0], unit="s"
        )
        ax.axhspan(after, before, color=colour, alpha=0.15)
        ax.axhline(done, color=colour, linestyle=":", linewidth=1)
    _utc_axis(ax)
    ax.yaxis.set_major_formatter(_hours())
    ax.set_ylabel("ETA (UTC); dotted: actual completion")
    ax.set_title("How the ETAs moved", loc="left")
    if len(handles) <= 8:
        _legend_above(ax, handles)
    return ax


def plot_burnup(states: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """The fleet's states over time, stacked, with the 50 % and 90 % completed marks.

    ``states`` is :func:`~cfanalytics.fleet.fleet_states`. Completed jobs at the bottom, then
    failed, other, running, queued and waiting on top; states never taken are left out.
    Dashed lines mark 50 % and 90 % of all jobs; a dot and the time mark where ``completed``
    first reaches each. Counts hold from their poll to the next; the last poll's are drawn
    for one more (median) poll interval. ``kwargs`` go to :meth:`~matplotlib.axes.Axes.stackplot`.
    """
    if "state" not in states.columns:
        raise TypeError("plot_burnup takes fleet_states(events), not a job summary")
    ax = _axes(ax)
    wide = states.pivot_table(index="observed_at", columns="state", values="jobs",
                              aggfunc="sum", observed=False).astype("float64")  # fmt: skip
    drawn = [s for s in STATE_COLOURS if s in wide.columns and wide[s].sum() > 0]
    total = float(wide.sum(axis=1).max()) if len(wide) else 0.0
    times = _utc(wide.index.to_series())
    shown = _held(times)
    options: dict[str, Any] = {"step": "post", "linewidth": 0} | kwargs
    if drawn:
        ax.stackplot(shown, *[np.append(wide[s].to_numpy(), wide[s].iloc[-1]) for s in drawn],
                     labels=drawn, colors=[STATE_COLOURS[s] for s in drawn], **options)  # fmt: skip
    if total:
        _completion_marks(ax, times, wide.get("completed"), total)
    _utc_axis(ax)
    ax.set_ylabel(f"jobs (of {total:.0f})")
    ax.set_title("Rollout burn-up", loc="left")
    ax.set_ylim(0, max(total, 1))
    if len(times):
        ax.set_xlim(shown[0], shown[-1])
    _legend_above(ax, [Patch(color=STATE_COLOURS[s], label=s) for s in drawn])
    return ax


def _held(times: np.ndarray) -> np.ndarray:
    """``times`` and one more median poll interval: the step where the last poll's counts show."""
    if len(times) < 2:
        return np.append(times, times[-1:] + np.timedelta64(1, "s"))
    return np.append(times, times[-1] + np.median(np.diff(times)))


def _clock_time(when: Any) -> str:
    return f"{pd.Timestamp(when):%H:%M}"


def _completion_marks(
    ax: Axes,
    times: np.ndarray,
    completed: pd.Series | None,
    total: float,
    label: Callable[[Any], str] = _clock_time,
) -> None:
    """Dashed lines at 50 % and 90 % of ``total``; where ``completed`` reaches each, ``label``
    of the time."""
    done = np.zeros(len(times)) if completed is None else completed.to_numpy()
    box = {"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.75, "linewidth": 0}
    for share in (0.5, 0.9):
        level = share * total
        reached = np.flatnonzero(done >= level)
        ax.axhline(level, color="0.15", linestyle="--", linewidth=0.8)
        note = "" if len(reached) else " (not reached)"
        ax.annotate(f"{share:.0%} of jobs{note}", (0.005, level), va="bottom", color="0.15",
                    xycoords=("axes fraction", "data"), fontsize="small", bbox=box)  # fmt: skip
        if not len(reached):
            continue
        when = times[reached[0]]
        ax.plot([when], [level], marker="o", color="black", markersize=5)
        late = when - times[0] > (times[-1] - times[0]) / 2  # label left of the dot: inside
        ax.annotate(f"{share:.0%} completed {label(when)}", (when, level),
                    xytext=(-5 if late else 5, 5), textcoords="offset points",
                    ha="right" if late else "left", fontsize="small", fontweight="bold",
                    bbox=box)  # fmt: skip


def plot_progress_curves(curves: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Progress against elapsed fraction of each job's duration: one thin line per job.

    ``curves`` is :func:`~cfanalytics.fleet.progress_curves`. Lines are coloured by kind;
    flat stretches are phases where the percentage stood still (download, extract). The
    dashed diagonal is progress proportional to time. ``kwargs`` go to the line collections.
    """
    ax = _axes(ax)
    ordered = curves.sort_values(["jobid", "observed_at"], kind="stable")
    handles: list[Any] = []
    for kind, part in ordered.groupby("kind", observed=True):
        colour = _KIND_COLOURS.get(str(kind), OKABE_ITO[7])
        points = np.column_stack(
            [
                part["elapsed_fraction"].to_numpy(dtype=float, na_value=np.nan),
                part["jobprogress"].to_numpy(dtype=float, na_value=np.nan),
            ]
        )
        cuts = np.flatnonzero(np.diff(part["jobid"].to_numpy(dtype=np.int64))) + 1
        lines = [line for line in np.split(points, cuts) if len(line) > 1]
        alpha = float(np.clip(0.8 * np.sqrt(20 / max(len(lines), 1)), 0.15, 0.8))  # many: fainter
        options: dict[str, Any] = {"colors": colour, "linewidths": 0.7, "alpha": alpha} | kwargs
        ax.add_collection(LineCollection(lines, **options))
        jobs = part["jobid"].nunique()
        handles.append(Line2D([], [], color=colour, label=f"{kind} ({jobs} jobs)"))
    ax.plot([0, 1], [0, 100], color="0.3", linestyle="--", linewidth=1)
    handles.append(Line2D([], [], color="0.3", linestyle="--", label="progress ∝ time"))
    ax.set(xlim=(0, 1), ylim=(0, 100), xlabel="elapsed fraction of the job's duration",
           ylabel="progress (%)", title="Progress against elapsed time")  # fmt: skip
    ax.legend(handles=handles, loc="upper left", frameon=False, fontsize="small")
    return ax


def _lanes(intervals: pd.DataFrame, by: str) -> tuple[pd.Series, list[str]]:
    """Each interval's lane label, and the lanes in order: by location, mirrors first.

    A machine lane reads ``location · machine``; a mirror job's lane ``location · mirror``.
    """
    location = intervals["location"].astype(object).fillna("?").map(_text)
    if by == "location":
        return location, sorted(location.unique())
    kind = intervals["kind"].astype(object).fillna("?")
    machine = intervals["machine"].astype(object).fillna(kind).map(_text)
    label = location + " · " + machine
    keys = pd.DataFrame({"label": label, "location": location, "machine": kind != "mirror"})
    ordered = keys.drop_duplicates("label").sort_values(["location", "machine", "label"])
    return label, ordered["label"].tolist()


def _days(times: np.ndarray) -> np.ndarray:
    """Matplotlib date numbers (days) of naive UTC ``datetime64``."""
    days: np.ndarray = mdates.date2num(times)  # type: ignore[no-untyped-call]
    return days


def plot_swimlanes(
    intervals: pd.DataFrame,
    *,
    by: Literal["machine", "location"] = "machine",
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """One lane per machine (or location), bars coloured by state, failures marked with an x.

    ``intervals`` is :func:`~cfanalytics.fleet.state_intervals`. Jobs sharing a lane get
    sub-rows in order of first appearance. A black x with its time (UTC) marks where each
    job was first seen failed. Lane labels shrink to fit the Axes' height; the figure's size
    is the caller's. ``kwargs`` go to :meth:`~matplotlib.axes.Axes.barh`.
    """
    if by not in ("machine", "location"):
        raise ValueError(f"by must be 'machine' or 'location', not {by!r}")
    ax = _axes(ax)
    label, lanes = _lanes(intervals, by)
    data = intervals.assign(lane=label)
    row, height = _sub_rows(data, lanes)
    start, end = _days(_utc(data["start"])), _days(_utc(data["end"]))
    colours = [STATE_COLOURS.get(str(s), OKABE_ITO[7]) for s in data["state"]]
    options: dict[str, Any] = {"edgecolor": "none"} | kwargs
    ax.barh(row, end - start, left=start, height=height, color=colours, align="edge", **options)
    failed = (data["state"] == "failed").to_numpy(dtype=bool)
    roomy = _points_per_lane(ax, len(lanes)) * height[failed] / 0.8 >= 6  # sub-row, pt
    _mark_failures(ax, start[failed], (row + height / 2)[failed], labelled=roomy)
    ax.set_yticks(np.arange(len(lanes)) + 0.5, lanes)
    ax.set_ylim(max(len(lanes), 1), 0)  # first lane on top
    ax.tick_params(axis="y", length=0, labelsize=_lane_font(ax, len(lanes)))
    _utc_axis(ax)
    ax.set_ylabel(by)
    ax.set_title(f"Jobs by {by}", loc="left")
    shown = set(data["state"].astype(str))
    order = [s for s in FLEET_STATES if s in shown]
    handles: list[Any] = [Patch(color=STATE_COLOURS[s], label=s) for s in order]
    if failed.any():
        handles.append(Line2D([], [], color=_FAILED_MARK, marker="x", ls="", label="failed at"))
    _legend_above(ax, handles)
    return ax


def _sub_rows(data: pd.DataFrame, lanes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each interval's bar bottom and height: its lane split evenly among the lane's jobs.

    Jobs are ordered within a lane by first appearance, then by when they left their first
    state (a staircase); bars fill 80 % of their sub-row, leaving a gap between jobs.
    """
    lane = data["lane"].map({name: i for i, name in enumerate(lanes)}).to_numpy(dtype=float)
    by_job = data.assign(lane=lane).groupby("jobid")
    jobs = pd.DataFrame({"lane": by_job["lane"].first(), "first": by_job["start"].min(),
                         "moved": by_job["end"].min()})  # fmt: skip
    jobs = jobs.sort_values(["lane", "first", "moved"], kind="stable")
    jobs["slot"] = jobs.groupby("lane").cumcount()
    jobs["slots"] = jobs.groupby("lane")["slot"].transform("size")
    slot = data["jobid"].map(jobs["slot"]).to_numpy(dtype=float)
    step = 0.9 / np.maximum(data["jobid"].map(jobs["slots"]).to_numpy(dtype=float), 1)
    return lane + 0.05 + slot * step + 0.1 * step, 0.8 * step


def _mark_failures(ax: Axes, when: np.ndarray, where: np.ndarray, *, labelled: np.ndarray) -> None:
    """An x at each failure (date numbers, rows); its time beside those ``labelled``, if few."""
    ax.scatter(when, where, marker="x", color=_FAILED_MARK, s=28, linewidths=1.5, zorder=3)
    if labelled.sum() > 30:
        return
    for day, level in zip(when[labelled], where[labelled], strict=True):
        stamp = mdates.num2date(day, tz="UTC").strftime("%H:%M:%S")  # type: ignore[no-untyped-call]
        ax.annotate(stamp, (day, level), xytext=(5, 0), textcoords="offset points",
                    va="center", fontsize="x-small")  # fmt: skip


def _points_per_lane(ax: Axes, lanes: int) -> float:
    """The height of one lane, in points, at the Axes' current size."""
    return float(ax.get_window_extent().height * 72 / ax.figure.dpi / max(lanes, 1))


def _lane_font(ax: Axes, lanes: int) -> float:
    """A label size (points) that fits ``lanes`` labels in the Axes' height, 4 to 9 pt."""
    return float(np.clip(0.75 * _points_per_lane(ax, lanes), 4, 9))


def plot_completion_curve(
    curve: pd.DataFrame,
    *,
    midpoint: pd.DataFrame | None = None,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Share of jobs completed (and failed) over time, honest about censoring.

    ``curve`` is :func:`~cfanalytics.completion.completion_curve` (either clock). Solid
    steps: each outcome's cumulative incidence (failures compete with completion, so the
    completed curve tops out below 100 % when jobs failed). The shaded band is what the
    polls allow whatever the model: between jobs surely completed and jobs possibly
    completed. ``midpoint``, the same curve by ``method="midpoint"``, is drawn dashed for
    comparison. ``kwargs`` go to the completed step line.
    """
    ax = _axes(ax)
    wall = "time" in curve.columns
    x_of = (lambda f: _utc(f["time"])) if wall else (lambda f: f["elapsed_s"].to_numpy() / 60)
    for outcome, part in curve.groupby("outcome", observed=True, sort=False):
        share = part["incidence"].to_numpy(dtype=float, na_value=np.nan)
        if outcome != "completed" and not np.nansum(share):
            continue
        colour = STATE_COLOURS.get(str(outcome), OKABE_ITO[4])
        options: dict[str, Any] = {"color": colour, "linewidth": 2}
        options |= kwargs if outcome == "completed" else {}
        ax.step(x_of(part), share, where="post", label=str(outcome), **options)
        if outcome == "completed":
            low, high = (part[c].to_numpy(dtype=float, na_value=np.nan) for c in ("lower", "upper"))
            ax.fill_between(x_of(part), low, high, step="post", color=colour, alpha=0.2,
                            linewidth=0, label="completed: range the polls allow")  # fmt: skip
            marks = _clock_time if wall else (lambda minutes: f"after {minutes:.1f} min")
            _completion_marks(ax, np.asarray(x_of(part)), pd.Series(share), 1.0, marks)
    if midpoint is not None:
        done = midpoint[midpoint["outcome"] == "completed"]
        ax.step(x_of(done), done["incidence"].to_numpy(dtype=float, na_value=np.nan),
                where="post", color="0.3", linestyle="--", linewidth=1,
                label="completed: window midpoints")  # fmt: skip
    if wall:
        _utc_axis(ax)
    else:
        ax.set_xlabel("time since the job started (min)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    n_jobs = int(curve["n_jobs"].iloc[0]) if len(curve) else 0
    title = "Completion curve" if wall else "Install durations"
    ax.set(ylim=(0, 1.02), ylabel=f"share of {n_jobs:,} {'' if wall else 'started '}jobs",
           title=title)  # fmt: skip
    if ax.get_legend_handles_labels()[0]:
        # Upper left, under the 90 % line: curves rise late, so that corner stays empty.
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.86), frameon=False, fontsize="small")
    return ax
