"""httpx transports that answer from an in-process :class:`~.app.Simulator`.

``httpx.Client(transport=SimTransport(sim))`` and ``httpx.AsyncClient(transport=...)`` both
work: one class implements the sync and async transport interfaces over a shared helper.
Faults are made real here: a dropped connection raises ``httpx.RemoteProtocolError`` as a
server hanging up would, and a latency spike sleeps (through the injectable ``sleep``) or
becomes ``httpx.ReadTimeout`` when it is longer than the request's read timeout. A timed-out
request was still handled by the simulator, as a real server may act on a request whose
answer never arrives.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from ._app import SimResponse, Simulator

__all__ = ["SimTransport"]


class SimTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Route httpx requests to ``simulator.handle`` without sockets."""

    def __init__(
        self,
        simulator: Simulator,
        *,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.simulator = simulator
        self._sleep = sleep
        self._async_sleep = async_sleep

    def __repr__(self) -> str:
        return f"SimTransport({self.simulator!r})"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` synchronously."""
        answer = self._answer(request)
        wait = _wait(request, answer)
        if wait:
            self._sleep(wait)
        return _to_response(request, answer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from an event loop."""
        answer = self._answer(request)
        wait = _wait(request, answer)
        if wait:
            await self._async_sleep(wait)
        return _to_response(request, answer)

    def _answer(self, request: httpx.Request) -> SimResponse:
        query = {key: request.url.params[key] for key in request.url.params}
        headers = {key: value for key, value in request.headers.items()}
        return self.simulator.handle(request.method, request.url.path, query, headers)


def _read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout", {})
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return None if value is None else float(value)


def _wait(request: httpx.Request, answer: SimResponse) -> float:
    """How long to sleep before answering (a latency fault), capped by the read timeout."""
    if answer.fault != "latency":
        return 0.0
    limit = _read_timeout(request)
    return answer.latency if limit is None else min(answer.latency, limit)


def _to_response(request: httpx.Request, answer: SimResponse) -> httpx.Response:
    """Turn the simulator's answer into an httpx response, or the error a socket would give."""
    if answer.fault == "drop":
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )
    if answer.fault == "latency":
        limit = _read_timeout(request)
        if limit is not None and answer.latency > limit:
            raise httpx.ReadTimeout(f"timed out after {limit:g} s (sim latency)", request=request)
    return httpx.Response(
        answer.status, headers=list(answer.headers), content=answer.body, request=request
    )
