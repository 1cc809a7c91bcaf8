"""The per-job summary: outcomes, completion windows, times, errors and ETA accuracy."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from cfanalytics.analysis import SUMMARY_SCHEMA, job_summary
from cfanalytics.events import STATES, conform, empty_events
from cfanalytics.exceptions import SchemaError

T0 = pd.Timestamp("2024-05-01 12:00", tz="UTC")
RUNNING, COMPLETE, FAILED = 4, 5, 6


def at(minutes: float) -> pd.Timestamp:
    """The time ``minutes`` after the start of every hand-built recording."""
    return T0 + pd.Timedelta(minutes=minutes)


def job(jobid: int, stateid: int | None, **fields: Any) -> dict[str, Any]:
    """One job object of a status list: a machine job in state ``stateid`` (1-7)."""
    name = None if stateid is None else STATES[stateid - 1]
    return {"jobid": jobid, "jobstateid": stateid, "state": name, "kind": "machine"} | fields


class Recording:
    """Builds an events table response by response, numbering them like the recorder."""

    def __init__(self, asid: int = 1) -> None:
        self.asid = asid
        self.rows: list[dict[str, Any]] = []
        self.seq = 0

    def _add(self, minute: float, endpoint: str, rows: list[dict[str, Any]], **base: Any) -> None:
        base = {"run_id": "r", "seq": self.seq, "observed_at": at(minute), "asid": self.asid} | base
        self.rows += [{"endpoint": endpoint, **base, **row} for row in rows]
        self.seq += 1

    def poll(self, minute: float, *jobs: dict[str, Any], asid: int | None = None) -> None:
        """A successful status poll listing ``jobs`` (an empty list gives one job-less row)."""
        self._add(minute, "status", list(jobs) or [{}], http_status=200, asid=asid or self.asid)

    def outage(self, minute: float, problem: str = "http_status", status: int = 500) -> None:
        """A status poll that failed (HTTP error, non-JSON body...): no job rows."""
        self._add(minute, "status", [{"problem": problem}], http_status=status)

    def queue(self, minute: float, jobid: int, stateid: int, **fields: Any) -> None:
        """A successful queue answer for ``jobid`` (the id comes from the request path)."""
        self._add(minute, "queue", [job(jobid, stateid, **fields)], http_status=200)

    def queue_error(self, minute: float, jobid: int, message: str) -> None:
        """A queue request answered with the error envelope (HTTP 200, success false)."""
        row = {"jobid": jobid, "kind": "machine", "problem": "envelope", "success": False}
        self._add(minute, "queue", [row | {"error_code": 1, "error_message": message}])

    def events(self) -> pd.DataFrame:
        """The events table, typed by the events schema."""
        return conform(pd.DataFrame(self.rows))


def summary_of(recording: Recording, jobid: int = 1) -> pd.Series:
    """The summary row of one job."""
    summary = job_summary(recording.events())
    return summary.set_index("jobid").loc[jobid]


def running(jobid: int = 1, **fields: Any) -> dict[str, Any]:
    """A job object in state Running that started one minute before the recording."""
    return job(jobid, RUNNING, jobstart=at(-1), jobprogress=50) | fields


# Outcomes and completion windows


def test_complete_state_gives_an_exact_completion_from_jobupdated() -> None:
    """A Complete snapshot is a completion at its ``jobupdated``, all three times equal."""
    rec = Recording()
    rec.poll(0, running())
    rec.poll(1, job(1, COMPLETE, jobupdated=at(1.5)))
    rec.poll(3)
    row = summary_of(rec)
    assert row["outcome"] == "completed"
    assert row["completed_at"] == row["completed_after"] == row["completed_before"] == at(1.5)


def test_complete_state_without_jobupdated_uses_the_observation_time() -> None:
    """Without ``jobupdated`` the Complete snapshot's ``observed_at`` is the completion time."""
    rec = Recording()
    rec.poll(0, running())
    rec.poll(2, job(1, COMPLETE))
    assert summary_of(rec)["completed_at"] == at(2)


def test_a_job_that_vanishes_after_running_is_completed_within_a_window() -> None:
    """Completion lies between the last poll listing the job and the next one; midpoint."""
    rec = Recording()
    rec.poll(0, running())
    rec.poll(1, running())
    rec.poll(3)  # an empty list: the job is gone
    row = summary_of(rec)
    assert row["outcome"] == "completed"
    assert (row["completed_after"], row["completed_before"]) == (at(1), at(3))
    assert row["completed_at"] == at(2)


def test_failed_polls_in_between_are_not_absence() -> None:
    """A 500 and a non-JSON answer between two listings do not make the job vanish."""
    rec = Recording()
    rec.poll(0, running())
    rec.outage(1, "http_status", 500)
    rec.outage(2, "format", 200)
    rec.poll(3, running())
    rec.poll(5, job(2, 2))
    row = summary_of(rec)
    assert row["outcome"] == "completed"
    assert (row["completed_after"], row["completed_before"]) == (at(3), at(5))
    assert row["n_observations"] == 2


def test_an_outage_at_the_end_leaves_the_job_unfinished() -> None:
    """If only failed polls follow the last listing, the job is right-censored, not done."""
    rec = Recording()
    rec.poll(0, running())
    rec.outage(1)
    rec.outage(2, "transport", 0)
    row = summary_of(rec)
    assert row["outcome"] == "unfinished"
    assert pd.isna(row["completed_at"]) and pd.isna(row["completed_before"])


def test_a_response_with_any_problem_row_is_no_poll() -> None:
    """A status response is a poll only if none of its rows has a problem."""
    rec = Recording()
    rec.poll(0, running())
    rec.poll(1, job(2, 2))
    rec.rows.append(rec.rows[-1] | {"jobid": None, "problem": "format"})  # same response
    assert summary_of(rec)["outcome"] == "unfinished"


def test_polls_of_another_asid_are_not_absence() -> None:
    """A job missing from another ASID's status list has not vanished."""
    rec = Recording(asid=1)
    rec.poll(0, running())
    rec.poll(1, asid=2)
    assert summary_of(rec)["outcome"] == "unfinished"


def test_a_job_last_seen_failed_is_failed_not_completed() -> None:
    """Failed as last state (still listed at the end) is a failure with no completion time."""
    rec = Recording()
    rec.poll(0, running())
    rec.poll(1, job(1, FAILED, joberror="not enough disk space"))
    rec.poll(2, job(1, FAILED, joberror=""))
    row = summary_of(rec)
    assert row["outcome"] == "failed"
    assert pd.isna(row["completed_at"]) and pd.isna(row["completed_after"])
    assert row["error"] == "not enough disk space"
    assert pd.isna(row["eta_mae_s"])


def test_failed_then_requeued_then_completed_is_completed() -> None:
    """The last state wins: a retry that reaches Complete is a completion."""
    rec = Recording()
    rec.poll(0, running())
    rec.poll(1, job(1, FAILED, jobfailed=1))
    rec.queue(1.5, 1, 3)
    rec.poll(2, job(1, 3))
    rec.poll(3, running())
    rec.poll(4, job(1, COMPLETE, jobupdated=at(3.5)))
    row = summary_of(rec)
    assert row["outcome"] == "completed"
    assert row["completed_at"] == at(3.5)
    assert row["queued_at"] == at(1.5)


def test_failed_then_requeued_then_vanished_while_running_is_completed() -> None:
    """A retry seen Running that then leaves the list is an interval-censored completion."""
    rec = Recording()
    rec.poll(0, running())
    rec.poll(1, job(1, FAILED))
    rec.poll(2, job(1, 3))
    rec.poll(3, running())
    rec.poll(5)
    row = summary_of(rec)
    assert row["outcome"] == "completed"
    assert (row["completed_after"], row["completed_before"]) == (at(3), at(5))


def test_a_job_that_vanishes_right_after_failing_stays_failed() -> None:
    """The last state seen wins: an API that drops failed jobs does not turn them complete."""
    rec = Recording()
    rec.poll(0, running())
    rec.poll(1, job(1, FAILED))
    rec.poll(2)
    row = summary_of(rec)
    assert row["outcome"] == "failed"
    assert pd.isna(row["completed_at"]) and pd.isna(row["completed_after"])


def test_failed_at_is_the_first_failed_snapshot_jobupdated_else_its_time() -> None:
    """``failed_at``: the first Failed snapshot's ``jobupdated``, else when it was seen."""
    rec = Recording()
    rec.poll(0, running(1), running(2), running(3))
    rec.poll(1, job(1, FAILED, jobupdated=at(0.75)), job(2, FAILED), running(3))
    rec.poll(2, job(1, FAILED, jobupdated=at(1.5)), job(2, FAILED, jobupdated=at(1.75)))
    summary = job_summary(rec.events()).set_index("jobid")
    assert summary.loc[1, "failed_at"] == at(0.75)  # not the later snapshot's at(1.5)
    assert summary.loc[2, "failed_at"] == at(1)  # no jobupdated on the first Failed snapshot
    assert summary.loc[3, "outcome"] == "completed" and pd.isna(summary.loc[3, "failed_at"])
    assert summary["failed_at"].dtype == SUMMARY_SCHEMA["failed_at"]


def test_failed_at_of_a_retried_job_is_its_final_failure() -> None:
    """Failed, requeued, Running, Failed again: ``failed_at`` is the second failure."""
    rec = Recording()
    rec.poll(0, running())
    rec.poll(1, job(1, FAILED, jobupdated=at(0.5)))
    rec.poll(2, job(1, 3))
    rec.poll(3, running())
    rec.poll(4, job(1, FAILED, jobupdated=at(3.5)))
    rec.poll(5, job(1, FAILED, jobupdated=at(3.5)))
    row = summary_of(rec)
    assert row["outcome"] == "failed"
    assert row["failed_at"] == at(3.5)


def test_failed_at_is_na_unless_the_outcome_is_failed() -> None:
    """A failure followed by a completion is ``completed``: no ``failed_at``."""
    rec = Recording()
    rec.poll(0, running())
    rec.poll(1, job(1, FAILED, jobupdated=at(0.5)))
    rec.poll(2, job(1, 3))
    rec.poll(3, job(1, COMPLETE, jobupdated=at(2.5)))
    row = summary_of(rec)
    assert row["outcome"] == "completed" and pd.isna(row["failed_at"])


def test_squashed_state_gives_squashed() -> None:
    """A Squashed snapshot makes the job squashed, with no completion window."""
    rec = Recording()
    rec.poll(0, job(1, 2))
    rec.poll(1, job(1, 7))
    rec.poll(2)
    row = summary_of(rec)
    assert row["outcome"] == "squashed"
    assert pd.isna(row["completed_at"])


def test_a_job_listed_in_the_last_poll_is_unfinished() -> None:
    """A job still listed when the recording ends is unfinished (right-censored)."""
    rec = Recording()
    rec.poll(0, job(1, 3))
    rec.poll(1, running())
    row = summary_of(rec)
    assert row["outcome"] == "unfinished"
    assert pd.isna(row["completed_at"])


def test_a_job_that_vanishes_while_pending_is_unknown() -> None:
    """Leaving the list before ever running says nothing about how the job ended."""
    rec = Recording()
    rec.poll(0, job(1, 2))
    rec.poll(1, job(1, 2))
    rec.poll(2, job(2, 2))
    row = summary_of(rec)
    assert row["outcome"] == "unknown"
    assert pd.isna(row["completed_after"]) and pd.isna(row["completed_before"])


def test_progress_or_jobstart_counts_as_running() -> None:
    """A job seen with progress (state not Running) that vanishes is a completion."""
    rec = Recording()
    rec.poll(0, job(1, 3, jobprogress=10))
    rec.poll(2)
    assert summary_of(rec)["outcome"] == "completed"


def test_state_is_read_from_its_name_when_the_id_is_missing() -> None:
    """A snapshot with a state name but no ``jobstateid`` still counts."""
    rec = Recording()
    rec.poll(0, running())
    rec.poll(1, job(1, None, state="Complete", jobupdated=at(0.5)))
    assert summary_of(rec)["completed_at"] == at(0.5)


# Errors


def test_queue_error_envelope_is_the_error_text() -> None:
    """A job only seen in an error answer to a queue request gets a row with its message."""
    rec = Recording()
    rec.poll(0)
    rec.queue_error(1, 9, "image locked by diffid: 218595")
    row = summary_of(rec, 9)
    assert row["error"] == "image locked by diffid: 218595"
    assert row["outcome"] == "unknown"
    assert row["kind"] == "machine"
    assert row["n_observations"] == 0
    assert pd.isna(row["first_seen"]) and pd.isna(row["queued_at"])


def test_joberror_wins_over_a_queue_error_message() -> None:
    """The job's own last non-empty ``joberror`` is preferred to a queue envelope's text."""
    rec = Recording()
    rec.queue_error(0, 1, "Request in progress")
    rec.poll(1, job(1, FAILED, joberror="failing drive"))
    rec.poll(2, job(1, FAILED, joberror="   "))
    assert summary_of(rec)["error"] == "failing drive"


# Times and attributes


def test_attributes_are_the_last_non_null_values() -> None:
    """Location, machine, mirror, image version and kind: the last value that was given."""
    rec = Recording()
    rec.poll(0, job(1, 2, location="ams", machine="m1", target_imageversionid=41))
    rec.poll(1, job(1, 2, location="lon", machine=None, kind=None, mirroring=False))
    row = summary_of(rec)
    assert (row["location"], row["machine"], row["kind"]) == ("lon", "m1", "machine")
    assert row["target_imageversionid"] == 41 and pd.isna(row["mirror"])


def test_kind_falls_back_to_mirroring() -> None:
    """Without a ``kind`` the ``mirroring`` flag tells mirror jobs from machine jobs."""
    rec = Recording()
    rec.poll(0, job(1, 2, kind=None, mirroring=True))
    assert summary_of(rec)["kind"] == "mirror"


def test_seen_times_and_queued_at_from_the_queue_answer() -> None:
    """Queue answers count as sightings; ``queued_at`` is the first successful one."""
    rec = Recording()
    rec.queue_error(0, 1, "Request in progress")
    rec.queue(1, 1, 3)
    rec.poll(2, job(1, 3))
    rec.poll(3, job(1, 3))
    row = summary_of(rec)
    assert (row["first_seen"], row["last_seen"], row["queued_at"]) == (at(1), at(3), at(1))
    assert row["n_observations"] == 2


def test_queued_at_and_started_at_fall_back_to_observed_states() -> None:
    """No queue answer and no ``jobstart``: the first Queued and Running observations."""
    rec = Recording()
    rec.poll(0, job(1, 2))
    rec.poll(1, job(1, 3))
    rec.poll(2, job(1, RUNNING))
    rec.poll(3, job(1, RUNNING))
    row = summary_of(rec)
    assert (row["queued_at"], row["started_at"]) == (at(1), at(2))


def test_started_at_is_the_api_jobstart() -> None:
    """``jobstart`` (the API's own start time) wins over the first Running observation."""
    rec = Recording()
    rec.poll(2, job(1, RUNNING, jobstart=at(1.25)))
    assert summary_of(rec)["started_at"] == at(1.25)


# ETA accuracy


def test_eta_errors_by_hand_with_the_sign_convention() -> None:
    """e = completed_at - jobeta: +120 s (finished late), -180 s (early); MAE 150, bias -30."""
    rec = Recording()
    rec.poll(0, job(1, 3, jobeta=at(50)))  # not Running: ignored
    rec.poll(1, running(jobeta=at(8)))
    rec.poll(2, running(jobeta=None))
    rec.poll(3, running(jobeta=at(13)))
    rec.poll(11, job(1, COMPLETE, jobupdated=at(10)))
    row = summary_of(rec)
    assert (row["first_eta"], row["last_eta"]) == (at(8), at(13))
    assert row["eta_mae_s"] == pytest.approx(150.0)
    assert row["eta_bias_s"] == pytest.approx(-30.0)


def test_eta_errors_use_the_midpoint_when_interval_censored() -> None:
    """Vanished between minute 1 and 3: completed_at is minute 2, so an ETA of 2.5 is -30 s."""
    rec = Recording()
    rec.poll(1, running(jobeta=at(2.5)))
    rec.poll(3)
    row = summary_of(rec)
    assert row["eta_bias_s"] == pytest.approx(-30.0)
    assert row["eta_mae_s"] == pytest.approx(30.0)


def test_eta_errors_are_na_without_a_completion() -> None:
    """An unfinished job keeps its ETAs but has no ETA error."""
    rec = Recording()
    rec.poll(0, running(jobeta=at(5)))
    row = summary_of(rec)
    assert row["first_eta"] == at(5)
    assert pd.isna(row["eta_mae_s"]) and pd.isna(row["eta_bias_s"])


# The frame


def test_one_row_per_job_sorted_with_the_declared_schema() -> None:
    """Columns, order and dtypes are SUMMARY_SCHEMA; rows sorted by jobid; a RangeIndex."""
    rec = Recording()
    rec.poll(0, job(30, 2), running(7), job(12, 3))
    rec.queue_error(1, 5, "No rows in result set")
    rec.poll(2, job(30, 2))
    summary = job_summary(rec.events())
    assert list(summary.columns) == list(SUMMARY_SCHEMA)
    assert dict(summary.dtypes) == dict(SUMMARY_SCHEMA)
    assert summary["jobid"].tolist() == [5, 7, 12, 30]
    assert isinstance(summary.index, pd.RangeIndex) and summary.index.start == 0
    assert summary["outcome"].tolist() == ["unknown", "completed", "unknown", "unfinished"]


def test_empty_events_give_an_empty_typed_summary() -> None:
    """No events: no rows, every column with its declared dtype."""
    summary = job_summary(empty_events())
    assert summary.empty
    assert dict(summary.dtypes) == dict(SUMMARY_SCHEMA)


def test_polls_without_jobs_give_an_empty_summary() -> None:
    """Only empty status lists and outages: no job, no row."""
    rec = Recording()
    rec.poll(0)
    rec.outage(1)
    summary = job_summary(rec.events())
    assert summary.empty and list(summary.columns) == list(SUMMARY_SCHEMA)


def test_input_that_is_not_an_events_table_raises_schema_error() -> None:
    """A plain frame, or an events table with a wrong dtype, is refused."""
    with pytest.raises(SchemaError):
        job_summary(pd.DataFrame({"jobid": [1], "observed_at": [T0]}))
    events = Recording().events().astype({"jobid": "float64"})
    with pytest.raises(SchemaError):
        job_summary(events)


def mixed_recording() -> Recording:
    """Several jobs and every kind of row: outages, a retry, a queue error, two ASIDs."""
    rec = Recording()
    rec.queue(0, 1, 3, location="lon")
    rec.poll(0.5, job(1, 3, location="lon"), job(2, 2, machine="m2"), running(3, jobeta=at(4)))
    rec.outage(1)
    rec.poll(2, running(1, jobeta=at(3), location=None), job(2, FAILED), running(3, jobeta=at(5)))
    rec.queue_error(2.5, 4, "image locked")
    rec.poll(3, job(2, 3, jobupdated=at(2.75)), job(3, COMPLETE, jobupdated=at(2.9)))
    rec.poll(3.5, asid=2)
    rec.poll(4, running(2, jobeta=at(6)), job(5, 7))
    rec.poll(5, job(2, FAILED, joberror="no disk"), job(5, 7))
    rec.poll(6)
    return rec


def test_the_order_of_the_rows_does_not_matter() -> None:
    """Shuffled rows and another index give the same summary, exactly, as the recording."""
    events = mixed_recording().events()
    summary = job_summary(events)
    assert summary["outcome"].tolist() == [
        "completed",
        "failed",
        "completed",
        "unknown",
        "squashed",
    ]
    assert summary["location"].tolist()[0] == "lon"  # the last value given, not the last row's
    for seed in range(5):
        shuffled = events.sample(frac=1, random_state=seed).set_axis(range(0, 3 * len(events), 3))
        pd.testing.assert_frame_equal(job_summary(shuffled), summary, check_exact=True)


def test_rows_naming_only_a_job_give_a_row_with_nothing_known() -> None:
    """Status rows with a jobid and nothing else: the job is unknown, counted, all else NA."""
    events = conform(pd.DataFrame({"endpoint": ["status"] * 3, "jobid": [8, 9, 8]}))
    summary = job_summary(events)
    assert summary["jobid"].tolist() == [8, 9]
    assert summary["n_observations"].tolist() == [2, 1]
    assert summary["outcome"].tolist() == ["unknown", "unknown"]
    assert summary["rollout"].tolist() == ["?/run:?"] * 2  # no version, ASID or run: its own
    others = summary.drop(columns=["rollout", "jobid", "n_observations", "outcome"])
    assert others.isna().all().all()
    assert dict(summary.dtypes) == dict(SUMMARY_SCHEMA)


def test_an_events_table_of_jobids_alone_gives_an_empty_summary() -> None:
    """Every column NA but ``jobid``: no row is a status or queue answer, so no job."""
    summary = job_summary(conform(pd.DataFrame({"jobid": [8, 9, 8]})))
    assert summary.empty
    assert dict(summary.dtypes) == dict(SUMMARY_SCHEMA)
