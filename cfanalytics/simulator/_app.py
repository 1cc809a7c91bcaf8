"""The simulator's HTTP surface as one function: ``Simulator.handle`` (no sockets here).

:class:`Simulator` joins a :class:`~cfanalytics.simulator.Model` to the Clanforge
routes: it authenticates, parses parameters, injects seeded faults and the optional rate
limit, and renders bodies byte for byte. :mod:`._transport` (in-process, for httpx) and
:mod:`._server` (loopback HTTP) are thin adapters over :meth:`Simulator.handle`.

Determinism: with a :class:`~cfanalytics.simulator.ManualClock`, the same scenario,
seed and request sequence at the same clock times give byte-identical responses.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import email.utils
import hmac
import json
import os
import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from ._clock import Clock, ScaledClock
from ._faults import Fault, FaultInjector, RateLimiter
from ._model import ApplicationError, Model
from ._params import (
    Reject,
    parse_bool,
    parse_int,
    parse_optional_bool,
    parse_optional_int,
    to_int,
)
from ._render import Renderer, envelope, forbidden
from ._scenario import Scenario, default_scenario

__all__ = ["SimResponse", "Simulator"]

ACCESS_ENV = "CLANFORGE_ACCESS_KEY"
SECRET_ENV = "CLANFORGE_SECRET_KEY"

_QUEUE = re.compile(r"/cfp/v1/imageinstall/(?P<jobid>[^/]+)/queue")
_VERSION_STATUS = re.compile(r"/cfp/v1/imageversion/(?P<vid>[^/]+)/status")
_IMAGE_STATUS = re.compile(r"/cfp/v2/project/(?P<asid>[^/]+)/image/(?P<imageid>[^/]+)/status")
_TRUTH = "/_sim/truth"
# Routes that change nothing: a truncated-body fault may show their real (cut) answer.
_READ_ONLY = frozenset({"status", "version_status", "image_status"})
_HTML_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass(frozen=True, slots=True)
class SimResponse:
    """What the simulator answers; ``fault`` tells the adapter to drop or delay it.

    With ``fault == "drop"`` there is no response at all (``status`` is 0): the adapter closes
    the connection. With ``fault == "latency"`` the adapter waits ``latency`` seconds first.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    fault: Literal["drop", "latency"] | None = None
    latency: float = 0.0

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (any case), or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


def _credential(given: str | None, env: str) -> str:
    value = given if given is not None else os.environ.get(env, "")
    if not value:
        raise ValueError(
            f"the simulator needs credentials: pass access_key= and secret_key= "
            f"or set {ACCESS_ENV} and {SECRET_ENV}"
        )
    return value


#: The header cfanalytics' recorder stamps receive times in (the simulator never imports it).
OBSERVED_AT_HEADER = "x-cfanalytics-observed-at"


def _iso(now: float) -> str:
    stamp = datetime.datetime.fromtimestamp(now, datetime.UTC)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


class Simulator:
    """An embedded Clanforge image-install API over a seeded, lazily advanced model.

    Credentials default to ``CLANFORGE_ACCESS_KEY`` / ``CLANFORGE_SECRET_KEY`` (read here, at
    construction); ``faults`` is the probability that a request meets an injected fault.
    """

    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        faults: float = 0.0,
    ) -> None:
        self.scenario = scenario if scenario is not None else default_scenario()
        self.seed = seed
        self.clock: Clock = clock if clock is not None else ScaledClock(start=self.scenario.start)
        self.asid = self.scenario.asid
        self._access = _credential(access_key, ACCESS_ENV).encode()
        self._secret = _credential(secret_key, SECRET_ENV).encode()
        self.model = Model(self.scenario, seed=seed)
        self._renderer = Renderer(self.scenario)
        self._faults = FaultInjector(faults, seed=seed, scenario=self.scenario)
        limit = self.scenario.rate_limit
        self._limiter = None if limit is None else RateLimiter(limit, start=self.scenario.start)
        self._requests = 0  # Clanforge-surface requests seen: seeds faults and shuffles
        self._status_cache: tuple[tuple[int, int, int], bytes] | None = None
        self._lock = threading.Lock()  # one request at a time: the model is not thread-safe

    @property
    def access_key(self) -> str:
        """The access key the simulator accepts (the secret is never exposed)."""
        return self._access.decode()

    @property
    def faults(self) -> float:
        """The per-request fault probability."""
        return self._faults.probability

    def __repr__(self) -> str:
        return (
            f"Simulator(asid={self.asid}, seed={self.seed}, clock={self.clock!r}, "
            f"jobs={len(self.model.jobs)}, faults={self.faults})"
        )

    def handle(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> SimResponse:
        """Answer one HTTP request. Thread-safe; the model advances to the clock's now."""
        with self._lock:
            now = self.clock.now()
            self.model.advance(now)
            path = path.rstrip("/") or "/"
            if path == _TRUTH:
                return self._truth(method, now)
            self._requests += 1
            fault = self._faults.draw(self._requests)
            if fault is not None:
                return self._faulted(fault, method, path, query, headers, now)
            return self._serve(method, path, query, headers, now)

    # --- plumbing --------------------------------------------------------------------------

    def _respond(
        self,
        status: int,
        body: bytes,
        now: float,
        extra: tuple[tuple[str, str], ...] = (),
        content_type: str = "application/json",
    ) -> SimResponse:
        headers = (
            ("Content-Type", content_type),
            ("Date", email.utils.formatdate(now, usegmt=True)),
            # The exact simulated time: a recorder keeps a stamp it finds, so recordings of a
            # simulator running faster than real time stay in one (simulated) time frame.
            (OBSERVED_AT_HEADER, _iso(now)),
            ("Content-Length", str(len(body))),
            *extra,
        )
        return SimResponse(status, headers, body)

    def _truth(self, method: str, now: float) -> SimResponse:
        if method.upper() != "GET":
            return self._respond(405, envelope("Method Not Allowed"), now, (("Allow", "GET"),))
        body = json.dumps({"jobs": self.model.truth()}).encode()
        return self._respond(200, body, now)

    def _route(self, path: str) -> tuple[str, dict[str, str]] | None:
        if path == "/cfp/v1/imageinstall/status":
            return "status", {}
        if path == "/cfp/v1/imageversion/create":
            return "create", {}
        for name, pattern in (
            ("queue", _QUEUE),
            ("version_status", _VERSION_STATUS),
            ("image_status", _IMAGE_STATUS),
        ):
            match = pattern.fullmatch(path)
            if match:
                return name, match.groupdict()
        return None

    def _serve(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        now: float,
    ) -> SimResponse:
        routed = self._route(path)
        if routed is None:
            return self._respond(404, envelope(f"Not Found: {path}"), now)
        if method.upper() != "GET":
            return self._respond(405, envelope("Method Not Allowed"), now, (("Allow", "GET"),))
        if self._limiter is not None:
            retry_after = self._limiter.check(now)
            if retry_after is not None:
                extra = (("Retry-After", str(retry_after)),)
                return self._respond(429, envelope("Too Many Requests"), now, extra)
        if not self._authorized(headers):
            return self._respond(403, forbidden(), now)
        name, params = routed
        try:
            body = self._handlers()[name](params, query)
        except Reject as exc:
            body = forbidden() if exc.status == 403 else envelope(exc.message)
            return self._respond(exc.status, body, now)
        except ApplicationError as exc:
            # v2 answers with real status codes; v1 hides application errors behind a 200.
            return self._respond(404 if name == "image_status" else 200, envelope(exc.message), now)
        return self._respond(200, body, now)

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        if value is None:
            return False
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        access, colon, secret = decoded.partition(b":")
        # Compare both parts, always, in constant time: no early exit to time.
        ok_access = hmac.compare_digest(access, self._access)
        ok_secret = hmac.compare_digest(secret, self._secret)
        return bool(colon) and ok_access and ok_secret

    def _check_asid(self, value: str | None) -> None:
        """A missing or malformed ASID is a 400; someone else's ASID is a 403."""
        if value is None or value == "":
            raise Reject(400, "missing parameter: accountserviceid")
        if to_int(value, "accountserviceid") != self.asid:
            raise Reject(403, "Forbidden")

    # --- routes ----------------------------------------------------------------------------

    def _handlers(self) -> dict[str, Callable[[dict[str, str], Mapping[str, str]], bytes]]:
        return {
            "status": self._status,
            "queue": self._queue,
            "create": self._create,
            "version_status": self._version_status,
            "image_status": self._image_status,
        }

    def _status(self, params: dict[str, str], query: Mapping[str, str]) -> bytes:
        self._check_asid(query.get("accountserviceid"))
        shuffled = self.scenario.status_order == "shuffled"
        # The list changes only with a job state change or a new update tick: between those,
        # polls get the same bytes, rendered once.
        key = (self.model.revision, self.model.tick_index(), self._requests if shuffled else 0)
        if self._status_cache is not None and self._status_cache[0] == key:
            return self._status_cache[1]
        jobs = self.model.listed()
        if shuffled:
            random.Random(f"{self.seed}:order:{self._requests}").shuffle(jobs)
        body = self._renderer.status_body((job, self.model.snapshot(job)) for job in jobs)
        self._status_cache = (key, body)
        return body

    def _queue(self, params: dict[str, str], query: Mapping[str, str]) -> bytes:
        self._check_asid(query.get("accountserviceid"))
        mirroring = parse_bool(query, "mirroring")
        jobid = to_int(params["jobid"], "jobid")
        job, squashed = self.model.queue(jobid, mirroring=mirroring)
        return self._renderer.queue_body(job, self.model.snapshot(job), squashed)

    def _create(self, params: dict[str, str], query: Mapping[str, str]) -> bytes:
        self._check_asid(query.get("accountserviceid"))
        diffid = parse_int(query, "diffid")
        restart = parse_bool(query, "restart")
        full = parse_optional_bool(query, "full")
        parse_optional_bool(query, "force")  # accepted and validated; nothing to force here
        install_at = parse_optional_int(query, "install_at")
        parse_optional_int(query, "disable_timeout")
        parse_optional_int(query, "disable_percentage")
        version = self.model.create_version(
            diffid, restart=restart, full=full, install_at=install_at
        )
        return self._renderer.version_body(version, self.model.version_snapshot(version))

    def _version_status(self, params: dict[str, str], query: Mapping[str, str]) -> bytes:
        self._check_asid(query.get("accountserviceid"))
        version = self.model.version(to_int(params["vid"], "imageversionid"))
        return self._renderer.version_body(version, self.model.version_snapshot(version))

    def _image_status(self, params: dict[str, str], query: Mapping[str, str]) -> bytes:
        self._check_asid(params["asid"])
        imageid = to_int(params["imageid"], "imageid")
        detail = parse_optional_bool(query, "detail")
        return json.dumps(self.model.image_status(imageid, detail=detail)).encode()

    # --- faults ----------------------------------------------------------------------------

    def _faulted(
        self,
        fault: Fault,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        now: float,
    ) -> SimResponse:
        """Answer with ``fault``; only a latency spike lets the request reach the model."""
        if fault.kind == "drop":
            return SimResponse(0, (), b"", fault="drop")
        if fault.kind == "latency":
            response = self._serve(method, path, query, headers, now)
            return replace(response, fault="latency", latency=fault.latency)
        if fault.kind == "429":
            extra = (("Retry-After", str(fault.retry_after)),)
            return self._respond(429, envelope("Too Many Requests"), now, extra)
        if fault.kind == "5xx":
            reason = {500: "Internal Server Error", 502: "Bad Gateway"}.get(fault.status)
            return self._respond(fault.status, envelope(reason or "Service Unavailable"), now)
        if fault.kind == "html":
            reason = "Bad Gateway" if fault.status == 502 else "OK"
            page = _HTML_PAGE.format(status=fault.status, reason=reason).encode()
            return self._respond(fault.status, page, now, content_type="text/html")
        return self._truncated(fault, method, path, query, headers, now)

    def _truncated(
        self,
        fault: Fault,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        now: float,
    ) -> SimResponse:
        """A body cut short. Read-only routes show their real answer, cut; others a busy note."""
        routed = self._route(path)
        if routed is not None and routed[0] in _READ_ONLY:
            full = self._serve(method, path, query, headers, now)
            status, body = full.status, full.body
        else:
            status, body = 200, envelope("Request in progress")
        cut = min(max(int(len(body) * fault.cut), 1), max(len(body) - 1, 1))
        return self._respond(status, body[:cut], now)
