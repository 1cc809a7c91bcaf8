"""The rollout runner: queue install jobs, then poll the status list until they have ended.

Everything it decides comes from responses, never from the machine's clock: a job has
ended when a successful poll no longer lists it or shows it Complete, Failed or Squashed,
and the duration limit is measured between the observed times of responses. So a replay
from a cassette takes exactly the recorded path, and runs out of cassette never.

The loop is asyncio (widgets run it on the kernel's event loop); :meth:`RolloutRunner.run_sync`
runs it to the end for scripts and the CLI. ``sleep`` is injectable: the simulator's manual
clock in tests, a no-op in replay.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from ..client import AsyncClient, InstallJob, InstallStatus, JobState, QueueResult, may_have_acted
from ..events import observed_at
from ..exceptions import CfAnalyticsError, RecordingError
from ._recorder import Recorder
from ._stranded import Strand, strands
from ._sync import loop_running

__all__ = [
    "QUEUEABLE",
    "SETTLE_ROUNDS",
    "RolloutProgress",
    "RolloutRunner",
    "no_sleep",
]

log = logging.getLogger("cfanalytics.runner")

#: States a job can be queued from (Failed: a retry).
QUEUEABLE = frozenset({JobState.CREATED, JobState.PENDING, JobState.FAILED})
#: How many times the status list is read to settle queue requests without a clear answer.
SETTLE_ROUNDS = 3
_ENDED = {JobState.COMPLETE: "completed", JobState.FAILED: "failed", JobState.SQUASHED: "squashed"}


async def no_sleep(seconds: float) -> None:
    """A sleep that returns at once: replay never waits."""
    del seconds


@dataclass
class _Sent:
    """What one round of queue requests brought: queued, settled as queued, refused."""

    results: list[QueueResult] = field(default_factory=list)
    settled: set[int] = field(default_factory=set)
    errors: dict[int, CfAnalyticsError] = field(default_factory=dict)


@dataclass
class RolloutProgress:
    """What the responses have shown so far about the watched jobs."""

    watched: frozenset[int] = frozenset()
    latest: dict[int, InstallJob] = field(default_factory=dict)
    ended: dict[int, str] = field(default_factory=dict)  # jobid -> completed/failed/squashed
    queued: list[QueueResult] = field(default_factory=list)
    queue_errors: dict[int, CfAnalyticsError] = field(default_factory=dict)
    #: Jobs whose queue request failed without a clear answer, then listed as queued.
    settled: set[int] = field(default_factory=set)
    #: How many times each job that failed was queued again (``requeue_failed``).
    requeued: Counter[int] = field(default_factory=Counter)
    #: The followed jobs that wait on a mirror job that failed or was never queued.
    stranded: list[Strand] = field(default_factory=list)
    #: When a followed job last changed (state, progress or ETA), by the responses' times.
    last_change: datetime | None = None
    polls: int = 0
    failed_polls: int = 0
    #: Each re-queued job's failure, and the poll it was re-queued after: listed so again
    #: soon after, it is that failure (:meth:`stale_failure`).
    requeued_from: dict[int, tuple[tuple[object, ...], int]] = field(
        default_factory=dict, repr=False
    )
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    stop_reason: str | None = None

    @property
    def done(self) -> bool:
        """Whether every watched job has ended."""
        return self.watched <= self.ended.keys()

    @property
    def elapsed_s(self) -> float:
        """Seconds between the first and the latest observed response."""
        if self.first_seen is None or self.last_seen is None:
            return 0.0
        return (self.last_seen - self.first_seen).total_seconds()

    def counts(self) -> Counter[str]:
        """How many watched jobs are in each state; ended ones by outcome."""
        counts: Counter[str] = Counter(self.ended.values())
        for jobid in self.watched - self.ended.keys():
            job = self.latest.get(jobid)
            label = job.state.label.lower() if job is not None and job.state else "unknown"
            counts[label] += 1
        return counts

    def observe(self, status: InstallStatus) -> None:
        """Take in one successful poll of the status list."""
        self.polls += 1
        when = observed_at(status.raw)
        if when is not None:
            self.first_seen = self.first_seen or when
            self.last_seen = when
        listed = {job.jobid: job for job in status}
        before = {j: _looks(self.latest[j]) for j in self.watched & self.latest.keys()}
        self.latest.update((j, listed[j]) for j in self.watched & listed.keys())
        for jobid in self.watched - self.ended.keys():
            job = listed.get(jobid)
            if job is None:
                # Gone from the list of incomplete jobs: it completed (or was squashed).
                self.ended[jobid] = "completed"
            elif job.state in _ENDED and not self.stale_failure(job):
                self.ended[jobid] = _ENDED[job.state]
        now = {j: _looks(self.latest[j]) for j in self.watched & self.latest.keys()}
        if now != before or self.last_change is None:
            self.last_change = when or self.last_change
        left = [self.latest[j] for j in self.watched - self.ended.keys() if j in self.latest]
        self.stranded = strands(left, status)

    def stale_failure(self, job: InstallJob) -> bool:
        """Whether ``job`` is listed with the failure it was re-queued from, within
        :data:`SETTLE_ROUNDS` polls of the re-queue: the list may lag behind the request,
        so that is no new failure. Listed so for longer, the re-queue did not take."""
        found = self.requeued_from.get(job.jobid)
        if found is None:
            return False
        failure, at_poll = found
        return failure == _failure_of(job) and self.polls - at_poll <= SETTLE_ROUNDS

    @property
    def all_stranded(self) -> bool:
        """Whether every followed job that has not ended is stranded (and some are)."""
        left = self.watched - self.ended.keys()
        stuck = {jobid for strand in self.stranded for jobid in strand.jobs}
        return bool(left) and left <= stuck

    @property
    def stalled_s(self) -> float:
        """Seconds from the last change of a followed job to the latest response."""
        if self.last_change is None or self.last_seen is None:
            return 0.0
        return (self.last_seen - self.last_change).total_seconds()


def _failure_of(job: InstallJob) -> tuple[object, ...]:
    """What tells one failure of a job from the next: when it was updated, how often failed."""
    return (job.state, job.jobupdated, job.jobfailed)


def _lags(job: InstallJob, failures: Mapping[int, tuple[object, ...]]) -> bool:
    """Whether the list still shows the failure ``job`` was just re-queued from."""
    return failures.get(job.jobid) == _failure_of(job)


def _looks(job: InstallJob) -> tuple[object, ...]:
    """What a poll shows of a job's course: a change of any is progress."""
    return (job.state, job.jobprogress, job.jobeta)


class RolloutRunner:
    """Queue ``jobs`` (default: every queueable job listed) and follow them to the end.

    Stops when every queued job has ended, after ``max_polls`` polls, once responses span
    ``max_duration`` seconds, when every job left is stranded (``stop_stranded``: waiting on
    a mirror job that failed or was never queued, named in the stop reason), when no
    followed job changed for ``max_stall`` seconds, or when :meth:`stop` is called.
    ``queue_recovery``: see :meth:`_queue`. Queue requests go out ``concurrency`` at a time
    (a refusal holds them all back: the client backs off as one). A followed job that fails
    is queued again, up to ``requeue_failed`` times (default 0: never). ``on_progress`` is called
    after every poll with the :class:`RolloutProgress`, ``on_finish`` once a stop condition
    held.

    With ``queue=False`` the runner queues nothing: it follows the jobs handed to
    :meth:`follow` (queued elsewhere, say by a queue panel), polling at once and then every
    ``interval``. That keeps a recording's requests in the order a queueing run makes
    (list, queue, poll...), so :func:`~cfanalytics.replay` can repeat it.
    ``recorder`` is the :class:`~cfanalytics.Recorder` behind ``client``, if any, so views
    can read what was recorded so far (:attr:`events`).
    """

    def __init__(
        self,
        client: AsyncClient,
        asid: int,
        *,
        jobs: Sequence[int] | None = None,
        interval: float = 15.0,
        max_polls: int | None = None,
        max_duration: float | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        on_progress: Callable[[RolloutProgress], object] | None = None,
        on_finish: Callable[[RolloutProgress], object] | None = None,
        queue: bool = True,
        recorder: Recorder | None = None,
        queue_recovery: bool = True,
        stop_stranded: bool = True,
        max_stall: float | None = None,
        concurrency: int = 1,
        requeue_failed: int = 0,
    ) -> None:
        if interval < 0:
            raise ValueError(f"interval must not be negative, got {interval}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if requeue_failed < 0:
            raise ValueError(f"requeue_failed must not be negative, got {requeue_failed}")
        self.client = client
        self.asid = asid
        self.jobs = None if jobs is None else tuple(jobs)
        self.interval = interval
        self.max_polls = max_polls
        self.max_duration = max_duration
        self.sleep = sleep
        self.on_progress = on_progress
        self.on_finish = on_finish
        self.queue = queue
        self.recorder = recorder
        self.queue_recovery = queue_recovery
        self.stop_stranded = stop_stranded
        self.max_stall = max_stall
        self.concurrency = concurrency
        self.requeue_failed = requeue_failed
        self.progress = RolloutProgress()
        self._stop = False
        self._stopping: asyncio.Event | None = None
        #: Set while the runner is not running; :meth:`LiveSession.aclose` waits on it.
        self.finished = asyncio.Event()
        self.finished.set()

    def __repr__(self) -> str:
        mode = "queue" if self.queue else "follow"
        counts = dict(sorted(self.progress.counts().items()))
        return f"<RolloutRunner asid={self.asid} {mode} every {self.interval:g} s {counts}>"

    @property
    def events(self) -> pd.DataFrame | None:
        """Every event recorded so far, when the runner knows its recorder."""
        return None if self.recorder is None else self.recorder.events

    def follow(self, queued: Iterable[QueueResult]) -> None:
        """Watch these queued jobs too (they were queued elsewhere), until they end."""
        results = list(queued)
        known = {q.jobid for q in self.progress.queued}
        self.progress.queued.extend(q for q in results if q.jobid not in known)
        self.progress.watched |= {q.jobid for q in results}

    def stop(self) -> None:
        """Stop the loop: at once when it waits between polls, else after the current poll."""
        self._stop = True
        if self._stopping is not None:
            self._stopping.set()

    async def _pause(self) -> None:
        """Sleep ``interval``, cut short by :meth:`stop` (the sleep may be a test's clock)."""
        if self.sleep is no_sleep:
            return  # replay: nothing to wait for, and no tasks to make per poll
        self._stopping = asyncio.Event()
        if self._stop:
            return
        sleeping = asyncio.ensure_future(self.sleep(self.interval))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({sleeping, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (sleeping, stopping):
                waiter.cancel()
        if sleeping.done() and not sleeping.cancelled():
            sleeping.result()  # a sleep that raised must not turn into polling flat out

    def run_sync(self) -> RolloutProgress:
        """Run to the end in a new event loop. Where a loop already runs (Jupyter), the
        runner's client belongs to it: ``await runner.run()`` there instead."""
        if loop_running():
            raise RuntimeError(
                "an event loop is running here (Jupyter, IPython): the runner's client belongs "
                "to it, so use `await runner.run()` instead of run_sync()"
            )
        return asyncio.run(self.run())

    async def run(self) -> RolloutProgress:
        """Queue (unless following), then poll until a stop condition holds.

        Returns the progress. Running again after a stop carries on with the same progress:
        nothing is queued twice, and a run whose jobs have all ended polls no more. A
        :meth:`stop` made before the run starts stops it before its first request.
        """
        self.finished.clear()
        try:
            reason = await self._loop()
        finally:
            self._stop = False
            self.finished.set()
        self.progress.stop_reason = reason
        log.info("runner stopped: %s", reason)
        if self.on_finish is not None:
            self.on_finish(self.progress)
        return self.progress

    async def _loop(self) -> str:
        self.progress.stop_reason = None
        if self._stop:
            return "stopped"
        if self.progress.watched and self.progress.done:
            return "every queued job ended"
        if self.queue and not self.progress.queued:
            await self._list_and_queue()
        else:
            await self._poll()
        self._notify()
        while self._stop_reason() is None:
            await self._pause()
            if self._stop:
                break
            await self._poll()
            self._notify()
        return self._stop_reason() or "stopped"

    async def _list_and_queue(self) -> None:
        listing = await self.client.install_status(self.asid)
        self.progress.observe(listing)
        sent = await self._queue(self._selected(listing))
        self.progress.queued.extend(sent.results)
        self.progress.settled |= sent.settled
        for jobid, failure in sent.errors.items():
            log.warning("could not queue job %s: %s", jobid, failure)
            self.progress.queue_errors[jobid] = failure
        watched = frozenset(q.jobid for q in self.progress.queued) | self.progress.settled
        self.progress.watched = watched
        self.progress.latest.update((job.jobid, job) for job in listing if job.jobid in watched)

    def _selected(self, listing: InstallStatus) -> list[InstallJob]:
        if self.jobs is None:
            return [job for job in listing if job.state in QUEUEABLE]
        listed = {job.jobid: job for job in listing}
        missing = [jobid for jobid in self.jobs if jobid not in listed]
        for jobid in missing:
            log.warning("job %s is not in the status list of ASID %s; skipped", jobid, self.asid)
        return [listed[jobid] for jobid in self.jobs if jobid in listed]

    async def _queue(
        self,
        jobs: Iterable[InstallJob],
        *,
        failures: Mapping[int, tuple[object, ...]] | None = None,
    ) -> _Sent:
        """Queue each job once. A request that failed leaving open whether the API acted on
        it (:func:`~cfanalytics.client.may_have_acted`) is settled by the status list: a job
        listed as anything but queueable was queued; one still queueable is queued again, up
        to :data:`SETTLE_ROUNDS` times. Never twice for a job listed as Queued or Running,
        nor for a failed job re-queued from ``failures`` (its failure as :func:`_failure_of`
        gives it) that the list still shows with that failure: the list may lag.

        Jobs are sent in the order given, again in that order: never in the order answers
        came, which a replay (or a resumed run) cannot repeat."""
        jobs = list(jobs)
        order = {job.jobid: n for n, job in enumerate(jobs)}
        failures = failures or {}
        sent = _Sent()
        unsettled = await self._send_queue_requests(jobs, sent)
        for _ in range(SETTLE_ROUNDS if self.queue_recovery else 0):
            if not unsettled:
                break
            try:
                listing = await self.client.install_status(self.asid)
            except RecordingError:
                raise
            except CfAnalyticsError as unread:
                log.warning("status list unreadable while settling queue requests: %s", unread)
                continue
            listed = {job.jobid: job for job in listing}
            again = []
            for jobid, failure in unsettled.items():
                job = listed.get(jobid)
                if (
                    job is not None
                    and job.state in QUEUEABLE
                    and _failure_of(job) != failures.get(jobid)
                ):
                    again.append(job)
                else:  # queued after all: listed past queueable, or already gone (ended)
                    log.info("job %s was queued despite %s", jobid, type(failure).__name__)
                    sent.settled.add(jobid)
            again.sort(key=lambda job: order[job.jobid])
            unsettled = await self._send_queue_requests(again, sent)
        sent.errors.update(unsettled)
        return sent

    async def _send_queue_requests(
        self, jobs: Iterable[InstallJob], sent: _Sent
    ) -> dict[int, CfAnalyticsError]:
        """Send one queue request per job, up to ``concurrency`` at once; returns the
        failures that leave open whether the API acted."""
        unsettled: dict[int, CfAnalyticsError] = {}
        pending = iter(jobs)  # shared by the senders: each job is taken once

        async def sender() -> None:
            for job in pending:
                await self._send_queue_request(job, sent, unsettled)

        if self.concurrency == 1:
            await sender()  # no tasks: as runs made before concurrency did
            return unsettled
        senders = [asyncio.ensure_future(sender()) for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*senders)
        finally:  # one failed (a cassette ran out, Ctrl-C): the others stop too
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
        return unsettled

    async def _send_queue_request(
        self, job: InstallJob, sent: _Sent, unsettled: dict[int, CfAnalyticsError]
    ) -> None:
        if job.mirroring is None:
            log.warning("job %s lists no readable mirroring; not queued", job.jobid)
            return
        try:
            result = await self.client.queue_install(
                job.jobid, asid=self.asid, mirroring=job.mirroring
            )
        except RecordingError:
            raise  # a cassette that ran out is no answer from the API
        except CfAnalyticsError as exc:
            if may_have_acted(exc):
                unsettled[job.jobid] = exc
            else:
                sent.errors[job.jobid] = exc
        else:
            sent.results.append(result)

    async def _requeue_failed(self) -> None:
        """Queue the followed jobs that failed again, each up to ``requeue_failed`` times."""
        progress = self.progress
        failed = [
            progress.latest[jobid]
            for jobid, outcome in sorted(progress.ended.items())  # not in the order seen
            if outcome == "failed"
            and progress.requeued[jobid] < self.requeue_failed
            and jobid in progress.latest
            and progress.latest[jobid].state is JobState.FAILED
        ]
        if not failed:
            return
        for job in failed:  # an attempt counts, taken or not: a refusal may be for good
            progress.requeued[job.jobid] += 1
        sent = await self._queue(failed, failures={job.jobid: _failure_of(job) for job in failed})
        again = {q.jobid for q in sent.results} | sent.settled
        for job in failed:
            if job.jobid in again:
                log.info(
                    "re-queued failed job %s (time %d)", job.jobid, progress.requeued[job.jobid]
                )
                del progress.ended[job.jobid]
                progress.requeued_from[job.jobid] = (_failure_of(job), progress.polls)
            else:
                log.warning(
                    "could not queue failed job %s again: %s", job.jobid, sent.errors.get(job.jobid)
                )
        progress.stranded = [s for s in progress.stranded if s.mirror not in again]

    async def _poll(self) -> None:
        try:
            status = await self.client.install_status(self.asid)
        except RecordingError:
            raise
        except CfAnalyticsError as exc:
            # A failed poll says nothing about which jobs are gone; keep watching.
            self.progress.failed_polls += 1
            log.warning("status poll failed: %s", exc)
        else:
            self.progress.observe(status)
            if self.requeue_failed:
                await self._requeue_failed()

    def _stop_reason(self) -> str | None:
        progress = self.progress
        if progress.done:
            return "every queued job ended" if progress.watched else "nothing was queued"
        if self._stop:
            return "stopped"
        if self.max_polls is not None and progress.polls + progress.failed_polls >= self.max_polls:
            return f"reached {self.max_polls} polls"
        if self.max_duration is not None and progress.elapsed_s >= self.max_duration:
            return f"responses span {self.max_duration:g} s"
        if self.stop_stranded and progress.all_stranded:
            hint = not self.requeue_failed  # else it was tried, as often as the run may
            said = "; ".join(s.message(self.asid, requeue_hint=hint) for s in progress.stranded)
            return f"every job left is stranded: {said}"
        if self.max_stall is not None and progress.stalled_s >= self.max_stall:
            return f"no followed job changed for {self.max_stall:g} s"
        return None

    def _notify(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress)
