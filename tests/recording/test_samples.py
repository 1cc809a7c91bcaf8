"""The shipped cassettes: what they show, and that one command regenerates them exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfanalytics.analysis import job_summary
from cfanalytics.recording import SAMPLES, events_from_cassette, make_cassette, replay

from ..conftest import CASSETTES, as_regenerated


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_regeneration_gives_the_same_bytes(name: str, tmp_path: Path) -> None:
    """``cfanalytics make-cassette NAME`` rewrites the shipped cassette byte for byte."""
    shipped = CASSETTES / f"{name}.yaml"
    make_cassette(name, tmp_path / "again.yaml")
    assert (tmp_path / "again.yaml").read_bytes() == as_regenerated(shipped), (
        f"cassettes/{name}.yaml is stale: run `make cassettes` and commit the result"
    )


def test_demo_cassette_shows_a_whole_rollout() -> None:
    """>= 40 jobs, >= 3 locations, both kinds, some failures, every job ended."""
    summary = job_summary(events_from_cassette(CASSETTES / "demo.yaml"))
    assert len(summary) >= 40 and summary["location"].nunique() >= 3
    assert set(summary["kind"]) == {"mirror", "machine"}
    counts = summary["outcome"].value_counts()
    assert counts["failed"] >= 2 and counts["completed"] >= 30
    assert counts["unfinished"] == 0


def test_troubled_cassette_shows_trouble() -> None:
    """Diff locks, install failures, 5xx and 429 are all in the troubled recording."""
    events = events_from_cassette(CASSETTES / "troubled.yaml")
    messages = set(events["error_message"].dropna())
    assert any(m.startswith("image locked by diffid") for m in messages)
    statuses = set(events["http_status"].dropna())
    assert 429 in statuses and statuses & {500, 502, 503}
    summary = job_summary(events)
    assert (summary["outcome"] == "failed").sum() >= 2


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_shipped_cassettes_replay(name: str) -> None:
    """Each shipped cassette replays offline to the events it holds."""
    run = replay(CASSETTES / f"{name}.yaml")
    expected = events_from_cassette(CASSETTES / f"{name}.yaml")
    assert run.events.equals(expected)
