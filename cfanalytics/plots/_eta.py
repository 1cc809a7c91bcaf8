"""Plots of ETA accuracy: each observation's ETA against what happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ._style import (
    KIND_COLOURS,
    OKABE_ITO,
    axes_or_current,
    clock_texts,
    hours_formatter,
    job_names,
    label_text,
    legend_above,
    one_rollout,
    set_tooltips,
    zone,
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
    errors: pd.DataFrame,
    *,
    max_points: int = DENSITY_ABOVE,
    quantile: float = 0.99,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Predicted against actual time to go, per observation, with the y = x line.

    Points above the line finished later than predicted. Vertical bars span the censoring
    window of completions that were not seen exactly. Machines are dots, mirrors squares
    drawn over them (a few mirrors among many machines stay visible). Each axis stops at
    the ``quantile`` and ``1 - quantile`` of its values, widened by half their span (never
    past the data, 0 always shown): a few far outliers do not squash the rest. Points
    beyond are drawn on the edge as triangles pointing their way, and counted in the
    legend. With more than ``max_points`` observations, a hexagonal density (log counts)
    replaces the points and bars: a million dots only hide each other. ``kwargs`` go to
    :meth:`~matplotlib.axes.Axes.scatter` (or :meth:`~matplotlib.axes.Axes.hexbin`). Each
    point's hover text (:func:`tooltips`) names its job and values.
    """
    ax = axes_or_current(ax)
    minutes = errors.assign(
        predicted=errors["predicted_remaining_s"].astype("float64") / 60,
        actual=errors["actual_remaining_s"].astype("float64") / 60,
    )
    limits = _Limits(
        *_robust_range(minutes["predicted"], quantile), *_robust_range(minutes["actual"], quantile)
    )
    title = "Clanforge ETA against actual completion"
    if len(minutes) > max_points:
        both = limits.clip(minutes).dropna()
        options: dict[str, Any] = {"gridsize": 60, "bins": "log", "mincnt": 1, "cmap": "Blues"}
        ax.hexbin(both["predicted"], both["actual"], **options | kwargs)
        title += f" (density of {len(both):,} observations)"
    else:
        _eta_points(ax, minutes, limits, kwargs)
    reach = (max(limits.x_low, limits.y_low), min(limits.x_high, limits.y_high))
    ax.plot(reach, reach, color="0.4", ls="--", lw=1, label="ETA exact (y = x)")
    beyond = int(limits.beyond(minutes).sum())
    if beyond:  # the count, in the legend: a proxy that draws nothing
        note = f"{beyond} beyond the axes, drawn at the edge"
        ax.scatter([], [], marker=">", color="0.3", s=_EDGE_SIZE, label=note)
    ax.set(xlim=limits.padded("x"), ylim=limits.padded("y"))
    ax.set(xlabel="predicted time to go (min)", ylabel="actual time to go (min)", title=title)
    ax.legend(loc="upper left", frameon=False, fontsize="small")
    return ax


_EDGE_SIZE = 30
_KIND_MARKS: dict[str, dict[str, Any]] = {  # machines first, mirrors drawn over them
    "machine": {"marker": "o", "s": 12, "alpha": 0.6, "zorder": 2},
    "mirror": {"marker": "s", "s": 22, "alpha": 0.9, "zorder": 3, "edgecolors": "black"},
}


def _robust_range(values: pd.Series, quantile: float) -> tuple[float, float]:
    """An axis' range: the central ``quantile`` of ``values`` widened by half its span,
    within the data's range, 0 always inside."""
    known = values.dropna().to_numpy(dtype=float)
    if not len(known):
        return 0.0, 1.0
    inner_low, inner_high = np.quantile(known, [1 - quantile, quantile])
    reach = 0.5 * (inner_high - inner_low)
    low = min(max(float(known.min()), inner_low - reach), 0.0)
    high = max(min(float(known.max()), inner_high + reach), low + 1e-3)
    return float(low), float(high)


@dataclass(frozen=True, slots=True)
class _Limits:
    """The range each axis shows, in minutes; what lies beyond is drawn on its edge."""

    x_low: float
    x_high: float
    y_low: float
    y_high: float

    def clip(self, minutes: pd.DataFrame) -> pd.DataFrame:
        """Predicted and actual, moved onto the edge where beyond it."""
        return pd.DataFrame(
            {
                "predicted": minutes["predicted"].clip(self.x_low, self.x_high),
                "actual": minutes["actual"].clip(self.y_low, self.y_high),
            }
        )

    def beyond(self, minutes: pd.DataFrame) -> pd.Series:
        """Whether each observation lies beyond the range on either axis."""
        x, y = minutes["predicted"], minutes["actual"]
        return (x < self.x_low) | (x > self.x_high) | (y < self.y_low) | (y > self.y_high)

    def marker(self, x: float, y: float) -> str:
        """A triangle pointing where a point beyond really is: right, left, up or down."""
        if x > self.x_high or x < self.x_low:
            return ">" if x > self.x_high else "<"
        return "^" if y > self.y_high else "v"

    def padded(self, axis: str) -> tuple[float, float]:
        """The axis' limits, with room for markers on the edge."""
        low, high = (self.x_low, self.x_high) if axis == "x" else (self.y_low, self.y_high)
        pad = 0.02 * (high - low)
        return low - pad, high + pad


def _eta_points(ax: Axes, minutes: pd.DataFrame, limits: _Limits, kwargs: dict[str, Any]) -> None:
    """One mark per observation by kind, a bar over each censoring window; those beyond
    ``limits`` at the edge."""
    texts = _point_texts(minutes)
    order = sorted(minutes["kind"].dropna().unique(), key=lambda k: str(k) == "mirror")
    for kind in order:
        part = minutes[minutes["kind"] == kind]
        colour = KIND_COLOURS.get(str(kind), OKABE_ITO[7])
        look = _KIND_MARKS.get(str(kind), _KIND_MARKS["machine"])
        censored = part[~part["exact"].fillna(False)]
        lower = censored["actual"] - (censored["error_s"] - censored["error_lower_s"]) / 60
        upper = censored["actual"] + (censored["error_upper_s"] - censored["error_s"]) / 60
        ax.vlines(
            censored["predicted"].clip(limits.x_low, limits.x_high),
            lower.clip(limits.y_low, limits.y_high),
            upper.clip(limits.y_low, limits.y_high),
            color=colour,
            alpha=0.25,
            zorder=look["zorder"] - 0.5,
        )
        out = limits.beyond(part)
        inside = part[~out]
        options: dict[str, Any] = {"color": colour, "linewidths": 0.5} | look | kwargs
        jobs = part["jobid"].nunique()
        label = f"{kind}s ({jobs} jobs, {len(part):,} ETAs)"
        dots = ax.scatter(inside["predicted"], inside["actual"], label=label, **options)
        set_tooltips(dots, texts[inside.index].tolist())
        _edge_points(ax, part[out], limits, texts, options | {"s": _EDGE_SIZE})


def _edge_points(
    ax: Axes, part: pd.DataFrame, limits: _Limits, texts: pd.Series, options: dict[str, Any]
) -> None:
    """The points beyond ``limits``, moved onto the edge, marked by the way they lie."""
    where = zip(part["predicted"], part["actual"], strict=True)
    marks = pd.Series([limits.marker(x, y) for x, y in where], index=part.index, dtype=object)
    for marker, chosen in part.groupby(marks, sort=True):
        moved = limits.clip(chosen)
        edge = ax.scatter(moved["predicted"], moved["actual"], **options | {"marker": marker})
        set_tooltips(edge, texts[chosen.index].tolist())


def _point_texts(minutes: pd.DataFrame) -> pd.Series:
    """Each observation's hover text: its job, when the ETA was given, both times to go."""
    return (
        job_names(minutes)
        + " · at "
        + clock_texts(minutes["observed_at"])
        + ": ETA in "
        + minutes["predicted"].map("{:.1f} min".format).astype(str)
        + ", done in "
        + minutes["actual"].map("{:.1f} min".format).astype(str)
    )


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
    errors: pd.DataFrame,
    *,
    jobs: list[int] | None = None,
    ncols: int | None = None,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Small multiples: one panel per job, its ETA at each poll as a step line, its actual
    completion dotted, the window that completion lies in shaded.

    ``jobs`` picks the jobs and their order (default: every job, by id); ``ncols`` the
    panels per row (default up to 3). The panels are inset Axes splitting ``ax``'s area
    (``ax.child_axes``), sharing both axes' limits and units, so one job's lines compare with
    another's; ``ax`` itself draws no frame but carries the title, the legend and the axis
    labels, and is returned. ``kwargs`` go to each step line; each line's hover text
    (:func:`tooltips`) names its job.
    """
    ax = axes_or_current(ax)
    order = list(dict.fromkeys(errors["jobid"].dropna())) if jobs is None else list(jobs)
    parts = [(jobid, errors[errors["jobid"] == jobid]) for jobid in order]
    parts = [(jobid, part) for jobid, part in parts if len(part)]
    panels = _panels(ax, len(parts), ncols)
    for panel, (_, part) in zip(panels, parts, strict=True):
        _trajectory(panel, part, kwargs)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.patch.set_visible(False)
    ax.set_xticks([])
    ax.set_yticks([])
    tz = zone()
    ax.set_xlabel(f"time of the poll ({tz})")
    ax.set_ylabel(f"ETA given ({tz})")
    ax.set_title("How the ETAs moved", loc="left")
    if parts:
        legend_above(ax, _trajectory_key())
    else:
        ax.text(0.5, 0.5, "No ETAs to show", ha="center", color="0.4", transform=ax.transAxes)
    return ax


def _trajectory_key() -> list[Any]:
    """The legend's entries, made at draw time: artists take the rcParams in force when
    they are made, and a module-level list would keep those of the import."""
    return [
        Line2D([], [], color=OKABE_ITO[0], linewidth=1.2, label="ETA at each poll"),
        Line2D([], [], color=OKABE_ITO[3], linestyle=":", label="actual completion"),
        Patch(color=OKABE_ITO[3], alpha=0.2, label="window it lies in"),
    ]


# Room in the parent Axes for the panels' tick labels and titles, in points.
_TICKS_LEFT, _TICKS_BELOW, _PANEL_TITLE, _GAP = 34.0, 16.0, 16.0, 10.0


def _panels(ax: Axes, count: int, ncols: int | None) -> list[Axes]:
    """``count`` inset Axes in a grid over ``ax``, sharing x and y; tick labels only on the
    outer panels (left column, lowest panel of each column)."""
    if not count:
        return []
    cols = max(1, min(count, ncols or 3))
    rows = -(-count // cols)
    box = ax.get_window_extent()
    per_point = ax.figure.dpi / 72
    left, below = (_TICKS_LEFT * per_point / box.width, _TICKS_BELOW * per_point / box.height)
    gap, head = _GAP * per_point / box.width, _PANEL_TITLE * per_point / box.height
    width = (1 - left - gap * (cols - 1)) / cols
    height = (1 - below - head * rows) / rows
    panels: list[Axes] = []
    for n in range(count):
        row, col = divmod(n, cols)
        bounds = (left + col * (width + gap), 1 - (row + 1) * (height + head), width, height)
        first = panels[0] if panels else None
        panel = ax.inset_axes(bounds, sharex=first, sharey=first)
        panel.tick_params(labelleft=col == 0, labelbottom=n + cols >= count, labelsize="small")
        panels.append(panel)
    return panels


def _trajectory(panel: Axes, part: pd.DataFrame, kwargs: dict[str, Any]) -> None:
    """One job's panel: the ETA steps, the completion and its window, titled by the job."""
    name = job_names(part.head(1)).iloc[0]
    options: dict[str, Any] = {"color": OKABE_ITO[0], "linewidth": 1.2} | kwargs
    (line,) = panel.step(part["observed_at"], part["jobeta"], where="post", **options)
    done = part["completed_at"].iloc[0]
    if pd.notna(done):
        after = done - pd.to_timedelta(part["error_s"].iloc[0] - part["error_lower_s"].iloc[0], "s")
        before = done + pd.to_timedelta(
            part["error_upper_s"].iloc[0] - part["error_s"].iloc[0], "s"
        )
        panel.axhspan(after, before, color=OKABE_ITO[3], alpha=0.2, linewidth=0)
        panel.axhline(done, color=OKABE_ITO[3], linestyle=":", linewidth=1.2)
    finished = clock_texts(part["completed_at"].head(1)).iloc[0]
    set_tooltips(line, [f"{name} · {len(part)} ETAs · completed about {finished}"])
    panel.set_title(label_text(name), loc="left", fontsize="small", pad=3)
    for which in (panel.xaxis, panel.yaxis):
        which.set_major_locator(mdates.AutoDateLocator(tz=zone(), minticks=2, maxticks=6))  # type: ignore[no-untyped-call]
        which.set_major_formatter(hours_formatter())


@one_rollout
def plot_progress_curves(curves: pd.DataFrame, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Progress against elapsed fraction of each job's duration: one thin line per job.

    ``curves`` is :func:`~cfanalytics.analysis.progress_curves`. Lines are coloured by kind;
    flat stretches are phases where the percentage stood still (download, extract). The
    dashed diagonal is progress proportional to time. ``kwargs`` go to the line collections;
    each collection's hover texts (:func:`tooltips`) name its lines' jobs, in order.
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
        drawn = [len(line) > 1 for line in np.split(points, cuts)]
        lines = [line for line, kept in zip(np.split(points, cuts), drawn, strict=True) if kept]
        alpha = float(np.clip(0.8 * np.sqrt(20 / max(len(lines), 1)), 0.15, 0.8))  # many: fainter
        options: dict[str, Any] = {"colors": colour, "linewidths": 0.7, "alpha": alpha} | kwargs
        collection = ax.add_collection(LineCollection(lines, **options))
        firsts = part.iloc[np.r_[0, cuts]] if len(part) else part
        set_tooltips(collection, _curve_texts(firsts[drawn], part))
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


def _curve_texts(firsts: pd.DataFrame, part: pd.DataFrame) -> list[str]:
    """Each drawn job's hover text: who it is, how many polls, its last progress."""
    last = part.groupby("jobid")["jobprogress"].last()
    polls = part.groupby("jobid").size()
    return [
        f"{name} · {polls[jobid]} polls, last at {last[jobid]} %"
        for name, jobid in zip(job_names(firsts), firsts["jobid"], strict=True)
    ]
