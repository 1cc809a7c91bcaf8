"""The simulator's mutable records: machines, image versions and install jobs.

Plain slotted dataclasses owned by :class:`~cfanalytics.simulator.Model`; nothing here
knows about time or HTTP.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from enum import IntEnum

from ._physics import Plan
from ._scenario import Image, Location

__all__ = ["Job", "Machine", "State", "Version", "build_machines", "iso"]


class State(IntEnum):
    """Clanforge job states (``jobstateid``)."""

    CREATED = 1
    PENDING = 2
    QUEUED = 3
    RUNNING = 4
    COMPLETE = 5
    FAILED = 6
    SQUASHED = 7


@dataclass(frozen=True, slots=True)
class Machine:
    """A fleet machine."""

    machineid: int
    name: str  #: e.g. "lon-gs-007"
    number: int  #: 1-based within its location
    location: Location


@dataclass(slots=True)
class Version:
    """An image version and its build ("version job")."""

    imageversionid: int
    key: int  #: seeds the version's random draws; ids are labels only (see the model)
    image: Image
    diffid: int
    restart: bool
    full: bool
    install_at: int | None
    size_mb: float
    created_at: float
    build_start: float
    build_end: float
    nominal_build_s: float
    state: State = State.CREATED
    jobids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Job:
    """An install job: a version onto a location's mirror (machine None) or onto a machine."""

    jobid: int
    subid: int  #: versionmirrorid (mirror job) or machinejobid (machine job)
    key: int  #: seeds the job's random draws; ids are labels only (see the model)
    version: Version
    location: Location
    machine: Machine | None
    created_at: float
    updated_at: float
    state: State = State.CREATED
    attempt: int = 0  #: times queued; each queueing starts a new attempt
    failures: int = 0
    error: str | None = None  #: joberror: set while Failed, cleared when queued again
    last_error: str | None = None  #: the latest failure's message, kept for ground truth
    queue_seq: int = 0  #: FIFO order among queued jobs
    queued_at: float | None = None
    first_queued_at: float | None = None
    first_started_at: float | None = None
    plan: Plan | None = None  #: the current (or last) attempt's fate, once started
    completed_at: float | None = None
    failed_at: float | None = None
    squashed_at: float | None = None

    @property
    def is_mirror(self) -> bool:
        """True for a mirror job (``mirroring=true``)."""
        return self.machine is None

    @property
    def kind(self) -> str:
        """Either "mirror" or "machine"."""
        return "mirror" if self.machine is None else "machine"


def iso(t: float | None) -> str | None:
    """Unix seconds as ISO 8601 UTC with millisecond precision and a 'Z', or None."""
    if t is None:
        return None
    stamp = dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def build_machines(locations: tuple[Location, ...]) -> dict[str, list[Machine]]:
    """Machine ids count up from 31001 across locations; names are "<code>-gs-NNN"."""
    ids = itertools.count(31001)
    return {
        loc.name: [
            Machine(next(ids), f"{loc.code}-gs-{n:03d}", n, loc) for n in range(1, loc.machines + 1)
        ]
        for loc in locations
    }
