"""Retry policy: exponential backoff with jitter, honouring Retry-After, safe for state changes.

Read-only calls are retried on transient trouble (transport errors, 429, 5xx, garbled
bodies). Queueing changes state and the Clanforge docs warn against resending it, so a
state-changing call is retried only when the server provably did not act on it: the
request never reached it (:class:`~cfanalytics.ConnectError`), or it refused the request
(:func:`refused_unacted`). Any other failure leaves open whether it acted
(:func:`may_have_acted`): the status list says.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ..exceptions import (
    CfAnalyticsError,
    ConnectError,
    HTTPStatusError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

__all__ = ["RETRY_LOGGER", "Backoff", "RetryPolicy", "may_have_acted", "refused_unacted"]

#: The logger that says, at INFO, one line per retry: what is retried, when, which attempt
#: of how many, and why. Python shows no INFO record until logging is set up, so a notebook
#: sees them only when it asks (``logging.getLogger(RETRY_LOGGER).setLevel("INFO")`` and a
#: handler); the command line prints them on stderr.
RETRY_LOGGER = "cfanalytics.client.retry"

_TRANSIENT = (TransportError, RateLimitedError, ServerError, ResponseFormatError)


def refused_unacted(exc: CfAnalyticsError) -> bool:
    """Whether the server refused a request without acting on it: 429 (rate limited), or
    503 with ``Retry-After`` (unavailable, come back then)."""
    if isinstance(exc, RateLimitedError):
        return True
    return (
        isinstance(exc, HTTPStatusError) and exc.status_code == 503 and exc.retry_after is not None
    )


def may_have_acted(exc: CfAnalyticsError) -> bool:
    """Whether a state-changing request that failed with ``exc`` may still have been acted
    on: a timeout, a dropped connection, another 5xx, a garbled answer."""
    if isinstance(exc, ConnectError) or refused_unacted(exc):
        return False
    return isinstance(exc, TransportError | ServerError | ResponseFormatError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry.

    ``attempts`` counts the first try; ``attempts=1`` disables retries. The n-th wait is
    ``min(maximum, initial * multiplier**(n-1))`` plus up to ``jitter`` times that, at random,
    so many clients do not retry in step. A server's ``Retry-After`` replaces the computed
    wait; one longer than ``max_retry_after`` is not waited for: the error is raised.
    ``queue_recovery=False`` resends a state-changing request only after a connect error,
    as recordings made before :func:`refused_unacted` did (their replays need it).
    """

    attempts: int = 5
    initial: float = 0.5
    multiplier: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0
    queue_recovery: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if min(self.initial, self.maximum, self.jitter, self.max_retry_after) < 0:
            raise ValueError("retry waits must not be negative")

    def retryable(self, exc: CfAnalyticsError, *, idempotent: bool) -> bool:
        """Whether ``exc`` may be retried for a call of this kind."""
        if not idempotent:
            return isinstance(exc, ConnectError) or (self.queue_recovery and refused_unacted(exc))
        return isinstance(exc, _TRANSIENT)

    def wait(self, attempt: int, exc: CfAnalyticsError, rng: random.Random) -> float | None:
        """Seconds to wait before try ``attempt + 1``, or None to give up and raise ``exc``."""
        if attempt >= self.attempts:
            return None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after) if retry_after <= self.max_retry_after else None
        base = min(self.maximum, self.initial * self.multiplier ** (attempt - 1))
        return base + rng.uniform(0, self.jitter * base)


NO_RETRY = RetryPolicy(attempts=1)


class Backoff:
    """One client's requests back off together: while any of them waits out a refusal
    (:func:`refused_unacted`: 429, 503 with ``Retry-After``), the others send nothing new.

    The waiting request sleeps through the client's own (injectable) sleep; the others wait
    for it here, so no clock is read and a replay, which never sleeps, never waits.
    """

    def __init__(self) -> None:
        self._holders = 0
        self._clear = asyncio.Event()
        self._clear.set()

    def __repr__(self) -> str:
        return f"<Backoff holders={self._holders}>"

    async def clear(self) -> None:
        """Return once no request of the client is backing off (at once when none is)."""
        while not self._clear.is_set():
            await self._clear.wait()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Back off every request of the client while the block runs."""
        self._holders += 1
        self._clear.clear()
        try:
            yield
        finally:
            self._holders -= 1
            if not self._holders:
                self._clear.set()
