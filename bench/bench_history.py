"""Benchmark: a year of fleet history on one machine, and on Dask, against a DuckDB floor.

    python bench/bench_history.py [--sizes 10M,100M] [--jobs 1000] [--polls 100]
                                  [--asids 10] [--workers N] [--dask-workers 2] [--dir DIR]

For each size (observations: rows of the events table), in the same run:

1. ``cfanalytics history synth`` writes a history of that many rows (``jobs`` jobs polled about
   ``polls`` times per rollout, over ``asids`` ASIDs, a rollout a week each): rows/s;
2. the floor: one DuckDB query over the same files, per (rollout, jobid): first and last seen,
   last state and largest progress (``GROUP BY``, nothing else);
3. ``cfanalytics rollouts DIR`` with the embedded engine (worker processes here), then with
   ``--engine dask`` (a LocalCluster of ``dask-workers`` processes).

Each step runs as a fresh process tree; its peak RSS is the largest ``ru_maxrss`` of the
processes in it (the step's own, or of a worker it waited for). Printed: seconds, the ratio
to the floor (goal: at most 3x), seconds per million rows against the smallest size (goal:
linear, the same), and peak RSS (goal: at most 2 GB, the same at every size). Last, the
throughput of ``cfanalytics history add`` of cassettes and of an event log.

The store of each size is kept under ``--dir`` (default: a temporary folder, removed).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "cfanalytics.cli"]
FLOOR_GOAL, RSS_GOAL_MB = 3.0, 2048
FLOOR_SQL = """
SELECT rollout, jobid, min(observed_at) AS first_seen, max(observed_at) AS last_seen,
       arg_max(jobstateid, observed_at) AS last_state, max(jobprogress) AS max_progress
FROM read_parquet('{dir}/**/*.parquet', hive_partitioning = true)
WHERE jobid IS NOT NULL
GROUP BY rollout, jobid
"""


def rows(text: str) -> int:
    """``10M``, ``200k`` or ``1500000`` as a number of rows."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def step(argv: list[str]) -> tuple[float, float]:
    """Run ``argv`` as a fresh process tree: its seconds and peak RSS (MB)."""
    wrapper = [sys.executable, __file__, "--step", json.dumps(argv)]
    done = subprocess.run(wrapper, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{done.stderr.strip()[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures["seconds"], figures["rss_mb"]


def run_step(argv: list[str]) -> None:
    """Inside the wrapper: run the command, report its time and its tree's peak RSS."""
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KB on Linux
    print(json.dumps({"seconds": seconds, "rss_mb": peak_kb / 1024}))


def floor_command(store: Path) -> list[str]:
    code = f"import duckdb; duckdb.sql({FLOOR_SQL.format(dir=store)!r}).fetchall()"
    return [sys.executable, "-c", code]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10M,100M", help="rows of each history (10M,100M)")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per rollout (1000)")
    parser.add_argument("--polls", type=int, default=100, help="polls per job (100)")
    parser.add_argument("--asids", type=int, default=10, help="ASIDs (10)")
    parser.add_argument("--workers", type=int, help="embedded workers (default: the cores)")
    parser.add_argument("--dask-workers", type=int, default=2, help="LocalCluster workers (2)")
    parser.add_argument("--dir", type=Path, help="keep the stores here (default: temporary)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        run_step(json.loads(args.step))
        return
    base = args.dir or Path(tempfile.mkdtemp(prefix="bench-history-"))
    try:
        per_size = [measure(base, size, args) for size in args.sizes.split(",")]
        report_scaling(per_size)
        measure_adds(base)
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)


def measure(base: Path, size: str, args: argparse.Namespace) -> dict[str, float]:
    """Synthesize a history of ``size`` rows, then time the floor and both engines on it."""
    n_rollouts = max(1, round(rows(size) / (args.jobs * args.polls)))
    store = base / f"history-{size}"
    shape = ["--jobs", str(args.jobs), "--polls", str(args.polls), "--asids", str(args.asids)]
    synth = [*CLI, "history", "synth", "--rollouts", str(n_rollouts), *shape, "--to", str(store)]
    synth_s, synth_rss = step(synth)
    total = count_rows(store)
    print(f"\n{size}: {n_rollouts} rollouts of {args.jobs} jobs, {total:,} rows")
    speed = total / synth_s
    print(f"  synth                {synth_s:8.1f} s  {speed:>12,.0f} rows/s  {synth_rss:7.0f} MB")
    floor_s, floor_rss = step(floor_command(store))
    print(f"  floor: DuckDB GROUP BY {floor_s:6.1f} s  ratio  1.00x  {floor_rss:19.0f} MB")
    figures = {"rows": total, "floor": floor_s}
    workers = [] if args.workers is None else ["--workers", str(args.workers)]
    engines = {
        "embedded": ["--engine", "embedded", *workers],
        "dask": ["--engine", "dask", "--workers", str(args.dask_workers)],
    }
    for name, options in engines.items():
        seconds, rss = step([*CLI, "rollouts", str(store), "--format", "csv", *options])
        ratio = seconds / floor_s
        verdict = "meets" if ratio <= FLOOR_GOAL else "misses"
        print(
            f"  rollouts --engine {name:8} {seconds:6.1f} s  ratio {ratio:5.2f}x  {rss:7.0f} MB"
            f"  ({verdict} the {FLOOR_GOAL:g}x goal; RSS goal {RSS_GOAL_MB} MB)"
        )
        figures[name], figures[f"{name}_rss"] = seconds, rss
    return figures


def report_scaling(per_size: list[dict[str, float]]) -> None:
    """Seconds per million rows against the smallest size: 1.00x is linear."""
    if len(per_size) < 2:
        return
    first = per_size[0]
    print("\nscaling (seconds per million rows, against the smallest size; 1.00x is linear)")
    for figures in per_size[1:]:
        for name in ("floor", "embedded", "dask"):
            ratio = (figures[name] / figures["rows"]) / (first[name] / first["rows"])
            print(f"  {name:8} {int(figures['rows']):>13,} rows  {ratio:5.2f}x")
        for name in ("embedded", "dask"):
            grew = figures[f"{name}_rss"] / first[f"{name}_rss"]
            print(f"  {name:8} peak RSS {grew:5.2f}x the smallest size's (goal: the same)")


def measure_adds(base: Path) -> None:
    """``history add`` throughput: the shipped cassettes, then an event log of synth events."""
    cassettes = [str(REPO / "cassettes" / "demo.yaml"), str(REPO / "cassettes" / "troubled.yaml")]
    cassettes.append(str(REPO / "cassettes" / "history"))
    store = base / "adds"
    seconds, _ = step([*CLI, "history", "add", *cassettes, "--to", str(store / "a")])
    added = count_rows(store / "a")
    print(f"\nhistory add: cassettes  {seconds:6.1f} s  {added / seconds:>12,.0f} rows/s")
    log = store / "log"
    code = (
        "import sys; from cfanalytics.recording import EventLog, synthetic_events\n"
        "events = synthetic_events(2000, 100, seed=7)\n"
        f"with EventLog({str(log)!r}, run_id=str(events['run_id'].iloc[0])) as out:\n"
        "    out.append(events.to_dict('records'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    seconds, rss = step([*CLI, "history", "add", str(log), "--to", str(store / "b")])
    added = count_rows(store / "b")
    print(
        f"history add: event log  {seconds:6.1f} s  {added / seconds:>12,.0f} rows/s  {rss:.0f} MB"
    )


def count_rows(store: Path) -> int:
    import pyarrow.dataset as ds

    return int(ds.dataset(str(store), format="parquet", partitioning="hive").count_rows())


if __name__ == "__main__":
    main()
