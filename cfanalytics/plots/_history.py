"""Across rollouts: a headline figure per rollout over time, the rollout under study marked."""

from __future__ import annotations

from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from ._style import OKABE_ITO, axes_or_current, label_text, utc_values, zone

__all__ = ["plot_trend"]

_HEAD = ("rollout", "asid", "imageversionid", "first_seen")


def plot_trend(
    trend: pd.DataFrame,
    *,
    highlight: str | None = None,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """A metric of each rollout, when it started, as :func:`~cfanalytics.trend` gives it:
    one line, or one per group when it was taken ``by`` a column (location, kind).

    ``highlight`` (a rollout id) marks the rollout under study: a ringed point on each line
    and its id at the top. Durations (``*_s``) are drawn in minutes, rates as percentages.
    ``kwargs`` go to every line.
    """
    ax = axes_or_current(ax)
    metric = trend.columns[-1]
    by = trend.columns[-2] if trend.columns[-2] not in _HEAD else None
    scale = 60.0 if metric.endswith("_s") else 1.0
    groups = trend.groupby(by, sort=True, dropna=False) if by else [(None, trend)]
    for n, (group, rows) in enumerate(groups):
        rows = rows.sort_values("first_seen", kind="stable")
        x = utc_values(rows["first_seen"])
        y = rows[metric].to_numpy(dtype=float, na_value=np.nan) / scale
        colour = OKABE_ITO[n % len(OKABE_ITO)]
        label = None if by is None else label_text(group)
        options: dict[str, Any] = {
            "color": colour,
            "marker": "o",
            "linewidth": 1.5,
            "label": label,
        } | kwargs
        ax.plot(x, y, **options)
        studied = (rows["rollout"] == highlight).to_numpy(dtype=bool, na_value=False)
        if studied.any():
            ax.plot(
                x[studied], y[studied], "o", markersize=12, markerfacecolor="none",
                markeredgecolor="black", markeredgewidth=1.5,
            )  # fmt: skip
    _axes(ax, metric, scale)
    if highlight is not None and (trend["rollout"] == highlight).any():
        _mark(ax, trend, highlight)
    if by is not None and len(trend):
        ax.legend(title=by, frameon=False, fontsize="small", loc="best")
    return ax


def _mark(ax: Axes, trend: pd.DataFrame, highlight: str) -> None:
    """A dotted line at the rollout under study, its id on the inner side at the top."""
    when = utc_values(trend.loc[trend["rollout"] == highlight, "first_seen"].head(1))[0]
    ax.axvline(when, color="0.5", linestyle=":", linewidth=1)
    left, right = ax.get_xlim()
    late = mdates.date2num(when) > (left + right) / 2  # type: ignore[no-untyped-call]
    ax.annotate(
        f"this rollout: {label_text(highlight)}",
        (when, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(-4 if late else 4, -3),
        textcoords="offset points",
        ha="right" if late else "left",
        va="top",
        fontsize="small",
    )


def _axes(ax: Axes, metric: str, scale: float) -> None:
    """Dates of the rollouts on x (day and month, in the zone shown), the metric on y in
    readable units, from 0 unless it can be negative (a bias)."""
    tz = zone()
    locator = mdates.AutoDateLocator(tz=tz, minticks=3, maxticks=7)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b", tz=tz))  # type: ignore[no-untyped-call]
    ax.set_xlabel(f"rollout started ({tz})")
    ax.margins(y=0.15)  # room above the top point for the rollout's label
    if "bias" not in metric:
        ax.set_ylim(bottom=0)
    name = metric.removesuffix("_s").replace("_", " ").replace("eta ", "ETA ").replace("mae", "MAE")
    if metric == "failure_rate":
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("failure rate (failed / ended)")
    else:
        ax.set_ylabel(f"{name} (min)" if scale != 1.0 else name)
    ax.set_title(f"{name[0].upper()}{name[1:]} per rollout", loc="left")
