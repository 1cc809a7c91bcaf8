"""Linear replay of a cassette as an httpx transport, sync and async.

Each request is answered with the next recorded response for the same key: the method and
``scheme://host:port/path`` with the query parameters sorted. Answers for one key come in
recorded order (FIFO); keys are independent. Headers are not matched (credentials differ
between recording and replay), and the network is never touched.

vcrpy compares every request with every stored interaction, so replaying N polls of one URL
costs O(N²) (5,000 polls: minutes). Here each request is one dict look-up and one
``deque.popleft``: O(N) in all.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..exceptions import CassetteError, ReplayExhaustedError
from ._cassette import Cassette, Interaction, load_cassette

__all__ = [
    "FAILURES_KEY",
    "RecordedFailure",
    "ReplayTransport",
    "RequestKey",
    "ResumeTransport",
    "in_recorded_order",
    "replay_source",
    "replays",
    "request_key",
]

#: Cassette metadata key listing requests that got no response (vcrpy cannot store those).
FAILURES_KEY = "transport_failures"


@dataclass(frozen=True, slots=True)
class RecordedFailure:
    """A request that got no response when recorded; replay raises the same error."""

    before: int  #: how many interactions the cassette held when it happened
    method: str
    uri: str
    error: str  #: the httpx exception class name, e.g. "ReadTimeout"
    message: str
    at: str | None  #: when it happened, ISO 8601

    @classmethod
    def from_metadata(cls, entry: Mapping[str, Any]) -> RecordedFailure:
        """Read one entry of the cassette's failure list."""
        return cls(
            before=int(entry["before"]),
            method=str(entry["method"]),
            uri=str(entry["uri"]),
            error=str(entry["error"]),
            message=str(entry.get("message", "")),
            at=entry.get("at"),
        )

    def exception(self, request: httpx.Request) -> httpx.TransportError:
        """The error to raise again, carrying the recorded time as ``recorded_at``."""
        cls = getattr(httpx, self.error, None)
        if not (isinstance(cls, type) and issubclass(cls, httpx.TransportError)):
            cls = httpx.TransportError
        exc = cls(self.message, request=request)
        exc.recorded_at = self.at  # type: ignore[attr-defined]
        return exc


def in_recorded_order(cassette: Cassette) -> Iterator[Interaction | RecordedFailure]:
    """Interactions, with the recorded transport failures back in their places."""
    try:
        failures = sorted(
            (RecordedFailure.from_metadata(e) for e in cassette.metadata.get(FAILURES_KEY) or []),
            key=lambda f: f.before,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CassetteError(
            f"cassette {cassette.path}: unreadable {FAILURES_KEY!r} metadata ({exc})"
        ) from exc
    pending = deque(failures)
    for index, interaction in enumerate(cassette.interactions):
        while pending and pending[0].before <= index:
            yield pending.popleft()
        yield interaction
    yield from pending


RequestKey = tuple[str, str, str, int | None, str, tuple[tuple[str, str], ...]]
"""(METHOD, scheme, host, port, path, sorted query pairs)."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def request_key(method: str, url: httpx.URL) -> RequestKey:
    """The key replay matches on; query order and an explicit default port do not matter."""
    return (
        method.upper(),
        url.scheme,
        url.host,
        url.port or _DEFAULT_PORTS.get(url.scheme),
        url.path,
        tuple(sorted(url.params.multi_items())),
    )


class ReplayTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Serve a cassette's responses in recorded order, per request key.

    ``cassette`` is a loaded :class:`Cassette` or the path of one. A request with no (more)
    recorded answers raises :class:`ReplayExhaustedError`. ``ordered=True`` (a run that sent
    requests concurrently) holds each async request until every answer recorded before its
    own was served, so the answers arrive in the order they did when recorded.
    """

    def __init__(
        self, cassette: Cassette | str | os.PathLike[str], *, ordered: bool = False
    ) -> None:
        self.cassette = cassette if isinstance(cassette, Cassette) else load_cassette(cassette)
        # Each answer with its place in the recording: (place, answer), FIFO per key.
        self._queues: dict[RequestKey, deque[tuple[int, Interaction | RecordedFailure]]] = {}
        # (method, URL as spelled) -> key: polls repeat one spelling, parsed once.
        self._keys: dict[tuple[str, str], RequestKey] = {}
        for place, item in enumerate(in_recorded_order(self.cassette)):
            spelling = (item.method, item.uri)
            key = self._keys.get(spelling)
            if key is None:
                key = self._keys[spelling] = self._key_of(item)
            self._queues.setdefault(key, deque()).append((place, item))
        self._held = {key: len(queue) for key, queue in self._queues.items()}
        self._served = 0
        self.ordered = ordered
        self._turns = _Turns(self.name) if ordered else None

    @property
    def replays(self) -> str:
        """The cassette this transport answers from (its name): it never talks to an API."""
        return self.name

    def __repr__(self) -> str:
        return f"ReplayTransport({self.name!r}, served={self._served}, left={self.remaining()})"

    @property
    def served(self) -> int:
        """How many responses were served so far."""
        return self._served

    def remaining(self) -> int:
        """How many recorded responses are left to serve."""
        return len(self.cassette.interactions) - self._served

    def has_answer(self, request: httpx.Request) -> bool:
        """Whether a recorded answer (or failure) is left for ``request``."""
        return bool(self._queues.get(self._request_key(request)))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` with its next recorded response."""
        request.read()
        return self._serve(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` with its next recorded response (no I/O happens)."""
        await request.aread()
        if self._turns is not None:
            queue = self._queues.get(self._request_key(request))
            while queue and not self._turns.now(queue[0][0]):
                await self._turns.wait(queue[0][0], request)
        return self._serve(request)

    def _serve(self, request: httpx.Request) -> httpx.Response:
        key = self._request_key(request)
        queue = self._queues.get(key)
        if not queue:
            raise ReplayExhaustedError(self._missing(request, key))
        place, interaction = queue.popleft()
        if self._turns is not None:
            self._turns.served(place)
        if isinstance(interaction, RecordedFailure):
            raise interaction.exception(request)
        self._served += 1
        extensions = {}
        if interaction.reason:
            extensions["reason_phrase"] = interaction.reason.encode("ascii", "replace")
        # stream= rather than content=: headers stay exactly as recorded (no Content-Length
        # added), and the response costs 10 µs instead of 46 µs to build.
        return httpx.Response(
            interaction.status_code,
            headers=interaction.headers,
            stream=httpx.ByteStream(interaction.body),
            request=request,
            extensions=extensions,
        )

    def _request_key(self, request: httpx.Request) -> RequestKey:
        """The request's key; memoised per URL spelling the cassette knows (polls repeat)."""
        spelling = (request.method, str(request.url))
        key = self._keys.get(spelling)
        if key is None:
            key = request_key(request.method, request.url)
            if key in self._queues:
                self._keys[spelling] = key
        return key

    def _key_of(self, interaction: Interaction | RecordedFailure) -> RequestKey:
        try:
            return request_key(interaction.method, httpx.URL(interaction.uri))
        except httpx.InvalidURL as exc:
            raise CassetteError(
                f"cassette {self.name} holds an invalid URI {interaction.uri!r} ({exc}); "
                "re-record it"
            ) from exc

    @property
    def name(self) -> str:
        """The cassette's path, or ``<in memory>``."""
        path = self.cassette.path
        return str(path) if path is not None else "<in memory>"

    def _missing(self, request: httpx.Request, key: RequestKey) -> str:
        """Why ``request`` has no answer: ran past the recording, or never recorded."""
        target = f"{request.method} {request.url.raw_path.decode('ascii')}"
        held = self._held.get(key, 0)
        if held:
            return (
                f"the cassette {self.name} has no more recorded answers for {target} "
                f"(it held {held}); the run asked for more than was recorded: re-record, "
                "or stop the run earlier"
            )
        recorded = ", ".join(sorted({f"{i.method} {i.uri}" for i in self.cassette})[:3])
        return (
            f"the cassette {self.name} never recorded {request.method} {request.url} "
            f"(it holds {len(self.cassette)} answers to {len(self._held)} distinct requests, "
            f"such as {recorded or 'none'}); the run made a request that was not recorded: "
            "re-record, or check the base URL and parameters"
        )


#: How long (wall clock) an ordered replay waits with no answer served at all. Replay never
#: sleeps, so a request recorded earlier that has not come by then never will.
_TURN_TIMEOUT_S = 10.0


class _Turns:
    """Whose turn it is in an ordered replay: the places of the answers, served in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.next = 0
        self._moved = asyncio.Event()

    def now(self, place: int) -> bool:
        """Whether the answer at ``place`` may be served now."""
        return place <= self.next

    def served(self, place: int) -> None:
        """The answer at ``place`` was served: the waiting requests look again."""
        self.next = max(self.next, place + 1)
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def wait(self, place: int, request: httpx.Request) -> None:
        """Wait until the next answer is served (raises when none is, for too long)."""
        try:
            await asyncio.wait_for(self._moved.wait(), _TURN_TIMEOUT_S)
        except TimeoutError:
            target = f"{request.method} {request.url.raw_path.decode('ascii')}"
            raise ReplayExhaustedError(
                f"replaying {self.name}: {target} waits for answer {place + 1}, but the request "
                f"of answer {self.next + 1} never came: the run left the recorded path"
            ) from None


def replays(transport: object) -> str | None:
    """The cassette ``transport`` replays, or None when it talks to a live API.

    A transport that replays says so in its ``replays`` attribute; wrappers (the recorder's)
    pass on the one of the transport they wrap.
    """
    return getattr(transport, "replays", None)


def replay_source(client: object) -> str | None:
    """The cassette a client replays (through its ``transport``), or None when it is live."""
    return replays(getattr(client, "transport", None))


class ResumeTransport(httpx.AsyncBaseTransport):
    """Answers from an interrupted recording while it has answers, then sends for real.

    Resuming runs the same plan again from the start: every request the recording answered
    gets that answer again (a job queued before the crash is never queued twice), and the
    run takes the recorded path until the recording runs out, then carries on live.
    :attr:`replaying` says whether recorded status answers are left, so the run need not
    wait between polls it is only re-reading.
    """

    def __init__(self, recorded: Cassette, live: httpx.AsyncBaseTransport) -> None:
        self._replay = ReplayTransport(recorded)
        self.live = live
        self._status_left = sum(
            1 for item in in_recorded_order(recorded) if _is_status(httpx.URL(item.uri))
        )

    @property
    def replaying(self) -> bool:
        """Whether recorded status answers are left to re-read."""
        return self._status_left > 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The recorded answer if one is left, else the live transport's."""
        if not self._replay.has_answer(request):
            return await self.live.handle_async_request(request)
        if _is_status(request.url):
            self._status_left -= 1
        return await self._replay.handle_async_request(request)

    async def aclose(self) -> None:
        await self.live.aclose()


def _is_status(url: httpx.URL) -> bool:
    return url.path.endswith("/imageinstall/status")
