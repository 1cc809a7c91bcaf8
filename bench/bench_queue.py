"""Benchmark: queueing a large fleet, one request at a time against several in flight.

Usage: ``python bench/bench_queue.py [--jobs 10000] [--latency 0.01] [--concurrency 1,8,32]``

The default scenario scaled to ``--jobs`` install jobs runs in-process; a transport under
the client holds every answer back ``--latency`` seconds (real time), as a distant API
does (the real one answers in about 100 ms). Each concurrency records the same run, as
``cfanalytics record`` does (cassette, journal, event log in a temporary folder), up to
its first poll after queueing, so the wall time is the time to queue the fleet. The first
concurrency is the baseline; the others print their speed-up over it and over the ideal
(``latency * jobs / concurrency``, the wait alone). Every job must be queued exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package

from cfanalytics.recording import RunPlan, arecord
from cfanalytics.simulator import default_scenario
from tests.conftest import SimRig


class Latency(httpx.AsyncBaseTransport):
    """Answers through ``inner`` after ``seconds`` of real time; counts queue requests."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds
        self.queued: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.seconds)
        if request.url.path.endswith("/queue"):
            self.queued[request.url.path] += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def queue_fleet(jobs: int, latency: float, concurrency: int) -> tuple[float, int, int]:
    """Record one run up to its first poll; (wall seconds, jobs queued, most sends of a job)."""
    rig = SimRig(default_scenario().scaled(jobs), seed=1)
    transport = Latency(rig.transport(), latency)
    plan = RunPlan(asid=rig.sim.asid, interval=15.0, max_polls=1, concurrency=concurrency)
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as folder:
        options = rig.record_options(transport=transport, events_dir=Path(folder) / "events")
        started = time.perf_counter()
        run = asyncio.run(arecord(plan, cassette=Path(folder) / "run.json", **options))
        wall = time.perf_counter() - started
    return wall, len(run.progress.queued), max(transport.queued.values(), default=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="install jobs (10000)")
    parser.add_argument("--latency", type=float, default=0.01, help="seconds per answer (0.01)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated (1,8,32)")
    args = parser.parse_args(argv)
    levels = [int(n) for n in args.concurrency.split(",")]
    print(f"queueing: {args.jobs} jobs, {args.latency * 1000:g} ms an answer")
    baseline = None
    for level in levels:
        wall, queued, most = queue_fleet(args.jobs, args.latency, level)
        if most != 1:
            print(f"  concurrency {level}: a job was sent {most} times", file=sys.stderr)
            return 1
        ideal = args.latency * queued / level
        baseline = baseline or wall
        print(
            f"  concurrency {level:3d}: {wall:7.2f} s for {queued} jobs"
            f"  {baseline / wall:5.1f}x faster than concurrency {levels[0]}"
            f"  ({wall / ideal:4.2f}x the wait alone)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
