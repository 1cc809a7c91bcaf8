"""The recorder: sees every response the client receives, at the transport, and keeps it.

Wrap any httpx transport with :meth:`Recorder.wrap` (sync) or :meth:`Recorder.wrap_async`
and every response, retries and errors included, is stamped with its receive time
(``x-cfanalytics-observed-at``, only when absent: replayed responses keep their recorded
stamp), turned into events rows, appended to the event log (flushed per response) and to
the cassette. Transport failures (no response) become rows too, but have nothing to replay.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pandas as pd

from ..client import RawResponse, scrub
from ..events import STAMP_HEADER, Exchange, conform, exchange_rows
from ._cassette import CassetteWriter, Interaction
from ._eventlog import EventLog
from ._journal import CassetteJournal
from ._replay import FAILURES_KEY, replays

__all__ = ["AsyncRecordingTransport", "Recorder", "RecordingTransport", "new_run_id"]

# Headers that describe the wire form of a body httpx has already decoded.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def new_run_id() -> str:
    """A fresh run id: UTC time to the second, and a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Recorder:
    """Collects a run's exchanges as events; optionally into an event log and a cassette.

    ``clock`` gives the receive time stamped on live responses (inject the simulator's
    clock for reproducible recordings). ``secrets`` are scrubbed from the event log.
    """

    def __init__(
        self,
        *,
        run_id: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
        eventlog: EventLog | None = None,
        cassette: CassetteWriter | None = None,
        on_rows: Callable[[list[dict[str, Any]]], object] | None = None,
        secrets: Sequence[str] = (),
        journal: CassetteJournal | None = None,
        first_seq: int | None = None,
    ) -> None:
        self.run_id = run_id or new_run_id()
        self.clock = clock
        self.eventlog = eventlog
        self.cassette = cassette
        self.on_rows = on_rows
        self.journal = journal
        self._secrets = tuple(s for s in secrets if s)
        self.responses = 0  # exchanges that had a response
        self._rows: list[dict[str, Any]] = []
        # A resumed run carries on its numbering: from the event log, else from the caller.
        self._seq = eventlog.next_seq if eventlog is not None else (first_seq or 0)

    @property
    def events(self) -> pd.DataFrame:
        """Every event recorded so far, typed."""
        return conform(pd.DataFrame(self._rows))

    def wrap(self, transport: httpx.BaseTransport) -> RecordingTransport:
        """A sync transport that records everything ``transport`` answers."""
        return RecordingTransport(transport, self)

    def wrap_async(self, transport: httpx.AsyncBaseTransport) -> AsyncRecordingTransport:
        """An async transport that records everything ``transport`` answers."""
        return AsyncRecordingTransport(transport, self)

    def stamped(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        """A copy of a fully read ``response`` carrying the receive-time stamp, recorded."""
        headers = [
            (k, v) for k, v in response.headers.multi_items() if k.lower() not in _WIRE_HEADERS
        ]
        if STAMP_HEADER not in response.headers:
            stamp = self.clock().astimezone(UTC).isoformat(timespec="microseconds")
            headers.append((STAMP_HEADER, stamp.replace("+00:00", "Z")))
        copy = httpx.Response(
            response.status_code,
            headers=headers,
            content=response.content,
            request=request,
            extensions=response.extensions,
        )
        self._record(request, copy, None)
        return copy

    def failed(self, request: httpx.Request, exc: httpx.TransportError) -> None:
        """Record a request that got no response (the cassette keeps it in its metadata)."""
        recorded = getattr(exc, "recorded_at", None)  # set when replaying such a failure
        at = datetime.fromisoformat(recorded) if recorded else self.clock()
        if self.cassette is not None:
            entry = {
                "before": len(self.cassette.interactions),
                "method": request.method,
                "uri": scrub(str(request.url), self._secrets),
                "error": type(exc).__name__,
                "message": scrub(str(exc), self._secrets),
                "at": at.isoformat(),
            }
            self.cassette.metadata.setdefault(FAILURES_KEY, []).append(entry)
            if self.journal is not None:
                self.journal.failure(entry)
        self._record(request, None, f"{type(exc).__name__}: {exc}", at)

    def _scrub(self, row: dict[str, Any]) -> dict[str, Any]:
        """A row with the keys blanked out of its text, should the server have echoed one."""
        if not self._secrets:
            return row
        return {k: scrub(v, self._secrets) if isinstance(v, str) else v for k, v in row.items()}

    def _record(
        self,
        request: httpx.Request,
        response: httpx.Response | None,
        error: str | None,
        failed_at: datetime | None = None,
    ) -> None:
        raw = RawResponse.from_httpx(response) if response is not None else None
        exchange = Exchange(request.method, str(request.url), raw, error, failed_at)
        rows = [
            self._scrub(row) for row in exchange_rows(exchange, run_id=self.run_id, seq=self._seq)
        ]
        self._seq += 1
        if response is not None:
            self.responses += 1
            if self.cassette is not None:
                kept = self.cassette.append(Interaction.from_httpx(response))
                if self.journal is not None:
                    # The journal first: a resume rebuilds event rows from it, never the reverse.
                    self.journal.interaction(kept)
        if self.eventlog is not None:
            self.eventlog.append(rows)
        self._rows.extend(rows)
        if self.on_rows is not None:
            self.on_rows(rows)


class _Wrapping:
    """What both recording transports share: the transport inside, and the recorder."""

    def __init__(self, inner: object, recorder: Recorder) -> None:
        self.inner: Any = inner
        self.recorder = recorder

    @property
    def replays(self) -> str | None:
        """The cassette the transport inside replays, or None when it talks to a live API."""
        return replays(self.inner)


class RecordingTransport(_Wrapping, httpx.BaseTransport):
    """Sends through ``inner`` and hands every outcome to the recorder."""

    def __init__(self, inner: httpx.BaseTransport, recorder: Recorder) -> None:
        super().__init__(inner, recorder)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self.inner.handle_request(request)
            response.read()
        except httpx.TransportError as exc:
            self.recorder.failed(request, exc)
            raise
        return self.recorder.stamped(request, response)

    def close(self) -> None:
        self.inner.close()


class AsyncRecordingTransport(_Wrapping, httpx.AsyncBaseTransport):
    """The asyncio twin of :class:`RecordingTransport`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, recorder: Recorder) -> None:
        super().__init__(inner, recorder)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()
        except httpx.TransportError as exc:
            self.recorder.failed(request, exc)
            raise
        return self.recorder.stamped(request, response)

    async def aclose(self) -> None:
        await self.inner.aclose()
