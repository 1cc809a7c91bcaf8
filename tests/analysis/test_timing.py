"""The ETA error table, computed by hand on small recordings, sign convention included."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from cfanalytics.analysis import (
    ETA_ERROR_SCHEMA,
    error_by,
    eta_errors,
    job_eta_metrics,
    job_summary,
    poll_interval_s,
    rollout_metrics,
)
from cfanalytics.events import empty_events

from .test_summary import COMPLETE, FAILED, Recording, at, job, running

SQUASHED = 7


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

    events = events_from_cassette(Path(__file__).parents[2] / "cassettes" / "demo.yaml")
    table = eta_errors(events)
    assert len(table) > 100
    early = table[table["progress_decile"] <= 2]
    assert early["error_s"].mean() > 0  # finished later than the early ETAs said
    assert table["hit"].mean() < 0.5


def test_job_metrics_by_hand() -> None:
    """Per job: MAE, bias, revisions, errors at progress checkpoints, where time went."""
    jobs = job_eta_metrics(late_job().events()).set_index("jobid")
    one, two = jobs.loc[1], jobs.loc[2]
    assert (one["eta_mae_s"], one["eta_bias_s"], one["hit_rate"]) == (90.0, 90.0, 0.0)
    assert (one["revisions"], one["revision_total_s"]) == (1, 120.0)  # +2 min -> +4 min
    assert (one["error_at_25_s"], one["error_at_50_s"], one["error_at_75_s"]) == (60.0, 60.0, 60.0)
    assert one["run_time_s"] == 360.0 and pd.isna(one["queue_wait_s"])  # never seen queued
    assert (two["eta_mae_s"], two["revisions"], two["run_time_s"]) == (60.0, 0, 240.0)


def test_error_by_aggregates_per_job_first() -> None:
    """Job 1's four polls do not outweigh job 2's three: mean of per-job MAEs."""
    row = error_by(eta_errors(late_job().events()), "kind").iloc[0]
    assert (row["kind"], row["n_jobs"], row["n_observations"]) == ("machine", 2, 7)
    assert row["mae_s"] == 75.0  # mean(90, 60); per observation it would be 77.1


def test_rollout_metrics_by_hand() -> None:
    """Times to 50/90/100 % done, durations, and skill against the linear baseline."""
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


# Per-job metrics against a per-job reference, and the vectorised steps against pandas


def demo_events() -> pd.DataFrame:
    """The shipped demo cassette (48 jobs, 5 of them failed) as an events table."""
    from pathlib import Path

    from cfanalytics import events_from_cassette

    return events_from_cassette(Path(__file__).parents[2] / "cassettes" / "demo.yaml")


def reference_job_metrics(events: pd.DataFrame) -> pd.DataFrame:
    """:func:`job_eta_metrics` the obvious way: one job at a time, in plain Python."""
    summary = job_summary(events).set_index("jobid")
    records = []
    for jobid, rows in eta_errors(events).groupby("jobid"):
        one = rows.sort_values("observed_at")
        steps = [later - earlier for earlier, later in itertools.pairwise(one["jobeta"])]
        first_at = {
            level: one.loc[one["jobprogress"] >= level, "error_s"].dropna()
            for level in (25, 50, 75)
        }
        times = summary.loc[jobid]
        records.append(
            {
                "jobid": jobid,
                "n_etas": len(one),
                "eta_mae_s": one["abs_error_s"].mean(),
                "eta_bias_s": one["error_s"].mean(),
                "baseline_mae_s": one["baseline_error_s"].abs().mean(),
                "hit_rate": one["hit"].mean(),
                "revisions": sum(step != pd.Timedelta(0) for step in steps),
                "revision_total_s": sum(abs(step.total_seconds()) for step in steps),
                **{f"error_at_{k}_s": v.iloc[0] if len(v) else pd.NA for k, v in first_at.items()},
                "queue_wait_s": (times["started_at"] - times["queued_at"]).total_seconds(),
                "run_time_s": (times["completed_at"] - times["started_at"]).total_seconds(),
            }
        )
    return pd.DataFrame(records)


def test_job_metrics_match_a_per_job_reference_on_the_demo_cassette() -> None:
    """Vectorised per-job metrics equal a job-by-job computation, revisions included."""
    events = demo_events()
    ours, reference = job_eta_metrics(events), reference_job_metrics(events)
    assert list(ours["jobid"]) == list(reference["jobid"]) and len(ours) == 43
    assert (ours["revisions"] > 0).any() and (ours["revision_total_s"] > 0).any()
    for name in reference.columns:
        expected = reference[name].astype("Float64")
        assert ours[name].isna().tolist() == expected.isna().tolist(), name
        known = expected.notna()
        if name in ("eta_mae_s", "eta_bias_s", "baseline_mae_s", "hit_rate"):
            assert list(ours[name][known]) == pytest.approx(list(expected[known]), rel=1e-12)
        else:
            assert list(ours[name][known]) == list(expected[known]), name


def test_job_metrics_do_not_depend_on_row_order() -> None:
    """Shuffled events or a shuffled error table give the same per-job metrics."""
    events = demo_events()
    expected = job_eta_metrics(events)
    shuffled = events.sample(frac=1.0, random_state=7).reset_index(drop=True)
    errors = eta_errors(events).sample(frac=1.0, random_state=7)
    pd.testing.assert_frame_equal(eta_errors(shuffled), eta_errors(events))
    pd.testing.assert_frame_equal(job_eta_metrics(events, errors=errors), expected)
    pd.testing.assert_frame_equal(job_eta_metrics(shuffled), expected)


def test_baseline_nanoseconds_match_pandas() -> None:
    """The vectorised float-seconds-to-nanoseconds cast equals ``pd.to_timedelta(unit="s")``."""
    from cfanalytics.analysis._timing import _nanoseconds

    rng = np.random.default_rng(0)
    seconds = np.concatenate(
        [
            [0.0, 0.1, -0.1, 1e-10, -1e-10, 0.5, 1.5, -2.5, 123456.789012345, 8.9e9 + 0.3],
            rng.normal(0, 1e4, 10_000),
            rng.uniform(-1, 1, 10_000),
            rng.integers(-(10**9), 10**9, 1_000) / 7,
        ]
    )
    expected = pd.to_timedelta(seconds, unit="s").asi8
    assert (_nanoseconds(seconds) == expected).all()


def test_baseline_matches_the_pandas_formula_on_the_demo_cassette() -> None:
    """``baseline_eta`` and its error equal ``t + pd.to_timedelta((t - s)(100 - p)/p, "s")``."""
    events = demo_events()
    table = eta_errors(events)
    # The demo sends jobstart on every Running row: s is the summary's started_at.
    start = table["jobid"].map(job_summary(events).set_index("jobid")["started_at"])
    elapsed = (table["observed_at"] - start).dt.total_seconds()
    p = table["jobprogress"].astype("float64").where(table["jobprogress"] > 0)
    eta = table["observed_at"] + pd.to_timedelta(elapsed * (100 - p) / p, unit="s")
    error = (table["completed_at"] - eta).dt.total_seconds()
    assert p.isna().any() and p.notna().sum() > 1000
    assert table["baseline_eta"].isna().tolist() == eta.isna().tolist()
    assert (table["baseline_eta"] == eta.astype(table["baseline_eta"].dtype))[p.notna()].all()
    # To the microsecond: float rounding of the last division may differ by ~1e-14 s.
    difference = (table["baseline_error_s"].astype("float64") - error).abs()
    assert difference.isna().equals(error.isna()) and difference.max() < 1e-6


# Rollout metrics: what callers pass in, and time to X % ended


def test_rollout_metrics_reuse_what_the_caller_computed() -> None:
    """Passing the summary, errors and per-job metrics in changes nothing."""
    events = demo_events()
    summary = job_summary(events)
    errors = eta_errors(events, summary=summary)
    per_job = job_eta_metrics(events, errors=errors, summary=summary)
    alone = rollout_metrics(events)
    given = rollout_metrics(events, summary=summary, errors=errors, per_job=per_job)
    assert given.equals(alone)
    assert rollout_metrics(events, summary=summary, errors=errors).equals(alone)
    with pytest.raises(TypeError):
        rollout_metrics(events, summary)  # type: ignore[misc]


def ended_rollout() -> Recording:
    """Four jobs queued at 0; polls every minute. By hand:

    job 1 vanishes between +1 and +2: completed at +1.5 (90 s); job 2 is seen Failed at +3 and
    +4, its ``jobupdated`` says +2.5 (150 s); job 4 is seen Squashed at +4 (240 s); job 3 shows
    Complete at +5 (300 s). Two of four completed: 90 % completed is never reached.
    """
    rec = Recording()
    for jobid in (1, 2, 3, 4):
        rec.queue(0, jobid, 3)
    rec.poll(1, *(running(jobid) for jobid in (1, 2, 3, 4)))
    rec.poll(2, running(2), running(3), running(4))
    rec.poll(3, job(2, FAILED, jobupdated=at(2.5)), running(3), running(4))
    rec.poll(4, job(2, FAILED, jobupdated=at(2.5)), running(3), job(4, SQUASHED))
    rec.poll(5, job(3, COMPLETE, jobupdated=at(5)))
    rec.poll(6)
    return rec


def test_time_to_share_completed_and_ended_by_hand() -> None:
    """Completed only: 300 s to 50 %, never 90 %; ended for good: 150, 300 and 300 s."""
    m = rollout_metrics(ended_rollout().events())
    assert (m["n_jobs"], m["completed"], m["failed"]) == (4, 2, 1)
    assert m["time_to_50_s"] == 300.0  # the 2nd completion of 4 jobs: job 3
    assert pd.isna(m["time_to_90_s"]) and pd.isna(m["time_to_100_s"])
    # Ended: job 1 at 90 s, job 2 failed at 150 s, job 4 squashed at 240 s, job 3 at 300 s.
    assert m["time_to_50_ended_s"] == 150.0
    assert (m["time_to_90_ended_s"], m["time_to_100_ended_s"]) == (300.0, 300.0)


def test_time_to_ended_without_a_failed_at_column() -> None:
    """A summary without ``failed_at`` gives the same times: they are read from the events."""
    events = ended_rollout().events()
    summary = job_summary(events)
    older = summary.drop(columns=[c for c in ["failed_at"] if c in summary])
    assert rollout_metrics(events, summary=older).equals(rollout_metrics(events, summary=summary))


def test_a_job_failed_for_good_at_its_last_failure() -> None:
    """Failed at +1, running again at +2, failed at +3 and +4: it ended at +3, not +1."""
    rec = Recording()
    rec.queue(0, 1, 3)
    rec.poll(1, job(1, FAILED))
    rec.poll(2, running(1))
    rec.poll(3, job(1, FAILED))
    rec.poll(4, job(1, FAILED))
    events = rec.events()
    summary = job_summary(events)
    older = summary.drop(columns=[c for c in ["failed_at"] if c in summary])
    for given in (summary, older):
        m = rollout_metrics(events, summary=given)
        assert m["failed"] == 1 and pd.isna(m["time_to_100_s"])
        assert m["time_to_100_ended_s"] == 180.0


def test_rollout_metrics_of_no_data() -> None:
    """No jobs: counts are zero and every time and score is NA (no error raised)."""
    m = rollout_metrics(empty_events())
    assert (m["n_jobs"], m["completed"], m["failed"]) == (0, 0, 0)
    assert all(pd.isna(m[k]) for k in ("time_to_50_s", "time_to_90_ended_s", "skill"))


# Found in review: like-for-like skill, two ASIDs, a job queued again after failing


def test_skill_compares_the_same_polls() -> None:
    """At 0 % the baseline has no rule, so the ETA's error there is left out of the skill."""
    rec = Recording()
    # Started at 0; at 0 % the ETA is 10 min off; later both ETAs are exact.
    rec.poll(0, running(1, jobprogress=0, jobstart=at(0), jobeta=at(-6)))
    rec.poll(1, running(1, jobprogress=25, jobstart=at(0), jobeta=at(4)))
    rec.poll(2, running(1, jobprogress=50, jobstart=at(0), jobeta=at(4)))
    rec.poll(3, job(1, COMPLETE, jobupdated=at(4), jobprogress=100))
    events = rec.events()
    table = eta_errors(events)
    assert table["baseline_error_s"].isna().tolist() == [True, False, False]
    metrics = rollout_metrics(events)
    assert metrics["eta_mae_s"] == pytest.approx(600 / 3)  # every ETA counts in the MAE
    assert metrics["baseline_mae_s"] == 0 and pd.isna(metrics["skill"])  # 0 / 0: no skill


def test_no_baseline_at_or_past_100_percent() -> None:
    """Progress 100 (or a bogus 120) gives no linear rule: the baseline is NA there."""
    rec = Recording()
    rec.poll(0, running(1, jobprogress=100, jobstart=at(-1), jobeta=at(1)))
    rec.poll(1, running(1, jobprogress=120, jobstart=at(-1), jobeta=at(1)))
    rec.poll(2, job(1, COMPLETE, jobupdated=at(2), jobprogress=100))
    table = eta_errors(rec.events())
    assert table["baseline_eta"].isna().all() and table["error_s"].notna().all()


def test_poll_interval_is_per_asid() -> None:
    """One run polling two ASIDs in turn polls each once a minute, not every 30 s."""
    rec = Recording()
    for minute in range(4):
        rec.poll(minute, running(1, jobprogress=10 * minute, jobeta=at(9)), asid=1)
        rec.poll(minute + 0.5, running(2, jobprogress=10 * minute, jobeta=at(9)), asid=2)
    assert poll_interval_s(rec.events()) == 60.0


def test_a_failed_attempt_is_not_scored_against_the_next_attempts_completion() -> None:
    """ETAs given before the job's last failure predicted a completion that never came."""
    rec = Recording()
    rec.poll(0, running(1, jobprogress=50, jobeta=at(1)))
    rec.poll(1, job(1, FAILED, joberror="disk"))
    rec.poll(2, running(1, jobprogress=30, jobeta=at(4)))
    rec.poll(3, running(1, jobprogress=60, jobeta=at(4)))
    rec.poll(4, job(1, COMPLETE, jobupdated=at(4), jobprogress=100))
    table = eta_errors(rec.events())
    assert list(table["observed_at"]) == [at(2), at(3)]
    assert list(table["error_s"]) == [0.0, 0.0]


def test_error_by_several_keys_is_pandas_groupby_per_job_first() -> None:
    """error_by(["location", "kind"]): one row per pair present, the mean over jobs of each
    job's mean absolute error, as a plain groupby gives it; the job's machine and mirror
    ride along in eta_errors, so errors group by them too."""
    from .recorded import cassette_events

    errors = eta_errors(cassette_events("demo"))
    assert {"machine", "mirror"} <= set(errors.columns)
    got = error_by(errors, ["location", "kind"])
    per_job = errors.groupby(["location", "kind", "jobid"], observed=True)["abs_error_s"].mean()
    expected = per_job.groupby(level=["location", "kind"], observed=True).mean()
    assert list(got.columns[:3]) == ["rollout", "location", "kind"]
    assert len(got) == len(expected)
    for row in got.itertuples():
        assert row.mae_s == pytest.approx(expected[(row.location, row.kind)])
    by_machine = error_by(errors, "machine")
    assert by_machine["n_jobs"].eq(1).all()  # one job per machine in a rollout
    with pytest.raises(ValueError, match="cannot group ETA errors by 'nope': give columns"):
        error_by(errors, "nope")
