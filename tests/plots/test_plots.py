"""The plot contract: every plot function draws on the Axes it is given and returns it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # tests only: no display here

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from cfanalytics import (
    HistoryStore,
    RolloutError,
    backtest,
    eta_errors,
    events_from_cassette,
    job_summary,
    plots,
    rollout_events,
    rollouts,
)
from cfanalytics.analysis import (
    api_errors,
    completion_curve,
    failure_rates,
    failures,
    fleet_states,
    progress_curves,
    state_intervals,
    trend,
)

DEMO = Path(__file__).parents[2] / "cassettes" / "demo.yaml"
TROUBLED = Path(__file__).parents[2] / "cassettes" / "troubled.yaml"
HISTORY = Path(__file__).parents[2] / "cassettes" / "history"


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    """No figure outlives its test."""
    yield
    plt.close("all")


def frames(path: Path) -> dict[str, pd.DataFrame]:
    """A cassette's first rollout's ETA errors, job summary, fleet states, state intervals,
    progress curves...: a plot draws one rollout."""
    events = events_from_cassette(path)
    events = rollout_events(events, rollouts(events)[0])
    summary = job_summary(events)
    return {
        "errors": eta_errors(events, summary=summary),
        "summary": summary,
        "states": fleet_states(events, summary=summary),
        "intervals": state_intervals(events, summary=summary),
        "curves": progress_curves(events, summary=summary),
        "completion": completion_curve(summary),
        "failures": failures(events, summary=summary),
        "rates": failure_rates(summary, "location"),
        "completion_job": completion_curve(summary, clock="job"),
        "scores": backtest(events, at_most=8).scores("progress_decile"),
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped history: six weekly rollouts of one ASID."""
    path = tmp_path_factory.mktemp("history") / "store"
    HistoryStore(path).add(*sorted(HISTORY.glob("*.yaml")))
    return path


@pytest.fixture(scope="module")
def data(store: Path) -> dict[str, pd.DataFrame]:
    """The demo cassette's frames, and a trend of the shipped history."""
    return frames(DEMO) | {"trend": trend(store, "install_p50_s", by="location")}


@pytest.fixture(scope="module")
def troubled() -> dict[str, pd.DataFrame]:
    """The troubled cassette's frames: failures, outages, jobs never queued."""
    return frames(TROUBLED)


PLOTS: list[tuple[Callable[..., Any], str]] = [
    (plots.plot_eta_vs_actual, "errors"),
    (plots.plot_error_by_decile, "errors"),
    (plots.plot_eta_trajectories, "errors"),
    (plots.plot_burnup, "states"),
    (plots.plot_progress_curves, "curves"),
    (plots.plot_swimlanes, "intervals"),
    (plots.plot_completion_curve, "completion"),
    (plots.plot_failure_timeline, "failures"),
    (plots.plot_failure_rates, "rates"),
    (plots.plot_time_to_failure, "failures"),
    (plots.plot_trend, "trend"),
    (plots.plot_predictor_errors, "scores"),
]


def test_every_plot_function_is_listed() -> None:
    """The contract below covers every public plot function."""
    listed = {fn.__name__ for fn, _ in PLOTS}
    assert listed == {name for name in plots.__all__ if name.startswith("plot_")}


@pytest.mark.parametrize(("plot", "source"), PLOTS, ids=[fn.__name__ for fn, _ in PLOTS])
def test_plot_contract(
    plot: Callable[..., Any], source: str, data: dict[str, pd.DataFrame]
) -> None:
    """Given an Axes it draws there, titles and labels it, and returns it; else the current one."""
    fig, ax = plt.subplots()
    assert plot(data[source], ax=ax) is ax
    drawn = any(axes.has_data() for axes in (ax, *ax.child_axes))  # small multiples: insets
    assert drawn and title(ax) and ax.get_xlabel() and ax.get_ylabel()
    assert len(fig.axes) == 1  # drew nothing elsewhere
    other = plt.figure().add_subplot()
    assert plot(data[source]) is other  # ax=None: the current Axes


def test_eta_vs_actual_has_the_identity_line(data: dict[str, pd.DataFrame]) -> None:
    """The y = x reference is drawn across the data."""
    ax = plots.plot_eta_vs_actual(data["errors"])
    labels = [line.get_label() for line in ax.get_lines()]
    assert "ETA exact (y = x)" in labels


@pytest.mark.parametrize(("plot", "source"), PLOTS, ids=[fn.__name__ for fn, _ in PLOTS])
def test_plot_contract_on_empty_frames(
    plot: Callable[..., Any], source: str, data: dict[str, pd.DataFrame]
) -> None:
    """An empty frame of the right schema draws nothing but still titles and labels."""
    ax = plt.figure().add_subplot()
    assert plot(data[source].iloc[:0], ax=ax) is ax
    assert ax.get_title(loc="center") or ax.get_title(loc="left")
    assert ax.get_xlabel() and ax.get_ylabel()


def test_eta_vs_actual_turns_to_a_density_when_there_are_many_points(
    data: dict[str, pd.DataFrame],
) -> None:
    """Above max_points one hexbin density replaces the dots and censoring bars."""
    errors = data["errors"]
    ax = plots.plot_eta_vs_actual(errors, max_points=len(errors) - 1)
    (density,) = ax.collections
    assert density.get_array().sum() == errors["actual_remaining_s"].notna().sum()
    assert "density" in ax.get_title()
    dots = plots.plot_eta_vs_actual(errors, ax=plt.figure().add_subplot())
    assert len(dots.collections) > 1 and "density" not in dots.get_title()


def test_completion_curve_shows_both_outcomes_the_band_and_the_midpoints(
    data: dict[str, pd.DataFrame],
) -> None:
    """Completed tops out at the completed share, failed is drawn, the band spans the curve."""
    summary = data["summary"]
    midpoint = completion_curve(summary, method="midpoint")
    ax = plots.plot_completion_curve(data["completion"], midpoint=midpoint)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert {"completed", "failed", "completed: window midpoints"} <= set(lines)
    share = (summary["outcome"] == "completed").mean()
    assert lines["completed"].get_ydata()[-1] == pytest.approx(share)
    assert lines["failed"].get_ydata()[-1] == pytest.approx((summary["outcome"] == "failed").mean())
    assert ax.collections, "the censoring band is drawn"
    assert ax.get_xlabel() == "time (UTC)"


def test_completion_curve_on_the_job_clock_is_in_minutes(data: dict[str, pd.DataFrame]) -> None:
    """On the job clock the x axis is minutes since each job started."""
    ax = plots.plot_completion_curve(data["completion_job"])
    assert "min" in ax.get_xlabel()
    x = ax.get_lines()[0].get_xdata()
    assert x[0] == 0 and 1 < max(x) < 60


def test_failure_timeline_marks_each_failure_and_api_error() -> None:
    """One marker per failure on its location's row; one tick per API error on its
    endpoint's row, which counts them."""
    events = events_from_cassette(TROUBLED)
    failed, errors = failures(events), api_errors(events)
    ax = plots.plot_failure_timeline(failed, errors)
    markers = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    ticks = [c for c in ax.collections if not isinstance(c, PathCollection)]
    assert markers == len(failed)
    assert sum(len(t.get_segments()) for t in ticks) == len(errors)
    rows = [t.get_text() for t in ax.get_yticklabels()]
    counts = errors.groupby("endpoint", observed=True).size()
    assert rows[-len(counts) :] == [f"API: {name} ({n})" for name, n in counts.items()]


def test_a_plot_refuses_two_rollouts() -> None:
    """Two rollouts' rows are never drawn as one: the error names them."""
    events = events_from_cassette(TROUBLED)
    first, idle = rollouts(events)
    with pytest.raises(RolloutError, match=f"{first}, {idle}"):
        plots.plot_burnup(fleet_states(events))


def test_failure_rates_worst_on_top_with_counts(data: dict[str, pd.DataFrame]) -> None:
    """Bars in the order given (worst first, at the top) and labelled "failed of ended"."""
    rates = data["rates"]
    ax = plots.plot_failure_rates(rates)
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == pytest.approx(rates["failure_rate"].fillna(0).tolist())
    assert ax.get_yticklabels()[0].get_text() == rates["location"].iloc[0]
    labels = [t.get_text() for t in ax.texts]
    assert f"{rates['n_failed'].iloc[0]} of {rates['n_ended'].iloc[0]}" in labels


def test_time_to_failure_one_dot_per_failure(data: dict[str, pd.DataFrame]) -> None:
    """Every failure with a start is a dot, on its class's row, at its minutes to failure."""
    failed = data["failures"]
    ax = plots.plot_time_to_failure(failed)
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    dots = np.concatenate([c.get_offsets()[:, 0] for c in scatters])
    expected = failed["time_to_failure_s"].dropna().astype(float) / 60
    assert sorted(dots) == pytest.approx(sorted(expected))


def title(ax: Any) -> str:
    """The Axes' title, wherever it is aligned."""
    return str(ax.get_title(loc="center") or ax.get_title(loc="left"))


def test_burnup_stacks_every_job(data: dict[str, pd.DataFrame]) -> None:
    """Completed at the bottom, states never taken left out; the stack tops out at all jobs."""
    ax = plots.plot_burnup(data["states"])
    areas = ax.collections
    assert [area.get_label() for area in areas] == ["completed", "failed", "running", "queued"]
    top = areas[-1].get_paths()[0].vertices[:, 1].max()
    assert top == len(data["summary"])
    assert ax.get_ylabel() == f"jobs (of {len(data['summary'])})"


def test_burnup_marks_50_and_90_percent(data: dict[str, pd.DataFrame]) -> None:
    """Dashed lines at 50 % and 90 %; the time 50 % completed, and 90 % marked not reached."""
    ax = plots.plot_burnup(data["states"])
    texts = [text.get_text() for text in ax.texts]
    assert "50% of jobs" in texts and "90% of jobs (not reached)" in texts  # demo: 43 of 48
    completed = data["states"].query("state == 'completed'")
    half = completed.loc[completed["jobs"] >= len(data["summary"]) / 2, "observed_at"].min()
    assert f"50% completed {half:%H:%M}" in texts
    levels = {line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"}
    assert levels == {0.5 * 48, 0.9 * 48}


def test_burnup_refuses_a_job_summary(data: dict[str, pd.DataFrame]) -> None:
    """The old input, a job summary, is refused with a pointer to fleet_states."""
    with pytest.raises(TypeError, match="fleet_states"):
        plots.plot_burnup(data["summary"])


def test_progress_curves_one_line_per_job(data: dict[str, pd.DataFrame]) -> None:
    """A line per job with more than one point, coloured by kind, on 0-1 by 0-100 %."""
    ax = plots.plot_progress_curves(data["curves"])
    lines = sum(len(c.get_segments()) for c in ax.collections)
    sizes = data["curves"].groupby("jobid").size()
    assert lines == (sizes > 1).sum()
    assert ax.get_xlim() == (0, 1) and ax.get_ylim() == (0, 100)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(label.startswith("machine") for label in labels)


def test_swimlanes_one_labelled_lane_per_job(troubled: dict[str, pd.DataFrame]) -> None:
    """A lane per job, labelled with its location, machine (or mirror) and id; a bar per
    interval but the failed ones; an x per failure; time along the top and the bottom."""
    intervals = troubled["intervals"]
    ax = plots.plot_swimlanes(intervals)
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert len(labels) == intervals["jobid"].nunique() == len(set(labels))
    job = intervals[intervals["machine"] == "31014"].iloc[0]
    assert f"Frankfurt · 31014 · job {job['jobid']}" in labels
    assert any(label.startswith("Frankfurt · mirror · job ") for label in labels)
    bars, marks = ax.collections[0], ax.collections[1]
    failed = (intervals["state"] == "failed").to_numpy()
    assert len(bars.get_paths()) == (~failed).sum()
    assert len(marks.get_offsets()) == failed.sum() > 0
    assert title(ax) == "Jobs by machine"
    ticks = ax.xaxis.get_major_ticks()  # label1 below, label2 above: both shown
    assert all(t.label1.get_visible() and t.label2.get_visible() for t in ticks)


def test_a_failed_lane_ends_at_its_failure(troubled: dict[str, pd.DataFrame]) -> None:
    """No bar runs past a failure; given the failures table, the x sits at its failed_at
    and the bar before it ends there."""
    intervals, failed = troubled["intervals"], troubled["failures"]
    ax = plots.plot_swimlanes(intervals, failures=failed)
    bars, marks = ax.collections[0], ax.collections[1]
    at = mdates.date2num(failed["failed_at"].dt.tz_localize(None).to_numpy("datetime64[us]"))
    assert sorted(marks.get_offsets()[:, 0]) == pytest.approx(sorted(at))
    boxes = [path.vertices for path in bars.get_paths()]
    for day, y in marks.get_offsets():  # the lane's last bar ends at the x
        lane = [box for box in boxes if box[:, 1].min() < y < box[:, 1].max()]
        assert max(box[:, 0].max() for box in lane) == pytest.approx(day)


def test_swimlanes_by_location(troubled: dict[str, pd.DataFrame]) -> None:
    """By location: still a lane per job, grouped by location in the order first seen;
    anything else is refused."""
    intervals = troubled["intervals"]
    ax = plots.plot_swimlanes(intervals, by="location")
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert len(labels) == intervals["jobid"].nunique()
    places = [label.split(" · ")[0] for label in labels]
    assert places == sorted(places)
    with pytest.raises(ValueError, match="by must be"):
        plots.plot_swimlanes(intervals, by="mirror")  # type: ignore[arg-type]


def test_time_axes_follow_matplotlibs_timezone(data: dict[str, pd.DataFrame]) -> None:
    """Ticks and labels read in rcParams["timezone"] (matplotlib's default: UTC), named in
    the axis label: the first poll, 09:00 UTC, reads 10:00 in Berlin."""
    ax = plots.plot_burnup(data["states"])
    ax.figure.canvas.draw()
    assert ax.get_xlabel() == "time (UTC)"
    assert "09:00" in [tick.get_text() for tick in ax.get_xticklabels()]
    with matplotlib.rc_context({"timezone": "Europe/Berlin"}):
        berlin = plots.plot_burnup(data["states"], ax=plt.figure().add_subplot())
    berlin.figure.canvas.draw()  # after the context: the zone was fixed when drawn
    assert berlin.get_xlabel() == "time (Europe/Berlin)"
    assert "10:00" in [tick.get_text() for tick in berlin.get_xticklabels()]
    half = [t.get_text() for t in berlin.texts if t.get_text().startswith("50% completed")]
    assert half and half[0][-5:] == _berlin(ax, [t.get_text() for t in ax.texts])


def _berlin(_: Any, texts: list[str]) -> str:
    """The 50 % completed time of the UTC plot, an hour later (CET in November)."""
    utc = next(t for t in texts if t.startswith("50% completed"))[-5:]
    return f"{int(utc[:2]) + 1:02d}{utc[2:]}"


def test_trend_rings_the_rollout_under_study(store: Path) -> None:
    """One line per location, the highlighted rollout ringed on each, its id written."""
    frame = trend(store, "install_p50_s", by="location")
    studied = frame["rollout"].iloc[-1]
    ax = plots.plot_trend(frame, highlight=studied)
    lines = [line for line in ax.get_lines() if line.get_label() in set(frame["location"])]
    assert len(lines) == frame["location"].nunique()
    rings = [line for line in ax.get_lines() if line.get_markerfacecolor() == "none"]
    assert len(rings) == frame["location"].nunique()
    assert any(studied in text.get_text() for text in ax.texts)
    top = frame["install_p50_s"].max() / 60  # minutes
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] > top
    assert "(min)" in ax.get_ylabel()


def test_trend_of_a_rate_and_of_a_bias(store: Path) -> None:
    """A rate is a percentage; a bias may go below 0."""
    ax = plots.plot_trend(trend(store, "failure_rate"))
    assert "%" in ax.yaxis.get_major_formatter().format_data(0.5)
    bias = trend(store, "eta_bias_s")
    ax = plt.figure().add_subplot()
    plots.plot_trend(bias, ax=ax)
    assert ax.get_ylim()[0] <= bias["eta_bias_s"].min() / 60
