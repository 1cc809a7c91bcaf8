"""The main job, ``cfanalytics demo``: a rollout on the embedded simulator, watched live.

Starts the simulator as a real HTTP server on loopback, talks to it with the same
:class:`~cfanalytics.Client` a user points at the real API, queues every queueable job of
the default rollout and follows it with a progress bar until every job has ended.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections import Counter
from collections.abc import Mapping
from typing import TextIO

from tqdm import tqdm

from ._watch import QUEUEABLE, RolloutProgress, queue_jobs, watch_rollout
from .client import Client, InstallJob
from .simulator import ScaledClock, Simulator, default_scenario, serve

__all__ = ["run_demo"]


def _keys() -> tuple[str, str]:
    # Throwaway keys: the demo never needs (or touches) the user's real Clanforge keys.
    return "demo-" + secrets.token_hex(6), secrets.token_urlsafe(18)


def _plan(jobs: list[InstallJob]) -> str:
    kinds = Counter(job.kind for job in jobs)
    places = {job.location for job in jobs}
    return (
        f"{kinds['mirror']} mirror and {kinds['machine']} machine jobs "
        f"across {len(places)} locations"
    )


def _summary(progress: RolloutProgress, jobs: Mapping[int, InstallJob], out: TextIO) -> None:
    rows: dict[str, Counter[str]] = {}
    for jobid in progress.watched:
        outcome = progress.ended.get(jobid, "unfinished")
        rows.setdefault(jobs[jobid].location or "?", Counter())[outcome] += 1
    print(f"\n{'location':<12} {'completed':>9} {'failed':>6} {'unfinished':>10}", file=out)
    for location, counts in sorted(rows.items()):
        print(
            f"{location:<12} {counts['completed']:>9} {counts['failed']:>6} "
            f"{counts['unfinished']:>10}",
            file=out,
        )
    failed = [progress.latest[j] for j, o in sorted(progress.ended.items()) if o == "failed"]
    for job in failed:
        print(f"  failed: job {job.jobid} ({job.kind}, {job.location}): {job.joberror}", file=out)


def run_demo(
    *, speed: float, seed: int, interval: float, max_polls: int, out: TextIO = sys.stdout
) -> int:
    """Run the demo rollout; ``interval`` is in simulated seconds. Returns the exit code."""
    scenario = default_scenario()
    access, secret = _keys()
    clock = ScaledClock(start=scenario.start, speed=speed)
    sim = Simulator(scenario, seed=seed, clock=clock, access_key=access, secret_key=secret)
    with (
        serve(sim) as server,
        Client(base_url=str(server.url), access_key=access, secret_key=secret) as client,
    ):
        print(f"Clanforge simulator on {server.url} (ASID {sim.asid}, {speed:g}x)", file=out)
        listing = {job.jobid: job for job in client.install_status(sim.asid)}
        todo = [job for job in listing.values() if job.state in QUEUEABLE]
        print(f"Queueing {_plan(todo)}.", file=out)
        queued, errors = queue_jobs(client, sim.asid, todo)
        for job, exc in errors:
            print(f"  not queued: job {job.jobid}: {exc}", file=out)
        with tqdm(total=len(queued), unit="job", desc="rollout", file=out) as bar:

            def on_poll(progress: RolloutProgress) -> None:
                bar.n = len(progress.ended)
                bar.set_postfix(dict(sorted(progress.counts().items())), refresh=True)

            progress = watch_rollout(
                client,
                sim.asid,
                [result.jobid for result in queued],
                interval=interval / speed,
                sleep=time.sleep,
                max_polls=max_polls,
                on_poll=on_poll,
            )
        _summary(progress, listing, out)
    return 0
