"""Every file cfanalytics writes reads back: event exports (Parquet and CSV) are sources of
every command, ``events -o`` works from every kind of source, and the command line's other
outputs (tables, reports) or unknown files are named in one line instead of misread."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from cfanalytics.cli import main
from cfanalytics.exceptions import EventLogError, RecordingError
from cfanalytics.recording import (
    EventLog,
    HistoryStore,
    events_from_cassette,
    load_cassette,
    load_events,
    load_source,
    write_events,
)
from cfanalytics.recording._journal import CassetteJournal

from ..conftest import CASSETTES
from ..recording.test_foreign_cassette import record_with_vcrpy

TROUBLED = CASSETTES / "troubled.yaml"


def _ok(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run a command that must succeed; its stdout."""
    assert main(argv) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run a command that must fail with one line; that line."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("cfanalytics: error: ") and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
    return captured.err.strip()


@pytest.mark.parametrize("command", ["events", "replay"])
def test_an_events_csv_reads_back_as_its_parquet_twin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """The CSV that ``events -o`` or ``replay --events-out`` writes reads back (by the
    command line and by ``load_events``) as the same frame as the Parquet export, and as the
    cassette's own events."""
    source = TROUBLED if command == "events" else CASSETTES / "demo.yaml"
    outputs = {}
    for suffix in ("csv", "parquet"):
        outputs[suffix] = tmp_path / f"e.{suffix}"
        if command == "events":
            _ok(capsys, ["events", str(source), "-o", str(outputs[suffix])])
        else:
            _ok(capsys, ["replay", str(source), "--events-out", str(outputs[suffix])])
    from_csv = load_events(outputs["csv"])
    pd.testing.assert_frame_equal(from_csv, load_events(outputs["parquet"]))
    pd.testing.assert_frame_equal(from_csv, events_from_cassette(source))
    again = tmp_path / "again.parquet"
    _ok(capsys, ["events", str(outputs["csv"]), "-o", str(again)])
    pd.testing.assert_frame_equal(load_events(again), from_csv)


def test_an_events_csv_is_a_source_of_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """summary, postmortem, report and history add give from the CSV what they give from the
    cassette it came from."""
    exported = tmp_path / "troubled.csv"
    _ok(capsys, ["events", str(TROUBLED), "-o", str(exported)])
    for argv in (["summary", "--format", "csv"], ["postmortem", "--format", "json"]):
        assert _ok(capsys, [*argv, str(exported)]) == _ok(capsys, [*argv, str(TROUBLED)])
    report = tmp_path / "r.html"
    _ok(capsys, ["report", str(exported), "-o", str(report)])
    assert "troubled.csv" in report.read_text(encoding="utf-8")
    stores = {name: tmp_path / name for name in ("from-csv", "from-cassette")}
    _ok(capsys, ["history", "add", str(exported), "--to", str(stores["from-csv"])])
    _ok(capsys, ["history", "add", str(TROUBLED), "--to", str(stores["from-cassette"])])
    frames = [HistoryStore(store).events() for store in stores.values()]
    pd.testing.assert_frame_equal(*frames)


def _own(tmp_path: Path) -> Path:
    return CASSETTES / "demo.yaml"


def _foreign(tmp_path: Path) -> Path:
    record_with_vcrpy(tmp_path / "theirs.yaml")
    return tmp_path / "theirs.yaml"


def _cassettes(tmp_path: Path) -> Path:
    return CASSETTES / "history"


def _journal(tmp_path: Path) -> Path:
    """A killed recording's journal, given by its own name."""
    cassette = load_cassette(CASSETTES / "demo.yaml")
    journal = CassetteJournal(tmp_path / "run.yaml", cassette.metadata)
    for interaction in cassette:
        journal.interaction(interaction)
    journal.close()
    return journal.path


def _event_log(tmp_path: Path) -> Path:
    with EventLog(tmp_path / "log", run_id="demo") as log:
        log.append(events_from_cassette(CASSETTES / "demo.yaml").to_dict("records"))
    return tmp_path / "log"


def _export(suffix: str) -> Callable[[Path], Path]:
    def export(tmp_path: Path) -> Path:
        path = tmp_path / f"export.{suffix}"
        write_events(events_from_cassette(TROUBLED), path)
        return path

    return export


def _store(tmp_path: Path) -> Path:
    HistoryStore(tmp_path / "store").add(CASSETTES / "demo.yaml", TROUBLED)
    return tmp_path / "store"


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
@pytest.mark.parametrize(
    "make",
    [_own, _foreign, _cassettes, _journal, _event_log, _export("parquet"), _export("csv"), _store],
    ids=["own", "foreign", "cassettes", "journal", "event-log", "parquet", "csv", "store"],
)
def test_events_writes_any_source(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], Path],
    suffix: str,
) -> None:
    """``events SOURCE -o FILE`` writes the source's events, which read back as they were,
    for every kind of source: a cassette (ours or another tool's), a folder of them, a
    journal, an event log, an export, a history store."""
    source = make(tmp_path)
    out = tmp_path / f"out.{suffix}"
    said = _ok(capsys, ["events", str(source), "-o", str(out)])
    expected = load_source(source)
    assert len(expected) > 0 and said == f"events: {out} ({len(expected)} rows)\n"
    pd.testing.assert_frame_equal(load_events(out), expected)


def test_a_foreign_cassette_gives_its_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another tool's cassette, which replay refuses, gives its events to ``events -o``."""
    source = _foreign(tmp_path)
    assert "cannot be replayed" in _refused(capsys, ["replay", str(source)])
    out = tmp_path / "theirs.csv"
    _ok(capsys, ["events", str(source), "-o", str(out)])
    events = load_events(out)
    assert set(events["run_id"]) == {"theirs"} and events["jobid"].nunique() == 5


def _saved(capsys: pytest.CaptureFixture[str], argv: list[str], path: Path) -> Path:
    """What a command prints, saved to ``path`` as a user's ``>`` would."""
    path.write_text(_ok(capsys, argv), encoding="utf-8")
    return path


def test_other_outputs_are_named_not_misread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table the command line printed or saved, or its report, given as a SOURCE to any
    command: one line naming what it is and where it came from, never a YAML error."""
    demo, store = str(CASSETTES / "demo.yaml"), str(tmp_path / "store")
    _ok(capsys, ["history", "add", demo, "--to", store])
    outputs = {
        "a per-job summary in CSV (from cfanalytics summary)": _saved(
            capsys, ["summary", demo, "--format", "csv"], tmp_path / "s.csv"
        ),
        "a per-job summary in JSON (from cfanalytics summary)": _saved(
            capsys, ["summary", demo, "--format", "json"], tmp_path / "s.json"
        ),
        "a comparison of rollouts in CSV (from cfanalytics compare)": _saved(
            capsys, ["compare", demo, demo, "--format", "csv"], tmp_path / "c.csv"
        ),
        "a history catalog in CSV (from cfanalytics history list)": _saved(
            capsys, ["history", "list", store, "--format", "csv"], tmp_path / "h.csv"
        ),
        "a table of rollouts in JSON (from cfanalytics rollouts)": _saved(
            capsys, ["rollouts", store, "--format", "json"], tmp_path / "r.json"
        ),
        "an HTML report (from cfanalytics report)": tmp_path / "report.html",
    }
    _ok(capsys, ["report", demo, "-o", str(tmp_path / "report.html")])
    readers = {
        "summary": [],
        "events": ["-o", str(tmp_path / "x.csv")],
        "report": [],
        "postmortem": [],
        "history add": ["--to", store],
    }
    for (what, path), (reader, options) in itertools.product(outputs.items(), readers.items()):
        line = _refused(capsys, [*reader.split(), str(path), *options])
        assert line == (
            f"cfanalytics: error: {path} is {what}, not events: give the cassette, event log "
            "or events export it came from"
        )


def test_the_status_list_as_csv_is_named(
    sim_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``status --format csv`` saved and given as a SOURCE is named as the status list."""
    path = _saved(capsys, ["status", "--asid", "1", "--format", "csv"], tmp_path / "st.csv")
    assert "is an install status list in CSV (from cfanalytics status)" in _refused(
        capsys, ["summary", str(path)]
    )


@pytest.mark.parametrize("name", ["notes.txt", "run.md", "data.xlsx"])
def test_unknown_suffixes_are_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """A file of no kind cfanalytics reads: the command line and the library say what is."""
    path = tmp_path / name
    path.write_text("interactions: []\n")
    line = _refused(capsys, ["summary", str(path)])
    assert f"{path} is not a source cfanalytics reads (no {path.suffix} files)" in line
    assert "cassette (.yaml, .yml, .json, .gz), an events export (.parquet, .csv)" in line
    with pytest.raises(RecordingError, match="not a source cfanalytics reads"):
        load_source(path)


def test_a_csv_of_other_columns_is_refused_by_the_library(tmp_path: Path) -> None:
    """load_events names the file and its columns; an empty one is said to be empty."""
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(EventLogError, match=r"other.csv is a CSV file but not of events \(its"):
        load_events(other)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(EventLogError, match="is empty, not a CSV of events"):
        load_events(empty)


def test_a_bad_cell_in_an_events_csv_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An events CSV edited by hand into nonsense: one line naming the file."""
    path = tmp_path / "e.csv"
    write_events(events_from_cassette(CASSETTES / "demo.yaml"), path)
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(",0,", ",zero,", 1)  # seq is a number
    path.write_text("\n".join(lines) + "\n")
    assert f"cannot read {path} as events" in _refused(capsys, ["summary", str(path)])


def test_write_events_refuses_other_suffixes(tmp_path: Path) -> None:
    """Only what reads back is written."""
    events = events_from_cassette(CASSETTES / "demo.yaml")
    with pytest.raises(ValueError, match=r"use a \.parquet or \.csv file name"):
        write_events(events, tmp_path / "e.xlsx")
    assert not (tmp_path / "e.xlsx").exists()
