"""The fleet over time: state counts, intervals, progress curves and stragglers, by hand."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pytest

from cfanalytics import job_summary
from cfanalytics.analysis import (
    FLEET_STATES,
    FLEET_STATES_SCHEMA,
    INTERVAL_SCHEMA,
    PROGRESS_SCHEMA,
    STRAGGLER_SCHEMA,
    fleet_states,
    progress_curves,
    state_intervals,
    stragglers,
)
from cfanalytics.events import empty_events

from .recorded import ACTIVE, ACTIVE_IDS, IDLE, rollout_of_cassette
from .test_summary import COMPLETE, FAILED, Recording, at, job, running

CASSETTES = Path(__file__).parents[2] / "cassettes"


def rollout() -> Recording:
    """Four jobs over polls at minutes 0, 1, 2, 4 and 5, with an outage at 3.

    Job 1 runs from 0.5 and vanishes between 4 and 5 (completed, censored); job 2 fails at
    2 and is gone at 5 (failed); job 3 first shows at 2, is missing at 4 and listed again at
    5 (unfinished); job 4 is pending, then gone at 2 without running (unknown).
    """
    rec = Recording()
    rec.poll(0, job(1, 2), job(2, 3), job(4, 2))
    rec.poll(1, running(1, jobstart=at(0.5), jobprogress=20), running(2), job(4, 2))
    rec.poll(2, running(1, jobstart=at(0.5), jobprogress=40), job(2, FAILED), running(3))
    rec.outage(3)
    rec.poll(4, running(1, jobstart=at(0.5), jobprogress=90), job(2, FAILED))
    rec.poll(5, running(3))
    return rec


def counts(states: pd.DataFrame) -> dict[float, dict[str, int]]:
    """The non-zero counts per poll minute: {minute: {state: jobs}}."""
    minutes = (states["observed_at"] - at(0)).dt.total_seconds() / 60
    shown = states.assign(minute=minutes).loc[states["jobs"] > 0]
    return {
        float(minute): dict(zip(part["state"].astype(str), part["jobs"].astype(int), strict=True))
        for minute, part in shown.groupby("minute")
    }


def assert_schema(frame: pd.DataFrame, schema: Mapping[str, object]) -> None:
    """Columns in order and dtypes exactly as declared; a fresh RangeIndex."""
    assert list(frame.columns) == list(schema)
    assert dict(frame.dtypes) == dict(schema)
    assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0


# fleet_states


def test_fleet_states_by_hand() -> None:
    """Listed jobs count as listed, vanished ones by outcome, unseen ones as waiting."""
    assert counts(fleet_states(rollout().events())) == {
        0.0: {"waiting": 1, "pending": 2, "queued": 1},
        1.0: {"waiting": 1, "pending": 1, "running": 2},
        2.0: {"running": 2, "failed": 1, "other": 1},  # job 4 vanished unrun: other
        4.0: {"running": 2, "failed": 1, "other": 1},  # job 3 missing: still running
        5.0: {"running": 1, "completed": 1, "failed": 1, "other": 1},
    }


def test_failed_polls_are_no_time_and_no_absence() -> None:
    """The outage at minute 3 is not a row, and job 1 is still running at minute 4."""
    states = fleet_states(rollout().events())
    minutes = set((states["observed_at"] - at(0)).dt.total_seconds() / 60)
    assert minutes == {0, 1, 2, 4, 5}
    assert counts(states)[4.0]["running"] == 2


def test_every_state_at_every_time_summing_to_all_jobs() -> None:
    """Long form: all six states per poll time, in order, adding up to the number of jobs."""
    states = fleet_states(rollout().events())
    assert_schema(states, FLEET_STATES_SCHEMA)
    assert len(states) == 5 * len(FLEET_STATES)
    assert list(states["state"].iloc[: len(FLEET_STATES)]) == list(FLEET_STATES)
    assert (states.groupby("observed_at")["jobs"].sum() == 4).all()


def test_an_exact_completion_counts_from_its_complete_snapshot() -> None:
    """A job listed Complete is completed from that poll on, and after it vanishes."""
    rec = Recording()
    rec.poll(0, running())
    rec.poll(1, job(1, COMPLETE, jobupdated=at(0.5)))
    rec.poll(2)
    assert counts(fleet_states(rec.events())) == {
        0.0: {"running": 1},
        1.0: {"completed": 1},
        2.0: {"completed": 1},
    }


def test_a_job_only_vanishes_at_a_poll_of_its_own_asid() -> None:
    """Another ASID's empty list does not complete the job, nor is it a moment of its
    rollout; its own ASID's empty list does."""
    rec = Recording(asid=1)
    rec.poll(0, running())
    rec.poll(1, asid=2)
    rec.poll(2)
    assert counts(fleet_states(rec.events())) == {
        0.0: {"running": 1},
        2.0: {"completed": 1},
    }


def test_a_given_summary_is_used() -> None:
    """With a summary the jobs and outcomes are taken from it."""
    events = rollout().events()
    assert fleet_states(events, summary=job_summary(events)).equals(fleet_states(events))


# state_intervals


def test_state_intervals_by_hand() -> None:
    """Runs of one state, each ending at the next state or at the vanishing poll."""
    got = state_intervals(rollout().events())
    rows = [(r.jobid, r.state, r.start, r.end) for r in got.itertuples()]
    assert rows == [
        (1, "pending", at(0), at(1)),
        (1, "running", at(1), at(5)),  # outage at 3 changes nothing; gone at 5
        (2, "queued", at(0), at(1)),
        (2, "running", at(1), at(2)),
        (2, "failed", at(2), at(5)),
        (3, "running", at(2), at(5)),  # never vanished: ends at its last snapshot
        (4, "pending", at(0), at(2)),
    ]
    assert_schema(got, INTERVAL_SCHEMA)
    assert (got["kind"] == "machine").all()


def test_intervals_carry_the_jobs_last_attributes() -> None:
    """Location and machine are the job's last values given, on every interval."""
    rec = Recording()
    rec.poll(0, job(1, 2, location="ams", machine="m1"))
    rec.poll(1, running(location="lon", machine="m1"))
    got = state_intervals(rec.events())
    assert list(got["location"]) == ["lon", "lon"] and list(got["machine"]) == ["m1", "m1"]


# progress_curves


def test_progress_curves_by_hand() -> None:
    """Only completed jobs; elapsed fraction from jobstart to the censored midpoint."""
    curves = progress_curves(rollout().events())
    assert_schema(curves, PROGRESS_SCHEMA)
    # Job 1: start 0.5, completion midpoint of (4, 5] = 4.5, so 4 minutes long.
    assert list(curves["jobid"]) == [1, 1, 1]
    assert list(curves["jobprogress"]) == [20, 40, 90]
    assert list(curves["elapsed_fraction"]) == pytest.approx([0.125, 0.375, 0.875])


def test_progress_curves_fall_back_to_started_at() -> None:
    """Without jobstart the first Running snapshot is the start; Complete rows are not curves."""
    rec = Recording()
    rec.poll(0, job(1, 4, jobprogress=10))
    rec.poll(1, job(1, 4, jobprogress=60))
    rec.poll(2, job(1, COMPLETE, jobupdated=at(2), jobprogress=100))
    curves = progress_curves(rec.events())
    assert list(curves["elapsed_fraction"]) == [0.0, 0.5]


# stragglers


def straggling() -> Recording:
    """Polls at 0..5 (an outage at 1.5) with a straggler of each reason and two non-stragglers.

    Job 1 runs past its ETA from minute 2 (30 s late, then 60 s) and vanishes at 5;
    job 2 sits at 40 % for three polls (1, 2, 3) around the outage;
    job 3 sits at 70 % from 2 and is past its ETA of 2 from 3: both;
    job 4 moves on every poll; job 5 sits at 20 % at 0, 2 and 3 but is Queued at 1.
    """
    far = {"jobeta": at(30)}
    rec = Recording()
    rec.poll(
        0,
        running(1, jobprogress=10, jobeta=at(1)),
        running(2, jobprogress=10, **far),
        running(4, jobprogress=10, **far),
        running(5, jobprogress=20, **far),
    )
    rec.poll(
        1,
        running(1, jobprogress=20, jobeta=at(1.5)),
        running(2, jobprogress=40, **far),
        running(4, jobprogress=20, **far),
        job(5, 3),
    )
    rec.outage(1.5)
    rec.poll(
        2,
        running(1, jobprogress=30, jobeta=at(1.5)),
        running(2, jobprogress=40, **far),
        running(3, jobprogress=70, jobeta=at(2)),
        running(4, jobprogress=30, **far),
        running(5, jobprogress=20, **far),
    )
    rec.poll(
        3,
        running(1, jobprogress=50, jobeta=at(2)),
        running(2, jobprogress=40, **far),
        running(3, jobprogress=70, jobeta=at(2)),
        running(4, jobprogress=40, **far),
        running(5, jobprogress=20, **far),
    )
    rec.poll(4, running(2, jobprogress=60, **far), running(3, jobprogress=70, jobeta=at(2)))
    rec.poll(5, running(2, jobprogress=80, **far), running(3, jobprogress=70, jobeta=at(2)))
    return rec


def test_stragglers_by_hand() -> None:
    """Overdue, stalled and both, with when, by how much and for how many polls."""
    got = stragglers(straggling().events(), grace_s=0, against="current").set_index("jobid")
    assert list(got.index) == [1, 2, 3]
    assert list(got["reason"]) == ["overdue", "stalled", "both"]
    assert list(got["overdue_since"].iloc[[0, 2]]) == [at(2), at(3)]
    assert pd.isna(got.loc[2, "overdue_since"]) and pd.isna(got.loc[1, "stalled_since"])
    assert list(got["max_overdue_s"].iloc[[0, 2]]) == [60.0, 180.0]
    assert list(got["stalled_since"].iloc[[1, 2]]) == [at(1), at(2)]
    assert list(got["longest_stall_polls"]) == [1, 3, 4]
    assert list(got["outcome"]) == ["completed", "unfinished", "unfinished"]
    assert list(got["last_state"]) == ["running", "running", "running"]


def test_a_minute_past_the_eta_is_within_the_default_grace() -> None:
    """By default, overdue means more than 60 s past the ETA: job 1 (at most 60 s) is not."""
    got = stragglers(straggling().events(), against="current").set_index("jobid")
    assert list(got.index) == [2, 3]
    assert got.loc[3, "overdue_since"] == at(4)  # 120 s past its ETA of minute 2
    assert list(got["reason"]) == ["stalled", "both"]


def test_overdue_by_default_means_past_the_first_eta() -> None:
    """The API pushes jobeta forward at each poll; the job is late against its first one."""
    rec = Recording()
    for minute in range(6):  # first ETA: minute 1; each poll's ETA: a minute ahead
        rec.poll(minute, running(1, jobprogress=10 + minute, jobeta=at(minute + 1)))
    assert stragglers(rec.events(), against="current").empty
    got = stragglers(rec.events())
    assert list(got["jobid"]) == [1] and list(got["reason"]) == ["overdue"]
    assert got["overdue_since"].iloc[0] == at(3)  # 2 min past minute 1: over the 60 s grace
    assert got["max_overdue_s"].iloc[0] == 240.0  # minute 5
    assert got["late_s"].iloc[0] == 240.0  # never completed: its last Running poll, minute 5


def test_late_by_is_the_completion_against_the_first_eta_whatever_the_flag_rule() -> None:
    """One lateness per job: completion minus first ETA, the same under either ``against``."""
    events = straggling().events()
    done = job_summary(events).set_index("jobid")["completed_at"]
    for against in ("first", "current"):
        got = stragglers(events, grace_s=0, against=against).set_index("jobid")
        assert got.loc[1, "late_s"] == (done[1] - at(1)).total_seconds() > 0
        assert got.loc[3, "late_s"] == 180.0  # unfinished: last Running poll (5) - ETA (2)
        assert got.loc[2, "late_s"] == -1500.0  # stalled, not late: minute 5, its ETA 30


def test_stragglers_up_to_a_time() -> None:
    """``at`` cuts the recording: by minute 2.5 only job 1 was late, by 30 s, unfinished."""
    got = stragglers(straggling().events(), grace_s=0, against="current", at=at(2.5))
    assert list(got["jobid"]) == [1]
    assert got["max_overdue_s"].iloc[0] == 30.0
    assert got["outcome"].iloc[0] == "unfinished"
    naive = at(2.5).tz_localize(None)
    assert stragglers(straggling().events(), grace_s=0, against="current", at=naive).equals(got)


def test_stalled_polls_sets_the_threshold() -> None:
    """Two polls at one progress are a stall when two is enough: job 5 at 2 and 3."""
    got = stragglers(straggling().events(), stalled_polls=2)
    assert got.set_index("jobid").loc[5, "stalled_since"] == at(2)
    with pytest.raises(ValueError, match="stalled_polls"):
        stragglers(straggling().events(), stalled_polls=1)


def test_no_stragglers_is_an_empty_typed_frame() -> None:
    """Nobody late or stuck: no rows, every column typed."""
    rec = Recording()
    rec.poll(0, running(jobprogress=10, jobeta=at(5)))
    rec.poll(1, running(jobprogress=20, jobeta=at(5)))
    got = stragglers(rec.events())
    assert got.empty
    assert_schema(got, STRAGGLER_SCHEMA)


def test_empty_events_give_empty_typed_frames() -> None:
    """Every function accepts an events table without rows."""
    events = empty_events()
    assert_schema(fleet_states(events), FLEET_STATES_SCHEMA)
    assert_schema(state_intervals(events), INTERVAL_SCHEMA)
    assert_schema(progress_curves(events), PROGRESS_SCHEMA)
    assert_schema(stragglers(events), STRAGGLER_SCHEMA)


# The cassettes


@pytest.fixture(scope="module", params=ACTIVE, ids=ACTIVE_IDS)
def cassette(request: pytest.FixtureRequest) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A recorded rollout's events and job summary."""
    events = rollout_of_cassette(request.param)
    return events, job_summary(events)


def test_cassette_counts_add_up(cassette: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """At every poll the states add up to every job; at the end they match the outcomes."""
    events, summary = cassette
    states = fleet_states(events, summary=summary)
    assert_schema(states, FLEET_STATES_SCHEMA)
    assert (states.groupby("observed_at")["jobs"].sum() == len(summary)).all()
    assert (states["jobs"] >= 0).all()
    last = states.loc[states["observed_at"] == states["observed_at"].max()]
    final = dict(zip(last["state"].astype(str), last["jobs"], strict=True))
    outcomes = summary["outcome"].value_counts()
    assert final["completed"] == outcomes["completed"]
    assert final["failed"] == outcomes["failed"]


def test_cassette_intervals_tile_each_job(cassette: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Per job, intervals follow each other without gap or overlap, in changing states."""
    events, summary = cassette
    intervals = state_intervals(events, summary=summary)
    assert_schema(intervals, INTERVAL_SCHEMA)
    assert (intervals["start"] <= intervals["end"]).all()
    following = intervals.groupby("jobid").shift(-1).dropna(subset=["start"])
    assert (intervals.loc[following.index, "end"] == following["start"]).all()
    assert (intervals.loc[following.index, "state"] != following["state"]).all()
    assert set(intervals["jobid"]) == set(summary.loc[summary["first_seen"].notna(), "jobid"])


def test_cassette_progress_curves(cassette: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Curves only for completed jobs, within 0-1 of their duration and 0-100 %."""
    events, summary = cassette
    curves = progress_curves(events, summary=summary)
    assert_schema(curves, PROGRESS_SCHEMA)
    done = set(summary.loc[summary["completed_at"].notna(), "jobid"])
    assert set(curves["jobid"]) <= done and len(curves) > 0
    assert curves["elapsed_fraction"].between(0, 1).all()
    assert curves["jobprogress"].between(0, 100).all()


def test_cassette_stragglers_are_consistent(cassette: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Each straggler's reason matches its columns, and lateness is positive."""
    events, summary = cassette
    got = stragglers(events)
    assert_schema(got, STRAGGLER_SCHEMA)
    overdue, stalled = got["overdue_since"].notna(), got["stalled_since"].notna()
    assert ((got["reason"] == "both") == (overdue & stalled)).all()
    assert ((got["reason"] == "overdue") == (overdue & ~stalled)).all()
    assert (got.loc[overdue, "max_overdue_s"] > 0).all()
    assert (got.loc[stalled, "longest_stall_polls"] >= 3).all()
    assert set(got["jobid"]) <= set(summary["jobid"])


def test_an_idle_rollout_beside_a_busy_one() -> None:
    """troubled's locked image: its jobs never start, so every analysis says so, whatever the
    other rollout of the same polls did."""
    events = rollout_of_cassette(IDLE)
    summary = job_summary(events)
    assert len(summary) > 0
    assert (summary["outcome"] == "unfinished").all()
    assert summary["started_at"].isna().all()
    states = fleet_states(events)
    assert (states.groupby("observed_at")["jobs"].sum() == len(summary)).all()
    busy = states["state"].isin(["running", "completed", "failed"])
    assert (states.loc[busy, "jobs"] == 0).all()
    assert progress_curves(events).empty
    assert stragglers(events).empty
