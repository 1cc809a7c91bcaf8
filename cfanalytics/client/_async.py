"""The asyncio client: the same calls as :class:`~cfanalytics.Client`, awaited."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ..exceptions import CfAnalyticsError
from ._base import ClientBase
from ._core import (
    Call,
    image_status_call,
    install_status_call,
    queue_install_call,
    read_response,
)
from ._errors import transport_error
from ._results import ImageStatus, InstallStatus, QueueResult, RawResponse
from ._retry import Backoff, RetryPolicy, refused_unacted

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient(ClientBase):
    """The asyncio Clanforge image-install API client; options as for :class:`Client`.

    >>> async with AsyncClient() as client:  # doctest: +SKIP
    ...     status = await client.install_status(1234)
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._configure(
            base_url=base_url,
            access_key=access_key,
            secret_key=secret_key,
            timeout=timeout,
            retry=retry,
            rng=rng,
        )
        self._http = httpx.AsyncClient(**self._core.http_options(), transport=transport)
        #: The transport given (None: httpx's own); tells a replay from a live source.
        self.transport = transport
        self._sleep = sleep
        self._backoff = Backoff()

    async def queue_install(self, jobid: int, *, asid: int, mirroring: bool) -> QueueResult:
        """Queue install job ``jobid`` once; see :meth:`Client.queue_install`."""
        return await self._call(queue_install_call(jobid, asid=asid, mirroring=mirroring))

    async def install_status(self, asid: int) -> InstallStatus:
        """List every incomplete install job of ``asid`` (retried on transient errors)."""
        return await self._call(install_status_call(asid))

    async def image_status(self, asid: int, imageid: int, detail: bool = False) -> ImageStatus:
        """Rollout counts of ``imageid`` (v2); per fleet and region with ``detail=True``."""
        return await self._call(image_status_call(asid, imageid, detail=detail))

    async def _call(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            await self._backoff.clear()
            request = self._request(self._http, call)
            try:
                response = await self._http.send(request)
                return read_response(call, RawResponse.from_httpx(response))
            except httpx.TransportError as exc:
                error: CfAnalyticsError = transport_error(exc, request)
            except CfAnalyticsError as exc:
                error = exc
            wait = self._core.wait_before_retry(call, attempt, error)
            if refused_unacted(error):  # the API says slow down: to every request of ours
                async with self._backoff.hold():
                    await self._sleep(wait)
            else:
                await self._sleep(wait)

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
