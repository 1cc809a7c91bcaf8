"""Rollouts: every analysis runs per rollout, and nothing of two rollouts is ever merged."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from cfanalytics import RolloutError
from cfanalytics.analysis import (
    FleetTimeline,
    api_errors,
    completion_curve,
    error_by,
    eta_errors,
    failure_rates,
    failures,
    first_failure,
    fleet_states,
    job_eta_metrics,
    job_summary,
    other_endings,
    polling_gaps,
    progress_curves,
    rollout_metrics,
    state_intervals,
    stragglers,
    time_to_fraction,
)
from cfanalytics.events import (
    conform,
    rollout_events,
    rollout_of,
    rollouts,
    single_rollout,
    split_rollouts,
)

from .recorded import cassette_events
from .test_summary import RUNNING, Recording, job, running

BY_EVENTS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "job_summary": job_summary,
    "eta_errors": eta_errors,
    "job_eta_metrics": job_eta_metrics,
    "failures": failures,
    "api_errors": api_errors,
    "fleet_states": fleet_states,
    "state_intervals": state_intervals,
    "progress_curves": progress_curves,
    "stragglers": stragglers,
    "polling_gaps": polling_gaps,
}
BY_SUMMARY: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "completion_curve": completion_curve,
    "completion_curve_job": lambda s: completion_curve(s, clock="job"),
    "failure_rates": lambda s: failure_rates(s, "location"),
    "other_endings": other_endings,
}


@pytest.fixture(scope="module")
def both() -> pd.DataFrame:
    """The demo and troubled recordings in one table, troubled's rows first."""
    return pd.concat([cassette_events("troubled"), cassette_events("demo")], ignore_index=True)


def of(table: pd.DataFrame, rollout: str) -> pd.DataFrame:
    return table.loc[table["rollout"] == rollout].reset_index(drop=True)


def test_the_shipped_recordings_name_different_rollouts(both: pd.DataFrame) -> None:
    """Clanforge's ids are global: the simulator gives each recording its own."""
    demo, troubled = (rollouts(cassette_events(name)) for name in ("demo", "troubled"))
    assert len(demo) == 1 and len(troubled) == 2 and not set(demo) & set(troubled)
    assert rollouts(both) == sorted(demo + troubled, key=lambda r: int(r.split("/")[1]))


@pytest.mark.parametrize("name", sorted(BY_EVENTS))
def test_an_analysis_of_two_recordings_is_each_analysed_alone(
    both: pd.DataFrame, name: str
) -> None:
    """Row for row: each rollout's rows of the whole are what it gives alone."""
    analyse = BY_EVENTS[name]
    whole = analyse(both)
    seen = 0
    for recording in ("demo", "troubled"):
        alone = analyse(cassette_events(recording))
        for rollout in rollouts(cassette_events(recording)):
            expected = of(alone, rollout)
            pd.testing.assert_frame_equal(of(whole, rollout), expected, check_exact=True)
            seen += len(expected)
    assert seen == len(whole)


@pytest.mark.parametrize("name", sorted(BY_SUMMARY))
def test_an_analysis_of_a_summary_is_per_rollout(both: pd.DataFrame, name: str) -> None:
    """Tables read from a summary group by its rollout column."""
    analyse = BY_SUMMARY[name]
    whole = analyse(job_summary(both))
    for recording in ("demo", "troubled"):
        alone = analyse(job_summary(cassette_events(recording)))
        for rollout in rollouts(cassette_events(recording)):
            pd.testing.assert_frame_equal(of(whole, rollout), of(alone, rollout))


def test_eta_errors_by_location_are_per_rollout(both: pd.DataFrame) -> None:
    whole = error_by(eta_errors(both), "location")
    alone = error_by(eta_errors(cassette_events("demo")), "location")
    (rollout,) = rollouts(cassette_events("demo"))
    pd.testing.assert_frame_equal(of(whole, rollout), alone)
    assert whole["rollout"].nunique() == 2  # troubled's idle rollout has no ETA at all


def test_one_rollout_answers_need_the_rollout_named(both: pd.DataFrame) -> None:
    """Headline numbers, the timeline and single curves refuse to guess, naming the rollouts."""
    names = rollouts(both)
    for attempt in (
        lambda: rollout_metrics(both),
        lambda: FleetTimeline(both),
        lambda: time_to_fraction(completion_curve(job_summary(both)), 0.5),
        lambda: first_failure(failures(both), api_errors(both)),
        lambda: single_rollout(both),
    ):
        with pytest.raises(RolloutError, match=names[0]) as caught:
            attempt()
        assert all(name in str(caught.value) for name in names)
    with pytest.raises(RolloutError, match="no rollout '9/9'"):
        rollout_metrics(both, rollout="9/9")


def test_one_rollout_named_is_the_same_as_alone(both: pd.DataFrame) -> None:
    demo = cassette_events("demo")
    (rollout,) = rollouts(demo)
    pd.testing.assert_series_equal(rollout_metrics(both, rollout=rollout), rollout_metrics(demo))
    assert rollout_metrics(demo)["rollout"] == rollout
    timeline = FleetTimeline(both, rollout=rollout)
    pd.testing.assert_frame_equal(timeline.at(), FleetTimeline(demo).at())
    curve = completion_curve(job_summary(both))
    alone = completion_curve(job_summary(demo))
    assert time_to_fraction(curve, 0.5, rollout=rollout) == time_to_fraction(alone, 0.5)


def test_two_runs_watching_one_rollout_are_one_rollout() -> None:
    """A resumed run or a second recorder: one rollout, the polls of both count, in time order."""
    demo = cassette_events("demo")
    half = int(demo["seq"].max()) // 2
    split = demo.assign(
        run_id=demo["run_id"].astype("string").where(demo["seq"] < half, "second-run")
    )
    assert rollouts(split) == rollouts(demo)
    pd.testing.assert_frame_equal(job_summary(split), job_summary(demo))
    pd.testing.assert_frame_equal(fleet_states(split), fleet_states(demo))
    # Every other poll recorded by each of two runs at once: the union is the whole.
    run_id = demo["run_id"].astype("string")  # text, to take a new value
    odd = demo.assign(run_id=run_id.where(demo["seq"] % 2 == 0, "other-recorder"))
    pd.testing.assert_frame_equal(job_summary(odd), job_summary(demo))


def test_queue_answers_take_their_jobs_version() -> None:
    """Queue answers never say the version: the job's status rows do."""
    rec = Recording()
    rec.queue(0, 1, 2)
    rec.poll(1, running(target_imageversionid=42))
    events = rec.events()
    assert set(rollout_of(events)) == {"1/42"}


def test_a_run_that_never_says_the_version_is_its_own_rollout() -> None:
    rec = Recording()
    rec.poll(0, running())
    rec.poll(1)
    events = rec.events()
    assert rollouts(events) == ["1/run:r"]
    assert job_summary(events)["outcome"].tolist() == ["completed"]


def test_a_poll_listing_only_another_rollout_still_ends_a_job() -> None:
    """Two images rolling out at once: when only the other's job is listed, this one is gone."""
    rec = Recording()
    rec.poll(0, running(target_imageversionid=1), job(2, RUNNING, target_imageversionid=2))
    rec.poll(1, job(2, RUNNING, target_imageversionid=2))
    events = rec.events()
    assert rollouts(events) == ["1/1", "1/2"]
    first = rollout_events(events, "1/1")
    assert len(first) == 2 and pd.isna(first["jobid"].iloc[1])  # the second poll, emptied
    summary = job_summary(events)
    assert summary["outcome"].tolist() == ["completed", "unfinished"]
    assert summary["rollout"].tolist() == ["1/1", "1/2"]


def test_rows_of_no_rollout_are_shared_or_their_own() -> None:
    """Error rows of a run with two rollouts belong to both; split gives each its own copy."""
    rec = Recording()
    rec.poll(0, running(target_imageversionid=1), job(2, RUNNING, target_imageversionid=2))
    rec.outage(1, status=503)
    events = rec.events()
    assert rollout_of(events).isna().sum() == 1
    parts = dict(split_rollouts(events))
    assert set(parts) == {"1/1", "1/2"}
    assert all(part["problem"].notna().sum() == 1 for part in parts.values())
    assert api_errors(events)["rollout"].tolist() == ["1/1", "1/2"]


def test_a_summary_without_rollouts_is_refused_for_several() -> None:
    events = pd.concat([cassette_events("demo"), cassette_events("troubled")], ignore_index=True)
    old = job_summary(events).drop(columns="rollout")
    with pytest.raises(RolloutError, match="summary="):
        fleet_states(events, summary=old)


def test_empty_events_give_empty_tables_with_a_rollout_column() -> None:
    empty = conform(pd.DataFrame({"endpoint": []}))
    for analyse in BY_EVENTS.values():
        table = analyse(empty)
        assert table.empty and table.columns[0] == "rollout"
