"""Plots of ETA accuracy: each observation's ETA against what happened."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from ._style import (
    KIND_COLOURS,
    OKABE_ITO,
    TRAJECTORY_COLOURS,
    axes_or_current,
    hours_formatter,
    legend_above,
    one_rollout,
    utc_axis,
)

#: Above this many observations :func:`plot_eta_vs_actual` draws a density, not dots.
DENSITY_ABOVE = 20_000

__all__ = [
    "plot_error_by_decile",
    "plot_eta_trajectories",
    "plot_eta_vs_actual",
    "plot_progress_curves",
]


@one_rollout
def plot_eta_vs_actual(
    errors: pd.DataFrame, *, max_points: int = DENSITY_ABOVE, ax: Axes | None = None, **kwargs: Any
) -> Axes:
    """Predicted against actual time to go, per observation, with the y = x line.

    Points above the line finished later than predicted. Vertical bars span the censoring
    window of completions that were not seen exactly. With more than ``max_points``
    observations, a hexagonal density (log counts) replaces the points and bars: a million
    dots only hide each other. ``kwargs`` go to :meth:`~matplotlib.axes.Axes.scatter` (or
    :meth:`~matplotlib.axes.Axes.hexbin`).
    """
    ax = axes_or_current(ax)
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
        ax.vlines(censored["predicted"], low, high, color=KIND_COLOURS.get(str(kind)), alpha=0.25)
        options = {"s": 12, "alpha": 0.7, "color": KIND_COLOURS.get(str(kind))} | kwargs
        ax.scatter(part["predicted"], part["actual"], label=f"{kind} jobs", **options)


@one_rollout
def plot_error_by_decile(errors: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """ETA error by progress decile, as box plots with a zero line (above: late)."""
    ax = axes_or_current(ax)
    deciles = range(10)
    data = [errors.loc[errors["progress_decile"] == d, "error_s"].dropna() / 60 for d in deciles]
    options = {"showfliers": False, "patch_artist": True} | kwargs
    boxes = ax.boxplot(data, positions=list(deciles), widths=0.6, **options)
    for box in boxes["boxes"]:
        box.set(facecolor=OKABE_ITO[5], alpha=0.6)
    ax.axhline(0, color="0.3", linewidth=1)
    ax.set_xticks(list(deciles), [f"{10 * d}-{10 * d + 9}" for d in deciles], rotation=45)
    ax.set(
        xlabel="progress when the ETA was given (%)",
        ylabel="actual - ETA (min; above 0: late)",
        title="ETA error by progress",
    )
    return ax


@one_rollout
def plot_eta_trajectories(
    errors: pd.DataFrame, *, jobs: list[int] | None = None, ax: Axes | None = None, **kwargs: Any
) -> Axes:
    """Each job's ETA over wall time as a step line, and its actual completion (window)."""
    ax = axes_or_current(ax)
    chosen = errors if jobs is None else errors[errors["jobid"].isin(jobs)]
    handles: list[Any] = []
    for number, (jobid, part) in enumerate(chosen.groupby("jobid")):
        colour = TRAJECTORY_COLOURS[number % len(TRAJECTORY_COLOURS)]
        options: dict[str, Any] = {"color": colour, "linewidth": 1.2} | kwargs
        (line,) = ax.step(
            part["observed_at"], part["jobeta"], where="post", label=f"job {jobid}", **options
        )
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
    utc_axis(ax)
    ax.yaxis.set_major_formatter(hours_formatter())
    ax.set_ylabel("ETA (UTC); dotted: actual completion")
    ax.set_title("How the ETAs moved", loc="left")
    if len(handles) <= 8:
        legend_above(ax, handles)
    return ax


@one_rollout
def plot_progress_curves(curves: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Progress against elapsed fraction of each job's duration: one thin line per job.

    ``curves`` is :func:`~cfanalytics.analysis.progress_curves`. Lines are coloured by kind;
    flat stretches are phases where the percentage stood still (download, extract). The
    dashed diagonal is progress proportional to time. ``kwargs`` go to the line collections.
    """
    ax = axes_or_current(ax)
    ordered = curves.sort_values(["jobid", "observed_at"], kind="stable")
    handles: list[Any] = []
    for kind, part in ordered.groupby("kind", observed=True):
        colour = KIND_COLOURS.get(str(kind), OKABE_ITO[7])
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
    ax.set(
        xlim=(0, 1),
        ylim=(0, 100),
        xlabel="elapsed fraction of the job's duration",
        ylabel="progress (%)",
        title="Progress against elapsed time",
    )
    ax.legend(handles=handles, loc="upper left", frameon=False, fontsize="small")
    return ax
