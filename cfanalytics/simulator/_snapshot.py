"""What a job looks like from outside at one moment: the reported fields.

Jobs report at update ticks (every ``update_interval_s`` of sim time since the scenario
start), so progress, ETA and ``jobupdated`` are read as of the last tick, not the current
instant. ETA noise is keyed by (seed, job key, attempt, tick): the same tick always shows the same
ETA, whatever was asked before.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ._physics import keyed_lognormal_noise
from ._records import Job, State, Version
from ._scenario import Scenario

__all__ = ["Snapshot", "job_snapshot", "last_tick", "version_snapshot"]


class Snapshot(NamedTuple):
    """The dynamic job fields as the API reports them at one moment (ints, unix seconds).

    A NamedTuple rather than a frozen dataclass: one is built per Running job per tick, and
    tuple construction is several times cheaper.
    """

    created: int
    error: str | None
    eta: int | None
    failed: int
    progress: int
    start: int | None
    state: State
    updated: int


def last_tick(scenario: Scenario, now: float, since: float) -> tuple[float, int]:
    """The latest update tick at or before ``now`` and not before ``since``, with its index.

    Before the first tick after ``since`` the job's report is the one made at ``since`` itself
    (index -1).
    """
    interval = scenario.update_interval_s
    index = math.floor((now - scenario.start) / interval)
    tick = scenario.start + index * interval
    return (tick, index) if tick >= since else (since, -1)


def job_snapshot(job: Job, now: float, scenario: Scenario, seed: int) -> Snapshot:
    """An install job's fields at ``now``: ETA only while Running, progress as of a tick."""
    plan = job.plan
    eta: int | None = None
    progress = 100 if job.state is State.COMPLETE else 0
    updated = job.updated_at
    if job.state is State.RUNNING and plan is not None:
        updated, index = last_tick(scenario, now, plan.start)
        key = f"{seed}:{job.key}:{job.attempt}:eta:{index}"
        percent = plan.progress(updated)
        noise = keyed_lognormal_noise(key, scenario.eta_noise_sigma)
        eta = round(plan.eta(updated, noise, percent))
        progress = min(int(percent), 99)
    elif job.state is State.FAILED and plan is not None:
        progress = int(plan.progress(plan.end))
    start = None if plan is None else int(plan.start)
    return Snapshot(
        created=int(job.created_at),
        error=job.error,
        eta=eta,
        failed=job.failures,
        progress=progress,
        start=start,
        state=job.state,
        updated=int(updated),
    )


def version_snapshot(version: Version, now: float, scenario: Scenario) -> Snapshot:
    """The version job's fields at ``now``: a linear build, reported at ticks too."""
    created = int(version.created_at)
    if now < version.build_start:
        return Snapshot(created, None, None, 0, 0, None, State.CREATED, created)
    start = int(version.build_start)
    if version.state is State.COMPLETE:
        end = int(version.build_end)
        return Snapshot(created, None, None, 0, 100, start, State.COMPLETE, end)
    tick, _ = last_tick(scenario, now, version.build_start)
    span = version.build_end - version.build_start
    progress = min(int(100 * (tick - version.build_start) / span), 99)
    eta = round(version.build_start + version.nominal_build_s)
    return Snapshot(created, None, eta, 0, progress, start, State.RUNNING, int(tick))
