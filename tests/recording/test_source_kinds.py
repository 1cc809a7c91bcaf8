"""Every SOURCE is one of four kinds, told apart the same way by every command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from cfanalytics.cli import main
from cfanalytics.events import rollouts, validate
from cfanalytics.recording import (
    EventLog,
    HistoryStore,
    cassettes_in,
    events_from_cassette,
    load_source,
    source_kind,
)
from cfanalytics.report._provenance import load_with_provenance

from ..conftest import CASSETTES

HISTORY = CASSETTES / "history"


def test_the_four_kinds(tmp_path: Path) -> None:
    store = tmp_path / "store"
    HistoryStore(store).add(CASSETTES / "demo.yaml")
    log = tmp_path / "log"
    with EventLog(log, run_id="r") as writer:
        writer.append(events_from_cassette(CASSETTES / "demo.yaml").to_dict("records"))
    assert source_kind(store) == "history store"
    assert source_kind(log) == "event log" and source_kind(next(log.iterdir())) == "event log"
    assert source_kind(HISTORY) == "cassettes"
    assert source_kind(CASSETTES / "demo.yaml") == "cassette"
    assert source_kind(tmp_path / "empty") == "cassette"  # missing: read as one, and say so


def test_a_folder_of_cassettes_is_each_one_after_another(tmp_path: Path) -> None:
    files = cassettes_in(HISTORY)
    assert [p.name for p in files] == [f"week-{n}.yaml" for n in range(1, 7)]
    whole = load_source(HISTORY)
    parts = pd.concat([events_from_cassette(p) for p in files], ignore_index=True)
    pd.testing.assert_frame_equal(whole, validate(parts))  # the concat's labels made again
    assert len(rollouts(whole)) == 6
    # A folder with an event file in it is an event log, whatever else it holds.
    mixed = tmp_path / "mixed"
    shutil.copytree(HISTORY, mixed)
    (mixed / "run.jsonl").write_text("")
    assert source_kind(mixed) == "event log"


def test_provenance_names_the_kind(tmp_path: Path) -> None:
    store = tmp_path / "store"
    HistoryStore(store).add(HISTORY)
    for source, kind in ((store, "history store"), (HISTORY, "cassettes")):
        events, found = load_with_provenance(source)
        assert found.kind == kind and len(found.run_ids) == 6
        assert len(events) == len(load_source(HISTORY))


@pytest.mark.parametrize("kind", ["store", "cassettes"])
def test_report_of_a_store_or_a_folder_of_cassettes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    source = HISTORY
    if kind == "store":
        source = tmp_path / "store"
        assert main(["history", "add", str(HISTORY), "--to", str(source)]) == 0
    out = tmp_path / "r.html"
    assert main(["report", str(source), "-o", str(out), "--rollout", "1/859054"]) == 0
    assert "1/859054" in out.read_text()
