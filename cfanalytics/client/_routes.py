"""Which Clanforge endpoint a recorded request went to, and how to read its answer.

Recordings (ours or other tools') hold URLs, not calls: :func:`route` recovers the call from
the URL, tolerating odd parameters, so recorded answers are read by exactly the rules the
live client uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import httpx

from ._core import Call, parse_image_status, parse_install_status, queue_call
from ._fields import as_bool

__all__ = ["Endpoint", "Route", "route"]

Endpoint = Literal["status", "queue", "image_status", "other"]

_QUEUE = re.compile(r"/cfp/v1/imageinstall/(\d+)/queue/?")
_STATUS = re.compile(r"/cfp/v1/imageinstall/status/?")
_IMAGE = re.compile(r"/cfp/v2/project/(\d+)/image/(\d+)/status/?")


@dataclass(frozen=True, slots=True)
class Route:
    """A recorded request's endpoint, ids, and the call that reads its answer (None: other)."""

    endpoint: Endpoint
    asid: int | None
    jobid: int | None
    mirroring: bool | None
    call: Call[Any] | None


def _int(value: str | None) -> int | None:
    # ASCII only: "²".isdigit() is True, but int("²") raises.
    return int(value) if value is not None and value.isascii() and value.isdigit() else None


def _flag(value: str | None) -> bool | None:
    try:
        return as_bool(value) if value is not None else None
    except ValueError:
        return None


def route(url: str | httpx.URL) -> Route:
    """The route of a request URL (absolute or path with query)."""
    url = httpx.URL(url)
    path, params = url.path, url.params
    asid = _int(params.get("accountserviceid"))
    if _STATUS.fullmatch(path):
        status = Call(path, {}, True, partial(parse_install_status, asid=asid or 0))
        return Route("status", asid, None, None, status)
    if match := _QUEUE.fullmatch(path):
        jobid, mirroring = int(match[1]), _flag(params.get("mirroring"))
        return Route("queue", asid, jobid, mirroring, queue_call(jobid, {}, mirroring))
    if match := _IMAGE.fullmatch(path):
        asid, imageid = int(match[1]), int(match[2])
        call = Call(path, {}, True, partial(parse_image_status, asid=asid, imageid=imageid))
        return Route("image_status", asid, None, None, call)
    return Route("other", asid, None, None, None)
