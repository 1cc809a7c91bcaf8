"""Typed results of the image-install endpoints, each keeping the raw response it came from."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

__all__ = [
    "ImageStatus",
    "InstallJob",
    "InstallStatus",
    "JobFields",
    "JobState",
    "QueueResult",
    "RawResponse",
]

JobKind = Literal["mirror", "machine"]


class JobState(enum.IntEnum):
    """Install job states (``jobstateid``). Match on the id, never on the name."""

    CREATED = 1
    PENDING = 2
    QUEUED = 3
    RUNNING = 4
    COMPLETE = 5
    FAILED = 6
    SQUASHED = 7

    @property
    def label(self) -> str:
        """The state's display name, e.g. ``"Running"``."""
        return self.name.capitalize()

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended (complete, failed or squashed)."""
        return self in (JobState.COMPLETE, JobState.FAILED, JobState.SQUASHED)


@dataclass(frozen=True, slots=True)
class RawResponse:
    """Every byte the recorder needs: request line, status, headers in order, body text."""

    method: str
    url: str
    status_code: int
    headers: tuple[tuple[str, str], ...]
    text: str

    @classmethod
    def from_httpx(cls, response: httpx.Response) -> RawResponse:
        """Capture an httpx response (its body must already be read)."""
        request = response.request
        return cls(
            method=request.method,
            url=str(request.url),
            status_code=response.status_code,
            headers=tuple(response.headers.multi_items()),
            text=response.text,
        )

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    @property
    def date(self) -> datetime | None:
        """The server's ``Date`` header as a tz-aware UTC datetime, or None."""
        value = self.header("date")
        try:
            return parsedate_to_datetime(value) if value else None
        except (TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFields:
    """The job fields shared by queue responses and status-list entries.

    Timestamps are tz-aware UTC datetimes (None when absent or empty). ``extra`` keeps
    unknown fields as sent; ``invalid`` keeps values that could not be read as their
    documented type (the field is then None); ``duplicates`` keeps every value of a key
    the JSON object repeated (the field takes the last one, as JSON parsers do).
    """

    jobstateid: int | None
    jobstatename: str | None
    jobprogress: int | None
    jobcreated: datetime | None
    jobstart: datetime | None
    jobupdated: datetime | None
    jobeta: datetime | None
    jobfailed: int | None
    joberror: str | None
    success: bool | None
    extra: Mapping[str, Any] = field(default_factory=dict)
    invalid: Mapping[str, Any] = field(default_factory=dict)
    duplicates: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    @property
    def state(self) -> JobState | None:
        """The job state as a :class:`JobState`, or None when unknown."""
        try:
            return JobState(self.jobstateid) if self.jobstateid is not None else None
        except ValueError:
            return None


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallJob(JobFields):
    """One entry of the install status list."""

    jobid: int
    mirroring: bool | None
    restart: bool | None
    location: str | None
    machine: str | None
    mirror: str | None
    imagepath: str | None
    install_at: datetime | None
    target_imageversionid: int | None

    @property
    def kind(self) -> JobKind | None:
        """``"mirror"`` for a mirror job, ``"machine"`` for a machine job, None if unknown."""
        if self.mirroring is None:
            return None
        return "mirror" if self.mirroring else "machine"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueResult(JobFields):
    """The answer to queueing one install job. ``jobid`` comes from the request path."""

    jobid: int
    kind: JobKind | None
    versionmirrorid: int | None
    machinejobid: int | None
    installs_squashed: int | tuple[int, ...] | None
    raw: RawResponse = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class InstallStatus:
    """Every incomplete install job of an ASID, as listed at one moment."""

    asid: int
    installs: tuple[InstallJob, ...]
    raw: RawResponse = field(repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.installs)

    def __iter__(self) -> Iterator[InstallJob]:
        return iter(self.installs)

    @property
    def observed_at(self) -> datetime | None:
        """When the server answered (its ``Date`` header)."""
        return self.raw.date


@dataclass(frozen=True, slots=True)
class ImageStatus:
    """Fleet rollout counts for an image (v2 endpoint); ``fleets`` only with ``detail=True``."""

    asid: int
    imageid: int
    pending_machines: int | None
    failed_machines: int | None
    completed_machines: int | None
    fleets: Mapping[str, Any] | None
    raw: RawResponse = field(repr=False, compare=False)
