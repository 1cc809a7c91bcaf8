"""Engines: the same digests in this process, in worker processes and on a Dask cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from cfanalytics.analysis import Dask, Digest, Embedded, History, machine_history, trend
from cfanalytics.analysis._digest import digest_in_store
from cfanalytics.analysis._workers import WorkerError, Workers
from cfanalytics.cli import main
from cfanalytics.recording import HistoryStore

from ..conftest import CASSETTES, REPO


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("engines") / "store"
    HistoryStore(path).add(CASSETTES / "history", CASSETTES / "demo.yaml")
    return path


@pytest.fixture(scope="module")
def dask_engine() -> Iterator[Dask]:
    """A LocalCluster of two worker processes, shared by this module's tests."""
    pytest.importorskip("distributed")
    engine = Dask(workers=2)
    yield engine
    engine.close()


def _tasks(store: Path) -> list[tuple[str, str]]:
    return [(str(store), name) for name in HistoryStore(store).catalog()["rollout"]]


def _same(a: Digest, b: Digest) -> None:
    assert a.rollout == b.rollout
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.units, b.units)
    assert a.groups.keys() == b.groups.keys()
    for by in a.groups:
        pd.testing.assert_frame_equal(a.groups[by], b.groups[by])


def test_worker_processes_give_the_digests_made_here(store: Path) -> None:
    tasks = _tasks(store)
    here = [digest_in_store(*task) for task in tasks]
    there = list(Embedded(workers=2).map(digest_in_store, tasks))
    assert len(there) == len(tasks) == 7
    for a, b in zip(here, there, strict=True):
        _same(a, b)


def test_dask_gives_what_the_embedded_engine_gives(store: Path, dask_engine: Dask) -> None:
    """Every table across rollouts, and a trend by a column the digests do not hold."""
    embedded, dask = History(store, engine=Embedded(workers=1)), History(store, engine=dask_engine)
    pd.testing.assert_frame_equal(dask.rollouts(), embedded.rollouts())
    pd.testing.assert_frame_equal(machine_history(dask), machine_history(embedded))
    for by in ("location", "mirror"):
        pd.testing.assert_frame_equal(
            trend(dask, "install_p50_s", by=by), trend(embedded, "install_p50_s", by=by)
        )
    pd.testing.assert_frame_equal(dask.summary(), embedded.summary())


def test_the_cli_engines_agree(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("distributed")
    tables = []
    for argv in (["--engine", "embedded", "--workers", "2"], ["--engine", "dask"]):
        assert main(["rollouts", str(store), "--format", "json", *argv]) == 0
        tables.append(json.loads(capsys.readouterr().out))
    assert tables[0] == tables[1] and len(tables[0]) == 7


def _boom(value: int) -> int:
    if value == 3:
        raise ValueError(f"no {value}")
    return value * 2


def _die(value: int) -> int:
    if value == 1:
        os._exit(9)  # a worker killed mid-task
    return value


def test_a_task_error_is_raised_here_and_a_dead_worker_is_said() -> None:
    with Workers(2) as workers:
        found = workers.map(_boom, [(n,) for n in range(5)])
        assert [next(found) for _ in range(3)] == [0, 2, 4]
        with pytest.raises(ValueError, match="no 3"):
            next(found)
    with Workers(1) as workers, pytest.raises(WorkerError, match="without an answer"):
        list(workers.map(_die, [(0,), (1,), (2,)]))


def test_no_worker_outlives_its_map() -> None:
    workers = Workers(2)
    with workers:
        pids = [process.pid for process in workers._processes]
        found = workers.map(_boom, [(0,), (1,)])
        assert next(found) == 0
        found.close()  # the reader stops early
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_script_needs_no_main_guard(store: Path, tmp_path: Path) -> None:
    """Workers are fresh interpreters: they never run the caller's script again."""
    script = tmp_path / "script.py"
    script.write_text(
        "import cfanalytics as cf\n"
        "from cfanalytics.analysis import Embedded\n"
        f"h = cf.History({str(store)!r}, engine=Embedded(workers=2))\n"
        "h._digested(h.catalog()['rollout'].tolist(), jobs=10**9)\n"
        "print(len(h.rollouts()))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "7"


def test_engine_names_and_bad_settings(store: Path) -> None:
    from cfanalytics import ConfigurationError  # noqa: F401 (the error a missing Dask gives)

    with pytest.raises(ValueError, match="no engine 'spark'; choose from embedded, dask"):
        History(store, engine="spark")
    with pytest.raises(ValueError, match="a scheduler address is for engine='dask'"):
        History(store, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="workers must be at least 1"):
        Embedded(workers=0)
