"""The ETA error table, computed by hand on small recordings, sign convention included."""

from __future__ import annotations

import pandas as pd
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


def test_job_metrics_by_hand() -> None:
    """Per job: MAE, bias, revisions, errors at progress checkpoints, where time went."""
    from cfanalytics.timing import job_eta_metrics

    jobs = job_eta_metrics(late_job().events()).set_index("jobid")
    one, two = jobs.loc[1], jobs.loc[2]
    assert (one["eta_mae_s"], one["eta_bias_s"], one["hit_rate"]) == (90.0, 90.0, 0.0)
    assert (one["revisions"], one["revision_total_s"]) == (1, 120.0)  # +2 min -> +4 min
    assert (one["error_at_25_s"], one["error_at_50_s"], one["error_at_75_s"]) == (60.0, 60.0, 60.0)
    assert one["run_time_s"] == 360.0 and pd.isna(one["queue_wait_s"])  # never seen queued
    assert (two["eta_mae_s"], two["revisions"], two["run_time_s"]) == (60.0, 0, 240.0)


def test_error_by_aggregates_per_job_first() -> None:
    """Job 1's four polls do not outweigh job 2's three: mean of per-job MAEs."""
    from cfanalytics.timing import error_by

    row = error_by(eta_errors(late_job().events()), "kind").iloc[0]
    assert (row["kind"], row["n_jobs"], row["n_observations"]) == ("machine", 2, 7)
    assert row["mae_s"] == 75.0  # mean(90, 60); per observation it would be 77.1


def test_rollout_metrics_by_hand() -> None:
    """Times to 50/90/100 % done, durations, and skill against the linear baseline."""
    from cfanalytics.timing import rollout_metrics

    m = rollout_metrics(late_job().events())
    assert (m["n_jobs"], m["completed"], m["failed"]) == (2, 2, 0)
    # Job 2 done at +3 min (window midpoint), job 1 at +5; the run starts at 0.
    assert (m["time_to_50_s"], m["time_to_90_s"], m["time_to_100_s"]) == (180.0, 300.0, 300.0)
    assert m["duration_p50_s"] == 300.0  # runs of 360 s and 240 s
    assert m["eta_mae_s"] == 75.0
    # Baseline E = t + (t - s)(100 - p)/p with s = -60 s; error T - E (T: +300 s, +180 s).
    job1 = (60 + 60 + 60 + (300 - (240 + 300 * 5 / 95))) / 4
    job2 = (120 + (180 - (60 + 120 * 10 / 90)) + (180 - (120 + 180 * 1 / 99))) / 3
    assert m["baseline_mae_s"] == pytest.approx((job1 + job2) / 2)
    assert m["skill"] == pytest.approx(75 / ((job1 + job2) / 2))
