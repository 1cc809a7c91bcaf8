"""How one install attempt behaves: its duration, progress curve, ETA and failure.

Pure functions of a seeded ``random.Random`` and the scenario, so the model stays a
bookkeeper of events and this module holds the numbers an analyst will try to recover.

An attempt has two phases: a download whose rate is the location link shared by the installs
running at its start (capped by the machine's disk), then an extract at a fixed rate. The
download covers ``download_progress_share`` of the percentage, which is more than its share
of the time: progress is fast early and slow late, so a linear extrapolation of early
progress (and the ETA the job reports) is optimistic.
"""

from __future__ import annotations

import hashlib
import math
import random
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ._scenario import Scenario

__all__ = [
    "FAILURE_MESSAGES",
    "Placement",
    "Plan",
    "failure_message",
    "keyed_lognormal_noise",
    "lognormal_noise",
    "plan_attempt",
]

#: joberror templates, each starting with the documented cause in lower case.
FAILURE_MESSAGES: Mapping[str, str] = MappingProxyType(
    {
        "disk_space": "not enough disk space: {host} needs {need} MB, {free} MB free",
        "image_missing": "image does not exist: {imagepath} (imageversionid {versionid})",
        "permissions": "wrong permissions: cannot write {imagepath} on {host}",
        "network": "network disruption: connection to {mirror} reset during transfer",
        "unreachable": "machine unreachable: {host} did not respond",
        "diff_lock": "image locked by diffid: {diffid}",
        "failing_drive": "failing drive: I/O error on {host} writing {imagepath}",
    }
)

# When in an attempt each cause strikes, as a fraction of its planned duration: bad paths and
# permissions fail at once, a dying drive during the write-heavy extract.
_FAILURE_WINDOWS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "disk_space": (0.1, 0.6),
        "image_missing": (0.0, 0.02),
        "permissions": (0.0, 0.05),
        "network": (0.05, 0.75),
        "unreachable": (0.0, 1.0),
        "diff_lock": (0.0, 0.02),
        "failing_drive": (0.7, 0.98),
    }
)
# A mirror is not a game server: these causes do not apply to mirror jobs' base failures.
_MACHINE_ONLY = frozenset({"failing_drive"})


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an attempt runs and what it moves: the inputs the physics needs."""

    mirror_job: bool
    host: str  #: machine name, or mirror name for a mirror job
    mirror: str
    imagepath: str
    versionid: int
    diffid: int
    size_mb: float
    link_mbps: float  #: the link this attempt downloads over
    contention: int  #: installs sharing the link at start, this one included
    failure_rate: float  #: base rate plus matching hotspots
    hotspot_causes: tuple[tuple[str, float], ...]  #: (cause, probability) of hotspots


@dataclass(frozen=True, slots=True)
class Plan:
    """The fate of one attempt, fixed when it starts."""

    start: float
    download_s: float
    extract_s: float
    share: float  #: fraction of the percentage covered by the download phase
    nominal_s: float  #: the duration the job itself first expects (uncontended)
    end: float  #: completion time, or failure time when ``cause`` is set
    cause: str | None = None
    error: str | None = None

    @property
    def total_s(self) -> float:
        """Planned duration of a successful attempt."""
        return self.download_s + self.extract_s

    def progress(self, t: float) -> float:
        """True percent done at sim time ``t`` (float, 0-100)."""
        elapsed = min(max(t - self.start, 0.0), self.total_s)
        if elapsed < self.download_s:
            done = self.share * elapsed / self.download_s
        else:
            done = self.share + (1 - self.share) * (elapsed - self.download_s) / self.extract_s
        return 100.0 * done

    def eta(self, tick: float, noise: float, percent: float | None = None) -> float:
        """The ETA the job reports at ``tick``: observed throughput extrapolated, times noise.

        ``percent`` is ``progress(tick)``, if the caller has it already.
        """
        percent = self.progress(tick) if percent is None else percent
        elapsed = tick - self.start
        if percent <= 0.0 or elapsed <= 0.0:
            return self.start + self.nominal_s * noise
        return tick + elapsed * (100.0 - percent) / percent * noise


def failure_message(cause: str, where: Placement, rng: random.Random) -> str:
    """A realistic joberror for ``cause`` at ``where``."""
    need = round(where.size_mb * 1.1)
    return FAILURE_MESSAGES[cause].format(
        host=where.host,
        mirror=where.mirror,
        imagepath=where.imagepath,
        versionid=where.versionid,
        diffid=where.diffid,
        need=need,
        free=rng.randrange(0, max(need // 2, 1)),
    )


def plan_attempt(scenario: Scenario, where: Placement, start: float, rng: random.Random) -> Plan:
    """Draw the durations and (maybe) the failure of an attempt starting at ``start``."""
    sigma = scenario.duration_sigma
    if where.mirror_job:
        rate = where.link_mbps
        # A mirror only verifies what it copied: a short tail, hence a small share left.
        extract_rate, share = scenario.extract_mbps * 6, 0.95
    else:
        rate = min(scenario.machine_disk_mbps, where.link_mbps / max(where.contention, 1))
        extract_rate, share = scenario.extract_mbps, scenario.download_progress_share
    download = where.size_mb / rate * rng.lognormvariate(0.0, sigma)
    extract = where.size_mb / extract_rate * rng.lognormvariate(0.0, sigma / 2)
    uncontended = min(scenario.machine_disk_mbps, where.link_mbps)
    nominal = where.size_mb / (rate if where.mirror_job else uncontended)
    nominal += where.size_mb / extract_rate
    plan = Plan(start, download, extract, share, nominal, start + download + extract)
    return _maybe_fail(scenario, where, plan, rng)


def _maybe_fail(scenario: Scenario, where: Placement, plan: Plan, rng: random.Random) -> Plan:
    """Decide whether the attempt fails, why, and when (a point inside the cause's window)."""
    roll = rng.random()
    cause: str | None = None
    threshold = where.failure_rate
    if roll < threshold:
        cause = _base_cause(scenario, where, rng)
    else:
        for spot_cause, probability in where.hotspot_causes:
            threshold += probability
            if roll < threshold:
                cause = spot_cause
                break
    if cause is None:
        return plan
    low, high = _FAILURE_WINDOWS[cause]
    at = plan.start + plan.total_s * rng.uniform(low, high)
    return Plan(
        plan.start,
        plan.download_s,
        plan.extract_s,
        plan.share,
        plan.nominal_s,
        at,
        cause,
        failure_message(cause, where, rng),
    )


def _base_cause(scenario: Scenario, where: Placement, rng: random.Random) -> str:
    causes = [
        (cause, weight)
        for cause, weight in scenario.failure_causes
        if weight > 0 and not (where.mirror_job and cause in _MACHINE_ONLY)
    ]
    if not causes:
        return "network"
    names = [cause for cause, _ in causes]
    return rng.choices(names, weights=[weight for _, weight in causes])[0]


def lognormal_noise(rng: random.Random, sigma: float) -> float:
    """Multiplicative noise with median 1."""
    return math.exp(rng.gauss(0.0, sigma)) if sigma > 0 else 1.0


def keyed_lognormal_noise(key: str, sigma: float) -> float:
    """Multiplicative noise with median 1, a pure function of ``key`` (no generator).

    For the hot path: every Running job draws a fresh ETA noise at every update tick, and
    seeding a ``random.Random`` (a Mersenne Twister state) costs ~20 us, most of a status
    list's render time. A keyed BLAKE2 digest gives the same determinism in ~1 us.
    """
    if sigma <= 0:
        return 1.0
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    # Map 64 bits to (0, 1), open at both ends, then through the normal quantile.
    uniform = (int.from_bytes(digest, "big") + 0.5) / 2.0**64
    return math.exp(sigma * statistics.NormalDist().inv_cdf(uniform))
