"""Synthetic histories (``cfanalytics history synth``): realistic rollouts made with numpy,
written straight to a store, the same for the same arguments, a batch at a time."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from cfanalytics import History
from cfanalytics.cli import main
from cfanalytics.events import validate
from cfanalytics.recording import (
    HistoryStore,
    Synthesized,
    synthesize,
    synthetic_events,
)

#: A small history: six rollouts over two ASIDs, three weeks each.
SMALL = {"rollouts": 6, "jobs": 120, "polls": 20, "asids": 2, "seed": 3}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Synthesized]:
    path = tmp_path_factory.mktemp("synth") / "store"
    return path, synthesize(path, **SMALL)


def test_the_same_arguments_give_the_same_store(
    small: tuple[Path, Synthesized], tmp_path: Path
) -> None:
    """Two stores written from the same arguments hold the same events; another seed not."""
    path, made = small
    again = synthesize(tmp_path / "again", **SMALL)
    assert again == made
    pd.testing.assert_frame_equal(
        HistoryStore(path).events(), HistoryStore(tmp_path / "again").events()
    )
    other = synthetic_events(120, 20, seed=4)
    assert not other.equals(synthetic_events(120, 20, seed=3))


def test_rollouts_spread_over_the_asids_a_week_apart_with_their_own_ids(
    small: tuple[Path, Synthesized],
) -> None:
    """Rollout i is on ASID i % K + 1 in week i // K: its own version, jobs and run, a week
    after the previous rollout of its ASID."""
    path, made = small
    store = HistoryStore(path)
    catalog = store.catalog().sort_values("imageversionid", ignore_index=True)
    assert made.rollouts == len(catalog) == 6
    assert catalog["asid"].tolist() == [1, 2, 1, 2, 1, 2]
    assert catalog["imageversionid"].is_unique and (catalog["jobs"] == 120).all()
    assert catalog["runs"].tolist() == [1] * 6 and len(made.added.runs) == 6
    events = store.events(columns=["run_id", "asid", "jobid", "target_imageversionid"])
    jobs = events.dropna(subset=["jobid"]).groupby("jobid")["run_id"].nunique()
    assert (jobs == 1).all() and len(jobs) == 6 * 120  # no job id in two rollouts
    for _, rows in catalog.groupby("asid"):
        gaps = rows["first_seen"].diff().dropna()
        assert ((gaps - pd.Timedelta(days=7)).abs() < pd.Timedelta(seconds=30)).all()


def test_rows_follow_the_schema_and_mirrors_go_first() -> None:
    """One rollout's rows validate; one job in ten is a mirror, and a location's machines are
    queued only after its mirrors; a few polls fail with HTTP 503."""
    events = synthetic_events(400, 30, seed=1)
    validate(events)
    assert events["seq"].is_monotonic_increasing and events["run_id"].nunique() == 1
    queue = events.loc[events["endpoint"] == "queue"]
    assert len(queue) == 400 and queue["jobid"].is_unique
    status = events.loc[(events["endpoint"] == "status") & events["jobid"].notna()]
    kinds = status.drop_duplicates("jobid")[["jobid", "kind", "location"]]
    assert (kinds["kind"] == "mirror").sum() == 40
    queued = queue[["jobid", "observed_at"]].merge(kinds, on="jobid")
    first = queued.groupby(["location", "kind"], observed=True)["observed_at"].agg(["min", "max"])
    for location in kinds["location"].unique():
        assert first.loc[(location, "mirror"), "max"] < first.loc[(location, "machine"), "min"]
    assert set(events["http_status"].dropna()) == {200, 503}
    assert set(status["state"].dropna()) == {"Queued", "Running", "Complete", "Failed"}
    assert status["jobprogress"].between(0, 100).all()


def test_analyses_give_plausible_figures(small: tuple[Path, Synthesized]) -> None:
    """``History.rollouts()``: every rollout completes jobs, some fail, installs take
    minutes and ETAs miss by tens of seconds to minutes."""
    table = History(small[0]).rollouts()
    assert len(table) == 6
    assert (table["completed"] > 0).all() and table["failed"].sum() > 0
    assert table["install_p50_s"].between(60, 3600).all()
    assert table["eta_mae_s"].between(5, 600).all()
    assert (table["failure_rate"] < 0.3).all()


def test_a_flaky_machine_fails_again_in_later_rollouts(small: tuple[Path, Synthesized]) -> None:
    """Failures cluster: some machine fails in several rollouts of its ASID."""
    events = HistoryStore(small[0]).events(columns=["asid", "machine", "state", "run_id"])
    failed = events.loc[events["state"] == "Failed"].dropna(subset=["machine"])
    runs = failed.groupby(["asid", "machine"], observed=True)["run_id"].nunique()
    assert runs.max() >= 2


def test_rollouts_are_added_in_batches_of_bounded_rows(tmp_path: Path) -> None:
    """With a row budget below one rollout, each rollout is its own add; with the default,
    one add takes them all. The store holds every row either way, the same rows."""
    args = {"rollouts": 4, "jobs": 40, "polls": 10}
    seen: list[tuple[int, int]] = []
    one_by_one = synthesize(
        tmp_path / "a", **args, batch_rows=1, on_progress=lambda d, t: seen.append((d, t))
    )
    together = synthesize(tmp_path / "b", **args)
    assert (one_by_one.adds, together.adds) == (4, 1)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    rows = sum(len(synthetic_events(40, 10, rollout=n)) for n in range(4))
    assert one_by_one.rows == together.rows == rows == len(HistoryStore(tmp_path / "a").events())
    pd.testing.assert_frame_equal(
        HistoryStore(tmp_path / "a").events(), HistoryStore(tmp_path / "b").events()
    )


def test_twenty_rollouts_hold_every_row_and_adding_again_adds_nothing(tmp_path: Path) -> None:
    """A 20-rollout store has the rows generated, a file per run; a second run is idempotent."""
    made = synthesize(tmp_path, rollouts=20, jobs=20, polls=8, asids=3, batch_rows=2_000)
    assert made.adds > 1 and made.files == 20
    assert len(HistoryStore(tmp_path).events()) == made.rows
    assert len(made.added.runs) == 20 and made.added.responses_present == 0
    again = synthesize(tmp_path, rollouts=20, jobs=20, polls=8, asids=3, batch_rows=2_000)
    assert again.added.responses_added == 0 and again.files == 0


def test_cli_writes_a_store_and_prints_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cfanalytics history synth`` prints rollouts, rows, files, seconds and rows/s."""
    store = tmp_path / "store"
    argv = ["history", "synth", "--rollouts", "3", "--jobs", "30", "--polls", "10"]
    assert main([*argv, "--asids", "2", "--seed", "5", "--to", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    found = re.fullmatch(
        r".+: 3 rollout\(s\), ([\d,]+) rows in 3 file\(s\), [\d.]+ s \([\d,]+ rows/s\)", lines[0]
    )
    assert found and int(found.group(1).replace(",", "")) == len(HistoryStore(store).events())
    assert HistoryStore(store).catalog()["asid"].tolist() == [1, 1, 2]


@pytest.mark.parametrize(
    ("option", "value"),
    [("--rollouts", "-1"), ("--jobs", "0"), ("--polls", "-5"), ("--asids", "0"), ("--seed", "-2")],
)
def test_cli_refuses_bad_counts_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    """A negative or zero count: exit 2, one line naming it, no store (a count is a usage
    error, from argparse; the seed the library's)."""
    argv = {"--rollouts": "2", "--jobs": "10", "--polls": "5"} | {option: value}
    flat = [part for pair in argv.items() for part in pair]
    try:
        code = main(["history", "synth", *flat, "--to", str(tmp_path / "store")])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option.lstrip("-") in err[0] and value in err[0]
    assert not (tmp_path / "store").exists()


def test_python_api_refuses_what_is_not_a_count() -> None:
    """Counts are whole numbers: a float or a bool is a ValueError, as is a negative seed."""
    with pytest.raises(ValueError, match="jobs"):
        synthetic_events(10.0, 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="polls_per_job"):
        synthetic_events(10, True)
    with pytest.raises(ValueError, match="seed"):
        synthetic_events(10, 5, seed=-1)
