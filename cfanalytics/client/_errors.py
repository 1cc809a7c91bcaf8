"""Turning HTTP failures into the exception tree: the one place status codes map to classes."""

from __future__ import annotations

import json
import re
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ..exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CfAnalyticsError,
    ConnectError,
    HTTPStatusError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseFormatError,
    ServerError,
    TransportError,
)
from ._config import ENV_BASE_URL
from ._results import RawResponse

__all__ = ["brief", "envelope_error", "format_error", "status_error", "transport_error"]

_STATUS_CLASSES: dict[int, type[HTTPStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    429: RateLimitedError,
}

_ADVICE: dict[type[HTTPStatusError], str] = {
    AuthenticationError: "check CLANFORGE_ACCESS_KEY / CLANFORGE_SECRET_KEY and that the keys "
    "have access to this ASID",
    BadRequestError: "check the request parameters (ASID, job id, mirroring)",
    NotFoundError: "check the base URL, the ASID and the id in the path",
    RateLimitedError: "slow down the polling interval",
    ServerError: "Clanforge failed; try again later",
    HTTPStatusError: "unexpected status; check the base URL",
}

# Known envelope messages and what the user can do about them.
_ENVELOPE_ADVICE = {
    "image locked by diffid": "an outstanding image diff blocks the image: reject or finish "
    "that diff, then queue again",
    "request in progress": "Clanforge is still handling an earlier request; re-read the "
    "install status list before queueing again",
    "no rows in result set": "check the job id and that it belongs to this ASID",
}


def _where(raw: RawResponse) -> str:
    return f"{raw.method} {httpx.URL(raw.url).copy_with(query=None)}"


def _envelope_fields(data: Any) -> tuple[int | None, str | None]:
    if not isinstance(data, dict):
        return None, None
    code, message = data.get("error_code"), data.get("error_message")
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        str(message) if message not in (None, "") else None,
    )


def _retry_after(raw: RawResponse) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date relative to the response's Date."""
    value = raw.header("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when, now = parsedate_to_datetime(value), raw.date
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds()) if now else None


def status_error(raw: RawResponse) -> HTTPStatusError:
    """The exception for a non-2xx response."""
    status = raw.status_code
    cls = _STATUS_CLASSES.get(status, ServerError if status >= 500 else HTTPStatusError)
    try:
        code, message = _envelope_fields(json.loads(raw.text))
    except ValueError:
        code, message = None, None
    said = f": {message}" if message else ""
    text = f"HTTP {status} from Clanforge for {_where(raw)}{said}; {_ADVICE[cls]}."
    wait = _retry_after(raw)
    hint = f" (Retry-After: {wait:g} s)" if wait is not None else ""
    return cls(text + hint, raw=raw, error_code=code, error_message=message, retry_after=wait)


def envelope_error(raw: RawResponse, data: Any) -> APIError:
    """The exception for an error envelope (``success: false`` / ``error: true``)."""
    code, message = _envelope_fields(data)
    advice = next(
        (tip for key, tip in _ENVELOPE_ADVICE.items() if message and key in message.lower()),
        "see error_message",
    )
    text = (
        f"Clanforge reported an error for {_where(raw)}: {message or 'no message'}"
        f" (error_code {code}); {advice}."
    )
    return APIError(text, raw=raw, error_code=code, error_message=message)


def format_error(raw: RawResponse, problem: str) -> ResponseFormatError:
    """The exception for a body that is not the documented JSON."""
    kind = raw.header("content-type") or "no content type"
    start = raw.text[:80].replace("\n", " ")
    return ResponseFormatError(
        f"Unreadable response from Clanforge for {_where(raw)} (HTTP {raw.status_code}, "
        f"{kind}, {len(raw.text)} chars): {problem}; it starts {start!r}.",
        raw=raw,
    )


def transport_error(exc: httpx.TransportError, request: httpx.Request) -> TransportError:
    """The exception for a request that got no usable response (caused by ``exc``)."""
    error = _transport_error(exc, request)
    error.__cause__ = exc
    return error


def _transport_error(exc: httpx.TransportError, request: httpx.Request) -> TransportError:
    where = f"{request.method} {request.url.copy_with(query=None)}"
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        url = request.url
        return ConnectError(
            f"Could not connect to {url.scheme}://{url.netloc.decode()} ({request.method} "
            f"{url.path}): {_plain(detail)}. Is the Clanforge API, or the simulator, running "
            f"there? If not, check the base URL (base_url=, else {ENV_BASE_URL}) and the "
            "network. The request was not sent.",
            method=request.method,
            url=str(request.url),
        )
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError(
            f"Clanforge did not answer {where} in time ({detail}); raise timeout= or try "
            "later. The server may have acted on the request.",
            method=request.method,
            url=str(request.url),
        )
    return TransportError(
        f"The connection failed during {where}: {detail}. The server may have acted on the "
        "request.",
        method=request.method,
        url=str(request.url),
    )


def _plain(detail: str) -> str:
    """An OS or httpx error text as part of a sentence: ``[Errno 111] Connection refused``
    reads ``connection refused``."""
    detail = re.sub(r"^\[Errno -?\d+\] ", "", detail).rstrip(".")
    return detail[:1].lower() + detail[1:]


def brief(exc: CfAnalyticsError) -> str:
    """What went wrong, in a few words: the end of a line saying a request is retried. Never
    the body, which could echo anything."""
    if isinstance(exc, RequestTimeoutError):
        return "no answer in time"
    if isinstance(exc, TransportError):
        cause = exc.__cause__
        return _plain(str(cause) or type(cause).__name__) if cause else type(exc).__name__
    if isinstance(exc, ResponseFormatError):
        return f"unreadable answer (HTTP {exc.status_code})"
    if isinstance(exc, HTTPStatusError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__
