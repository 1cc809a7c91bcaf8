"""The shipped cassettes: rollouts recorded from the simulator with fixed seeds.

Each is regenerated, byte for byte, by ``cfanalytics make-cassette NAME`` (``make
cassettes`` does all): the simulator runs in-process on a manual clock, the runner's
sleeps advance that clock, and retry jitter is seeded, so nothing depends on the machine.

- ``demo``: the default scenario's rollout of 48 jobs in four locations, a few failures.
- ``troubled``: a bad day. A second image is locked by an outstanding diff ("image locked
  by diffid"), drives fail in Frankfurt and disks fill up in Singapore, ETAs flap, and the
  API answers about one request in ten with a 5xx or a 429.

And one folder, ``history`` (``cfanalytics make-cassette history`` writes
``cassettes/history/week-1.yaml`` ... ``week-6.yaml``, :func:`make_history`): six weekly
rollouts of ASID 1, each its own image version, on a small fleet (London 8 machines,
Frankfurt 7, Singapore 6; 24 jobs). Singapore degrades week by week: its mirror -> machines
link drops from 60 to 24 MB/s and network failures creep up, so its installs get slower.
Frankfurt's third machine has a failing drive and fails in most weeks; other failures are
the occasional base rate.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..simulator import (
    Hotspot,
    Location,
    ManualClock,
    Rollout,
    Scenario,
    SimTransport,
    Simulator,
    default_scenario,
)
from ._runs import RecordedRun, RunPlan, arecord
from ._sync import run_sync

__all__ = ["HISTORY", "SAMPLES", "Sample", "make_cassette", "make_history", "record_sample"]

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


#: The history's weeks start this many seconds apart.
_WEEK_S = 7 * 86400.0
#: Per week of the history: Singapore's mirror -> machines link (MB/s) and the extra
#: probability of a network failure on each of its machine installs.
_SINGAPORE_BY_WEEK = (
    (60.0, 0.0),
    (50.0, 0.02),
    (42.0, 0.04),
    (35.0, 0.06),
    (29.0, 0.08),
    (24.0, 0.1),
)
_HISTORY_PLAN = RunPlan(asid=1, interval=30.0, max_duration=7200.0)


def _history_week(week: int) -> Scenario:
    """Week ``week`` (0-based) of the history: a small fleet, Singapore a little worse."""
    base = default_scenario()
    bandwidth, network = _SINGAPORE_BY_WEEK[week]
    return dataclasses.replace(
        base,
        start=base.start + week * _WEEK_S,
        locations=(
            Location("London", "lon", "mirror-lon-01", 8, 4, 40.0, 60.0, regionid=11),
            Location("Frankfurt", "fra", "mirror-fra-01", 7, 4, 40.0, 60.0, regionid=12),
            Location("Singapore", "sin", "mirror-sin-01", 6, 6, bandwidth, 40.0, regionid=31),
        ),
        hotspots=(
            Hotspot("Frankfurt", "failing_drive", 0.9, machines=(3,)),
            Hotspot("Singapore", "network", network),
        ),
    )


#: The weekly rollouts of the ``history`` folder, ``week-1`` to ``week-6``, one seed each.
HISTORY: dict[str, Sample] = {
    f"week-{week + 1}": Sample(
        f"week {week + 1}: Singapore's link at {bandwidth:g} MB/s, fra machine 3 failing",
        functools.partial(_history_week, week),
        seed=week + 1,
        plan=_HISTORY_PLAN,
    )
    for week, (bandwidth, _) in enumerate(_SINGAPORE_BY_WEEK)
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


def record_sample(sample: Sample, path: str | os.PathLike[str], *, name: str) -> RecordedRun:
    """Record ``sample`` (any scenario, seed and plan: a benchmark's fleets too) into the
    cassette ``path`` (replacing it), as the shipped ones are made, with run id ``name``."""
    return run_sync(_arecord(sample, name, path))


def make_cassette(name: str, path: str | os.PathLike[str]) -> RecordedRun:
    """Record the shipped cassette ``name`` into ``path`` (replacing it)."""
    try:
        sample = SAMPLES[name]
    except KeyError:
        raise ValueError(f"no sample cassette {name!r}; choose from {sorted(SAMPLES)}") from None
    return run_sync(_arecord(sample, name, path))


def make_history(folder: str | os.PathLike[str]) -> list[RecordedRun]:
    """Record the shipped history into ``folder`` (created if missing): one cassette per
    week, ``week-1.yaml`` to ``week-6.yaml``, replacing them. Returns the runs in order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        run_sync(_arecord(sample, name, folder / f"{name}.yaml"))
        for name, sample in HISTORY.items()
    ]
