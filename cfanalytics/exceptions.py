"""The one exception tree of cfanalytics.

Every error the toolkit raises on purpose derives from :class:`CfAnalyticsError`, so
``except cfanalytics.CfAnalyticsError`` catches them all. Programmer errors (a wrong argument
type, an impossible value) stay ``TypeError`` / ``ValueError``.

::

    CfAnalyticsError
    ├── ConfigurationError            nothing was sent: fix the set-up
    │   ├── CredentialsError          no access key / secret key found
    │   └── InsecureTransportError    credentials would travel over plain HTTP
    ├── TransportError                no usable HTTP response arrived
    │   ├── ConnectError              the request never reached the server (safe to resend)
    │   └── RequestTimeoutError       the server did not answer in time
    ├── ResponseError                 a response arrived, and it is an error
    │   ├── HTTPStatusError           a non-2xx status
    │   │   ├── AuthenticationError   401 / 403 "Forbidden"
    │   │   ├── BadRequestError       400
    │   │   ├── NotFoundError         404
    │   │   ├── RateLimitedError      429 (``retry_after`` in seconds, if the server said)
    │   │   └── ServerError           5xx
    │   ├── APIError                  an error envelope (``success: false``), even with HTTP 200
    │   └── ResponseFormatError       not JSON, truncated, or not the documented shape
    ├── RecordingError                a cassette or event log cannot be read or written
    │   ├── CassetteError             a cassette is missing, corrupt, or would be overwritten
    │   ├── ReplayExhaustedError      replay asked for more than the cassette recorded
    │   ├── EventLogError             an event log is corrupt or its folder is not writable
    │   └── HistoryError              a history store cannot be read or added to
    ├── SchemaError                   a DataFrame does not follow the events schema
    ├── RolloutError                  one rollout is needed and there are several, or none
    └── ReportError                   a report cannot be written

Each error carries what is needed to act on it: the request method and URL (never the
credentials), and for :class:`ResponseError` the raw response (status, headers, body text).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import RawResponse

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CassetteError",
    "CfAnalyticsError",
    "ConfigurationError",
    "ConnectError",
    "CredentialsError",
    "EventLogError",
    "HTTPStatusError",
    "HistoryError",
    "InsecureTransportError",
    "NotFoundError",
    "RateLimitedError",
    "RecordingError",
    "ReplayExhaustedError",
    "ReportError",
    "RequestTimeoutError",
    "ResponseError",
    "ResponseFormatError",
    "RolloutError",
    "SchemaError",
    "ServerError",
    "TransportError",
]


class CfAnalyticsError(Exception):
    """Base class of every error cfanalytics raises on purpose."""


class ConfigurationError(CfAnalyticsError):
    """The client is not set up to talk to Clanforge; nothing was sent."""


class CredentialsError(ConfigurationError):
    """No Clanforge access key / secret key was given or found in the environment."""


class InsecureTransportError(ConfigurationError):
    """Credentials would be sent over plain HTTP to a host that is not loopback."""


class TransportError(CfAnalyticsError):
    """The request failed before a usable HTTP response arrived."""

    def __init__(self, message: str, *, method: str, url: str) -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class ConnectError(TransportError):
    """The connection could not be made: the server never saw the request."""


class RequestTimeoutError(TransportError):
    """The server did not answer within the timeout; it may have acted on the request."""


class ResponseError(CfAnalyticsError):
    """A response arrived and it reports (or is) an error; ``raw`` keeps every byte of it.

    ``error_code`` / ``error_message`` come from Clanforge's error envelope, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        raw: RawResponse,
        error_code: int | None = None,
        error_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.raw = raw
        self.error_code = error_code
        self.error_message = error_message

    @property
    def status_code(self) -> int:
        """The HTTP status code of the response."""
        return self.raw.status_code


class HTTPStatusError(ResponseError):
    """A non-2xx HTTP status. ``retry_after`` is the wait in seconds the server asked for
    (its ``Retry-After``), or None."""

    def __init__(
        self,
        message: str,
        *,
        raw: RawResponse,
        error_code: int | None = None,
        error_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, raw=raw, error_code=error_code, error_message=error_message)
        self.retry_after = retry_after


class AuthenticationError(HTTPStatusError):
    """HTTP 401/403: wrong keys, a malformed header, or no access to the ASID."""


class BadRequestError(HTTPStatusError):
    """HTTP 400: a missing or malformed parameter."""


class NotFoundError(HTTPStatusError):
    """HTTP 404: no such endpoint or resource."""


class RateLimitedError(HTTPStatusError):
    """HTTP 429. ``retry_after`` is the wait in seconds the server asked for, or None."""


class ServerError(HTTPStatusError):
    """HTTP 5xx: Clanforge failed to handle the request."""


class APIError(ResponseError):
    """Clanforge answered with its error envelope (often with HTTP 200)."""


class ResponseFormatError(ResponseError):
    """The body is not JSON, is truncated, or lacks the documented shape.

    ``snippet`` holds the first bytes of the body, to see what came instead.
    """

    def __init__(self, message: str, *, raw: RawResponse) -> None:
        super().__init__(message, raw=raw)
        self.snippet = raw.text[:200]


class RecordingError(CfAnalyticsError):
    """A recording (cassette or event log) cannot be read or written."""


class CassetteError(RecordingError):
    """A cassette is missing, corrupt, not a vcrpy cassette, or would be overwritten."""


class ReplayExhaustedError(RecordingError):
    """Replay asked for a request the cassette has no (more) recorded answers for."""


class EventLogError(RecordingError):
    """An event log is corrupt, or its folder cannot be written."""


class HistoryError(RecordingError):
    """A history store cannot be read or added to (a corrupt file, an unwritable folder)."""


class SchemaError(CfAnalyticsError):
    """A DataFrame does not follow the events schema (missing column, wrong dtype)."""


class RolloutError(CfAnalyticsError):
    """One rollout is needed and the data holds several (or not the one asked for).

    The message names the rollouts found, so the caller can pick one with ``rollout=``.
    """


class ReportError(CfAnalyticsError):
    """A report cannot be written (its folder is missing or read-only, the disk is full)."""
