"""Seeded fault injection and the optional rate limit.

Faults are drawn per request from ``random.Random(f"{seed}:fault:{n}")`` where ``n`` counts
Clanforge-surface requests, so a run with the same seed and request sequence meets the same
faults. A 5xx fault starts a burst: the next few requests fail too, as a struggling backend
does.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ._scenario import RateLimit, Scenario

__all__ = ["Fault", "FaultInjector", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault."""

    kind: str  #: one of scenario.FAULT_KINDS
    status: int = 0  #: HTTP status for "5xx", "429" and "html"
    latency: float = 0.0  #: seconds, for "latency"
    retry_after: int = 0  #: seconds, for "429"
    cut: float = 0.5  #: fraction of the body kept, for "truncated"


class FaultInjector:
    """Draws the fault (or none) of each request."""

    def __init__(self, probability: float, *, seed: int, scenario: Scenario) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"faults must be a probability in [0, 1], got {probability!r}")
        self.probability = probability
        self._seed = seed
        self._scenario = scenario
        self._burst_left = 0

    def draw(self, counter: int) -> Fault | None:
        """The fault of request number ``counter``, or None."""
        rng = random.Random(f"{self._seed}:fault:{counter}")
        if self._burst_left > 0:
            self._burst_left -= 1
            return Fault("5xx", status=rng.choice((500, 502, 503)))
        if self.probability <= 0.0 or rng.random() >= self.probability:
            return None
        weights = [(kind, w) for kind, w in self._scenario.fault_weights if w > 0]
        if not weights:
            return None
        kind = rng.choices([k for k, _ in weights], weights=[w for _, w in weights])[0]
        return self._make(kind, rng)

    def _make(self, kind: str, rng: random.Random) -> Fault:
        if kind == "latency":
            return Fault(kind, latency=rng.uniform(*self._scenario.fault_latency_s))
        if kind == "5xx":
            low, high = self._scenario.fault_burst
            self._burst_left = max(rng.randint(low, high) - 1, 0)
            return Fault(kind, status=rng.choice((500, 502, 503)))
        if kind == "429":
            return Fault(kind, status=429, retry_after=rng.randint(1, 5))
        if kind == "html":
            return Fault(kind, status=rng.choice((502, 200)))
        if kind == "truncated":
            return Fault(kind, cut=rng.uniform(0.2, 0.8))
        return Fault(kind)


class RateLimiter:
    """A fixed-window counter on sim time: windows start at the scenario start."""

    def __init__(self, limit: RateLimit, *, start: float) -> None:
        self.limit = limit
        self._start = start
        self._window = -1
        self._count = 0

    def check(self, now: float) -> int | None:
        """Count a request at ``now``; return the Retry-After seconds if over the limit."""
        window = math.floor((now - self._start) / self.limit.window_s)
        if window != self._window:
            self._window, self._count = window, 0
        self._count += 1
        if self._count <= self.limit.requests:
            return None
        window_end = self._start + (window + 1) * self.limit.window_s
        return max(1, math.ceil(window_end - now))
