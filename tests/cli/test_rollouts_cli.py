"""``cfanalytics rollouts``, and ``record --history``: a store's rollouts, one row each."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import pytest

from cfanalytics.analysis import History
from cfanalytics.cli import main
from cfanalytics.recording import HistoryStore

from ..conftest import CASSETTES

#: The fields the issue promises every JSON row, in this order.
FIELDS = [
    "rollout",
    "asid",
    "imageversionid",
    "first_seen",
    "last_seen",
    "runs",
    "jobs",
    "completed",
    "failed",
    "unfinished",
    "failure_rate",
    "time_to_50_s",
    "time_to_90_s",
    "install_p50_s",
    "install_p90_s",
    "eta_mae_s",
    "eta_bias_s",
    "worst_location",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("rollouts") / "store"
    HistoryStore(path).add(CASSETTES / "demo.yaml", CASSETTES / "troubled.yaml")
    return str(path)


def test_rollouts_json_has_every_field(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollouts", store, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and all(list(row) == FIELDS for row in rows)
    expected = History(store).rollouts()
    assert [row["rollout"] for row in rows] == expected["rollout"].tolist()
    assert all(row["first_seen"].endswith("Z") and row["last_seen"].endswith("Z") for row in rows)
    idle = next(row for row in rows if row["completed"] == 0)
    assert idle["time_to_50_s"] is None and idle["worst_location"] is None
    busy = next(row for row in rows if row["failed"])
    assert busy["failure_rate"] == pytest.approx(
        busy["failed"] / (busy["completed"] + busy["failed"])
    )


def test_rollouts_table_csv_and_filters(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollouts", store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["rollout", "first_seen", "jobs"]
    assert lines[-1] == f"3 rollout(s) in {store}"
    assert main(["rollouts", store, "--format", "csv", "--asid", "2"]) == 0
    assert capsys.readouterr().out.strip() == ",".join(FIELDS)
    assert main(["rollouts", store, "--since", "2026-11-02T08:00", "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "last tuesday"], "not a date: 'last tuesday'"),
        (["--asid", "x"], None),
    ],
)
def test_rollouts_bad_input(
    store: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str | None
) -> None:
    with pytest.raises(SystemExit) if message is None else nullcontext():
        assert main(["rollouts", store, *argv]) == 2
    err = capsys.readouterr().err.strip()
    if message:
        assert err.startswith("cfanalytics: error: ") and message in err and "\n" not in err


def test_rollouts_of_a_folder_that_is_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollouts", str(tmp_path / "none")]) == 2
    assert "no history store" in capsys.readouterr().err
    assert main(["rollouts", str(CASSETTES)]) == 2
    assert "is not a history store" in capsys.readouterr().err


def test_record_adds_its_run_to_a_history(
    sim_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    argv = ["record", "--asid", "1", "--interval", "0", "--max-polls", "2"]
    assert main([*argv, "--cassette", str(tmp_path / "a.yaml"), "--history", str(store)]) == 0
    out = capsys.readouterr().out
    assert "history:" in out and "response(s) added" in out
    assert main(["rollouts", str(store), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["runs"] == 1 and row["jobs"] >= 40
    # The same store from a cassette: nothing new.
    assert main(["history", "add", str(tmp_path / "a.yaml"), "--to", str(store)]) == 0
    assert " 0 response(s) added" in capsys.readouterr().out


def test_record_refuses_a_folder_that_is_no_store_before_it_starts(
    sim_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong --history is found before a job is queued: nothing is recorded."""
    (tmp_path / "notes.txt").write_text("mine")
    cassette = tmp_path / "a.yaml"
    argv = ["record", "--asid", "1", "--cassette", str(cassette), "--history", str(tmp_path)]
    assert main(argv) == 2
    assert "is not a history store" in capsys.readouterr().err
    assert not cassette.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", ""], "since: not a date: ''"),
        (["--since", "2026-12-01", "--until", "2026-11-01"], "must come before until"),
    ],
)
def test_rollouts_bad_dates(
    store: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["rollouts", store, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_compare_names_the_options_that_pick_a_rollout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    troubled = str(CASSETTES / "troubled.yaml")
    assert main(["compare", troubled, str(CASSETTES / "demo.yaml")]) == 2
    err = capsys.readouterr().err
    assert "--rollout-a" in err and "rollout_a=" not in err
