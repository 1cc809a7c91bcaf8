"""Shared fixtures: a clean environment for every test, well-known fake credentials, and the
embedded simulator in-process on a manual clock (``sim_rig``)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cfanalytics.simulator import ManualClock, Scenario, SimTransport, Simulator, default_scenario

# Fake keys, long and distinctive so a leak scan can find them anywhere.
ACCESS_KEY = "AKTESTACCESS0123456789"
SECRET_KEY = "SKTESTSECRET9876543210zyxw"
#: The shipped cassettes and notebooks.
REPO = Path(__file__).resolve().parent.parent
CASSETTES = REPO / "cassettes"
#: A base URL for in-process simulators: never resolved, the transport answers.
SIM_URL = "http://sim.localhost"


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """Tests never see the developer's real Clanforge settings, and leave none behind."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("CLANFORGE_"):
            del os.environ[name]
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def keys() -> dict[str, str]:
    """Keyword arguments giving a client or simulator the fake credentials."""
    return {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}


@dataclass
class SimRig:
    """A simulator in-process on a manual clock that the runner's sleeps advance, so a
    rollout of simulated hours records in well under a second, the same every time."""

    scenario: Scenario = field(default_factory=default_scenario)
    seed: int = 0
    faults: float = 0.0
    clock: ManualClock = field(init=False)
    sim: Simulator = field(init=False)

    def __post_init__(self) -> None:
        self.clock = ManualClock(self.scenario.start)
        self.sim = Simulator(
            self.scenario,
            seed=self.seed,
            clock=self.clock,
            faults=self.faults,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
        )

    async def sleep(self, seconds: float) -> None:
        """The runner's and the client's wait: moves the simulated clock on, at once."""
        self.clock.advance(seconds)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    def transport(self) -> SimTransport:
        return SimTransport(self.sim, sleep=self.clock.sleep, async_sleep=self.sleep)

    def record_options(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for ``record`` / ``arecord`` against this simulator."""
        return {
            "base_url": SIM_URL,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "transport": self.transport(),
            "clock": self.now,
            "sleep": self.sleep,
            "rng": random.Random(self.seed),
        } | overrides


@pytest.fixture
def sim_rig() -> Callable[..., SimRig]:
    """Make a :class:`SimRig`: ``sim_rig(seed=3, faults=0.1, scenario=...)``."""
    return SimRig
