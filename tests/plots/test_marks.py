"""What the marks of each plot say: hover texts per job, small multiples, robust scatter
limits, many API errors at once counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # tests only: no display here

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PathCollection, PolyCollection

from cfanalytics import events_from_cassette, plots
from cfanalytics.events import split_rollouts
from cfanalytics.report import ReportData, analyse

TROUBLED = Path(__file__).parents[2] / "cassettes" / "troubled.yaml"


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    """No figure outlives its test."""
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def rollouts() -> list[ReportData]:
    """The report's analyses of the troubled cassette's two rollouts: the one that ran
    (failures, API errors) and the one the API refused to queue."""
    return [analyse(events) for _, events in split_rollouts(events_from_cassette(TROUBLED))]


def _fresh() -> Axes:
    return plt.figure().add_subplot()


def _beyond(ax: Axes) -> int:
    """How many points the scatter's legend says lie beyond its axes."""
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    return sum(int(label.split()[0]) for label in labels if "beyond the axes" in label)


def _marks(artist: object) -> int:
    """How many marks a collection draws: points, rectangles or lines."""
    if isinstance(artist, PathCollection):
        return len(artist.get_offsets())
    if isinstance(artist, LineCollection):
        return len(artist.get_segments())
    assert isinstance(artist, PolyCollection)
    return len(artist.get_paths())


def _texts_match_marks(ax: Axes, kinds: tuple[type, ...]) -> int:
    """Every non-empty collection of ``kinds`` carries one hover text per mark; how many."""
    found = 0
    for artist in ax.collections:
        if isinstance(artist, kinds) and _marks(artist):
            texts = plots.tooltips(artist)
            assert texts is not None and len(texts) == _marks(artist), artist
            found += len(texts)
    return found


def test_scatter_points_name_their_job_in_drawing_order(rollouts: list[ReportData]) -> None:
    """One text per point, in offsets order, with the job and the point's own values."""
    errors = rollouts[0].errors
    ax = plots.plot_eta_vs_actual(errors)
    assert _texts_match_marks(ax, (PathCollection,)) == len(errors)
    dots = next(c for c in ax.collections if c.get_label().startswith("machines"))
    for (x, y), text in zip(dots.get_offsets(), plots.tooltips(dots) or [], strict=True):
        assert text.startswith("job ") and " · machine " in text
        assert f"ETA in {x:.1f} min, done in {y:.1f} min" in text


def test_swimlane_bars_and_failures_carry_their_jobs(rollouts: list[ReportData]) -> None:
    """One text per rectangle and per x, naming the job of the lane it is drawn on."""
    data = rollouts[0]
    ax = plots.plot_swimlanes(data.intervals, failures=data.failures)
    failed = int((data.intervals["state"] == "failed").sum())
    assert _texts_match_marks(ax, (PolyCollection, PathCollection)) == len(data.intervals)
    lanes = [tick.get_text() for tick in ax.get_yticklabels()]
    bars = ax.collections[0]
    for path, text in zip(bars.get_paths(), plots.tooltips(bars) or [], strict=True):
        lane = lanes[int(path.vertices[:, 1].min())]
        assert text.startswith(f"job {lane.rsplit(' ', 1)[-1]} · ")
    assert len(plots.tooltips(ax.collections[1]) or []) == failed > 0


def test_failures_and_api_errors_carry_hover_texts(rollouts: list[ReportData]) -> None:
    """Each failure names its job and error; each API tick its request and answer."""
    for data in rollouts:
        ax = plots.plot_failure_timeline(data.failures, data.api_errors, ax=_fresh())
        found = _texts_match_marks(ax, (PathCollection, LineCollection))
        assert found == len(data.failures) + len(data.api_errors)
    ax = plots.plot_time_to_failure(rollouts[0].failures, ax=_fresh())
    assert _texts_match_marks(ax, (PathCollection,)) == len(rollouts[0].failures)
    for dots in ax.collections:
        if isinstance(dots, PathCollection):
            for (x, _), text in zip(dots.get_offsets(), plots.tooltips(dots) or [], strict=True):
                assert f"failed after {x:.1f} min" in text


def test_progress_curves_carry_one_text_per_line(rollouts: list[ReportData]) -> None:
    """One text per job's line, in the collection's order."""
    progress = rollouts[0].progress
    ax = plots.plot_progress_curves(progress)
    drawn = (progress.groupby("jobid").size() > 1).sum()
    assert _texts_match_marks(ax, (LineCollection,)) == drawn


def test_eta_trajectories_are_small_multiples_of_the_jobs_given(
    rollouts: list[ReportData],
) -> None:
    """A panel per job in the order given, titled with its id and machine, all on the same
    axes' limits; each step line's hover text names its job; the returned Axes draws no
    frame of its own."""
    data = rollouts[0]
    worst = data.per_job.nlargest(5, "eta_mae_s")["jobid"].tolist()
    ax = plots.plot_eta_trajectories(data.errors, jobs=worst)
    panels = ax.child_axes
    assert len(panels) == len(worst)
    machines = data.summary.set_index("jobid")["machine"]
    for panel, jobid in zip(panels, worst, strict=True):
        assert panel.get_title(loc="left").startswith(f"job {jobid} · machine {machines[jobid]}")
        (line, *_) = panel.get_lines()
        assert (plots.tooltips(line) or [""])[0].startswith(f"job {jobid} · ")
        assert panel.get_xlim() == panels[0].get_xlim()
        assert panel.get_ylim() == panels[0].get_ylim()
    assert not any(side.get_visible() for side in ax.spines.values())
    assert ax.get_legend() is not None


def test_scatter_limits_ignore_far_outliers_and_count_them(rollouts: list[ReportData]) -> None:
    """One more point ten times further than the rest: the axes stay on the rest, the
    point sits on the right edge as a triangle, the legend counts it."""
    errors = rollouts[0].errors.copy()
    before = _beyond(plots.plot_eta_vs_actual(errors, ax=_fresh()))
    far = 10 * float(errors["predicted_remaining_s"].max())
    errors.loc[errors.index[0], "predicted_remaining_s"] = far  # a mirror's first ETA
    ax = plots.plot_eta_vs_actual(errors, ax=_fresh())
    right = ax.get_xlim()[1]
    assert right < far / 60 / 2
    assert _beyond(ax) == before + 1
    edge = [
        c
        for c in ax.collections
        if isinstance(c, PathCollection) and c.get_label().startswith("_") and _marks(c)
    ]
    moved = np.concatenate([c.get_offsets()[:, 0] for c in edge])
    assert len(moved) == before + 1 and np.allclose(moved, moved.max())  # all on one edge
    assert moved.max() == pytest.approx(right, rel=0.05)


def test_mirrors_are_drawn_over_machines_with_their_own_marker(
    rollouts: list[ReportData],
) -> None:
    """Mirror points: squares, above the machines' dots."""
    ax = plots.plot_eta_vs_actual(rollouts[0].errors)
    by_label = {c.get_label().split(" ")[0]: c for c in ax.collections}
    mirrors, machines = by_label["mirrors"], by_label["machines"]
    assert mirrors.get_zorder() > machines.get_zorder()
    assert mirrors.get_paths()[0] != machines.get_paths()[0]


def test_many_queue_refusals_at_once_are_counted(rollouts: list[ReportData]) -> None:
    """The refused rollout's queue errors, all within a second, read as their number."""
    errors = rollouts[1].api_errors
    queue = errors[errors["endpoint"] == "queue"]
    at_once = int((queue["observed_at"] - queue["observed_at"].min() < pd.Timedelta("1s")).sum())
    assert at_once > 20
    ax = plots.plot_failure_timeline(rollouts[1].failures, errors)
    counts = [int(text.get_text()) for text in ax.texts if text.get_text().isdigit()]
    assert at_once in counts
    assert sum(counts) <= len(errors)
    assert np.all(np.array(counts) > 1)  # a lone tick needs no number
