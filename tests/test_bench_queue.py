"""``bench/bench_queue.py`` runs end to end at a small size (speed is for ``make bench``)."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import REPO


def test_the_queue_benchmark_runs_at_a_small_size() -> None:
    argv = [sys.executable, str(REPO / "bench" / "bench_queue.py")]
    argv += ["--jobs", "150", "--latency", "0.005", "--concurrency", "1,6"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = re.findall(r"concurrency +(\d+): +([\d.]+) s for (\d+) jobs", done.stdout)
    assert [(level, jobs) for level, _, jobs in rows] == [("1", "150"), ("6", "150")], done.stdout
    assert "faster than concurrency 1" in done.stdout and "the wait alone" in done.stdout
