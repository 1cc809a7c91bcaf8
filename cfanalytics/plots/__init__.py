"""Plots of rollout timing: matplotlib's library convention, one function per picture.

Every function takes its data first (a frame from :mod:`cfanalytics.analysis`), options
keyword-only, draws on ``ax`` (default: the current Axes) and returns it. Nothing here
computes a metric the analysis functions give, changes global style, or calls ``plt.show``.
Colours are the Okabe-Ito palette, safe for colour-blind readers. Times are shown in
matplotlib's ``rcParams["timezone"]`` (default UTC; e.g. ``matplotlib.rc_context({"timezone":
"Europe/Berlin"})``), named in each time axis' label; the data stays UTC. Marks that stand for
a job (points, bars, lines) carry hover texts, :func:`tooltips`: job, machine, location, values.
"""

from ._completion import plot_completion_curve
from ._eta import (
    DENSITY_ABOVE,
    plot_error_by_decile,
    plot_eta_trajectories,
    plot_eta_vs_actual,
    plot_progress_curves,
)
from ._failures import plot_failure_rates, plot_failure_timeline, plot_time_to_failure
from ._fleet import plot_burnup, plot_swimlanes
from ._forecast import PREDICTOR_COLOURS, plot_predictor_errors
from ._history import plot_trend
from ._style import OKABE_ITO, STATE_COLOURS, set_tooltips, tooltips

__all__ = [
    "DENSITY_ABOVE",
    "OKABE_ITO",
    "PREDICTOR_COLOURS",
    "STATE_COLOURS",
    "plot_burnup",
    "plot_completion_curve",
    "plot_error_by_decile",
    "plot_eta_trajectories",
    "plot_eta_vs_actual",
    "plot_failure_rates",
    "plot_failure_timeline",
    "plot_predictor_errors",
    "plot_progress_curves",
    "plot_swimlanes",
    "plot_time_to_failure",
    "plot_trend",
    "set_tooltips",
    "tooltips",
]
