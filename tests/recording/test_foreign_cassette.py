"""A cassette nobody here recorded: vcrpy itself, against the real API's host, with quirks.

It holds what another team's vcrpy session against ``https://api.multiplay.co.uk`` would: no
cfanalytics stamp (only ``Date``), gzip'd bodies, ``jobstateid`` missing on some jobs,
"Completed" spelled out, ``jobstart`` as digits, ``mirroring`` as 0/1, a 503 in the middle.
The summary must still give every job its right outcome and completion window.
"""

from __future__ import annotations

import gzip
import json
from email.utils import formatdate
from pathlib import Path

import httpx
import pandas as pd
import vcr

from cfanalytics import events_from_cassette, job_summary

HOST = "https://api.multiplay.co.uk"
STATUS = f"{HOST}/cfp/v1/imageinstall/status?accountserviceid=99"
T0 = 1793610000  # 2026-11-02T09:00:00Z


def job(jobid: int, **fields: object) -> dict[str, object]:
    base = {
        "jobid": jobid,
        "jobcreated": T0 - 600,
        "jobfailed": 0,
        "mirroring": 0,
        "location": "Paris",
        "machine": 500 + jobid,
        "jobprogress": 0,
    }
    return base | fields


# Poll n happens at T0 + 60 n. Job 1 runs and vanishes between polls 2 and 3; job 2 shows
# "Completed" (no id) at poll 1; job 3 fails at poll 2 and stays listed; job 4 is still
# running at the end; job 5 vanishes while Pending (unknown). Poll 3 is a 503: no absence.
POLLS: list[list[dict[str, object]] | None] = [
    [
        job(
            1,
            jobstateid=4,
            jobstatename="Running",
            jobstart=str(T0 - 30),
            jobprogress=10,
            jobeta=T0 + 100,
        ),
        job(2, jobstatename="Running", jobprogress=50),
        job(3, jobstateid=4, jobprogress=5),
        job(4, jobstateid=3),
        job(5, jobstateid=2),
    ],
    [
        job(1, jobstateid=4, jobprogress=60, jobeta=T0 + 150),
        job(2, jobstatename="Completed", jobprogress=100, jobupdated=T0 + 55),
        job(3, jobstateid=4, jobprogress=20),
        job(4, jobstateid=4, jobprogress=1),
    ],
    [
        job(1, jobstateid=4, jobprogress=90, jobeta=T0 + 170),
        job(3, jobstateid=6, jobstatename="Failed", joberror="Not enough disk space", jobfailed=1),
        job(4, jobstateid=4, jobprogress=30),
    ],
    None,  # HTTP 503
    [
        job(3, jobstateid=6, joberror="Not enough disk space", jobfailed=1),
        job(4, jobstateid=4, jobprogress=70),
    ],
]


def answer(poll: int) -> httpx.Response:
    date = {"Date": formatdate(T0 + 60 * poll, usegmt=True)}
    installs = POLLS[poll]
    if installs is None:
        return httpx.Response(503, headers=date, text="<html>Service Unavailable</html>")
    body = gzip.compress(json.dumps({"installs": installs}).encode())
    return httpx.Response(200, headers=date | {"Content-Encoding": "gzip"}, content=body)


def record_with_vcrpy(path: Path) -> None:
    """Another tool's recording: plain vcrpy around an httpx client, keys filtered."""
    polls = iter(range(len(POLLS)))

    def server(request: httpx.Request) -> httpx.Response:
        return answer(next(polls))

    with (
        vcr.use_cassette(str(path), record_mode="once", filter_headers=["authorization"]),
        httpx.Client(transport=httpx.MockTransport(server), auth=("key", "secret")) as client,
    ):
        for _ in POLLS:
            client.get(STATUS)


def test_summary_of_a_cassette_recorded_elsewhere(tmp_path: Path) -> None:
    """Every job gets its right outcome and window from a vcrpy cassette of the real host."""
    path = tmp_path / "theirs.yaml"
    record_with_vcrpy(path)
    events = events_from_cassette(path)
    assert events.loc[events["http_status"] == 503, "problem"].tolist() == ["http_status"]
    assert events["observed_at"].min() == pd.Timestamp(T0, unit="s", tz="UTC")  # from Date
    summary = job_summary(events).set_index("jobid")
    at = lambda seconds: pd.Timestamp(T0 + seconds, unit="s", tz="UTC")  # noqa: E731

    assert summary.loc[1, "outcome"] == "completed"  # vanished after running: censored
    assert (summary.loc[1, "completed_after"], summary.loc[1, "completed_before"]) == (
        at(120),
        at(240),  # the 503 at +180 s is no evidence of absence
    )
    assert summary.loc[2, "outcome"] == "completed"  # "Completed" without a jobstateid
    assert summary.loc[2, "completed_at"] == at(55) == summary.loc[2, "completed_before"]
    assert summary.loc[3, "outcome"] == "failed"
    assert summary.loc[3, "error"] == "Not enough disk space"
    assert summary.loc[4, "outcome"] == "unfinished"
    assert summary.loc[5, "outcome"] == "unknown"
    assert summary.loc[1, "started_at"] == at(-30)
    assert set(summary["kind"]) == {"machine"} and summary.loc[1, "machine"] == "501"
    # ETA errors of job 1: completion at the window's midpoint (+180 s), ETAs +100/+150/+170.
    assert summary.loc[1, "eta_bias_s"] == (80 + 30 + 10) / 3
