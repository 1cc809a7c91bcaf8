"""Benchmark: recording a rollout under faults, against the same rollout without faults.

Usage: ``python bench/bench_soak.py [--jobs 1000] [--faults 0.1] [--seed 7]``

The rig of ``tests/test_soak.py`` (imported from there, so test and benchmark judge alike):
the default scenario scaled to ``--jobs`` install jobs, the simulator in-process on a manual
clock that only the client's sleeps move, a counting transport under the recorder, a JSON
cassette and an event log in a temporary folder. Recorded twice in the same run:

* baseline: ``faults=0``;
* soak: ``faults=--faults`` (5xx bursts, 429 with Retry-After, dropped connections, latency
  spikes and timeouts, truncated and non-JSON bodies).

Prints, for each: responses received at the transport (and requests with none), responses
recorded in the event log, faults by kind as told apart at the transport, the jobs checked
against ``/_sim/truth`` (those job_summary gives an outcome for), agreeing, unknown and
disagreeing, and the wall time of the recording. The ratio soak/baseline is what faults
cost: retries, Retry-After waits (free on a manual clock) and error rows.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package

from cfanalytics.analysis import job_summary
from tests.recording.test_soak import Soak, judge, outcomes_in_log, record_soak


def recorded_responses(soak: Soak) -> tuple[int, int]:
    """Responses in the event log, and requests it records as having had none."""
    logged = outcomes_in_log(soak.events)
    return sum(s is not None for s in logged), logged.count(None)


def run(jobs: int, faults: float, seed: int) -> Soak:
    """Record one rollout in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as folder:
        return record_soak(
            Path(folder), jobs=jobs, faults=faults, seed=seed, timer=time.perf_counter
        )


def report(label: str, soak: Soak) -> None:
    """Print one recording's figures."""
    verdicts = judge(job_summary(soak.events), soak.truth).value_counts()
    agree, unknown, disagree = (int(verdicts.get(v, 0)) for v in ("agree", "unknown", "disagree"))
    logged, logged_none = recorded_responses(soak)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(soak.tally.faults.items())) or "none"
    print(f"{label}:")
    print(f"  jobs                              {soak.jobs:9d}")
    print(f"  responses received (transport)    {soak.tally.responses:9d}")
    print(f"  no response (transport)           {soak.tally.no_response:9d}")
    print(f"  responses recorded (event log)    {logged:9d}")
    print(f"  no-response rows (event log)      {logged_none:9d}")
    print(f"  faults by kind                    {kinds}")
    print(
        f"  queue errors / failed polls       {len(soak.progress.queue_errors):9d} / "
        f"{soak.progress.failed_polls}"
    )
    print(f"  jobs checked against truth        {agree + disagree:9d}")
    print(f"    agreeing                        {agree:9d}")
    print(f"    disagreeing                     {disagree:9d}")
    print(f"  unknown / unfinished (honest)     {unknown:9d}")
    print(f"  unhandled asyncio errors          {len(soak.loop_errors):9d}")
    print(f"  stop reason                       {soak.progress.stop_reason}")
    print(f"  wall time of the recording        {soak.wall_s:9.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="install jobs in the rollout")
    parser.add_argument("--faults", type=float, default=0.1, help="fault probability per request")
    parser.add_argument("--seed", type=int, default=7, help="simulator and jitter seed")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the runner warns of every failed queue; figures only
    print(f"soak: {args.jobs} jobs, faults {args.faults:g}, seed {args.seed}")
    baseline = run(args.jobs, 0.0, args.seed)
    report("baseline (no faults)", baseline)
    soak = run(args.jobs, args.faults, args.seed)
    report(f"soak (faults {args.faults:g})", soak)
    print(f"ratio soak/baseline wall time       {soak.wall_s / baseline.wall_s:9.2f}x")
    responses = soak.tally.responses / max(baseline.tally.responses, 1)
    print(f"ratio soak/baseline responses       {responses:9.2f}x")


if __name__ == "__main__":
    main()
