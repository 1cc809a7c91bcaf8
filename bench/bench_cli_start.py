"""Benchmark: how fast the command line and ``import cfanalytics`` start, against pandas.

Usage: ``python bench/bench_cli_start.py [--runs 15]``

Each command runs in a fresh interpreter ``--runs`` times, interleaved with the baseline
``python -c "import pandas"`` so machine noise hits both alike; the median wall time of each
is printed with its ratio to the baseline's. The aim (issue 12): ``cfanalytics --help`` and
``--version`` within 1.2x of importing pandas, because the CLI loads nothing heavy to parse
its arguments.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLI = str(Path(sys.executable).with_name("cfanalytics"))
COMMANDS = {
    'python -c "import pandas" (baseline)': [sys.executable, "-c", "import pandas"],
    "cfanalytics --help": [CLI, "--help"],
    "cfanalytics --version": [CLI, "--version"],
    'python -c "import cfanalytics"': [sys.executable, "-c", "import cfanalytics"],
    'python -c "import cfanalytics; cfanalytics.job_summary"': [
        sys.executable,
        "-c",
        "import cfanalytics; cfanalytics.job_summary",
    ],
}


def seconds(command: list[str]) -> float:
    """Wall time of one run of ``command``, output discarded."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (15)")
    args = parser.parse_args()
    for command in COMMANDS.values():  # warm the file cache once
        seconds(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, command in COMMANDS.items():
            times[name].append(seconds(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    baseline = next(iter(medians.values()))
    print(f"start-up, median of {args.runs} runs each (interleaved):")
    for name, median in medians.items():
        print(f"  {name:<58} {median * 1000:7.0f} ms  {median / baseline:5.2f}x")


if __name__ == "__main__":
    main()
