"""The completion curve: share of jobs completed and failed, honest about censoring."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from ._style import (
    OKABE_ITO,
    STATE_COLOURS,
    axes_or_current,
    clock_time,
    completion_marks,
    one_rollout,
    time_axis,
    utc_values,
)

__all__ = ["plot_completion_curve"]


@one_rollout
def plot_completion_curve(
    curve: pd.DataFrame,
    *,
    midpoint: pd.DataFrame | None = None,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Share of jobs completed (and failed) over time, honest about censoring.

    ``curve`` is :func:`~cfanalytics.analysis.completion_curve` (either clock). Solid
    steps: each outcome's cumulative incidence (failures compete with completion, so the
    completed curve tops out below 100 % when jobs failed). The shaded band is what the
    polls allow whatever the model: between jobs surely completed and jobs possibly
    completed. ``midpoint``, the same curve by ``method="midpoint"``, is drawn dashed for
    comparison. ``kwargs`` go to the completed step line.
    """
    ax = axes_or_current(ax)
    wall = "time" in curve.columns
    x_of = (lambda f: utc_values(f["time"])) if wall else (lambda f: f["elapsed_s"].to_numpy() / 60)
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
            ax.fill_between(
                x_of(part),
                low,
                high,
                step="post",
                color=colour,
                alpha=0.2,
                linewidth=0,
                label="completed: range the polls allow",
            )
            marks = clock_time if wall else (lambda minutes: f"after {minutes:.1f} min")
            completion_marks(ax, np.asarray(x_of(part)), pd.Series(share), 1.0, marks)
    if midpoint is not None:
        done = midpoint[midpoint["outcome"] == "completed"]
        ax.step(
            x_of(done),
            done["incidence"].to_numpy(dtype=float, na_value=np.nan),
            where="post",
            color="0.3",
            linestyle="--",
            linewidth=1,
            label="completed: window midpoints",
        )
    if wall:
        time_axis(ax)
    else:
        ax.set_xlabel("time since the job started (min)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    n_jobs = int(curve["n_jobs"].iloc[0]) if len(curve) else 0
    title = "Completion curve" if wall else "Install durations"
    ax.set(
        ylim=(0, 1.02), ylabel=f"share of {n_jobs:,} {'' if wall else 'started '}jobs", title=title
    )
    if ax.get_legend_handles_labels()[0]:
        # Upper left, under the 90 % line: curves rise late, so that corner stays empty.
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.86), frameon=False, fontsize="small")
    return ax
