"""Queue requests in flight at once: each job once, a shared backoff, and replays that
get the answers back in the order they came.

The in-process simulator answers at once, so here a :class:`Jostle` transport sits under
the client: each request yields to the event loop a random number of times before it is
answered, as requests over a network come back out of order.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import httpx
import pandas as pd
import pytest

from cfanalytics import RetryPolicy
from cfanalytics.exceptions import ReplayExhaustedError
from cfanalytics.recording import (
    Cassette,
    Interaction,
    ReplayTransport,
    RunPlan,
    arecord,
    load_cassette,
    replay,
)
from cfanalytics.recording import _replay as replay_module

from ..conftest import SimRig


class Jostle(httpx.AsyncBaseTransport):
    """Answers through ``inner`` after yielding 0-5 times; counts requests in flight."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seed: int = 3) -> None:
        self.inner = inner
        self.rng = random.Random(seed)
        self.in_flight = 0
        self.peak = 0
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.url.path)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            for _ in range(self.rng.randrange(6)):
                await asyncio.sleep(0)
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


def queued_paths(paths: list[str]) -> list[str]:
    return [path for path in paths if path.endswith("/queue")]


def record_jostled(tmp_path: Path, concurrency: int) -> tuple[Jostle, object]:
    rig = SimRig(seed=5)
    jostle = Jostle(rig.transport())
    plan = RunPlan(asid=1, interval=15, concurrency=concurrency)
    options = rig.record_options(transport=jostle)
    run = asyncio.run(arecord(plan, cassette=tmp_path / "run.yaml", **options))
    return jostle, run


def test_concurrent_queueing_sends_each_job_once_and_replays_identically(tmp_path: Path) -> None:
    jostle, run = record_jostled(tmp_path, concurrency=4)
    sent = queued_paths(jostle.sent)
    assert len(sent) == 48 and max(Counter(sent).values()) == 1, "each job queued once"
    assert jostle.peak == 4, "four in flight at once, never more"
    cassette = load_cassette(tmp_path / "run.yaml")
    answered = queued_paths([httpx.URL(i.uri).path for i in cassette.interactions])
    assert answered != sent, "answers came back in another order than the requests went"
    assert run.progress.done and cassette.metadata["concurrency"] == 4  # type: ignore[attr-defined]
    again = replay(tmp_path / "run.yaml")
    pd.testing.assert_frame_equal(again.events, run.events)  # type: ignore[attr-defined]
    assert [q.jobid for q in again.progress.queued] == [
        q.jobid
        for q in run.progress.queued  # type: ignore[attr-defined]
    ]


def test_one_at_a_time_sends_in_job_order(tmp_path: Path) -> None:
    jostle, _ = record_jostled(tmp_path, concurrency=1)
    assert jostle.peak == 1
    cassette = load_cassette(tmp_path / "run.yaml")
    answered = queued_paths([httpx.URL(i.uri).path for i in cassette.interactions])
    assert answered == queued_paths(jostle.sent)


def test_a_refusal_holds_every_request_back() -> None:
    """A 429 with Retry-After: while its request waits, no request of the client is sent."""
    rig = SimRig(seed=5)
    inner = Jostle(rig.transport())
    refused: list[str] = []

    class RefuseFirst(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if not refused and request.url.path.endswith("/queue"):
                refused.append(request.url.path)
                return httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "slow"})
            return await inner.handle_async_request(request)

    waits: list[tuple[float, int, int]] = []

    async def sleep(seconds: float) -> None:
        before = len(inner.sent)
        for _ in range(30):  # others get every chance to send meanwhile
            await asyncio.sleep(0)
        waits.append((seconds, before, len(inner.sent)))

    async def go() -> None:
        client = rig.async_client(transport=RefuseFirst(), sleep=sleep, retry=RetryPolicy())
        listing = await rig.async_client().install_status(1)
        jobs = [job for job in listing if job.mirroring is not None][:6]
        async with client:
            await asyncio.gather(
                *(client.queue_install(j.jobid, asid=1, mirroring=bool(j.mirroring)) for j in jobs)
            )

    asyncio.run(go())
    assert waits and waits[0][0] == 3.0
    _, before, after = waits[0]
    assert after == before, "nothing new was sent while the refused request waited"
    assert len(queued_paths(inner.sent)) == 6, "the refused one was sent again, once"


def _answer(path: str) -> Interaction:
    return Interaction(
        method="GET",
        uri=f"http://api.invalid{path}",
        request_headers=(),
        status_code=200,
        reason="OK",
        headers=(("Content-Type", "application/json"),),
        body=b"{}",
    )


def test_an_ordered_replay_serves_answers_in_recorded_order() -> None:
    cassette = Cassette(interactions=(_answer("/a"), _answer("/b")), metadata={}, path=None)
    transport = ReplayTransport(cassette, ordered=True)
    served: list[str] = []

    async def ask(path: str) -> None:
        await transport.handle_async_request(httpx.Request("GET", f"http://api.invalid{path}"))
        served.append(path)

    async def go() -> None:
        await asyncio.gather(ask("/b"), ask("/a"))  # /b asks first, but came second

    asyncio.run(go())
    assert served == ["/a", "/b"]


def test_an_ordered_replay_that_leaves_the_recorded_path_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(replay_module, "_TURN_TIMEOUT_S", 0.05)
    cassette = Cassette(interactions=(_answer("/a"), _answer("/b")), metadata={}, path=None)
    transport = ReplayTransport(cassette, ordered=True)
    request = httpx.Request("GET", "http://api.invalid/b")
    with pytest.raises(ReplayExhaustedError, match=r"GET /b waits for answer 2, but the request"):
        asyncio.run(transport.handle_async_request(request))


class Kill(BaseException):
    """What kills the recorder mid-run (a BaseException, as a SIGINT's KeyboardInterrupt)."""


class KillAfter(httpx.AsyncBaseTransport):
    """Passes ``after`` requests on to ``inner``, then kills the run."""

    def __init__(self, inner: httpx.AsyncBaseTransport, after: int) -> None:
        self.inner, self.after, self.sent = inner, after, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.sent > self.after:
            raise Kill(f"killed at request {self.sent}")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize(("seed", "after"), [(3, 30), (6, 60), (7, 30), (1, 10)])
def test_a_concurrent_run_killed_under_faults_resumes_and_replays(
    tmp_path: Path, seed: int, after: int
) -> None:
    """Killed while queueing under faults, resumed, then replayed: the same events. The
    resumed run re-reads its answers in another order than they came, so what it sends again
    (settling, re-queueing) must follow the jobs' order, never the answers'."""
    from cfanalytics.recording import aresume

    rig = SimRig(seed=seed, faults=0.3)
    cassette = tmp_path / "run.yaml"
    plan = RunPlan(asid=1, interval=15, concurrency=4, requeue_failed=2, max_polls=400)
    killer = KillAfter(Jostle(rig.transport(), seed=seed), after)
    with pytest.raises(Kill):
        asyncio.run(arecord(plan, cassette=cassette, **rig.record_options(transport=killer)))
    options = rig.record_options(transport=Jostle(rig.transport(), seed=seed + 100))
    options.pop("base_url")  # the recorded one
    resumed = asyncio.run(aresume(cassette, **options))
    again = replay(cassette)
    pd.testing.assert_frame_equal(again.events, resumed.events)
    assert again.progress.stop_reason == resumed.progress.stop_reason
