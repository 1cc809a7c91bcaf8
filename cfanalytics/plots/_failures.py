"""Plots for postmortems: when and where installs failed, next to the API's own errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from ._style import (
    OKABE_ITO,
    axes_or_current,
    label_text,
    legend_above,
    one_rollout,
    utc_axis,
    utc_values,
)

__all__ = ["plot_failure_rates", "plot_failure_timeline", "plot_time_to_failure"]

_CLASS_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_API_ROW = "API errors"


@one_rollout
def plot_failure_timeline(
    failures: pd.DataFrame,
    api_errors: pd.DataFrame | None = None,
    *,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Each failure at its time, one row per location, marked by error class; API errors
    (from :func:`~cfanalytics.analysis.api_errors`) as ticks on a row of their own.

    ``failures`` is :func:`~cfanalytics.analysis.failures`. ``kwargs`` go to the failure
    markers' :meth:`~matplotlib.axes.Axes.scatter`.
    """
    ax = axes_or_current(ax)
    rows = sorted(failures["location"].fillna("?").map(label_text).unique())
    if api_errors is not None:
        rows.append(_API_ROW)
    place = {name: i for i, name in enumerate(rows)}
    classes = [str(c) for c in failures["error_class"].cat.categories]
    for number, (name, part) in enumerate(failures.groupby("error_class", observed=True)):
        y = part["location"].fillna("?").map(label_text).map(place).to_numpy(dtype=float)
        jitter = (np.arange(len(part)) % 5 - 2) * 0.08  # several failures at once stay visible
        options: dict[str, Any] = {
            "s": 40,
            "color": OKABE_ITO[classes.index(str(name)) % 8],
            "marker": _CLASS_MARKERS[number % len(_CLASS_MARKERS)],
        }
        options |= kwargs
        ax.scatter(utc_values(part["failed_at"]), y + jitter, label=str(name), **options)
    if api_errors is not None and len(api_errors):
        y0 = place[_API_ROW]
        ax.vlines(
            utc_values(api_errors["observed_at"]),
            y0 - 0.3,
            y0 + 0.3,
            color=OKABE_ITO[7],
            linewidth=1,
            label="API error",
        )
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(max(len(rows), 1) - 0.5, -0.5)
    utc_axis(ax)
    ax.set_ylabel("location")
    ax.set_title("Failures over the rollout", loc="left")
    legend_above(ax, ax.get_legend_handles_labels()[0])
    return ax


@one_rollout
def plot_failure_rates(rates: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Share of ended jobs that failed, per group, worst on top, with the counts.

    ``rates`` is :func:`~cfanalytics.analysis.failure_rates`; its first column after
    ``rollout`` names the groups. ``kwargs`` go to :meth:`~matplotlib.axes.Axes.barh`.
    """
    ax = axes_or_current(ax)
    by = str(next(c for c in rates.columns if c != "rollout"))
    labels = rates[by].astype(object).fillna("?").map(label_text).tolist()
    share = rates["failure_rate"].to_numpy(dtype=float, na_value=np.nan)
    options: dict[str, Any] = {"color": OKABE_ITO[3]} | kwargs
    bars = ax.barh(range(len(labels)), np.nan_to_num(share), **options)
    notes = [f"{f} of {e}" for f, e in zip(rates["n_failed"], rates["n_ended"], strict=True)]
    ax.bar_label(bars, notes, padding=3, fontsize="small")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(max(len(labels), 1) - 0.5, -0.5)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(xlabel="failed, of the jobs that ended", ylabel=by, title=f"Failure rate by {by}")
    ax.set_xlim(
        0,
        max(float(np.nanmax(share)) if len(share) and np.isfinite(share).any() else 0, 0.1) * 1.25,
    )
    return ax


@one_rollout
def plot_time_to_failure(failures: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """How long failed installs ran before failing: one dot per failure, a row per class.

    ``failures`` is :func:`~cfanalytics.analysis.failures`; a black bar marks each class's
    median. Failures early in a run point at set-up (permissions, missing image), late ones
    at the write (disk space, failing drive). ``kwargs`` go to the dots' scatter.
    """
    ax = axes_or_current(ax)
    known = failures.dropna(subset=["time_to_failure_s"])
    classes = [str(c) for c in known["error_class"].unique()]
    for row, name in enumerate(classes):
        minutes = known.loc[known["error_class"] == name, "time_to_failure_s"].astype(float) / 60
        jitter = (np.arange(len(minutes)) % 5 - 2) * 0.06
        options: dict[str, Any] = {"s": 36, "color": OKABE_ITO[3], "alpha": 0.8} | kwargs
        ax.scatter(minutes, row + jitter, **options)
        ax.vlines(minutes.median(), row - 0.3, row + 0.3, color=OKABE_ITO[7], linewidth=2)
    ax.set_yticks(range(len(classes)), [label_text(c) for c in classes])
    ax.set_ylim(max(len(classes), 1) - 0.5, -0.5)
    ax.set_xlim(left=0)
    ax.set(
        xlabel="time from start to failure (min); bar: median",
        ylabel="error class",
        title="Time to failure",
    )
    return ax
