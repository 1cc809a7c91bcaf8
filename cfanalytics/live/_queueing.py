"""Choosing and queueing install jobs by hand: the logic behind the queue panel.

:class:`QueueController` lists the queueable jobs of an ASID as a table, filters them,
phrases the confirmation (the exact job ids and ASID), queues each chosen job with the
``mirroring`` flag its listing gave, and keeps every per-job answer, success or error. It
works with :class:`~cfanalytics.AsyncClient` or :class:`~cfanalytics.Client`, and refuses
to queue when the client replays a cassette.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..client import AsyncClient, Client, InstallJob, InstallStatus, QueueResult, may_have_acted
from ..events import BOOL, INT, TEXT
from ..exceptions import CfAnalyticsError, ConfigurationError, RecordingError
from ..recording import QUEUEABLE, replay_source

__all__ = ["JOB_COLUMNS", "QueueController", "QueueOutcome"]

log = logging.getLogger("cfanalytics.queueing")

#: The columns of :attr:`QueueController.jobs`, and their dtypes.
JOB_COLUMNS: dict[str, object] = {
    "jobid": INT,
    "kind": TEXT,
    "location": TEXT,
    "machine": TEXT,
    "mirror": TEXT,
    "state": TEXT,
    "jobprogress": INT,
    "jobfailed": INT,
    "mirroring": BOOL,
}
_FILTERS = ("location", "kind", "state")


@dataclass(frozen=True)
class QueueOutcome:
    """What queueing one job gave: the API's result, or the error it raised."""

    jobid: int
    result: QueueResult | None = None
    error: CfAnalyticsError | None = None

    @property
    def ok(self) -> bool:
        """Whether the API accepted the job."""
        return self.result is not None

    def describe(self) -> str:
        """One line for people: the new state, or what went wrong."""
        if self.result is not None:
            state = self.result.jobstatename or "accepted"
            return f"queued: {state}"
        if self.error is not None and may_have_acted(self.error):
            # Sending it again could queue it twice: the status list says whether it took.
            return f"unclear, it may have been queued ({self.error}): refresh before queueing again"
        return f"error: {self.error}"


class QueueController:
    """Queueable jobs of ``asid``; queue a chosen few and keep every answer."""

    def __init__(self, client: AsyncClient | Client, asid: int) -> None:
        self.client = client
        self.asid = asid
        self.jobs = _job_table([])
        self.listed_at: pd.Timestamp | None = None
        self.outcomes: dict[int, QueueOutcome] = {}
        self._listing: dict[int, InstallJob] = {}
        self._listeners: list[Callable[[list[QueueResult]], object]] = []

    def __repr__(self) -> str:
        return f"<QueueController ASID {self.asid}: {len(self.jobs)} queueable jobs listed>"

    @property
    def read_only(self) -> str | None:
        """Why nothing can be queued (the client replays a cassette), or None."""
        cassette = replay_source(self.client)
        if cassette is None:
            return None
        return f"This is a replay of {cassette}: it shows what was recorded, and queues nothing."

    @property
    def queued(self) -> list[QueueResult]:
        """Every job the API accepted so far, in the order they were queued."""
        return [o.result for o in self.outcomes.values() if o.result is not None]

    def on_queued(self, callback: Callable[[list[QueueResult]], object]) -> None:
        """Call ``callback(results)`` after each batch with the jobs the API accepted."""
        self._listeners.append(callback)

    async def refresh(self) -> pd.DataFrame:
        """List the ASID's jobs again; returns the queueable ones (:attr:`jobs`)."""
        status: InstallStatus = await _maybe_await(self.client.install_status(self.asid))
        queueable = [job for job in status if job.state in QUEUEABLE]
        self._listing = {job.jobid: job for job in queueable}
        self.jobs = _job_table(queueable)
        self.listed_at = pd.Timestamp(status.observed_at) if status.observed_at else None
        return self.jobs

    def options(self, column: str) -> list[str]:
        """The values a filter on ``column`` (location, kind or state) can take, sorted."""
        _check_filter(column)
        return sorted(self.jobs[column].dropna().unique().tolist())

    def choices(self, **filters: str | None) -> pd.DataFrame:
        """The queueable jobs matching ``location=``, ``kind=``, ``state=`` (None: any)."""
        keep = pd.Series(True, index=self.jobs.index)
        for column, value in filters.items():
            _check_filter(column)
            if value is not None:
                keep &= self.jobs[column].eq(value).fillna(False)
        return self.jobs.loc[keep]

    def confirmation(self, jobids: Sequence[int]) -> str:
        """The question to ask before queueing: how many jobs, which, and on which ASID."""
        if not jobids:
            return "Choose one or more jobs to queue."
        plural = "job" if len(jobids) == 1 else "jobs"
        ids = ", ".join(str(j) for j in jobids)
        return f"Queue {len(jobids)} install {plural} on ASID {self.asid}: {ids}?"

    async def queue(self, jobids: Iterable[int]) -> list[QueueOutcome]:
        """Queue each job once (never resent: queueing is not idempotent); keep each answer.

        Raises :class:`~cfanalytics.ConfigurationError` for a replay, and ``ValueError`` for
        a job that is not among the queueable jobs listed.
        """
        if (reason := self.read_only) is not None:
            raise ConfigurationError(reason)
        chosen = [self._listed(j) for j in dict.fromkeys(jobids)]
        for job in chosen:  # off the list before the first await: a second click can't resend
            del self._listing[job.jobid]
        outcomes: list[QueueOutcome] = []
        try:
            for job in chosen:
                outcomes.append(await self._queue_one(job))
        finally:
            # Even when a later job raised, the accepted ones are queued: say so.
            accepted = [o.result for o in outcomes if o.result is not None]
            refused = {o.jobid for o in outcomes if not o.ok}
            self._restore([job for job in chosen if job.jobid in refused])
            self._forget([q.jobid for q in accepted])
            if accepted:
                for listener in self._listeners:
                    listener(accepted)
        return outcomes

    def outcome_table(self) -> pd.DataFrame:
        """One row per job queued from here: ``jobid``, ``ok``, ``detail``."""
        rows = [(o.jobid, o.ok, o.describe()) for o in self.outcomes.values()]
        frame = pd.DataFrame(rows, columns=["jobid", "ok", "detail"])
        return frame.astype({"jobid": INT, "ok": BOOL, "detail": TEXT})

    def _restore(self, jobs: list[InstallJob]) -> None:
        """Refused jobs can be tried again."""
        self._listing.update((job.jobid, job) for job in jobs)

    def _forget(self, jobids: list[int]) -> None:
        """Accepted jobs are queued now, no longer queueable: off the list until a refresh."""
        self.jobs = self.jobs.loc[~self.jobs["jobid"].isin(jobids)].reset_index(drop=True)

    def _listed(self, jobid: int) -> InstallJob:
        job = self._listing.get(int(jobid))
        if job is None:
            raise ValueError(f"job {jobid} is not a queueable job of ASID {self.asid}; refresh")
        return job

    async def _queue_one(self, job: InstallJob) -> QueueOutcome:
        if job.mirroring is None:
            error = ConfigurationError(f"job {job.jobid} lists no readable mirroring flag")
            outcome = QueueOutcome(job.jobid, error=error)
        else:
            try:
                call = self.client.queue_install(job.jobid, asid=self.asid, mirroring=job.mirroring)
                outcome = QueueOutcome(job.jobid, result=await _maybe_await(call))
            except RecordingError:
                raise  # a cassette that ran out is no answer from the API
            except CfAnalyticsError as exc:
                log.warning("could not queue job %s: %s", job.jobid, exc)
                outcome = QueueOutcome(job.jobid, error=exc)
        self.outcomes[job.jobid] = outcome
        return outcome


async def _maybe_await(value: Any) -> Any:
    """The value, awaited if it is awaitable: one code path for sync and async clients."""
    return await value if inspect.isawaitable(value) else value


def _check_filter(column: str) -> None:
    if column not in _FILTERS:
        raise ValueError(f"can filter on {', '.join(_FILTERS)}, not {column!r}")


def _job_table(jobs: Sequence[InstallJob]) -> pd.DataFrame:
    rows = [
        {
            "jobid": job.jobid,
            "kind": job.kind,
            "location": job.location,
            "machine": job.machine,
            "mirror": job.mirror,
            "state": job.state.label if job.state else None,
            "jobprogress": job.jobprogress,
            "jobfailed": job.jobfailed,
            "mirroring": job.mirroring,
        }
        for job in jobs
    ]
    frame = pd.DataFrame(rows, columns=list(JOB_COLUMNS))
    return frame.astype(JOB_COLUMNS).sort_values("jobid", kind="stable").reset_index(drop=True)
