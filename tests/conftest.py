"""Shared fixtures: a clean environment for every test, well-known fake credentials, and the
embedded simulator on a manual clock (``sim_rig``), in-process or served on loopback."""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cfanalytics import AsyncClient, Client
from cfanalytics.simulator import (
    ManualClock,
    Scenario,
    SimTransport,
    Simulator,
    default_scenario,
    serve,
)

# Fake keys, long and distinctive so a leak scan can find them anywhere.
ACCESS_KEY = "AKTESTACCESS0123456789"
SECRET_KEY = "SKTESTSECRET9876543210zyxw"
#: The shipped cassettes and notebooks.
REPO = Path(__file__).resolve().parent.parent
CASSETTES = REPO / "cassettes"
#: A base URL for in-process simulators: never resolved, the transport answers.
SIM_URL = "http://sim.localhost"


def as_regenerated(shipped: Path) -> bytes:
    """A shipped cassette's bytes as regenerating it here would write them: its requests' user
    agent names the httpx release that recorded it, and CI's lowest-versions run has another."""
    installed = f"httpx/{httpx.__version__}".encode()
    return re.sub(rb"(?<= )httpx/[0-9][0-9a-z.]*(?=\n)", installed, shipped.read_bytes())


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
        """The simulated time, as the recorder's ``clock`` reads it."""
        return datetime.fromtimestamp(self.clock.now(), UTC)

    def transport(self) -> SimTransport:
        """The simulator in-process; its latency waits advance the clock too."""
        return SimTransport(self.sim, sleep=self.clock.sleep, async_sleep=self.sleep)

    def client(self, **overrides: Any) -> Client:
        """A :class:`~cfanalytics.Client` over :meth:`transport`; its retry waits advance
        the clock."""
        return Client(**self._connection() | {"sleep": self.clock.sleep} | overrides)

    def async_client(self, **overrides: Any) -> AsyncClient:
        """An :class:`~cfanalytics.AsyncClient` over :meth:`transport`; its retry waits are
        :meth:`sleep`."""
        return AsyncClient(**self._connection() | {"sleep": self.sleep} | overrides)

    def record_options(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for ``record`` / ``arecord`` against this simulator."""
        timing = {"clock": self.now, "sleep": self.sleep, "rng": random.Random(self.seed)}
        return self._connection() | timing | overrides

    def _connection(self) -> dict[str, Any]:
        """What every client and recorder here is given: the URL, fake keys, transport."""
        return {
            "base_url": SIM_URL,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "transport": self.transport(),
        }

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve the simulator over HTTP on loopback for the block; yields its base URL."""
        with serve(self.sim) as server:
            yield str(server.url)

    def truth(self) -> dict[int, dict[str, Any]]:
        """The simulator's ground truth (``/_sim/truth``): each job's record, by job id."""
        answer = self.sim.handle("GET", "/_sim/truth", {}, {})
        return {job["jobid"]: job for job in json.loads(answer.body)["jobs"]}


@pytest.fixture
def sim_rig() -> Callable[..., SimRig]:
    """Make a :class:`SimRig`: ``sim_rig(seed=3, faults=0.1, scenario=...)``."""
    return SimRig
