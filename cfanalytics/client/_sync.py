"""The synchronous client."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
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
from ._retry import RetryPolicy

__all__ = ["Client"]

T = TypeVar("T")


class Client(ClientBase):
    """A Clanforge image-install API client.

    Every option is keyword-only. Credentials come from ``access_key`` / ``secret_key``, else
    ``CLANFORGE_ACCESS_KEY`` / ``CLANFORGE_SECRET_KEY``; the base URL from ``base_url``, else
    ``CLANFORGE_BASE_URL``, else ``https://api.multiplay.co.uk``. ``transport`` replaces the
    network (tests, the simulator, replay); ``retry``, ``sleep`` and ``rng`` drive retries.

    >>> with Client() as client:  # doctest: +SKIP
    ...     for job in client.install_status(1234):
    ...         print(job.jobid, job.state, job.jobprogress)
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], Any] = time.sleep,
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
        self._http = httpx.Client(**self._core.http_options(), transport=transport)
        #: The transport given (None: httpx's own); tells a replay from a live source.
        self.transport = transport
        self._sleep = sleep

    def queue_install(self, jobid: int, *, asid: int, mirroring: bool) -> QueueResult:
        """Queue install job ``jobid``; ``mirroring`` must match its kind (see the status list).

        Sent once: a failure after the request may have reached Clanforge is raised, never
        retried. Re-read :meth:`install_status` to learn whether it took effect.
        """
        return self._call(queue_install_call(jobid, asid=asid, mirroring=mirroring))

    def install_status(self, asid: int) -> InstallStatus:
        """List every incomplete install job of ``asid`` (retried on transient errors)."""
        return self._call(install_status_call(asid))

    def image_status(self, asid: int, imageid: int, detail: bool = False) -> ImageStatus:
        """Rollout counts of ``imageid`` (v2); per fleet and region with ``detail=True``."""
        return self._call(image_status_call(asid, imageid, detail=detail))

    def _call(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            request = self._request(self._http, call)
            try:
                return read_response(call, RawResponse.from_httpx(self._http.send(request)))
            except httpx.TransportError as exc:
                error: CfAnalyticsError = transport_error(exc, request)
            except CfAnalyticsError as exc:
                error = exc
            self._sleep(self._core.wait_before_retry(call, attempt, error))

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
