"""``bench/bench_history.py`` runs end to end at a small size (speed is for ``make bench``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO


@pytest.mark.slow  # some 45 s
@pytest.mark.timeout(600)
def test_the_history_benchmark_runs_at_a_small_size() -> None:
    pytest.importorskip("distributed")
    pytest.importorskip("duckdb")
    argv = [sys.executable, str(REPO / "bench" / "bench_history.py"), "--sizes", "60k,120k"]
    argv += ["--jobs", "100", "--polls", "30", "--asids", "2", "--workers", "2"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for line in ("synth", "floor: DuckDB GROUP BY", "rollouts --engine embedded"):
        assert line in out
    assert "rollouts --engine dask" in out and "scaling" in out
    assert "history add: cassettes" in out and "history add: event log" in out
