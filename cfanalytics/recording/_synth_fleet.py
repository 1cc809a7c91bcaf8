"""The fleet of a synthetic history's ASID and the lives of a rollout's jobs, in polls (the
model: :mod:`cfanalytics.recording._synth`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..simulator import FAILURE_CAUSES, default_scenario

#: Past this many jobs a rollout spreads over twenty locations, not the default four.
MANY_JOBS = 500
FIRST_MACHINE = 31001  # machine ids count up from here, as the simulator's
_FLEET, ROLLOUT = 0, 1  # the random streams: (seed, which, ASID or rollout number)
VANISH, SHOWN_COMPLETE, FAILS = 0, 1, 2  # how a job leaves the list
_MORE_LOCATIONS = (
    ("Amsterdam", "ams"),
    ("Paris", "par"),
    ("Madrid", "mad"),
    ("Stockholm", "sto"),
    ("Warsaw", "waw"),
    ("Chicago", "chi"),
    ("Dallas", "dal"),
    ("Seattle", "sea"),
    ("Los Angeles", "lax"),
    ("Toronto", "tor"),
    ("Sao Paulo", "sao"),
    ("Tokyo", "tyo"),
    ("Seoul", "sel"),
    ("Mumbai", "bom"),
    ("Sydney", "syd"),
    ("Johannesburg", "jnb"),
)
#: Per documented failure cause: when it strikes (a share of the planned run, low and high)
#: and the ``joberror`` it leaves, starting with the cause as the docs word it.
CAUSES: Mapping[str, tuple[float, float, str]] = {
    "disk_space": (0.1, 0.6, "not enough disk space on {host} for {imagepath}"),
    "image_missing": (0.0, 0.02, "image does not exist: {imagepath}"),
    "permissions": (0.0, 0.05, "wrong permissions: cannot write {imagepath} on {host}"),
    "network": (0.05, 0.75, "network disruption: transfer from {mirror} interrupted"),
    "unreachable": (0.0, 1.0, "machine unreachable: {host} did not respond"),
    "diff_lock": (0.0, 0.02, "image locked by diffid: {diffid}"),
    "failing_drive": (0.7, 0.98, "failing drive: I/O error on {host} writing {imagepath}"),
}
_HOTSPOT_CAUSES = ("network", "unreachable", "disk_space")


# --- the fleet of an ASID ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Fleet:
    """An ASID's install targets, one per job of each of its rollouts, in job id order."""

    locations: tuple[str, ...]
    codes: tuple[str, ...]  # each location's code, for machine and mirror names
    pace: np.ndarray  # per location: how long its installs take (1: as long as most)
    mirrors: tuple[str, ...]  # mirror names
    location: np.ndarray  # per job: its location
    mirror: np.ndarray  # per job: a mirror job
    mirror_of: np.ndarray  # per job: its mirror (its own, or its machine's)
    number: np.ndarray  # per job: the mirror's or machine's number in its location
    machine: np.ndarray  # per job: the machine id (-1: a mirror job)
    flaky: np.ndarray  # per job: a machine with a failing drive


def fleet_of(jobs: int, *, seed: int, asid: int) -> _Fleet:
    """The fleet of ``asid``: the same in every rollout of the ASID, for ``jobs`` jobs."""
    rng = np.random.default_rng([seed, _FLEET, asid])
    sites = [(loc.name, loc.code, float(loc.machines)) for loc in default_scenario().locations]
    if jobs > MANY_JOBS:
        sites += [(name, code, 10.0) for name, code in _MORE_LOCATIONS]
    mirrors = max(1, jobs // 10)
    sites = sites[: min(len(sites), mirrors)]
    n = len(sites)
    weights = np.array([weight for *_, weight in sites]) * rng.gamma(8.0, 1 / 8, n)
    own_mirrors = np.bincount(np.arange(mirrors) % n, minlength=n)
    counts = own_mirrors + _apportion(jobs - mirrors, weights)
    location = np.repeat(np.arange(n), counts)
    rank = np.arange(jobs) - np.repeat(np.cumsum(counts) - counts, counts)
    at_site = own_mirrors[location]
    mirror = rank < at_site
    number = np.where(mirror, rank, rank - at_site)
    mirror_of = (np.cumsum(own_mirrors) - own_mirrors)[location] + number % at_site
    names = [
        f"mirror-{code}-{k:02d}"
        for (_, code, _), count in zip(sites, own_mirrors, strict=True)
        for k in range(1, count + 1)
    ]
    return _Fleet(
        locations=tuple(name for name, *_ in sites),
        codes=tuple(code for _, code, _ in sites),
        pace=rng.lognormal(0.0, 0.2, n),
        mirrors=tuple(names),
        location=location,
        mirror=mirror,
        mirror_of=mirror_of,
        number=number + 1,
        machine=np.where(mirror, -1, FIRST_MACHINE + np.cumsum(~mirror) - 1),
        flaky=~mirror & (rng.random(jobs) < 0.02),
    )


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``weights`` (largest remainders get the rest)."""
    share = weights / weights.sum() * total
    counts: np.ndarray = np.floor(share).astype(np.int64)
    counts[np.argsort(counts - share, kind="stable")[: total - int(counts.sum())]] += 1
    return counts


# --- the lives of one rollout's jobs, in polls -----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Lives:
    """Per job, in polls: queued at, waiting Queued, planned running, running before its
    failure, listed; how it leaves the list, its failure cause (an index into
    ``FAILURE_CAUSES``; -1: none) and its Failed rows. ``polls``: polls in the recording."""

    queued: np.ndarray
    wait: np.ndarray
    run: np.ndarray
    ran: np.ndarray
    listed: np.ndarray
    outcome: np.ndarray
    cause: np.ndarray
    failed_rows: np.ndarray
    polls: int


def lives_of(rng: np.random.Generator, fleet: _Fleet, polls: int) -> _Lives:
    """How each job of a rollout goes, before the recording's end cuts the last ones short."""
    jobs = len(fleet.location)
    bad, bad_cause = _bad_location(rng, len(fleet.locations))
    slow = fleet.pace * rng.lognormal(0.0, 0.15, len(fleet.locations))
    if bad >= 0:
        slow[bad] *= 1.6
    planned = rng.gamma(4.0, polls / 4, jobs) * np.where(fleet.mirror, 0.5, 1.0)
    planned = np.maximum(6, (planned * slow[fleet.location]).round().astype(np.int64))
    wait = np.minimum(planned - 3, rng.geometric(1 / max(2, polls / 10), jobs))
    run = planned - wait
    cause = _causes(rng, fleet, bad, bad_cause)
    low, high = (np.array([CAUSES[c][i] for c in FAILURE_CAUSES]) for i in (0, 1))
    strikes = np.maximum(cause, 0)
    share = low[strikes] + (high - low)[strikes] * rng.random(jobs)
    ran = np.clip(np.ceil(share * run).astype(np.int64), 1, run)
    failed_rows = rng.integers(1, 12, jobs)
    fails = cause >= 0
    outcome = np.where(rng.random(jobs) < 0.25, SHOWN_COMPLETE, VANISH)
    outcome = np.where(fails, FAILS, outcome)
    listed = np.where(fails, wait + ran + failed_rows, planned)
    queued = _queue_polls(rng, fleet, planned, polls)
    return _cut(_Lives(queued, wait, run, ran, listed, outcome, cause, failed_rows, 0))


def _bad_location(rng: np.random.Generator, locations: int) -> tuple[int, int]:
    """The location that goes bad in a rollout (-1: none, in two rollouts of three) and the
    cause its failures have."""
    bad = int(rng.integers(locations)) if rng.random() < 0.35 else -1
    cause = _HOTSPOT_CAUSES[int(rng.integers(len(_HOTSPOT_CAUSES)))]
    return bad, FAILURE_CAUSES.index(cause)


def _causes(rng: np.random.Generator, fleet: _Fleet, bad: int, bad_cause: int) -> np.ndarray:
    """Each job's failure cause (an index into ``FAILURE_CAUSES``; -1: it does not fail):
    the default scenario's rates and causes (a mirror has no drive to fail), a quarter of a
    bad location's machines, and most flaky machines, with a failing drive."""
    scenario = default_scenario()
    jobs = len(fleet.mirror)
    weights = dict(scenario.failure_causes)
    drive = FAILURE_CAUSES.index("failing_drive")
    machine_p = np.array([weights.get(cause, 0.0) for cause in FAILURE_CAUSES])
    mirror_p = np.where(np.arange(len(FAILURE_CAUSES)) == drive, 0.0, machine_p)
    base = np.where(
        fleet.mirror,
        rng.choice(len(FAILURE_CAUSES), jobs, p=mirror_p / mirror_p.sum()),
        rng.choice(len(FAILURE_CAUSES), jobs, p=machine_p / machine_p.sum()),
    )
    rate = np.where(fleet.mirror, scenario.mirror_failure_rate, scenario.machine_failure_rate)
    cause = np.where(rng.random(jobs) < rate, base, -1)
    hot = ~fleet.mirror & (fleet.location == bad) & (rng.random(jobs) < 0.25)
    cause = np.where(hot, bad_cause, cause)
    return np.where(fleet.flaky & (rng.random(jobs) < 0.7), drive, cause)


def _queue_polls(
    rng: np.random.Generator, fleet: _Fleet, planned: np.ndarray, polls: int
) -> np.ndarray:
    """When each job is queued: mirrors at once, a location's machines spread over three
    lifetimes from when its last mirror is done."""
    first = rng.integers(0, 3, len(planned))
    done = np.zeros(len(fleet.locations), np.int64)
    np.maximum.at(done, fleet.location[fleet.mirror], (first + planned)[fleet.mirror])
    spread = rng.integers(0, 3 * polls, len(planned))
    return np.where(fleet.mirror, first, done[fleet.location] + spread)


def _cut(life: _Lives) -> _Lives:
    """The lives as recorded: the recording ends once all but the last 0.5 % of the jobs left
    the list (every job queued by then); those are listed until the end, unfinished."""
    ends = np.sort(life.queued + life.listed)
    left = min(max(1, len(ends) // 200), len(ends) - 1)
    polls = max(int(ends[-left - 1]) + 1, int(life.queued.max()) + 1)
    shown = np.minimum(life.listed, polls - life.queued)
    failed_rows = np.where(life.cause >= 0, shown - life.wait - life.ran, 0)
    failed = failed_rows > 0
    return _Lives(
        queued=life.queued,
        wait=np.minimum(life.wait, shown - 1),
        run=life.run,
        ran=life.ran,
        listed=shown,
        outcome=np.where((shown < life.listed) & ~failed, VANISH, life.outcome),
        cause=np.where(failed, life.cause, -1),
        failed_rows=np.maximum(failed_rows, 0),
        polls=polls,
    )
