"""The shipped cassettes: rollouts recorded from the simulator with fixed seeds.

Each is regenerated, byte for byte, by ``cfanalytics make-cassette NAME`` (``make
cassettes`` does all): the simulator runs in-process on a manual clock, the runner's
sleeps advance that clock, and retry jitter is seeded, so nothing depends on the machine.

- ``demo``: the default scenario's rollout of 48 jobs in four locations, a few failures.
- ``troubled``: a bad day. A second image is locked by an outstanding diff ("image locked
  by diffid"), drives fail in Frankfurt and disks fill up in Singapore, ETAs flap, and the
  API answers about one request in ten with a 5xx or a 429.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..simulator import (
    Hotspot,
    ManualClock,
    Rollout,
    Scenario,
    SimTransport,
    Simulator,
    default_scenario,
)
from ._runs import RecordedRun, RunPlan, arecord
from ._sync import run_sync

__all__ = ["SAMPLES", "Sample", "make_cassette"]

# Fixed, public, fake keys: the cassette filters them anyway.
_KEYS = ("sample-access-key", "sample-secret-key")
_BASE_URL = "http://127.0.0.1:8086"


@dataclass(frozen=True)
class Sample:
    """How one shipped cassette is made."""

    description: str
    scenario: Callable[[], Scenario]
    seed: int
    faults: float = 0.0
    plan: RunPlan = field(
        default_factory=lambda: RunPlan(asid=1, interval=15.0, max_duration=3600.0)
    )


def _troubled() -> Scenario:
    base = default_scenario()
    return dataclasses.replace(
        base,
        rollouts=(Rollout(4101), Rollout(4102)),
        hotspots=(
            Hotspot("Frankfurt", "failing_drive", 0.35),
            Hotspot("Singapore", "disk_space", 0.3),
        ),
        eta_noise_sigma=0.45,
        fault_weights=(("5xx", 2.0), ("429", 1.5)),
    )


SAMPLES: dict[str, Sample] = {
    "demo": Sample("the default rollout: 48 jobs, 4 locations", default_scenario, seed=1),
    "troubled": Sample(
        "diff lock, failing drives, full disks, flapping ETAs, 5xx and 429",
        _troubled,
        seed=14,
        faults=0.1,
    ),
}


async def _arecord(sample: Sample, name: str, path: str | os.PathLike[str]) -> RecordedRun:
    scenario = sample.scenario()
    clock = ManualClock(scenario.start)
    sim = Simulator(
        scenario,
        seed=sample.seed,
        clock=clock,
        access_key=_KEYS[0],
        secret_key=_KEYS[1],
        faults=sample.faults,
    )

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return await arecord(
        sample.plan,
        cassette=path,
        base_url=_BASE_URL,
        access_key=_KEYS[0],
        secret_key=_KEYS[1],
        run_id=name,
        transport=SimTransport(sim, sleep=clock.sleep, async_sleep=sleep),
        clock=lambda: datetime.fromtimestamp(clock.now(), UTC),
        sleep=sleep,
        rng=random.Random(sample.seed),
        overwrite=True,
    )


def make_cassette(name: str, path: str | os.PathLike[str]) -> RecordedRun:
    """Record the shipped cassette ``name`` into ``path`` (replacing it)."""
    try:
        sample = SAMPLES[name]
    except KeyError:
        raise ValueError(f"no sample cassette {name!r}; choose from {sorted(SAMPLES)}") from None
    return run_sync(_arecord(sample, name, path))
