"""Clocks for the simulator: sim time may run faster than real time, or only when told.

Every timestamp the simulator produces (job fields, the ``Date`` header, ground truth) comes
from one injected clock, so tests can freeze time with :class:`ManualClock` and demos can run a
20-minute rollout in one minute with :class:`ScaledClock`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "ScaledClock"]


@runtime_checkable
class Clock(Protocol):
    """Anything with ``now()`` returning sim time in unix seconds."""

    def now(self) -> float:
        """Return the current sim time in unix seconds."""
        ...


class ScaledClock:
    """Sim time that follows a monotonic clock, ``speed`` times faster than real time.

    ``now() = start + (monotonic() - t0) * speed``, where ``t0`` is read at construction.
    A monotonic source (not ``time.time``) keeps sim time from jumping back when the wall clock
    is adjusted.
    """

    def __init__(
        self,
        start: float | None = None,
        *,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self.start = time.time() if start is None else float(start)
        self.speed = float(speed)
        self._monotonic = monotonic
        self._t0 = monotonic()

    def now(self) -> float:
        """Return the current sim time in unix seconds."""
        return self.start + (self._monotonic() - self._t0) * self.speed

    def __repr__(self) -> str:
        return f"ScaledClock(start={self.start!r}, speed={self.speed!r})"


class ManualClock:
    """Sim time that moves only when ``advance`` (or ``sleep``) is called: for tests.

    ``sleep`` is ``advance`` under another name, so the clock can be injected wherever a
    ``sleep(seconds)`` function is expected and a polling loop then drives sim time itself.
    """

    def __init__(self, start: float) -> None:
        self._now = float(start)
        # A client thread may sleep while the server thread reads the time.
        self._lock = threading.Lock()

    def now(self) -> float:
        """Return the current sim time in unix seconds."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move sim time forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards ({seconds!r} s)")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Same as :meth:`advance`: a drop-in for ``time.sleep`` that costs no real time."""
        self.advance(seconds)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"
