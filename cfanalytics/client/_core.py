"""The part of the client that does no I/O: building requests and reading responses.

:class:`~cfanalytics.Client` and :class:`~cfanalytics.AsyncClient` only send what this core
builds and hand back what it parses, so sync and async share every rule.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..exceptions import CfAnalyticsError
from ._config import CONTENT_TYPE, USER_AGENT, ClientConfig
from ._errors import brief, envelope_error, format_error, status_error
from ._fields import JOB_FIELDS, STATUS_FIELDS
from ._parse import JobReader, loads
from ._results import ImageStatus, InstallJob, InstallStatus, QueueResult, RawResponse
from ._retry import RETRY_LOGGER, RetryPolicy
from ._secrets import scrub

__all__ = [
    "Call",
    "ClientCore",
    "image_status_call",
    "install_status_call",
    "parse_image_status",
    "parse_install_status",
    "queue_call",
    "queue_install_call",
    "read_response",
]

retries = logging.getLogger(RETRY_LOGGER)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API call: what to request, how to read the answer, and whether resending is safe."""

    path: str
    params: Mapping[str, str]
    idempotent: bool
    parse: Callable[[RawResponse, Any], T]
    method: str = "GET"  # every Clanforge call is a GET, queueing too


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _is_envelope_error(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    success, error = data.get("success"), data.get("error")
    return success in (False, 0, "false") or error in (True, 1, "true")


class ClientCore:
    """Builds the calls, parses responses, and decides on retries. Holds no connection."""

    def __init__(self, config: ClientConfig, retry: RetryPolicy, rng: random.Random) -> None:
        self.config = config
        self.retry = retry
        self.rng = rng

    def http_options(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient``."""
        return {
            "base_url": self.config.base_url,
            "auth": self.config.credentials.auth(),
            "headers": {"User-Agent": USER_AGENT, "Content-Type": CONTENT_TYPE},
            "timeout": self.config.timeout,
            # A redirect could carry the Authorization header elsewhere: never follow one.
            "follow_redirects": False,
        }

    def scrubbed(self, exc: CfAnalyticsError) -> CfAnalyticsError:
        """``exc`` with the keys blanked out of its text, should the server have echoed one."""
        secrets = self.config.credentials.secrets()
        exc.args = tuple(scrub(a, secrets) if isinstance(a, str) else a for a in exc.args)
        message = getattr(exc, "error_message", None)
        if isinstance(message, str):
            exc.error_message = scrub(message, secrets)  # type: ignore[attr-defined]
        return exc

    def wait_before_retry(self, call: Call[Any], attempt: int, exc: CfAnalyticsError) -> float:
        """Seconds to wait before retrying ``call`` after ``exc``; re-raises when not to retry."""
        wait = (
            self.retry.wait(attempt, exc, self.rng)
            if self.retry.retryable(exc, idempotent=call.idempotent)
            else None
        )
        if wait is None:
            raise self.scrubbed(exc)
        retries.info(
            "retrying %s %s in %.1f s (attempt %d of %d): %s",
            call.method,
            call.path,
            wait,
            attempt + 1,
            self.retry.attempts,
            brief(exc),
        )
        return wait


def queue_install_call(jobid: int, *, asid: int, mirroring: bool) -> Call[QueueResult]:
    """``GET /cfp/v1/imageinstall/<jobid>/queue``: state-changing, never resent blindly."""
    jobid, asid = _positive_int("jobid", jobid), _positive_int("asid", asid)
    if not isinstance(mirroring, bool):
        raise TypeError(f"mirroring must be a bool, got {type(mirroring).__name__}")
    params = {"accountserviceid": str(asid), "mirroring": "true" if mirroring else "false"}
    return queue_call(jobid, params, mirroring)


def queue_call(jobid: int, params: Mapping[str, str], mirroring: bool | None) -> Call[QueueResult]:
    """The queue call of ``jobid``; ``mirroring`` None when unknown (a recording's odd URL)."""

    def parse(raw: RawResponse, data: Any) -> QueueResult:
        return _queue_result(raw, data, jobid=jobid, mirroring=mirroring)

    return Call(f"/cfp/v1/imageinstall/{jobid}/queue", params, False, parse)


def install_status_call(asid: int) -> Call[InstallStatus]:
    """``GET /cfp/v1/imageinstall/status``: every incomplete install job of the ASID."""
    asid = _positive_int("asid", asid)

    def parse(raw: RawResponse, data: Any) -> InstallStatus:
        return parse_install_status(raw, data, asid=asid)

    return Call("/cfp/v1/imageinstall/status", {"accountserviceid": str(asid)}, True, parse)


def image_status_call(asid: int, imageid: int, *, detail: bool) -> Call[ImageStatus]:
    """``GET /cfp/v2/project/<asid>/image/<imageid>/status``: fleet rollout counts."""
    asid, imageid = _positive_int("asid", asid), _positive_int("imageid", imageid)

    def parse(raw: RawResponse, data: Any) -> ImageStatus:
        return parse_image_status(raw, data, asid=asid, imageid=imageid)

    params = {"detail": "true"} if detail else {}
    return Call(f"/cfp/v2/project/{asid}/image/{imageid}/status", params, True, parse)


def read_response(call: Call[T], raw: RawResponse) -> T:
    """Turn a response into the call's result, or raise the matching error."""
    if not 200 <= raw.status_code < 300:
        raise status_error(raw)
    try:
        data = loads(raw.text)
    except ValueError as exc:
        raise format_error(raw, f"not valid JSON ({exc})") from None
    except RecursionError:  # json recurses once per level: a hostile body can go deeper
        raise format_error(raw, "JSON nested too deeply to read") from None
    if _is_envelope_error(data):
        raise envelope_error(raw, data)
    return call.parse(raw, data)


def _object(raw: RawResponse, data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise format_error(raw, f"expected a JSON object for {what}, got {type(data).__name__}")
    return data


def _queue_result(
    raw: RawResponse, data: Any, *, jobid: int, mirroring: bool | None
) -> QueueResult:
    reader = JobReader(_object(raw, data, "a queued job"))
    fields = reader.read_all(JOB_FIELDS)
    squashed = _squashed(reader)
    versionmirrorid = reader.read("versionmirrorid")
    machinejobid = reader.read("machinejobid")
    if mirroring is None:  # a recording without a readable parameter: go by the shape
        mirroring = True if "versionmirrorid" in data else False if "machinejobid" in data else None
    return QueueResult(
        jobid=jobid,  # the response does not repeat it: it comes from the request path
        kind=None if mirroring is None else "mirror" if mirroring else "machine",
        versionmirrorid=versionmirrorid,
        machinejobid=machinejobid,
        installs_squashed=squashed,
        raw=raw,
        **fields,
        **reader.leftovers(),
    )


def _squashed(reader: JobReader) -> int | tuple[int, ...] | None:
    """``installs_squashed`` is undocumented: a count, or a list of job ids."""
    value = reader.obj.get("installs_squashed")
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        reader.used.add("installs_squashed")
        return tuple(value)
    return reader.read("installs_squashed")  # type: ignore[no-any-return]


def _install_job(raw: RawResponse, obj: Any) -> InstallJob:
    reader = JobReader(_object(raw, obj, "an install job"))
    fields = reader.read_all(STATUS_FIELDS)
    if fields["jobid"] is None:
        raise format_error(raw, f"an install job has no readable jobid: {dict(obj)!r:.120}")
    return InstallJob(**fields, **reader.leftovers())


def parse_install_status(raw: RawResponse, data: Any, *, asid: int) -> InstallStatus:
    """The install status list; every entry needs a readable ``jobid`` (else a format error)."""
    installs = _object(raw, data, "the install status").get("installs")
    if installs is None and "installs" in data:
        installs = []  # some APIs send null for an empty list
    if not isinstance(installs, list):
        raise format_error(raw, "no 'installs' list in the install status")
    return InstallStatus(asid=asid, installs=tuple(_install_job(raw, o) for o in installs), raw=raw)


def parse_image_status(raw: RawResponse, data: Any, *, asid: int, imageid: int) -> ImageStatus:
    """The fleet counts of an image; ``fleets``, when sent, must be a JSON object."""
    reader = JobReader(_object(raw, data, "the image status"))
    fleets = reader.obj.get("fleets")
    if fleets is not None and not isinstance(fleets, dict):
        raise format_error(raw, "'fleets' is not a JSON object")
    return ImageStatus(
        asid=asid,
        imageid=imageid,
        pending_machines=reader.read("pending_machines"),
        failed_machines=reader.read("failed_machines"),
        completed_machines=reader.read("completed_machines"),
        fleets=fleets,
        raw=raw,
    )
