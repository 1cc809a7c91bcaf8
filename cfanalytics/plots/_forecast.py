"""How the forecast did against Clanforge's ETA and the linear rule, by progress."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from ._style import OKABE_ITO, axes_or_current, legend_above

__all__ = ["PREDICTOR_COLOURS", "plot_predictor_errors"]

#: A colour and a marker per predictor of :func:`~cfanalytics.backtest`, the same everywhere.
PREDICTOR_COLOURS = {"forecast": OKABE_ITO[0], "jobeta": OKABE_ITO[3], "linear": OKABE_ITO[7]}
_MARKERS = {"forecast": "o", "jobeta": "s", "linear": "^"}


def plot_predictor_errors(scores: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Mean absolute error of each predictor by progress decile: ``scores`` is
    :meth:`Backtest.scores("progress_decile") <cfanalytics.analysis.Backtest.scores>`
    (per job first, then across jobs). Lower is better; ``kwargs`` go to ``ax.plot``."""
    ax = axes_or_current(ax)
    deciles = scores["progress_decile"].to_numpy(dtype=int, na_value=-1)
    handles = []
    for name, colour in PREDICTOR_COLOURS.items():
        minutes = scores[f"{name}_mae_s"].to_numpy(dtype=float, na_value=float("nan")) / 60
        options: dict[str, Any] = {"color": colour, "marker": _MARKERS[name], "markersize": 4}
        options |= kwargs
        ax.plot(deciles, minutes, linewidth=1.6 if name == "forecast" else 1.0, **options)
        handles.append(Line2D([], [], label=name, **options))
    ax.set_xticks(range(10), [f"{10 * d}-{10 * d + 9}" for d in range(10)], rotation=45)
    ax.set_xlim(-0.5, 9.5)
    ax.set_ylim(bottom=0)
    ax.set(xlabel="progress when predicted (%)", ylabel="mean absolute error (min)")
    ax.set_title("Forecast, ETA and linear rule", loc="left")
    legend_above(ax, handles)
    return ax
