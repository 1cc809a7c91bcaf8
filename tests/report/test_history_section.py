"""The report's and the postmortem's history: a rollout against the earlier ones of its ASID."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cfanalytics import History, HistoryStore, events_from_cassette
from cfanalytics.analysis import machine_history, standing
from cfanalytics.cli import main
from cfanalytics.report import postmortem, write_report

from ..conftest import CASSETTES
from .test_report import parse

WEEKS = sorted((CASSETTES / "history").glob("week-*.yaml"))
LAST = WEEKS[-1]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every week of the shipped history but the last: the last is the rollout under study."""
    path = tmp_path_factory.mktemp("weeks") / "store"
    HistoryStore(path).add(*WEEKS[:-1])
    return path


def test_the_report_places_the_rollout_among_the_previous_ones(store: Path, tmp_path: Path) -> None:
    html = write_report(LAST, tmp_path / "r.html", history=store, previous=3).read_text()
    page = parse(html)
    text = " ".join(page.text)
    assert "history" in page.ids and "Against the previous 3 rollouts" in text
    placed = standing(events_from_cassette(LAST), store, previous=3)
    assert len(placed.previous) == 3
    for name in placed.previous:
        assert name in text
    assert f"{placed.rollout} (this one)" in text
    rank, of = placed.rank("install_p90_s")
    assert of == 4 and f"{rank} of 4" in text
    # The machine with the failing drive is a repeat offender of this rollout.
    offenders = placed.offenders()
    assert "31011" in set(offenders["machine"]) and "31011" in text
    plain = write_report(LAST, tmp_path / "plain.html").read_text()
    assert html.count("<figure>") == plain.count("<figure>") + 1  # the trends
    # Same inputs, same bytes.
    again = write_report(LAST, tmp_path / "again.html", history=store, previous=3).read_text()
    assert again == html


def test_the_figures_are_those_of_the_rollout_in_the_store(store: Path, tmp_path: Path) -> None:
    """A rollout placed from its cassette has the row the store gives it once added."""
    placed = standing(events_from_cassette(LAST), store)
    whole = tmp_path / "whole"
    HistoryStore(whole).add(store, LAST)
    stored = History(whole).rollouts().set_index("rollout").loc[placed.rollout]
    mine = placed.rollouts.set_index("rollout").loc[placed.rollout]
    for metric in ("jobs", "failed", "time_to_50_s", "install_p50_s", "eta_mae_s", "failure_rate"):
        assert mine[metric] == pytest.approx(stored[metric], nan_ok=True), metric
    # And its machine history, up to it, is the store's (all six weeks, this one last).
    assert placed.previous == tuple(History(whole).catalog()["rollout"].iloc[:-1])
    assert placed.machines.equals(machine_history(whole, k=2, n=3))


def test_a_first_rollout_has_nothing_to_compare_with(store: Path, tmp_path: Path) -> None:
    html = write_report(WEEKS[0], tmp_path / "r.html", history=store).read_text()
    assert "nothing to compare with yet" in html


def test_each_rollout_of_a_recording_gets_its_own_history_section(
    store: Path, tmp_path: Path
) -> None:
    page = parse(
        write_report(CASSETTES / "troubled.yaml", tmp_path / "r.html", history=store).read_text()
    )
    history_ids = [i for i in page.ids if i.endswith("-history")]
    assert len(history_ids) == 2


def test_postmortem_lists_repeat_offenders(store: Path) -> None:
    found = postmortem(events_from_cassette(LAST), history=store)
    assert found.repeat_offenders is not None
    assert "31011" in set(found.repeat_offenders["machine"])
    assert "Repeat offenders: machine 31011 in Frankfurt" in found.lead
    assert "repeat_offenders" in found.tables()
    assert "## Repeat offenders" in found.markdown()
    plain = postmortem(events_from_cassette(LAST))
    assert plain.repeat_offenders is None and "repeat_offenders" not in plain.tables()


def test_cli_report_and_postmortem_with_history(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    argv = ["report", str(LAST), "-o", str(out), "--history", str(store), "--previous", "2"]
    assert main(argv) == 0
    assert "Against the previous 2 rollouts" in out.read_text()
    capsys.readouterr()
    assert main(["postmortem", str(LAST), "--history", str(store), "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert {row["machine"] for row in body["repeat_offenders"]} >= {"31011"}
    # A folder that is no store: one line, exit 2, no report written.
    (tmp_path / "notes.txt").write_text("mine")
    bad = ["report", str(LAST), "-o", str(tmp_path / "x.html"), "--history", str(tmp_path)]
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "is not a history store" in err and err.count("\n") == 1
    assert not (tmp_path / "x.html").exists()


def test_postmortem_with_history_of_events_naming_no_rollout(store: Path) -> None:
    """Nothing to place: an empty table of repeat offenders, not an error."""
    from cfanalytics.events import empty_events

    found = postmortem(empty_events(), history=store)
    assert found.repeat_offenders is not None and found.repeat_offenders.empty
    assert found.repeat_offenders.columns[0] == "rollout"


def test_previous_narrows_the_comparison_not_the_offenders(store: Path, tmp_path: Path) -> None:
    one = write_report(LAST, tmp_path / "one.html", history=store, previous=1).read_text()
    assert "Against the previous 1 rollout" in one
    assert "previous 1 rollouts" not in one
    offenders = postmortem(events_from_cassette(LAST), history=store).repeat_offenders
    assert offenders is not None
    for machine in offenders["machine"]:
        assert f"<td>{machine}</td>" in one
    with pytest.raises(ValueError, match="previous must be at least 1"):
        write_report(LAST, tmp_path / "zero.html", history=store, previous=0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--previous", "0"], "not a whole number of at least 1"),
        (["--previous", "-2"], "not a whole number of at least 1"),
    ],
)
def test_cli_previous_must_be_positive(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = ["report", str(LAST), "-o", str(tmp_path / "r.html"), "--history", str(store)]
    with pytest.raises(SystemExit) as stop:
        main([*argv, *extra])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_cli_previous_needs_a_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(LAST), "-o", str(tmp_path / "r.html"), "--previous", "2"]) == 2
    assert "give --history DIR" in capsys.readouterr().err
