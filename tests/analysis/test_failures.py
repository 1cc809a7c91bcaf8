"""Postmortem tables by hand: failures, their classes, re-queues, and the API's own errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cfanalytics import events_from_cassette
from cfanalytics.analysis import (
    API_ERROR_SCHEMA,
    ERROR_CLASSES,
    FAILURE_SCHEMA,
    api_errors,
    classify_error,
    failure_rates,
    failures,
    first_failure,
    other_endings,
    polling_gaps,
)
from cfanalytics.events import empty_events

from .test_summary import COMPLETE, FAILED, Recording, at, job, running

CASSETTES = Path(__file__).parents[2] / "cassettes"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not enough disk space: gs-1 needs 900 MB, 10 MB free", "disk_space"),
        ("write failed: No space left on device", "disk_space"),
        ("image does not exist: /games/x (imageversionid 7)", "image_missing"),
        ("wrong permissions: cannot write /games/x on gs-1", "permissions"),
        ("network disruption: connection to mirror-1 reset during transfer", "network"),
        ("machine unreachable: gs-1 did not respond", "unreachable"),
        ("image locked by diffid: 218595", "diff_lock"),
        ("failing drive: I/O error on gs-1 writing /games/x", "failing_drive"),
        ("NOT ENOUGH DISK SPACE", "disk_space"),
        ("image locked by a diff", "diff_lock"),
        ("Image 123456 does not exist", "image_missing"),
        ("image version does not exist", "image_missing"),
        ("Not enough free space on device", "disk_space"),
        ("no space on disk", "disk_space"),
        ("drive failure detected", "failing_drive"),
        ("Input/output error", "failing_drive"),
        ("disk I/O timed out", "failing_drive"),
        ("timed out waiting for disk", "failing_drive"),
        ("could not connect to mirror", "network"),
        ("download interrupted", "network"),
        ("host is down", "unreachable"),
        ("transfer complete, permission check failed", "permissions"),
        ("something nobody has seen before", "other"),
        ("", "other"),
        (None, "other"),
    ],
)
def test_classify_error(text: str | None, expected: str) -> None:
    """Each documented cause, in the simulator's words and others', and unknown text."""
    assert classify_error(text) == expected
    assert expected in ERROR_CLASSES


def requeued_then_completed() -> Recording:
    """Job 1 fails at 2 (progress 40), is queued again, runs and completes at 5.

    Job 2 fails at 3 for good, at 70 % per its last Running row (the Failed row has none).
    """
    rec = Recording()
    rec.poll(0, running(1, jobstart=at(0), jobprogress=10), running(2, jobstart=at(0)))
    rec.poll(1, running(1, jobprogress=30), running(2, jobprogress=70))
    rec.poll(
        2,
        job(1, FAILED, jobprogress=40, jobfailed=1, joberror="network disruption"),
        running(2, jobprogress=70),
    )
    rec.poll(3, job(1, 3, jobfailed=1), job(2, FAILED, jobupdated=at(2.5), joberror="?!"))
    rec.poll(4, running(1, jobprogress=50, jobfailed=1), job(2, FAILED, jobfailed=1))
    rec.poll(5, job(1, COMPLETE, jobupdated=at(5), jobfailed=1), job(2, FAILED, jobfailed=1))
    return rec


def test_failures_by_hand() -> None:
    """When, at what progress, how often, re-queued or not, and how it ended."""
    got = failures(requeued_then_completed().events()).set_index("jobid")
    assert list(got.index) == [1, 2]  # in the order they failed: 2.0 then 2.5
    assert list(got["failed_at"]) == [at(2), at(2.5)]  # job 2: its jobupdated
    assert list(got["progress_at_failure"]) == [40, 70]
    assert list(got["time_to_failure_s"]) == [120.0, 150.0]
    assert list(got["times_failed"]) == [1, 1]
    assert list(got["requeued"]) == [True, False]
    assert list(got["outcome"]) == ["completed", "failed"]
    assert list(got["error_class"]) == ["network", "other"]
    assert got.loc[2, "error"] == "?!"  # unknown text kept as it was


def test_failing_twice_counts_twice() -> None:
    """Two separate Failed runs count two failures even if jobfailed is missing."""
    rec = Recording()
    rec.poll(0, job(1, FAILED, joberror="disk space"))
    rec.poll(1, job(1, 3))
    rec.poll(2, job(1, FAILED, joberror="disk space"))
    assert failures(rec.events())["times_failed"].tolist() == [2]


def test_api_errors_one_row_per_response() -> None:
    """Failed polls and error envelopes, with the job the queue request named."""
    rec = Recording()
    rec.poll(0, running(1, jobprogress=10))
    rec.outage(1, status=503)
    rec.queue_error(2, 7, "image locked by diffid: 218595")
    rec.outage(3, problem="format", status=200)
    got = api_errors(rec.events())
    assert list(got["observed_at"]) == [at(1), at(2), at(3)]
    assert list(got["problem"]) == ["http_status", "envelope", "format"]
    assert got["jobid"].tolist()[1] == 7 and got["jobid"].isna().tolist() == [True, False, True]
    assert got["error_message"].tolist()[1] == "image locked by diffid: 218595"
    assert dict(got.dtypes) == dict(API_ERROR_SCHEMA)


def test_empty_recordings_give_empty_typed_tables() -> None:
    """No data, no rows, but the declared columns and dtypes."""
    for frame, schema in (
        (failures(empty_events()), FAILURE_SCHEMA),
        (api_errors(empty_events()), API_ERROR_SCHEMA),
    ):
        assert frame.empty and dict(frame.dtypes) == dict(schema)


def test_the_troubled_cassette() -> None:
    """Failing drives in Frankfurt, a full disk, the diff lock and the 5xx/429 all show up."""
    events = events_from_cassette(CASSETTES / "troubled.yaml")
    table = failures(events)
    assert dict(table.dtypes) == dict(FAILURE_SCHEMA)
    assert set(table["error_class"]) == {"failing_drive", "disk_space"}
    assert (table["location"] == "Frankfurt").sum() >= 3
    errors = api_errors(events)
    locked = errors[errors["error_message"].str.contains("diffid", na=False)]
    assert len(locked) > 0 and locked["jobid"].notna().all()
    assert {429, 500, 502, 503} <= set(errors["http_status"].dropna())
    for _, mine in errors.groupby("rollout"):  # an outage is shared by both rollouts
        assert mine["seq"].is_unique
        assert (mine["observed_at"].diff().dropna() >= pd.Timedelta(0)).all()
    assert errors["rollout"].nunique() == 2


def test_failure_rates_by_hand() -> None:
    """Failed over ended per group, worst first; an unended group has no rate."""
    summary = pd.DataFrame(
        {
            "location": ["A", "A", "A", "B", "B", "C"],
            "outcome": ["failed", "completed", "unfinished", "completed", "completed", "unknown"],
        }
    )
    got = failure_rates(summary, "location")
    assert got["location"].tolist() == ["A", "B", "C"]
    assert got["n_jobs"].tolist() == [3, 2, 1] and got["n_failed"].tolist() == [1, 0, 0]
    assert got["failure_rate"].tolist()[:2] == [0.5, 0.0] and pd.isna(got["failure_rate"][2])


def test_polling_gaps_by_hand() -> None:
    """Polls each minute, then nothing good for 4 minutes (two 503s in between)."""
    rec = Recording()
    for minute in (0, 1, 2):
        rec.poll(minute, running(1, jobprogress=minute))
    rec.outage(3, status=503)
    rec.outage(4, status=503)
    rec.poll(6, running(1, jobprogress=9))
    rec.poll(7, running(1, jobprogress=10))
    got = polling_gaps(rec.events())
    assert got[["start", "end"]].values.tolist() == [[at(2), at(6)]]
    assert got["gap_s"].tolist() == [240.0] and got["failed_polls"].tolist() == [2]


def test_first_failure_and_what_followed() -> None:
    """The first failure by time, and the failures and API errors within ten minutes."""
    events = requeued_then_completed().events()
    events = pd.concat([events, Recording().events()])  # nothing else: no API errors
    text = first_failure(failures(events), api_errors(events))
    assert "job 1 (machine" in text and "network" in text
    assert "followed 1 more failure(s) and 0 API error(s)" in text
    assert first_failure(failures(empty_events()), api_errors(empty_events())) == (
        "No install failed."
    )


def test_squashed_and_unknown_jobs_are_listed() -> None:
    """A job gone from the list while pending is listed with outcome unknown."""
    rec = Recording()
    rec.poll(0, job(1, 2), job(2, 2))
    rec.poll(1, job(1, 2))
    from cfanalytics import job_summary

    listed = other_endings(job_summary(rec.events()))
    assert listed["jobid"].tolist() == [2] and listed["outcome"].tolist() == ["unknown"]


def test_an_api_outage_mid_rollout_makes_no_job_vanish() -> None:
    """The troubled cassette's 5xx/429 between polls leave every outcome known."""
    from cfanalytics import job_summary

    events = events_from_cassette(CASSETTES / "troubled.yaml")
    assert len(api_errors(events).query("endpoint == 'status'")) > 10
    assert other_endings(job_summary(events)).empty


def test_requests_without_an_answer_are_api_errors() -> None:
    """A timeout or dropped connection (no response) is listed, with no HTTP status."""
    rec = Recording()
    rec.poll(0, running(1, jobprogress=10))
    rec._add(1, "status", [{"problem": "transport"}])
    got = api_errors(rec.events())
    assert got["problem"].tolist() == ["transport"] and got["http_status"].isna().all()


def test_a_job_failing_twice_is_described_by_its_first_failure() -> None:
    """Error text, time and progress all come from the first failure; both are counted."""
    rec = Recording()
    rec.poll(0, running(1, jobstart=at(0), jobprogress=10))
    rec.poll(1, job(1, FAILED, jobprogress=20, joberror="not enough disk space"))
    rec.poll(2, running(1, jobprogress=5))
    rec.poll(3, job(1, FAILED, jobprogress=50, joberror="network disruption"))
    row = failures(rec.events()).iloc[0]
    assert (row["error_class"], row["failed_at"], row["progress_at_failure"]) == (
        "disk_space",
        at(1),
        20,
    )
    assert row["times_failed"] == 2 and row["requeued"]


def test_api_errors_grouped_by_kind_and_stretch_of_time() -> None:
    """Server errors of any 5xx are one kind; errors of a kind under 5 min apart are one
    stretch; an envelope is its message, with no HTTP status to count."""
    from cfanalytics.analysis import STRETCH_SCHEMA, api_error_stretches

    rec = Recording()
    rec.poll(0, running(1, jobprogress=10))
    rec.outage(1, status=502)
    rec.outage(2, status=500)
    rec.outage(3, status=502)
    rec.outage(12, status=503)  # 9 min later: a stretch of its own
    rec.outage(4, status=429)
    rec.queue_error(5, 7, "image locked by diffid: 218595")
    got = api_error_stretches(api_errors(rec.events()))
    assert dict(got.dtypes) == dict(STRETCH_SCHEMA)
    rows = [(r.kind, r.errors, r.statuses, r.span_s) for r in got.itertuples()]
    assert rows == [
        ("5xx", 3, "502 \u00d72, 500 \u00d71", 120),
        ("429", 1, "429 \u00d71", 0),
        ("image locked by diffid: 218595", 1, "", 0),
        ("5xx", 1, "503 \u00d71", 0),
    ]
    assert got["jobs"].tolist() == [0, 0, 1, 0]
    assert api_error_stretches(api_errors(empty_events())).empty
