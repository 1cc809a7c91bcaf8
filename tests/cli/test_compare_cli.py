"""``cfanalytics compare``: two rollouts from sources or a history store, as JSON, CSV or a
table, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cfanalytics.analysis import COMPARE_SCHEMA, compare
from cfanalytics.cli import main
from cfanalytics.events import json_records, rollouts
from cfanalytics.recording import HistoryStore, events_from_cassette

from ..conftest import CASSETTES

DEMO, TROUBLED = str(CASSETTES / "demo.yaml"), str(CASSETTES / "troubled.yaml")
METRICS = ("jobs", "install_p50_s", "install_p90_s", "eta_mae_s", "eta_bias_s", "failure_rate")


def troubled_ids() -> list[str]:
    """The troubled cassette's rollouts: the active one, then the idle one."""
    return rollouts(events_from_cassette(TROUBLED))


def test_json_is_the_python_table(capsys: pytest.CaptureFixture[str]) -> None:
    """``--format json`` prints compare()'s rows as objects, NA as null, the same numbers."""
    active = troubled_ids()[0]
    assert main(["compare", DEMO, TROUBLED, "--rollout-b", active, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = compare(events_from_cassette(DEMO), events_from_cassette(TROUBLED), rollout_b=active)
    assert rows == json_records(expected)
    assert rows[0]["metric"] == "jobs" and rows[0]["verdict"] is None
    assert {row["rollout_b"] for row in rows} == {active}


def test_csv_and_grouping_options(capsys: pytest.CaptureFixture[str]) -> None:
    """CSV has a header and a line per row; ``--by ''`` keeps the overall rows only,
    ``--by kind`` groups by kind; a lower ``--level`` narrows every interval."""
    assert main(["compare", DEMO, DEMO, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ",".join(COMPARE_SCHEMA)
    assert main(["compare", DEMO, DEMO, "--by", "", "--format", "json"]) == 0
    wide = json.loads(capsys.readouterr().out)
    assert [row["metric"] for row in wide] == list(METRICS)
    assert len(lines) > len(wide) + 1
    assert main(["compare", DEMO, DEMO, "--by", "kind", "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert "kind" in header and "location" not in header
    assert main(["compare", DEMO, DEMO, "--by", "", "--level", "0.5", "--format", "json"]) == 0
    narrow = json.loads(capsys.readouterr().out)
    for w, n in zip(wide[1:], narrow[1:], strict=True):
        assert n["high"] - n["low"] < w["high"] - w["low"]


def test_table_shows_the_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    """The table names both rollouts, shows each verdict (n/a where none) and counts them."""
    active = troubled_ids()[0]
    assert main(["compare", DEMO, TROUBLED, "--rollout-b", active, "--by", "kind"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith(f"B {active} against A {rollouts(events_from_cassette(DEMO))[0]}")
    header = text[2].split()
    assert header[:2] == ["metric", "kind"] and header[-1] == "verdict"
    mae = next(line.split() for line in text if line.startswith("eta_mae_s      all"))
    assert mae[-1] == "worse"
    assert next(line for line in text if line.startswith("jobs")).endswith("n/a")
    assert text[-1].endswith("n/a") and "worse" in text[-1]


def test_two_rollouts_of_a_history_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``--history DIR``, A and B are rollout ids of the store: the answer is that of
    the store's events of each, the same as from the cassettes."""
    store = str(tmp_path / "history")
    assert main(["history", "add", DEMO, TROUBLED, "--to", store]) == 0
    capsys.readouterr()
    a, b = rollouts(events_from_cassette(DEMO))[0], troubled_ids()[0]
    assert main(["compare", "--history", store, a, b, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    history = HistoryStore(store)
    expected = compare(history.events(rollout=a), history.events(rollout=b))
    assert rows == json_records(expected)
    assert {(row["rollout_a"], row["rollout_b"]) for row in rows} == {(a, b)}
    recorded = compare(events_from_cassette(DEMO), events_from_cassette(TROUBLED), rollout_b=b)
    assert rows == json_records(recorded)


def test_unknown_rollout_is_one_line_naming_those_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An id the store lacks, a source of two rollouts without ``--rollout-b``, or
    ``--rollout-a`` with ``--history``: exit 2 and one line."""
    store = str(tmp_path / "history")
    assert main(["history", "add", DEMO, TROUBLED, "--to", store]) == 0
    capsys.readouterr()
    found = [*rollouts(events_from_cassette(DEMO)), *troubled_ids()]
    assert main(["compare", "--history", store, found[0], "9/999"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "9/999" in err
    assert all(rollout in err for rollout in found)
    assert main(["compare", DEMO, TROUBLED]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(rollout in err for rollout in troubled_ids())
    assert main(["compare", "--history", store, found[0], found[1], "--rollout-a", "x"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
