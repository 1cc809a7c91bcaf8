"""Scenarios: every knob of the simulator in one frozen record, with documented defaults.

A :class:`Scenario` says what fleet exists, which images roll out, how fast and how badly
installs go, and how the API answers where the Clanforge docs are silent (section 6 of
``clanforge-api.md``: each row of that table is a setting here, so tests can flip it).

Load one with :meth:`Scenario.from_file` (JSON, or TOML when the suffix is ``.toml``): values
are applied over :func:`default_scenario`, nested records as objects, and an unknown key raises
``ValueError`` naming it.

Clanforge's job and image-version ids are global, so two recordings should never name the same
jobs. Unless a scenario sets ``first_jobid`` / ``first_imageversionid``, :meth:`Scenario.first_ids`
derives them from a BLAKE2b hash of the seed and every other setting: another seed or another
scenario gives other ids, the same pair always the same ones.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "FAILURE_CAUSES",
    "FAULT_KINDS",
    "DiffLock",
    "Hotspot",
    "Image",
    "Location",
    "RateLimit",
    "Rollout",
    "Scenario",
    "default_scenario",
]

#: A job's sub-id (``versionmirrorid`` / ``machinejobid``) is its job id plus this.
SUBID_OFFSET = 500_000
# Derived first ids are drawn from these [low, high) ranges: job ids of 7 digits, low enough
# that a block of _JOB_BLOCK jobs and its sub-ids stay 7 digits; image version ids of 6 digits,
# with a block of _VERSION_BLOCK ids above each that holds none of the scenario's diff ids.
_JOB_BLOCK = SUBID_OFFSET
_JOBID_RANGE = (1_000_000, 10_000_000 - SUBID_OFFSET - _JOB_BLOCK)
_VERSION_BLOCK = 10_000
_VERSIONID_RANGE = (100_000, 1_000_000 - _VERSION_BLOCK)
_ID_FIELDS = ("first_jobid", "first_imageversionid")

#: The documented install-failure causes (``clanforge-api.md`` section 5), as setting keys.
FAILURE_CAUSES = (
    "disk_space",
    "image_missing",
    "permissions",
    "network",
    "unreachable",
    "diff_lock",
    "failing_drive",
)
#: The fault kinds the simulator can inject when ``faults > 0``.
FAULT_KINDS = ("latency", "5xx", "429", "drop", "truncated", "html")

MirroringAs = Literal["bool", "int", "string"]
RestartAs = Literal["int", "bool"]
StatusOrder = Literal["jobid", "shuffled"]


@dataclass(frozen=True, slots=True)
class Location:
    """A datacentre: one local mirror and ``machines`` game servers behind it."""

    name: str  #: shown in the status list's ``location`` field, e.g. "London"
    code: str  #: machine-name prefix: "lon" gives "lon-gs-007"
    mirror: str  #: the local mirror's name (the ``mirror`` field)
    machines: int  #: number of fleet machines
    max_parallel: int  #: machine installs that may run at once in this location
    bandwidth_mbps: float  #: mirror -> machines link, MB/s, shared by running installs
    mirror_mbps: float  #: primary mirror -> this mirror link, MB/s
    regionid: int  #: region id in the v2 image status detail
    fleetid: int = 3401  #: fleet id in the v2 image status detail


@dataclass(frozen=True, slots=True)
class Image:
    """A game image; each new version installs on every machine of its locations."""

    imageid: int
    name: str
    imagepath: str  #: the ``imagepath`` field
    size_mb: float  #: full image size; a diff version is ``diff_size_fraction`` of it
    diffids: tuple[int, ...]  #: diff ids that ``imageversion/create`` accepts for this image
    locations: tuple[str, ...] = ()  #: location names it installs to; empty = all


@dataclass(frozen=True, slots=True)
class Rollout:
    """An image version built before the scenario starts: its install jobs wait, Pending."""

    imageid: int
    restart: bool = True
    full: bool = True
    age_s: float = 900.0  #: the version was created this long before ``start``


@dataclass(frozen=True, slots=True)
class Hotspot:
    """Extra failure probability, all of one cause, on part of one location (a cluster)."""

    location: str
    cause: str  #: one of :data:`FAILURE_CAUSES`
    probability: float  #: added to the base failure rate of each matching attempt
    machines: tuple[int, ...] = ()  #: 1-based machine numbers; empty = every machine
    mirror: bool = False  #: apply to the location's mirror job instead of its machines


@dataclass(frozen=True, slots=True)
class DiffLock:
    """An outstanding diff that blocks queueing installs of an image for a while."""

    imageid: int
    diffid: int  #: named in the error: "image locked by diffid: N"
    until_s: float  #: seconds after ``start`` when the lock lifts


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` per fixed window of ``window_s`` sim seconds, then HTTP 429."""

    requests: int
    window_s: float = 60.0


def _default_locations() -> tuple[Location, ...]:
    return (
        Location("London", "lon", "mirror-lon-01", 12, 8, 110.0, 80.0, regionid=11),
        Location("Frankfurt", "fra", "mirror-fra-01", 10, 6, 90.0, 70.0, regionid=12),
        Location("Ashburn", "ash", "mirror-ash-01", 14, 8, 110.0, 60.0, regionid=21),
        Location("Singapore", "sin", "mirror-sin-01", 8, 5, 55.0, 40.0, regionid=31),
    )


def _default_images() -> tuple[Image, ...]:
    return (
        Image(4101, "Arena Server (Linux)", "/games/arena/server", 3000.0, (218595, 218601)),
        Image(
            4102,
            "Arena Match Tools",
            "/games/arena/tools",
            1200.0,
            (218602,),
            locations=("London", "Frankfurt"),
        ),
    )


@dataclass(frozen=True, slots=True)
class Scenario:
    """Every setting of the simulator. Defaults give a ~15-20 min rollout with a few failures."""

    # --- identity and time ---------------------------------------------------------------
    asid: int = 1  #: the one account service id the simulator serves
    start: float = 1793610000.0  #: sim start, unix seconds (2026-11-02T09:00:00Z)
    # --- fleet and images ----------------------------------------------------------------
    locations: tuple[Location, ...] = field(default_factory=_default_locations)
    images: tuple[Image, ...] = field(default_factory=_default_images)
    rollouts: tuple[Rollout, ...] = (Rollout(4101),)  #: versions built at start, jobs Pending
    #: Install job ids count up from here; their sub-ids from here + 500,000. None (the
    #: default): derived from the seed and the other settings, a 7-digit id in 1,000,000 -
    #: 8,999,999, so each scenario and seed names other jobs (:meth:`first_ids`).
    first_jobid: int | None = None
    #: Image version ids count up from here. None (the default): derived like
    #: ``first_jobid``, a 6-digit id in 100,000 - 989,999 whose next 10,000 ids hold none of
    #: the scenario's diff ids.
    first_imageversionid: int | None = None
    # --- timing and progress -------------------------------------------------------------
    update_interval_s: float = 15.0  #: jobs report progress/ETA at these sim-time ticks
    queue_delay_s: tuple[float, float] = (2.0, 12.0)  #: queued -> ready, uniform range
    version_build_s: float = 60.0  #: median build time of an image version job
    machine_disk_mbps: float = 12.0  #: cap on one machine's download rate, MB/s
    extract_mbps: float = 17.0  #: extract (install) phase rate on a machine, MB/s
    download_progress_share: float = 0.7  #: share of the 0-100 % the download phase covers
    diff_size_fraction: float = 0.35  #: size of a non-full version relative to the image
    duration_sigma: float = 0.25  #: lognormal sigma of phase durations
    eta_noise_sigma: float = 0.1  #: lognormal sigma of the multiplicative noise on jobeta
    # --- failures ------------------------------------------------------------------------
    machine_failure_rate: float = 0.025  #: base failure probability per machine attempt
    mirror_failure_rate: float = 0.02  #: base failure probability per mirror attempt
    failure_causes: tuple[tuple[str, float], ...] = (
        ("network", 3.0),
        ("unreachable", 2.0),
        ("disk_space", 2.0),
        ("permissions", 1.0),
        ("image_missing", 0.5),
        ("diff_lock", 0.5),
        ("failing_drive", 1.0),
    )  #: (cause, weight) for base failures
    hotspots: tuple[Hotspot, ...] = (Hotspot("Frankfurt", "failing_drive", 0.2),)
    diff_locks: tuple[DiffLock, ...] = (DiffLock(4102, 218599, 1200.0),)
    # --- status list (clanforge-api.md section 6) ----------------------------------------
    listed_states: tuple[int, ...] = (1, 2, 3, 4)  #: states the status list shows
    list_failed_jobs: bool = True  #: also list Failed (6) jobs until queued again
    status_order: StatusOrder = "jobid"  #: "jobid" ascending, or "shuffled" per request
    # --- field rendering (clanforge-api.md section 6) ------------------------------------
    mirroring_as: MirroringAs = "bool"  #: true/false, 1/0, or "1"/"0"
    restart_as: RestartAs = "int"  #: 1/0 or true/false
    duplicate_restart_key: bool = True  #: repeat "restart" last, as the documented example
    jobstart_before_start: Literal[""] | None = None  #: jobstart value before the job starts
    queue_success_field: bool = True  #: add "success": true to queue/version responses
    include_jobstateid: bool = True  #: omit jobstateid when False (it is optional)
    complete_state_name: str = "Complete"  #: or "Completed": the docs use both
    # --- limits and faults ---------------------------------------------------------------
    rate_limit: RateLimit | None = None  #: off by default
    fault_weights: tuple[tuple[str, float], ...] = (
        ("latency", 3.0),
        ("5xx", 2.0),
        ("429", 1.5),
        ("drop", 1.5),
        ("truncated", 1.5),
        ("html", 1.0),
    )  #: relative frequency of each fault kind when ``faults > 0``
    fault_latency_s: tuple[float, float] = (1.0, 12.0)  #: latency spike range, seconds
    fault_burst: tuple[int, int] = (2, 4)  #: length range of a 5xx burst, requests

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        """Load settings from JSON (or TOML if the suffix is ``.toml``) over the defaults."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a scenario file must hold an object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        """Apply ``data`` (plain JSON-like values) over the defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        changes = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"unknown scenario setting {key!r}")
            changes[key] = _convert(key, value)
        return dataclasses.replace(default_scenario(), **changes)

    def first_ids(self, seed: int) -> tuple[int, int]:
        """The first job id and first image version id a simulator with ``seed`` hands out.

        An explicit ``first_jobid`` / ``first_imageversionid`` is returned as it is. A None is
        derived from a BLAKE2b hash of ``seed`` and every setting but these two (never from
        Python's salted ``hash()``), so it is the same on every machine and every run, and
        changes with the seed or any setting. Ids only label jobs: the simulated run, its
        timings and failures, are the same whatever ids it is given.
        """
        first_jobid, first_versionid = self.first_jobid, self.first_imageversionid
        if first_jobid is not None and first_versionid is not None:
            return first_jobid, first_versionid
        settings = {k: v for k, v in dataclasses.asdict(self).items() if k not in _ID_FIELDS}
        key = json.dumps([seed, _canonical(settings)], sort_keys=True, separators=(",", ":"))
        if first_jobid is None:
            first_jobid = _draw(f"jobid:{key}", _JOBID_RANGE)
        if first_versionid is None:
            diffids = {d for img in self.images for d in img.diffids}
            diffids |= {lock.diffid for lock in self.diff_locks}
            draws = (
                _draw(f"imageversionid:{n}:{key}", _VERSIONID_RANGE) for n in itertools.count()
            )
            first_versionid = next(
                vid for vid in draws if not any(vid <= d < vid + _VERSION_BLOCK for d in diffids)
            )
        return first_jobid, first_versionid

    def location(self, name: str) -> Location:
        """Return the location called ``name``."""
        for loc in self.locations:
            if loc.name == name:
                return loc
        raise KeyError(name)

    def scaled(self, jobs: int) -> Scenario:
        """Return a copy whose initial rollouts create about ``jobs`` install jobs.

        Machines, parallel slots and bandwidth grow in proportion, so the rollout keeps
        roughly its duration while the status list grows (for load tests).
        """
        mirrors = sum(len(_image_locations(self, r.imageid)) for r in self.rollouts)
        machines = sum(_image_machines(self, r.imageid) for r in self.rollouts)
        factor = max(jobs - mirrors, 1) / max(machines, 1)
        locations = tuple(
            dataclasses.replace(
                loc,
                machines=max(1, round(loc.machines * factor)),
                max_parallel=max(1, round(loc.max_parallel * factor)),
                bandwidth_mbps=loc.bandwidth_mbps * factor,
            )
            for loc in self.locations
        )
        return dataclasses.replace(self, locations=locations)


def default_scenario() -> Scenario:
    """The default scenario: 4 locations, 44 machines, one 48-job rollout waiting at start."""
    return Scenario()


def _draw(label: str, bounds: tuple[int, int]) -> int:
    """A stable pseudo-random int in ``[low, high)`` from a BLAKE2b hash of ``label``."""
    digest = hashlib.blake2b(f"cfanalytics-simulator:{label}".encode(), digest_size=16).digest()
    low, high = bounds
    return low + int.from_bytes(digest, "big") % (high - low)


def _canonical(value: Any) -> Any:
    """Settings as plain JSON values, whole floats as ints (``start=1`` equals ``start=1.0``)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _image_locations(scenario: Scenario, imageid: int) -> list[Location]:
    image = next(i for i in scenario.images if i.imageid == imageid)
    return [loc for loc in scenario.locations if not image.locations or loc.name in image.locations]


def _image_machines(scenario: Scenario, imageid: int) -> int:
    return sum(loc.machines for loc in _image_locations(scenario, imageid))


# --- validation ------------------------------------------------------------------------------


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _validate(s: Scenario) -> None:
    _check(s.mirroring_as in ("bool", "int", "string"), f"mirroring_as: {s.mirroring_as!r}")
    _check(s.restart_as in ("int", "bool"), f"restart_as: {s.restart_as!r}")
    _check(s.status_order in ("jobid", "shuffled"), f"status_order: {s.status_order!r}")
    _check(s.jobstart_before_start in (None, ""), "jobstart_before_start must be null or ''")
    _check(s.update_interval_s > 0, "update_interval_s must be > 0")
    for name in _ID_FIELDS:
        value = getattr(s, name)
        _check(value is None or (type(value) is int and value > 0), f"{name}: {value!r}")
    _check(set(s.listed_states) <= {1, 2, 3, 4}, "listed_states must be within 1-4")
    for name, rate in (("machine", s.machine_failure_rate), ("mirror", s.mirror_failure_rate)):
        _check(0.0 <= rate <= 1.0, f"{name}_failure_rate must be in [0, 1]")
    names = {loc.name for loc in s.locations}
    _check(len(names) == len(s.locations) and bool(names), "locations need unique names")
    imageids = {img.imageid for img in s.images}
    for cause, _ in s.failure_causes:
        _check(cause in FAILURE_CAUSES, f"unknown failure cause {cause!r}")
    for spot in s.hotspots:
        _check(spot.location in names, f"hotspot names unknown location {spot.location!r}")
        _check(spot.cause in FAILURE_CAUSES, f"unknown failure cause {spot.cause!r}")
    for kind, _ in s.fault_weights:
        _check(kind in FAULT_KINDS, f"unknown fault kind {kind!r}")
    for rollout in s.rollouts:
        _check(rollout.imageid in imageids, f"rollout names unknown image {rollout.imageid}")
    for img in s.images:
        _check(set(img.locations) <= names, f"image {img.imageid} names an unknown location")
    diffids = [d for img in s.images for d in img.diffids]
    _check(len(diffids) == len(set(diffids)), "a diffid belongs to two images")
    _check(s.rate_limit is None or s.rate_limit.requests > 0, "rate_limit.requests must be > 0")


# --- conversion from plain JSON/TOML values -------------------------------------------------


def _record(cls: type[Any], value: Any, where: str) -> Any:
    """Build a nested record from a dict, naming any unknown key; lists become tuples."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object, got {value!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    for key in value:
        if key not in known:
            raise ValueError(f"unknown scenario setting {where}.{key}")
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
    except TypeError as exc:  # a required key is missing
        raise ValueError(f"{where}: {exc}") from exc


def _records(cls: type[Any], value: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list, got {value!r}")
    return tuple(_record(cls, item, f"{where}[{i}]") for i, item in enumerate(value))


def _pairs(value: Any, where: str) -> tuple[tuple[str, float], ...]:
    """Weights come as an object {"name": weight} or a list of [name, weight] pairs."""
    items = value.items() if isinstance(value, dict) else value
    try:
        return tuple((str(k), float(v)) for k, v in items)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: expected name/weight pairs, got {value!r}") from exc


def _parse_start(value: Any) -> float:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            raise ValueError(f"start: {value!r} needs a timezone (e.g. a trailing 'Z')")
        return stamp.timestamp()
    raise ValueError(f"start: expected unix seconds or ISO 8601, got {value!r}")


def _convert(key: str, value: Any) -> Any:
    """Turn one top-level JSON value into the type the field holds."""
    nested: dict[str, type[Any]] = {
        "locations": Location,
        "images": Image,
        "rollouts": Rollout,
        "hotspots": Hotspot,
        "diff_locks": DiffLock,
    }
    if key in nested:
        return _records(nested[key], value, key)
    if key == "start":
        return _parse_start(value)
    if key in ("failure_causes", "fault_weights"):
        return _pairs(value, key)
    if key == "rate_limit":
        return None if value is None else _record(RateLimit, value, key)
    if isinstance(value, list):
        return tuple(value)
    return value
