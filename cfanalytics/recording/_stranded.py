"""Stranded jobs: machine jobs that wait on a mirror job that will not deliver.

A location's machine jobs install from its mirror job (one per location and image version),
so they wait until that mirror job completes. When the mirror job failed, or was never
queued, they wait for ever. This is the one definition of a stranded job; the runner stops
when every job it still follows is stranded, and says which mirror job to fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..client import InstallJob, JobState

__all__ = ["Strand", "strands"]

#: A machine job in these states has not started: it may be waiting on its mirror.
_WAITING = frozenset({JobState.CREATED, JobState.PENDING, JobState.QUEUED})
#: A mirror job in these states will not complete unless someone queues it (again).
_BLOCKING = {
    JobState.FAILED: "failed",
    JobState.CREATED: "was never queued",
    JobState.PENDING: "was never queued",
}


@dataclass(frozen=True, slots=True)
class Strand:
    """Machine jobs ``jobs`` in ``location`` waiting on mirror job ``mirror``, which ``why``."""

    location: str | None
    mirror: int
    why: str
    jobs: tuple[int, ...]

    def message(self, asid: int, *, requeue_hint: bool = False) -> str:
        """What is stuck, and the command that frees it (``requeue_hint``: and the option of
        ``record`` that would have, for a failed mirror job)."""
        where = f" in {self.location}" if self.location else ""
        count = f"{len(self.jobs)} machine job{'s' if len(self.jobs) != 1 else ''}"
        hint = ", or record with --requeue-failed" if requeue_hint and self.why == "failed" else ""
        return (
            f"{count}{where} wait on mirror job {self.mirror}, which {self.why}: queue it with "
            f"`cfanalytics queue {self.mirror} --asid {asid} --mirror`{hint}"
        )


def _key(job: InstallJob) -> tuple[str | None, int | None]:
    """A mirror job serves the machine jobs of its location and image version."""
    return job.location, job.target_imageversionid


def strands(following: Iterable[InstallJob], listed: Iterable[InstallJob]) -> list[Strand]:
    """The machine jobs of ``following`` (the jobs still followed, as last listed) that wait on
    a mirror job of the status list ``listed`` that failed or was never queued.

    A location with any mirror job queued or running is waiting, not stranded; one whose
    mirror job is no longer listed has it complete.
    """
    mirrors: dict[tuple[str | None, int | None], list[InstallJob]] = {}
    for job in listed:
        if job.mirroring:
            mirrors.setdefault(_key(job), []).append(job)
    waiting: dict[int, list[int]] = {}
    blocker: dict[int, InstallJob] = {}
    for job in following:
        if job.mirroring is not False or job.state not in _WAITING:
            continue
        own = mirrors.get(_key(job), [])
        if not own or any(m.state not in _BLOCKING for m in own):
            continue  # complete, or on its way
        mirror = min(own, key=lambda m: m.jobid)
        blocker[mirror.jobid] = mirror
        waiting.setdefault(mirror.jobid, []).append(job.jobid)
    return [
        Strand(
            location=blocker[mirror].location,
            mirror=mirror,
            why=_BLOCKING[blocker[mirror].state],  # type: ignore[index]
            jobs=tuple(sorted(jobs)),
        )
        for mirror, jobs in sorted(waiting.items())
    ]
