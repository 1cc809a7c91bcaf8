"""Plots of rollout timing: matplotlib's library convention, one function per picture.

Every function takes its data first (a frame from :mod:`cfanalytics.timing` or
:func:`~cfanalytics.job_summary`), options keyword-only, draws on ``ax`` (default: the
current Axes) and returns it. Nothing here computes a metric the analysis functions give,
changes global style, or calls ``plt.show``. Colours are the Okabe-Ito palette, safe for
colour-blind readers; times are UTC.
"""

from __future__ import annotations

from typing import Any

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

__all__ = [
    "OKABE_ITO",
    "plot_burnup",
    "plot_error_by_decile",
    "plot_eta_trajectories",
    "plot_eta_vs_actual",
]

#: Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_KIND_COLOURS = {"mirror": OKABE_ITO[1], "machine": OKABE_ITO[0]}


def _axes(ax: Axes | None) -> Axes:
    return plt.gca() if ax is None else ax


def _hours() -> mdates.DateFormatter:
    return mdates.DateFormatter("%H:%M", tz="UTC")  # type: ignore[no-untyped-call]


def _utc_axis(ax: Axes) -> None:
    ax.xaxis.set_major_formatter(_hours())
    ax.set_xlabel("time (UTC)")


def plot_eta_vs_actual(errors: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Predicted against actual time to go, per observation, with the y = x line.

    Points above the line finished later than predicted. Vertical bars span the censoring
    window of completions that were not seen exactly.
    """
    ax = _axes(ax)
    minutes = errors.assign(
        predicted=errors["predicted_remaining_s"] / 60, actual=errors["actual_remaining_s"] / 60
    )
    for kind, part in minutes.groupby("kind", observed=True):
        censored = part[~part["exact"].fillna(False)]
        low = censored["actual"] - (censored["error_s"] - censored["error_lower_s"]) / 60
        high = censored["actual"] + (censored["error_upper_s"] - censored["error_s"]) / 60
        ax.vlines(censored["predicted"], low, high, color=_KIND_COLOURS.get(str(kind)), alpha=0.25)
        options = {"s": 12, "alpha": 0.7, "color": _KIND_COLOURS.get(str(kind))} | kwargs
        ax.scatter(part["predicted"], part["actual"], label=f"{kind} jobs", **options)
    top = float(pd.concat([minutes["predicted"], minutes["actual"]]).max() or 1)
    ax.plot([0, top], [0, top], color="0.4", linestyle="--", linewidth=1, label="ETA exact (y = x)")
    ax.set(xlabel="predicted time to go (min)", ylabel="actual time to go (min)",
           title="Clanforge ETA against actual completion")  # fmt: skip
    ax.legend(loc="upper left", frameon=False)
    return ax


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
    for number, (jobid, part) in enumerate(chosen.groupby("jobid")):
        colour = OKABE_ITO[number % len(OKABE_ITO)]
        options: dict[str, Any] = {"color": colour, "linewidth": 1.2} | kwargs
        ax.step(part["observed_at"], part["jobeta"], where="post", label=f"job {jobid}", **options)
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
    ax.set(ylabel="ETA (UTC); dotted: actual completion", title="How the ETAs moved")
    if len(chosen["jobid"].unique()) <= 8:
        ax.legend(loc="upper left", frameon=False, fontsize="small")
    return ax


def plot_burnup(summary: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Jobs completed over time (``completed_at``), with the 50 % and 90 % marks."""
    ax = _axes(ax)
    total = len(summary)
    done = summary["completed_at"].dropna().sort_values()
    options: dict[str, Any] = {"color": OKABE_ITO[2], "label": "completed"} | kwargs
    ax.step(done, list(range(1, len(done) + 1)), where="post", **options)
    for share in (0.5, 0.9):
        ax.axhline(share * total, color="0.6", linestyle="--", linewidth=0.8)
        ax.annotate(f"{share:.0%}", (0, share * total), xycoords=("axes fraction", "data"),
                    va="bottom", fontsize="small", color="0.4")  # fmt: skip
    _utc_axis(ax)
    ax.set(ylabel=f"jobs (of {total})", title="Rollout burn-up", ylim=(0, total * 1.05))
    ax.legend(loc="upper left", frameon=False)
    return ax
