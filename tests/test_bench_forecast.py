"""``bench/bench_forecast.py`` runs end to end on a few scenarios (the figures are for
``make bench``)."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import REPO


def test_the_forecast_benchmark_runs_on_a_recorded_fleet_and_a_shipped_cassette() -> None:
    argv = [sys.executable, str(REPO / "bench" / "bench_forecast.py")]
    argv += ["--scenarios", "small,demo", "--every", "6"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = re.findall(
        r"^  (\S+) +(\d+) jobs .* ratio ([\d.]+)x jobeta ([\d.]+)x linear", done.stdout, re.M
    )
    assert [name for name, *_ in rows] == ["small", "demo"], done.stdout
    assert all(float(ratio) > 0 for *_, a, b in rows for ratio in (a, b))
    assert "goals met: MAE <= 0.6x jobeta in" in done.stdout
