"""The fleet at a moment: states, progress, ETAs and straggler flags as of a poll, by hand."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from cfanalytics.analysis import (
    FLEET_STATES,
    SNAPSHOT_SCHEMA,
    FleetTimeline,
    fleet_at,
    fleet_states,
    stragglers,
)
from cfanalytics.events import empty_events

from .recorded import ACTIVE, ACTIVE_IDS, rollout_of_cassette
from .test_fleet import assert_schema, rollout, straggling
from .test_summary import COMPLETE, FAILED, Recording, at, job, running

CASSETTES = Path(__file__).parents[2] / "cassettes"
QUEUED = 3


def row(timeline: FleetTimeline, when: pd.Timestamp | str, jobid: int = 1) -> pd.Series:
    """One job's row of the fleet at ``when``."""
    return timeline.at(when).set_index("jobid").loc[jobid]


def states(timeline: FleetTimeline, when: pd.Timestamp | str) -> dict[int, str]:
    """Every job's state at ``when``: {jobid: state}."""
    frame = timeline.at(when)
    return dict(zip(frame["jobid"], frame["state"].astype(str), strict=True))


def first_attempt_failed() -> Recording:
    """Job 1 runs (ETA minute 3, then 4), fails at 1, is queued again at 2 and runs from 3
    with ETA minute 10, then 11; it vanishes at 5 (completed, censored between 4 and 5)."""
    rec = Recording()
    rec.poll(0, running(jobprogress=10, jobeta=at(3)))
    rec.poll(0.5, running(jobprogress=20, jobeta=at(4)))
    rec.poll(1, job(1, FAILED, jobprogress=20))
    rec.poll(2, job(1, QUEUED, jobprogress=0))
    rec.poll(3, running(jobprogress=5, jobeta=at(10)))
    rec.poll(4, running(jobprogress=50, jobeta=at(11)))
    rec.poll(5)
    return rec


# Which poll a moment is shown as of


def test_before_the_first_poll_every_job_is_waiting() -> None:
    """Nothing was listed yet: all waiting, nothing known, no poll to name."""
    timeline = FleetTimeline(rollout().events())
    frame = timeline.at(at(-1))
    assert set(frame["state"]) == {"waiting"} and len(frame) == 4
    assert frame[["jobprogress", "jobeta", "seen_at"]].isna().all().all()
    assert frame.attrs["at"] is None
    assert timeline.counts(at(-1))["waiting"] == 4


def test_between_polls_the_fleet_is_as_of_the_last_poll() -> None:
    """At 1.5 (and during the outage at 3) the fleet is as the polls at 1 (and 2) showed it."""
    timeline = FleetTimeline(rollout().events())
    assert states(timeline, at(1.5)) == {1: "running", 2: "running", 3: "waiting", 4: "pending"}
    assert timeline.at(at(1.5)).attrs["at"] == at(1)
    assert timeline.at(at(3)).attrs["at"] == at(2)
    assert (
        row(timeline, at(1.99))["jobprogress"] == 20 and row(timeline, at(2))["jobprogress"] == 40
    )


def test_default_is_the_latest_poll_and_times_are_the_polls() -> None:
    """``at()`` is the last poll; ``times`` are the successful polls only, not the outage."""
    timeline = FleetTimeline(rollout().events())
    assert list(timeline.times) == [at(0), at(1), at(2), at(4), at(5)]
    assert len(timeline) == 5 and str(timeline.times.tz) == "UTC"
    assert timeline.at().attrs["at"] == at(5)
    assert timeline.at().equals(timeline.at(at(99)))
    assert "4 jobs, 5 polls" in repr(timeline)


def test_strings_and_naive_datetimes_are_utc() -> None:
    """A string without zone and a naive datetime name the same UTC moment as a Timestamp."""
    timeline = FleetTimeline(rollout().events())
    expected = timeline.at(at(1.5))
    naive: datetime = at(1.5).tz_localize(None).to_pydatetime()
    assert timeline.at("2024-05-01 12:01:30").equals(expected)
    assert timeline.at(naive).equals(expected)
    assert timeline.at("2024-05-01T13:01:30+01:00").equals(expected)
    assert timeline.at("2024-05-01 12:00:59").attrs["at"] == at(0)


def test_fleet_at_is_one_lookup_of_a_timeline() -> None:
    """The function and the class agree, options included."""
    events = straggling().events()
    got = fleet_at(events, when=at(3), grace_s=0, stalled_polls=2)
    assert got.equals(FleetTimeline(events, grace_s=0, stalled_polls=2).at(at(3)))
    assert got["overdue"].any() and got["stalled"].any()


# States, as fleet_states counts them


def test_states_by_hand_and_counts_equal_fleet_states() -> None:
    """Listed jobs by their state, vanished ones by outcome, unseen ones waiting."""
    events = rollout().events()
    timeline = FleetTimeline(events)
    assert states(timeline, at(2)) == {1: "running", 2: "failed", 3: "running", 4: "other"}
    assert states(timeline, at(5)) == {1: "completed", 2: "failed", 3: "running", 4: "other"}
    for when, part in fleet_states(events).groupby("observed_at"):
        assert timeline.counts(when).equals(part.set_index("state")["jobs"])


def test_a_job_vanishing_after_running_is_completed_from_its_vanishing_poll() -> None:
    """Running while listed, through an outage; completed at the first poll without it."""
    rec = Recording()
    rec.poll(0, running(jobprogress=30))
    rec.outage(1)
    rec.poll(2, running(jobprogress=60))
    rec.poll(3)
    timeline = FleetTimeline(rec.events())
    assert [row(timeline, at(m))["state"] for m in (0, 1, 2, 3)] == [
        "running",
        "running",
        "running",
        "completed",
    ]
    done = row(timeline, at(3))
    assert done["jobprogress"] == 60 and done["seen_at"] == at(2)
    assert done["outcome"] == "completed" and done["completed_at"] == at(2.5)


def test_a_failed_job_is_failed_from_its_failed_snapshot_on() -> None:
    """Failed while listed Failed and after it vanished; ``failed_at`` from the summary."""
    rec = Recording()
    rec.poll(0, running())
    rec.poll(1, job(1, FAILED, jobupdated=at(0.8)))
    rec.poll(2)
    timeline = FleetTimeline(rec.events())
    assert [row(timeline, at(m))["state"] for m in (0, 1, 2)] == ["running", "failed", "failed"]
    assert row(timeline, at(0))["failed_at"] == at(0.8)  # what happened later, shown early
    assert row(timeline, at(0))["outcome"] == "failed"


def test_a_queue_answer_between_polls_counts_from_the_next_poll() -> None:
    """As in fleet_states: a moment is a poll, so an answer at 0.5 shows from poll 1."""
    rec = Recording()
    rec.poll(0, job(2, 2))
    rec.queue(0.5, 1, QUEUED)
    rec.poll(1, job(1, QUEUED), job(2, 2))
    timeline = FleetTimeline(rec.events())
    assert row(timeline, at(0.7))["state"] == "waiting" and pd.isna(
        row(timeline, at(0.7))["seen_at"]
    )
    assert row(timeline, at(1))["state"] == "queued"


def test_a_job_named_only_by_a_refused_queue_request_is_always_waiting() -> None:
    """Every job of the summary has a row, even one no snapshot ever showed."""
    rec = Recording()
    rec.poll(0, running(1))
    rec.queue_error(0.5, 2, "image locked by diffid: 218595")
    rec.poll(1, running(1))
    timeline = FleetTimeline(rec.events())
    assert states(timeline, at(1)) == {1: "running", 2: "waiting"}
    assert row(timeline, at(1), 2)["outcome"] == "unknown"


def test_a_job_only_vanishes_at_a_poll_of_its_own_asid() -> None:
    """Another ASID's empty list at 1 is a poll time, but job 1 is still running there."""
    rec = Recording(asid=1)
    rec.poll(0, running())
    rec.poll(1, asid=2)
    rec.poll(2)
    timeline = FleetTimeline(rec.events())
    assert [row(timeline, at(m))["state"] for m in (0, 1, 2)] == [
        "running",
        "running",
        "completed",
    ]


# Progress and ETAs as of the moment


def test_progress_is_the_last_known_and_the_eta_the_last_shown() -> None:
    """A snapshot without progress keeps the last known one; without an ETA it shows none."""
    rec = Recording()
    rec.poll(0, running(jobprogress=30, jobeta=at(5)))
    rec.poll(1, running(jobprogress=None, jobeta=None))
    timeline = FleetTimeline(rec.events())
    late = row(timeline, at(1))
    assert late["jobprogress"] == 30 and pd.isna(late["jobeta"]) and late["seen_at"] == at(1)
    assert late["first_eta"] == at(5) and pd.isna(late["slip_s"])


def test_slip_is_how_far_the_eta_moved_since_the_first() -> None:
    """ETA minute 5, then 7: a slip of 120 s; 0 at the first poll. An ETA shown while
    Queued is shown, but the first ETA is the first given while Running."""
    rec = Recording()
    rec.poll(-1, job(1, QUEUED, jobeta=at(2)))
    rec.poll(0, running(jobprogress=10, jobeta=at(5)))
    rec.poll(1, running(jobprogress=20, jobeta=at(7)))
    timeline = FleetTimeline(rec.events())
    queued = row(timeline, at(-1))
    assert queued["jobeta"] == at(2) and pd.isna(queued["first_eta"])
    assert row(timeline, at(0))["slip_s"] == 0.0
    assert row(timeline, at(1))["slip_s"] == 120.0
    assert row(timeline, at(1))["first_eta"] == at(5)


def test_a_retry_after_failing_starts_its_first_eta_again() -> None:
    """While Failed the failed attempt's first ETA shows; once re-queued, none until the
    retry runs with its own (the failed attempt's promise is not the retry's)."""
    timeline = FleetTimeline(first_attempt_failed().events())
    first_eta = [row(timeline, at(m))["first_eta"] for m in (0, 0.5, 1, 2, 3, 4)]
    assert first_eta[:3] == [at(3)] * 3
    assert pd.isna(first_eta[3])
    assert first_eta[4:] == [at(10), at(10)]
    assert row(timeline, at(4))["slip_s"] == 60.0
    assert row(timeline, at(0.5))["slip_s"] == 60.0


def test_eta_error_is_the_completion_less_the_eta_shown_then() -> None:
    """Completed at minute 4 (a Complete row): ETA 3 shown at 0 is 60 s short, 5 at 1 is not."""
    rec = Recording()
    rec.poll(0, running(jobprogress=10, jobeta=at(3)))
    rec.poll(1, running(jobprogress=50, jobeta=at(5)))
    rec.poll(2, job(1, COMPLETE, jobupdated=at(4), jobprogress=100))
    timeline = FleetTimeline(rec.events())
    assert row(timeline, at(0))["eta_error_s"] == 60.0
    assert row(timeline, at(1))["eta_error_s"] == -60.0
    assert pd.isna(row(timeline, at(2))["eta_error_s"])  # the Complete row shows no ETA
    assert row(timeline, at(0))["completed_at"] == at(4)


# Straggler flags


def test_overdue_is_strictly_more_than_the_grace_past_the_first_eta() -> None:
    """First ETA minute 1; at minute 2 exactly 60 s past it: not overdue by the default
    grace, overdue by a grace a millisecond shorter; never once the job is not Running."""
    rec = Recording()
    rec.poll(0, running(jobprogress=10, jobeta=at(1)))
    rec.poll(2, running(jobprogress=20, jobeta=at(3)))
    rec.poll(3, job(1, FAILED))
    assert not row(FleetTimeline(rec.events()), at(2))["overdue"]
    shorter = FleetTimeline(rec.events(), grace_s=59.999)
    assert [row(shorter, at(m))["overdue"] for m in (0, 2, 3)] == [False, True, False]


def test_a_retry_is_overdue_against_its_own_first_eta() -> None:
    """At 4 the retry is a minute past the failed attempt's first ETA (minute 3) but well
    before its own (minute 10): not overdue, even without grace."""
    timeline = FleetTimeline(first_attempt_failed().events(), grace_s=0)
    assert row(timeline, at(4))["state"] == "running"
    assert not row(timeline, at(4))["overdue"]


def test_stalled_after_n_polls_at_one_progress_and_outages_do_not_break_it() -> None:
    """Job 2 of ``straggling``: 40 % at 1, 2 and 3 around an outage at 1.5: stalled at 3
    (the third poll), not at 2; moving again at 4 ends it. Job 5, Queued at 1, never is."""
    timeline = FleetTimeline(straggling().events())
    assert [row(timeline, at(m), 2)["stalled"] for m in (1, 2, 3, 4)] == [
        False,
        False,
        True,
        False,
    ]
    assert not any(timeline.at(at(m)).set_index("jobid").loc[5, "stalled"] for m in (0, 2, 3))
    assert [row(timeline, at(m), 3)["stalled"] for m in (3, 4, 5)] == [False, True, True]
    two = FleetTimeline(straggling().events(), stalled_polls=2)
    assert row(two, at(2), 2)["stalled"] and row(two, at(3), 5)["stalled"]
    with pytest.raises(ValueError, match="stalled_polls"):
        FleetTimeline(straggling().events(), stalled_polls=1)


def test_a_poll_not_listing_the_job_breaks_the_stall() -> None:
    """Missing from poll 1 (still running by fleet rules), then back at the same progress:
    the polls are not consecutive, no stall; and another ASID's poll in between does not
    count as one of the job's polls."""
    rec = Recording()
    rec.poll(0, running(jobprogress=40), running(2, jobprogress=10))
    rec.poll(1, running(2, jobprogress=10))
    rec.poll(1.5, asid=2)
    rec.poll(2, running(jobprogress=40), running(2, jobprogress=10))
    rec.poll(3, running(jobprogress=40), running(2, jobprogress=20))
    timeline = FleetTimeline(rec.events(), stalled_polls=2)
    assert row(timeline, at(1))["state"] == "running" and not row(timeline, at(1))["stalled"]
    assert not row(timeline, at(2))["stalled"] and row(timeline, at(3))["stalled"]
    assert row(timeline, at(2), 2)["stalled"] and row(timeline, at(1.5), 2)["stalled"]


# Shape


def test_columns_and_dtypes_follow_the_schema_sorted_by_job() -> None:
    """Every column typed as declared, one row per job, in jobid order."""
    frame = FleetTimeline(straggling().events()).at(at(2))
    assert_schema(frame, SNAPSHOT_SCHEMA)
    assert list(frame["jobid"]) == [1, 2, 3, 4, 5]


def test_an_empty_recording_gives_an_empty_typed_frame() -> None:
    """No jobs, no polls: no rows, every column typed, every count zero."""
    timeline = FleetTimeline(empty_events())
    frame = timeline.at()
    assert frame.empty and frame.attrs["at"] is None
    assert_schema(frame, SNAPSHOT_SCHEMA)
    assert len(timeline) == 0 and "no polls" in repr(timeline)
    assert list(timeline.counts().index) == list(FLEET_STATES)
    assert (timeline.counts() == 0).all()
    with pytest.raises(ValueError, match="NaT"):
        timeline.at(pd.NaT)


# The shipped cassettes


@pytest.fixture(scope="module", params=ACTIVE, ids=ACTIVE_IDS)
def recorded(request: pytest.FixtureRequest) -> pd.DataFrame:
    """A recorded rollout's events."""
    return rollout_of_cassette(request.param)


def listed_running(events: pd.DataFrame) -> pd.DataFrame:
    """The Running rows of successful status responses (``observed_at``, ``jobid``)."""
    ok = (events["endpoint"] == "status") & events["problem"].isna()
    return events.loc[ok & (events["jobstateid"] == 4), ["observed_at", "jobid"]]


def test_cassette_states_at_every_poll_are_fleet_states(recorded: pd.DataFrame) -> None:
    """The invariant the widgets rely on: the fleet at each poll counts as fleet_states."""
    timeline = FleetTimeline(recorded)
    reference = fleet_states(recorded)
    assert list(timeline.times) == list(reference["observed_at"].unique())
    for when, part in reference.groupby("observed_at"):
        expected = part.set_index("state")["jobs"]
        assert timeline.counts(when).equals(expected)
        counted = timeline.at(when)["state"].value_counts().reindex(expected.index)
        assert counted.tolist() == expected.tolist()


def test_cassette_overdue_at_every_poll_agrees_with_stragglers(recorded: pd.DataFrame) -> None:
    """With one attempt per job (true of both cassettes: no job runs again after failing),
    both take the same first ETA and it stays fixed, so a job listed Running at ``t`` is
    overdue at ``t`` exactly when stragglers' ``overdue_since`` is at or before ``t``; a job
    not Running is never overdue; the jobs ever overdue are stragglers' overdue jobs."""
    timeline = FleetTimeline(recorded)
    found = stragglers(recorded).set_index("jobid")["overdue_since"].dropna()
    running, ever = listed_running(recorded), set()
    for when in timeline.times:
        frame = timeline.at(when).set_index("jobid")
        listed = running.loc[running["observed_at"] == when, "jobid"]
        since = found.reindex(listed)
        assert frame.loc[listed, "overdue"].tolist() == (since <= when).fillna(False).tolist()
        assert (frame.loc[frame["overdue"], "state"] == "running").all()
        ever |= set(frame.index[frame["overdue"]])
    assert ever == set(found.index) and ever


def test_cassette_stalls_agree_with_stragglers(recorded: pd.DataFrame) -> None:
    """Two polls at one progress make a stall (the troubled cassette has one): a job is
    flagged at some poll exactly when stragglers finds a stall, first at the poll one after
    its ``stalled_since`` (the run's first poll)."""
    timeline = FleetTimeline(recorded, stalled_polls=2)
    since = stragglers(recorded, stalled_polls=2).set_index("jobid")["stalled_since"].dropna()
    first: dict[int, pd.Timestamp] = {}
    for when in timeline.times:
        frame = timeline.at(when)
        for jobid in frame.loc[frame["stalled"], "jobid"]:
            first.setdefault(jobid, when)
    assert set(first) == set(since.index)
    for jobid, when in first.items():
        assert timeline.times.get_loc(when) == timeline.times.get_loc(since[jobid]) + 1


def test_cassette_at_the_end_of_a_cut_recording_agrees_with_stragglers(
    recorded: pd.DataFrame,
) -> None:
    """``at()`` against ``stragglers(events, at=last)`` for jobs listed Running at the last
    poll. Both cassettes end with no job Running, so the recording is cut at the poll with
    the most overdue jobs. Comparable: ``overdue`` (one attempt per job) is ``overdue_since``
    being set; ``stalled`` implies ``stalled_since`` is (stragglers reports stalls that
    ended earlier too, the fleet at a moment only the current one)."""
    whole = FleetTimeline(recorded)
    busiest = max(whole.times, key=lambda when: int(whole.at(when)["overdue"].sum()))
    cut = recorded.loc[recorded["observed_at"] <= busiest]
    frame = FleetTimeline(cut).at().set_index("jobid")
    found = stragglers(recorded, at=busiest).set_index("jobid").reindex(frame.index)
    assert frame.attrs["at"] == busiest
    running = listed_running(cut)
    listed = running.loc[running["observed_at"] == busiest, "jobid"]
    assert frame.loc[listed, "overdue"].any()
    assert (
        frame.loc[listed, "overdue"].tolist() == found.loc[listed, "overdue_since"].notna().tolist()
    )
    assert found.loc[frame["stalled"], "stalled_since"].notna().all()


def test_cassette_moments_need_no_hindsight(recorded: pd.DataFrame) -> None:
    """What the responses showed by ``t`` does not depend on what was recorded after it:
    the columns taken from snapshots are the same for the whole recording and for the
    recording cut at ``t``, at every tenth poll."""
    whole = FleetTimeline(recorded)
    shown = ["jobid", "jobprogress", "jobeta", "first_eta", "slip_s", "seen_at"]
    for when in whole.times[5::10]:
        cut = FleetTimeline(recorded.loc[recorded["observed_at"] <= when]).at()[shown]
        later = whole.at(when)[shown]
        assert later.loc[later["jobid"].isin(cut["jobid"])].reset_index(drop=True).equals(cut)
        assert later.loc[~later["jobid"].isin(cut["jobid"]), "seen_at"].isna().all()
