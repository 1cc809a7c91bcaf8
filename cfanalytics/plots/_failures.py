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
    clock_texts,
    date_numbers,
    job_names,
    label_text,
    legend_above,
    one_rollout,
    set_tooltips,
    time_axis,
    utc_values,
)

__all__ = ["plot_failure_rates", "plot_failure_timeline", "plot_time_to_failure"]

_CLASS_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@one_rollout
def plot_failure_timeline(
    failures: pd.DataFrame,
    api_errors: pd.DataFrame | None = None,
    *,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Each failure at its time, one row per location, marked by error class; API errors
    (from :func:`~cfanalytics.analysis.api_errors`) as ticks on a row per endpoint.

    ``failures`` is :func:`~cfanalytics.analysis.failures`. Errors close in time (within a
    fiftieth of the time shown) are one bunch: a number above its ticks counts it, so 28
    queue refusals in one second read as 28, not as one tick. Each row's label counts its
    errors. ``kwargs`` go to the failure markers' :meth:`~matplotlib.axes.Axes.scatter`.
    Hover texts (:func:`tooltips`) name each failure's job and error, each tick's request.
    """
    ax = axes_or_current(ax)
    rows = sorted(failures["location"].fillna("?").map(label_text).unique())
    endpoints = _endpoints(api_errors)
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
        marks = ax.scatter(utc_values(part["failed_at"]), y + jitter, label=str(name), **options)
        set_tooltips(marks, _failure_texts(part))
    labels = [*rows]
    for endpoint, part in endpoints:
        labels.append(f"API: {endpoint} ({len(part)})")
        _api_row(ax, part, len(labels) - 1, first=len(labels) == len(rows) + 1)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(max(len(labels), 1) - 0.5, -0.5)
    if endpoints:
        _count_bunches(ax, endpoints, first_row=len(rows))
    time_axis(ax)
    ax.set_ylabel("location, or API endpoint" if endpoints else "location")
    ax.set_title("Failures over the rollout", loc="left")
    legend_above(ax, ax.get_legend_handles_labels()[0])
    return ax


def _endpoints(api_errors: pd.DataFrame | None) -> list[tuple[str, pd.DataFrame]]:
    """The API errors per endpoint that had any, in the endpoints' order."""
    if api_errors is None or api_errors.empty:
        return []
    grouped = api_errors.groupby("endpoint", observed=True, sort=True)
    return [(str(name), part) for name, part in grouped]


def _api_row(ax: Axes, errors: pd.DataFrame, row: int, *, first: bool) -> None:
    """A tick per error on ``row``, each with its hover text; the ``first`` row's ticks
    make the legend's entry."""
    ticks = ax.vlines(
        utc_values(errors["observed_at"]),
        row - 0.3,
        row + 0.3,
        color=OKABE_ITO[7],
        linewidth=1,
        label="API error" if first else "_nolegend_",
    )
    # "string" dtype, not object: fillna on object arrays warns of downcasting (pandas 2.2).
    status = errors["http_status"].astype("string").fillna("")
    said = errors["error_message"].astype("string").fillna(errors["problem"].astype("string"))
    said = said.fillna("")
    job = errors["jobid"].astype(object).map(lambda j: "" if pd.isna(j) else f" for job {j}")
    texts = errors["endpoint"].astype(str) + job + " at " + clock_texts(errors["observed_at"])
    set_tooltips(ticks, (texts + ": " + (status + " " + said).str.strip()).tolist())


def _count_bunches(ax: Axes, endpoints: list[tuple[str, pd.DataFrame]], first_row: int) -> None:
    """Above each bunch of two or more errors close in time, how many it holds."""
    left, right = ax.get_xlim()
    reach = (right - left) / 50  # days: wider than a count's label
    for row, (_, errors) in enumerate(endpoints, start=first_row):
        days = np.sort(date_numbers(errors["observed_at"]))
        starts = np.flatnonzero(np.diff(days, prepend=-np.inf) > reach)
        for begin, end in zip(starts, [*starts[1:], len(days)], strict=True):
            if end - begin > 1:
                middle = (days[begin] + days[end - 1]) / 2
                ax.annotate(
                    f"{end - begin}",
                    (middle, row - 0.3),
                    xytext=(0, 1),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize="x-small",
                    fontweight="bold",
                )


def _failure_texts(part: pd.DataFrame) -> list[str]:
    """Each failure's hover text: its job, when, at what progress, the error."""
    progress = (
        part["progress_at_failure"].astype(object).map(lambda p: "" if pd.isna(p) else f" at {p} %")
    )
    said = part["error"].astype(object).fillna(part["error_class"].astype(str))
    texts = job_names(part) + " · failed " + clock_texts(part["failed_at"]) + progress
    return [str(text) for text in texts + ": " + said]


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
    at the write (disk space, failing drive). The axis starts at 0, with room for a dot
    there. ``kwargs`` go to the dots' scatter; each dot's hover text (:func:`tooltips`)
    names its job.
    """
    ax = axes_or_current(ax)
    known = failures.dropna(subset=["time_to_failure_s"])
    classes = [str(c) for c in known["error_class"].unique()]
    for row, name in enumerate(classes):
        part = known[known["error_class"] == name]
        minutes = part["time_to_failure_s"].astype(float) / 60
        jitter = (np.arange(len(minutes)) % 5 - 2) * 0.06
        options: dict[str, Any] = {"s": 36, "color": OKABE_ITO[3], "alpha": 0.8} | kwargs
        dots = ax.scatter(minutes, row + jitter, **options)
        texts = job_names(part) + " · failed after " + minutes.map("{:.1f} min".format).astype(str)
        set_tooltips(dots, (texts + ": " + part["error"].fillna("?").astype(str)).tolist())
        ax.vlines(minutes.median(), row - 0.3, row + 0.3, color=OKABE_ITO[7], linewidth=2)
    ax.set_yticks(range(len(classes)), [label_text(c) for c in classes])
    ax.set_ylim(max(len(classes), 1) - 0.5, -0.5)
    values = known["time_to_failure_s"].to_numpy(dtype=float) / 60
    low, high = min(0.0, values.min(initial=0.0)), max(values.max(initial=0.0), 1.0)
    ax.set_xlim(low - 0.03 * (high - low), high + 0.05 * (high - low))  # a dot at 0 stays whole
    ax.set(
        xlabel="time from start to failure (min); bar: median",
        ylabel="error class",
        title="Time to failure",
    )
    return ax
