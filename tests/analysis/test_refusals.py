"""Queue refusals: the jobs the API would not queue, by reason, with what to do."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cfanalytics.analysis import (
    REASONS_SCHEMA,
    REFUSAL_SCHEMA,
    never_queued,
    queue_refusals,
    refusal_reasons,
)
from cfanalytics.events import empty_events

from .recorded import cassette_events
from .test_summary import Recording, job, running

CREATED = 1


def refused(rec: Recording, minute: float, jobid: int, **row: Any) -> None:
    """A queue request for ``jobid`` that went wrong as ``row`` says (status, problem...)."""
    rec._add(minute, "queue", [{"jobid": jobid, "kind": "machine", **row}])


def test_each_reason_from_the_last_answer_and_never_a_job_that_was_queued() -> None:
    rec = Recording()
    rec.poll(0, *(job(j, CREATED) for j in range(1, 9)))
    refused(rec, 1, 1, problem="http_status", http_status=502, error_message="Bad Gateway")
    rec.queue_error(2, 1, "image locked by diffid: 218599")  # resent: the last word counts
    refused(rec, 1, 2, problem="http_status", http_status=503, error_message="Unavailable")
    refused(rec, 1, 3, problem="http_status", http_status=429, error_message="Slow down")
    rec.queue_error(1, 4, "Forbidden")
    refused(rec, 1, 5, problem="transport")
    refused(rec, 1, 6, problem="format", http_status=200)
    rec.queue_error(1, 7, "No rows in result set")
    refused(rec, 1, 8, problem="http_status", http_status=502, error_message="Bad Gateway")
    rec.poll(3, *(job(j, CREATED) for j in range(1, 8)), running(8))  # 8 was queued after all
    got = queue_refusals(rec.events()).set_index("jobid")
    assert dict(queue_refusals(rec.events()).dtypes) == dict(REFUSAL_SCHEMA)
    reasons = got["reason"].astype(str).to_dict()
    assert reasons == {
        2: "server_error",
        3: "rate_limited",
        4: "forbidden",
        5: "no_answer",
        6: "garbled",
        7: "refused",
        1: "diff_lock",
    }
    assert got.loc[1, "requests"] == 2 and got.loc[1, "diffid"] == 218599
    assert got.loc[1, "remedy"] == "reject or finish diff 218599, then queue the jobs again"
    assert got["diffid"].drop(1).isna().all()


def test_reasons_are_grouped_most_jobs_first_with_a_label_and_a_remedy() -> None:
    rec = Recording()
    rec.poll(0, *(job(j, CREATED) for j in range(1, 7)))
    for jobid in (1, 2, 3):
        rec.queue_error(1, jobid, "image locked by diffid: 218599")
    rec.queue_error(1, 4, "image locked by diffid: 7")
    for jobid in (5, 6):
        refused(rec, 1, jobid, problem="http_status", http_status=502)
    reasons = refusal_reasons(queue_refusals(rec.events()))
    assert dict(reasons.dtypes) == dict(REASONS_SCHEMA)
    assert reasons["label"].tolist() == [
        "image locked by diff 218599",
        "server errors",
        "image locked by diff 7",
    ]
    assert reasons["jobs"].tolist() == [3, 2, 1]
    assert reasons["remedy"].tolist()[1] == "the API failed: queue the jobs again"


def test_the_troubled_cassette_names_its_diff_lock() -> None:
    """The troubled cassette's second image stays locked by diff 218599: its jobs are all
    refused for it (the 5xx met on the way were resent and met the lock too)."""
    events = cassette_events("troubled")
    refusals = queue_refusals(events)
    assert len(refusals) > 10
    reasons = refusal_reasons(refusals)
    top = reasons.iloc[0]
    assert (top["reason"], top["diffid"], top["jobs"]) == ("diff_lock", 218599, len(refusals))
    assert "218599" in top["remedy"]
    assert queue_refusals(cassette_events("demo")).empty


@pytest.mark.parametrize("frame", [empty_events()])
def test_no_events_give_empty_typed_tables(frame: Any) -> None:
    refusals = queue_refusals(frame)
    assert refusals.empty and dict(refusals.dtypes) == dict(REFUSAL_SCHEMA)
    reasons = refusal_reasons(refusals)
    assert reasons.empty and dict(reasons.dtypes) == dict(REASONS_SCHEMA)


def test_never_queued_is_no_queue_answer_and_no_queued_or_later_state() -> None:
    from cfanalytics import job_summary

    rec = Recording()
    rec.poll(0, job(1, CREATED), job(2, CREATED), job(3, CREATED))
    rec.queue(1, 2, 3)
    rec.poll(2, job(1, CREATED), job(2, 3), running(3))
    flags = never_queued(job_summary(rec.events())).tolist()
    assert flags == [True, False, False]


def test_rollout_metrics_are_typed_and_count_the_queued_apart() -> None:
    """Counts are integers (never 41.0), the frame form is typed by METRICS_SCHEMA, and the
    queued-only times leave the refused job out: 3 of 3 queued jobs done is 100 %, though
    only 3 of 4 jobs are."""
    import pandas as pd

    from cfanalytics.analysis import METRICS_SCHEMA, metrics_by_rollout, rollout_metrics

    from .test_summary import COMPLETE

    rec = Recording()
    rec.poll(0, *(job(j, CREATED, target_imageversionid=7) for j in range(1, 5)))
    for jobid in (1, 2, 3):
        rec.queue(1, jobid, 3, target_imageversionid=7)
    rec.queue_error(1, 4, "image locked by diffid: 9")
    rec.poll(5, job(1, COMPLETE, target_imageversionid=7), job(3, 4, target_imageversionid=7))
    rec.poll(
        9, job(2, COMPLETE, target_imageversionid=7), job(3, COMPLETE, target_imageversionid=7)
    )
    events = rec.events()
    m = rollout_metrics(events)
    assert (m["n_jobs"], m["n_queued"], m["completed"]) == (4, 3, 3)
    assert all(isinstance(m[k], int | np.integer) for k in ("n_jobs", "completed", "failed"))
    assert pd.isna(m["time_to_90_s"]) and pd.notna(m["time_to_90_queued_s"])
    frame = metrics_by_rollout(events)
    assert dict(frame.dtypes) == {
        k: pd.api.types.pandas_dtype(v) for k, v in METRICS_SCHEMA.items()
    }
    assert frame.iloc[0]["n_queued"] == 3 and len(frame) == 1
