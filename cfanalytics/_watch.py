"""Queue a set of install jobs and poll the status list until they have all ended.

A small synchronous loop used by ``cfanalytics demo``; the recording rollout runner of
the next milestone takes it over. It stops on what responses say (a job ended when a
successful poll no longer lists it or shows a terminal state), never on wall time, so the
same responses always lead down the same path.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .client import Client, InstallJob, InstallStatus, JobState, QueueResult
from .exceptions import CfAnalyticsError

__all__ = ["QUEUEABLE", "RolloutProgress", "queue_jobs", "watch_rollout"]

log = logging.getLogger("cfanalytics.watch")

QUEUEABLE = frozenset({JobState.CREATED, JobState.PENDING, JobState.FAILED})


@dataclass
class RolloutProgress:
    """What the polls have shown so far about the watched jobs."""

    watched: frozenset[int]
    latest: dict[int, InstallJob] = field(default_factory=dict)
    ended: dict[int, str] = field(default_factory=dict)  # jobid -> "completed" | "failed" | ...
    polls: int = 0
    failed_polls: int = 0

    @property
    def done(self) -> bool:
        """Whether every watched job has ended."""
        return len(self.ended) == len(self.watched)

    def counts(self) -> Counter[str]:
        """How many watched jobs are in each state, ended ones by outcome."""
        counts: Counter[str] = Counter(self.ended.values())
        for jobid, job in self.latest.items():
            if jobid not in self.ended and job.state is not None:
                counts[job.state.label.lower()] += 1
        return counts

    def update(self, status: InstallStatus) -> None:
        """Take in one successful poll of the status list."""
        self.polls += 1
        listed = {job.jobid: job for job in status if job.jobid in self.watched}
        self.latest.update(listed)
        for jobid in self.watched - self.ended.keys():
            job = listed.get(jobid)
            if job is None:
                # Vanished from the list: complete (or squashed, which we cannot tell apart).
                self.ended[jobid] = "completed"
            elif job.state in (JobState.COMPLETE, JobState.FAILED, JobState.SQUASHED):
                self.ended[jobid] = job.state.label.lower()


def queue_jobs(
    client: Client, asid: int, jobs: Iterable[InstallJob]
) -> tuple[list[QueueResult], list[tuple[InstallJob, CfAnalyticsError]]]:
    """Queue each job once, ``mirroring`` taken from its listing; collect answers and errors."""
    queued: list[QueueResult] = []
    errors: list[tuple[InstallJob, CfAnalyticsError]] = []
    for job in jobs:
        if job.mirroring is None:
            continue  # without mirroring we cannot queue it correctly
        try:
            queued.append(client.queue_install(job.jobid, asid=asid, mirroring=job.mirroring))
        except CfAnalyticsError as exc:
            log.warning("could not queue job %s: %s", job.jobid, exc)
            errors.append((job, exc))
    return queued, errors


def watch_rollout(
    client: Client,
    asid: int,
    jobids: Iterable[int],
    *,
    interval: float,
    sleep: Callable[[float], object],
    max_polls: int = 10_000,
    on_poll: Callable[[RolloutProgress], object] | None = None,
) -> RolloutProgress:
    """Poll every ``interval`` seconds until every job in ``jobids`` ended or ``max_polls``."""
    progress = RolloutProgress(watched=frozenset(jobids))
    while not progress.done and progress.polls + progress.failed_polls < max_polls:
        try:
            progress.update(client.install_status(asid))
        except CfAnalyticsError as exc:
            # A failed poll says nothing about absence; keep watching.
            progress.failed_polls += 1
            log.warning("status poll failed: %s", exc)
        if on_poll is not None:
            on_poll(progress)
        if not progress.done:
            sleep(interval)
    return progress
