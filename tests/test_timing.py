"""The ETA error table, computed by hand on small recordings, sign convention included."""

from __future__ import annotations

import pytest

from cfanalytics.events import empty_events
from cfanalytics.timing import ETA_ERROR_SCHEMA, eta_errors, poll_interval_s

from .test_summary import COMPLETE, Recording, at, job, running


def late_job() -> Recording:
    """Job 1 starts at -1 min; ETAs at +2 and +4 min; polls every minute; done at +5 exactly.

    Job 2 vanishes between +2 and +4 (a 500 at +3 is no evidence): completed at +3 midpoint.
    """
    rec = Recording()
    rec.poll(0, running(1, jobprogress=20, jobeta=at(2)), running(2, jobprogress=50, jobeta=at(2)))
    rec.poll(1, running(1, jobprogress=40, jobeta=at(4)), running(2, jobprogress=90, jobeta=at(2)))
    rec.poll(2, running(1, jobprogress=60, jobeta=at(4)), running(2, jobprogress=99, jobeta=at(2)))
    rec.outage(3)
    rec.poll(4, running(1, jobprogress=95, jobeta=at(4)))
    rec.poll(5, job(1, COMPLETE, jobupdated=at(5), jobprogress=100))
    return rec


def test_errors_by_hand() -> None:
    """error = actual - ETA in seconds, positive when the job finished late."""
    table = eta_errors(late_job().events())
    one = table[table["jobid"] == 1]
    assert list(one["error_s"]) == [180.0, 60.0, 60.0, 60.0]  # done at +5; ETAs +2, +4, +4, +4
    assert list(one["hit"]) == [False, False, False, False]
    assert list(one["predicted_remaining_s"]) == [120.0, 180.0, 120.0, 0.0]
    assert list(one["actual_remaining_s"]) == [300.0, 240.0, 180.0, 60.0]
    assert one["exact"].all() and (one["error_lower_s"] == one["error_upper_s"]).all()
    assert list(one["progress_decile"]) == [2, 4, 6, 9]
    # duration-normalised: (E - T) / (T - s), s = -1 min, T = +5 min: 6 min.
    assert one["duration_error"].iloc[0] == pytest.approx(-180 / 360)


def test_censored_completion_has_bounds() -> None:
    """A vanished job uses the window's midpoint and carries lower and upper bounds."""
    two = eta_errors(late_job().events()).query("jobid == 2")
    # Window (+2, +4]: midpoint +3; ETA +2 in every poll.
    assert list(two["error_s"]) == [60.0, 60.0, 60.0]
    assert list(two["error_lower_s"]) == [0.0, 0.0, 0.0]
    assert list(two["error_upper_s"]) == [120.0, 120.0, 120.0]
    assert not two["exact"].any()


def test_relative_error_only_far_from_the_end() -> None:
    """Relative error needs at least two poll intervals and 60 s still to go."""
    table = eta_errors(late_job().events()).query("jobid == 1")
    assert poll_interval_s(late_job().events()) == 60.0
    # 300 s, 240 s and 180 s to go pass (>= 120 s); 60 s to go does not.
    assert table["relative_error"].iloc[0] == pytest.approx(-180 / 300)
    assert table["relative_error"].isna().tolist() == [False, False, False, True]


def test_baseline_is_linear_extrapolation() -> None:
    """E_lin = t + (t - s)(100 - p)/p: at 0 min, 1 min elapsed at 20 % gives +4 min."""
    one = eta_errors(late_job().events()).query("jobid == 1")
    assert one["baseline_eta"].iloc[0] == at(4)
    assert one["baseline_error_s"].iloc[0] == 60.0


def test_jobs_without_completion_are_left_out() -> None:
    """Unfinished and failed jobs have no actual completion: no ETA error rows."""
    rec = Recording()
    rec.poll(0, running(1, jobeta=at(3)))
    rec.poll(1, running(1, jobeta=at(3)))
    assert eta_errors(rec.events()).empty


def test_schema_and_empty_input() -> None:
    """Columns and dtypes follow the declared schema, also for no data."""
    for frame in (eta_errors(late_job().events()), eta_errors(empty_events())):
        assert list(frame.columns) == list(ETA_ERROR_SCHEMA)
        for name, dtype in ETA_ERROR_SCHEMA.items():
            assert frame[name].dtype == dtype, name


def test_on_the_shipped_demo_cassette() -> None:
    """On a real recording, early ETAs are optimistic on average (the simulator's model)."""
    from pathlib import Path

    from cfanalytics import events_from_cassette

    events = events_from_cassette(Path(__file__).parent.parent / "cassettes" / "demo.yaml")
    table = eta_errors(events)
    assert len(table) > 100
    early = table[table["progress_decile"] <= 2]
    assert early["error_s"].mean() > 0  # finished later than the early ETAs said
    assert table["hit"].mean() < 0.5
