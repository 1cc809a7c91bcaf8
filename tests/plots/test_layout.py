"""Every plot reads at a glance as the report draws it: no text on text, nothing cut off.

Each public plot function is drawn on a fresh constrained-layout Figure at the size the report
gives it, from the analyses the report makes of each rollout of both shipped cassettes, and
rendered with Agg; then its titles, legend and axis labels must not overlap (nor tick labels
cover them), and every marker and text must lie whole within the figure (a marker clipped by
its Axes counts as cut off).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.style
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from cfanalytics import HistoryStore, events_from_cassette, plots
from cfanalytics.analysis import trend
from cfanalytics.events import split_rollouts
from cfanalytics.report import ReportData, analyse

CASSETTES = Path(__file__).parents[2] / "cassettes"
DPI = 110  # the report's
SLACK = 1.0  # pixels: antialiasing, rounding
GAP = 3.0 * DPI / 72  # pixels between labels (3 pt): touching text reads as one


def _default(_: ReportData) -> tuple[float, float]:
    return (9.0, 4.8)


# What the report draws with each plot function and at what size (report/_sections.py):
# (the frame and options given, the figure's size).
Draw = Callable[[ReportData], tuple[Any, dict[str, Any]]]
Size = Callable[[ReportData], tuple[float, float]]
REPORT: dict[str, tuple[Draw, Size]] = {
    "plot_burnup": (lambda d: (d.states, {}), _default),
    "plot_completion_curve": (
        lambda d: (d.completion, {"midpoint": d.completion_midpoint}),
        _default,
    ),
    "plot_swimlanes": (
        lambda d: (d.intervals, {"by": "machine", "failures": d.failures}),
        lambda d: (9.0, min(2.4 + 0.22 * max(d.intervals["jobid"].nunique(), 1), 14.0)),
    ),
    "plot_eta_vs_actual": (lambda d: (d.errors, {}), _default),
    "plot_error_by_decile": (lambda d: (d.errors, {}), _default),
    "plot_progress_curves": (lambda d: (d.progress, {}), _default),
    "plot_eta_trajectories": (
        lambda d: (d.errors, {"jobs": d.per_job.nlargest(6, "eta_mae_s")["jobid"].tolist()}),
        lambda d: (9.0, 5.6),
    ),
    "plot_time_to_failure": (
        lambda d: (d.failures, {}),
        lambda d: (9.0, 1.5 + 0.4 * max(d.failures["error_class"].nunique(), 1)),
    ),
    "plot_failure_rates": (
        lambda d: (d.failure_rates, {}),
        lambda d: (9.0, 1.5 + 0.3 * len(d.failure_rates)),
    ),
    "plot_predictor_errors": (lambda d: (d.backtest.scores("progress_decile"), {}), _default),
    "plot_failure_timeline": (
        lambda d: (d.failures, {"api_errors": d.api_errors}),
        lambda d: (9.0, 2.0 + 0.4 * d.failure_rates["location"].nunique()),
    ),
}
TREND_SIZE = (4.0, 3.8)  # one of the history section's three panels, 12 x 3.8 in


def _rollouts() -> Iterator[tuple[str, ReportData]]:
    for name in ("demo", "troubled"):
        for rollout, events in split_rollouts(events_from_cassette(CASSETTES / f"{name}.yaml")):
            yield f"{name}:{rollout}", analyse(events)


@pytest.fixture(scope="module")
def analysed() -> dict[str, ReportData]:
    """The report's analyses of every rollout of both shipped cassettes."""
    return dict(_rollouts())


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A trend of the shipped history, as the history section draws it."""
    path = tmp_path_factory.mktemp("history") / "store"
    HistoryStore(path).add(*sorted((CASSETTES / "history").glob("*.yaml")))
    return trend(path, "install_p50_s", by="location")


def test_the_layout_test_covers_every_plot_function() -> None:
    """A new plot function gets its report drawing listed here, or this fails."""
    public = {name for name in plots.__all__ if name.startswith("plot_")}
    assert public == {*REPORT, "plot_trend"}


@pytest.mark.parametrize("name", sorted({*REPORT, "plot_trend"}))
def test_no_text_overlaps_and_nothing_is_cut_off(
    name: str, analysed: dict[str, ReportData], history: Any
) -> None:
    """On every rollout of both cassettes: titles, legends and axis labels apart, tick labels
    off them, every marker and text whole inside the figure."""
    plot = getattr(plots, name)
    drawings = (
        [("history", history, {"highlight": history["rollout"].iloc[-1]}, TREND_SIZE)]
        if name == "plot_trend"
        else [
            (rollout, *REPORT[name][0](data), REPORT[name][1](data))
            for rollout, data in analysed.items()
        ]
    )
    for rollout, frame, options, size in drawings:
        fig = _render(plot, frame, options, size)
        problems = _overlaps(fig) + _cut_off(fig)
        assert not problems, f"{name} on {rollout}: {problems}"


def _render(plot: Any, frame: Any, options: dict[str, Any], size: tuple[float, float]) -> Figure:
    """Drawn as the report draws it: default style, constrained layout, Agg."""
    with matplotlib.style.context("default"):
        fig = Figure(figsize=size, dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        plot(frame, ax=fig.add_subplot(), **options)
        fig.canvas.draw()
    return fig


def _every_axes(fig: Figure) -> list[Axes]:
    """The figure's Axes and their inset Axes."""
    return [inner for ax in fig.axes for inner in (ax, *ax.child_axes)]


def _labels(ax: Axes) -> list[tuple[str, Bbox]]:
    """The Axes' titles, legend and axis labels that show, with their boxes."""
    titles = [c for c in ax.get_children() if isinstance(c, Text) and c not in ax.texts]
    texts = [*titles, ax.xaxis.label, ax.yaxis.label]
    found = [(f"{t.get_text()!r}", t.get_window_extent()) for t in texts if _shows(t)]
    legend = ax.get_legend()
    if legend is not None and legend.get_visible():
        found.append(("legend", legend.get_window_extent()))
    return found


def _shows(text: Text) -> bool:
    return bool(text.get_visible() and text.get_text().strip())


def _apart(a: Bbox, b: Bbox, gap: float = 0.0) -> bool:
    """Whether the boxes are at least ``gap`` pixels apart (less the slack)."""
    return not a.padded(gap / 2 - SLACK).overlaps(b.padded(gap / 2 - SLACK))


def _overlaps(fig: Figure) -> list[str]:
    """Pairs of overlapping labels, and tick labels over a label."""
    labels = [found for ax in _every_axes(fig) for found in _labels(ax)]
    pairs = itertools.combinations(labels, 2)
    clashes = [f"{a} touches {b}" for (a, ba), (b, bb) in pairs if not _apart(ba, bb, GAP)]
    ticks = [tick for ax in _every_axes(fig) for tick in _tick_labels(ax)]
    for tick, (label, box) in itertools.product(ticks, labels):
        if not _apart(tick.get_window_extent(), box):
            clashes.append(f"tick label {tick.get_text()!r} overlaps {label}")
    return clashes


def _tick_labels(ax: Axes, *, drawn: bool = True) -> list[Text]:
    """The Axes' tick labels that show; only those drawn, of ticks within the view, unless
    not ``drawn`` (matplotlib keeps labels of ticks beyond the view, undrawn)."""
    found = []
    for axis in (ax.xaxis, ax.yaxis):
        low, high = sorted(axis.get_view_interval())
        reach = 1e-9 * max(abs(high - low), 1.0)
        for tick in (*axis.get_major_ticks(), *axis.get_minor_ticks()):
            if not drawn or low - reach <= tick.get_loc() <= high + reach:
                found += [label for label in (tick.label1, tick.label2) if _shows(label)]
    return found


def _cut_off(fig: Figure) -> list[str]:
    """Markers and texts not whole within the figure, or clipped by their Axes."""
    whole = fig.bbox.padded(SLACK)
    ticks = {id(t) for ax in _every_axes(fig) for t in _tick_labels(ax, drawn=False)}
    texts = [t for t in fig.findobj(Text) if _shows(t) and id(t) not in ticks]
    texts += [tick for ax in _every_axes(fig) for tick in _tick_labels(ax)]
    problems = [
        f"text {text.get_text()!r} leaves the figure"
        for text in texts
        if not _inside(text.get_window_extent(), whole)
    ]
    for ax in _every_axes(fig):
        frame = ax.bbox.padded(SLACK)
        for box, what in _markers(ax, fig.dpi):
            if not _inside(box, whole) or not _inside(box, frame):
                problems.append(f"{what} cut off at {box.bounds}")
    return problems


def _inside(box: Bbox, bound: Bbox) -> bool:
    return bool(
        box.x0 >= bound.x0 and box.y0 >= bound.y0 and box.x1 <= bound.x1 and box.y1 <= bound.y1
    )


def _markers(ax: Axes, dpi: float) -> Iterator[tuple[Bbox, str]]:
    """A box around each marker the Axes draws clipped to itself (scatter points, line
    markers), in display pixels."""
    for points in ax.collections:
        if isinstance(points, PathCollection) and points.get_clip_on() and points.get_visible():
            centres = points.get_offset_transform().transform(points.get_offsets())
            sizes = np.resize(points.get_sizes(), len(centres))
            for (x, y), area in zip(centres, sizes, strict=True):
                radius = np.sqrt(area) / 2 * dpi / 72
                yield Bbox.from_extents(x - radius, y - radius, x + radius, y + radius), "point"
    for line in ax.get_lines():
        if isinstance(line, Line2D) and line.get_marker() not in (None, "", "None", " "):
            radius = line.get_markersize() / 2 * dpi / 72
            for x, y in line.get_transform().transform(line.get_xydata()):
                yield Bbox.from_extents(x - radius, y - radius, x + radius, y + radius), "marker"


def test_a_failure_at_the_start_is_a_whole_dot(analysed: dict[str, ReportData]) -> None:
    """A failure 0 min into its run is drawn whole, not cut in half by the axis at 0."""
    failed = analysed["troubled:1/845605"].failures.copy()
    failed.loc[failed.index[0], "time_to_failure_s"] = 0.0
    fig = _render(plots.plot_time_to_failure, failed, {}, (9.0, 2.3))
    assert not _cut_off(fig)
