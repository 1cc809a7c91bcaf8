"""Record a rollout run, replay it from its cassette, or carry an interrupted one on.

:func:`record` wires the pieces: an :class:`~cfanalytics.AsyncClient` whose transport is
wrapped by a :class:`~cfanalytics.recording.Recorder`, which feeds a vcrpy cassette and a
durable event log, driven by a :class:`~cfanalytics.recording.RolloutRunner`. The run's
parameters go into the cassette's metadata, so :func:`replay` can run the same code over
the cassette, offline and without sleeping, and get the identical events table.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from .._defaults import MAX_STALL_S, QUEUE_CONCURRENCY
from .._version import __version__
from ..client import AsyncClient, Credentials, RetryPolicy, resolve_credentials
from ..events import SCHEMA_VERSION, concat_events, conform, events_from_exchanges, exchange_rows
from ..exceptions import CassetteError, CfAnalyticsError, ReplayExhaustedError
from ._cassette import Cassette, CassetteWriter, Interaction, load_cassette
from ._eventlog import EventLog
from ._history import HistoryAdded, HistoryStore
from ._journal import CassetteJournal, journal_path, read_journal
from ._lock import RecordingLock
from ._recorder import Recorder, new_run_id
from ._replay import (
    FAILURES_KEY,
    RecordedFailure,
    ReplayTransport,
    ResumeTransport,
    in_recorded_order,
)
from ._runner import RolloutProgress, RolloutRunner, no_sleep
from ._sources import events_from_cassette, exchange_of, open_cassette
from ._sync import run_sync

__all__ = [
    "RecordedRun",
    "Recording",
    "RunPlan",
    "arecord",
    "areplay",
    "aresume",
    "record",
    "replay",
    "replay_client",
    "resume",
]

log = logging.getLogger("cfanalytics.recording")

# Replay needs some credentials to build a client; they are never sent anywhere. Its error
# messages scrub them, so they must be text no message holds ("replay" did: in paths).
_REPLAY_KEY = "cfanalytics-replay-key-never-sent"


@dataclass(frozen=True)
class RecordedRun:
    """The outcome of recording or replaying one run."""

    run_id: str
    progress: RolloutProgress
    events: pd.DataFrame
    cassette: Path | None
    event_log: Path | None
    #: What adding the run to a history store did (``history=``), else None.
    history: HistoryAdded | None = None


@dataclass(frozen=True)
class RunPlan:
    """What a run does: stored in the cassette so a replay repeats it exactly."""

    asid: int
    jobs: tuple[int, ...] | None = None
    interval: float = 15.0
    max_polls: int | None = None
    max_duration: float | None = None
    #: Resend refused queue requests and settle unclear ones from the status list
    #: (:meth:`RolloutRunner._queue`). Recordings made before it replay without it.
    queue_recovery: bool = True
    #: Stop once every job left is stranded (waits on a mirror job that will not deliver).
    stop_stranded: bool = True
    #: Stop once no followed job changed (state, progress, ETA) for this many seconds.
    max_stall: float | None = MAX_STALL_S
    #: Queue requests in flight at once. Recordings made before it sent one at a time.
    concurrency: int = QUEUE_CONCURRENCY
    #: Queue a followed job that failed again, up to this many times (0: never).
    requeue_failed: int = 0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.requeue_failed < 0:
            raise ValueError(f"requeue_failed must not be negative, got {self.requeue_failed}")

    def metadata(self) -> dict[str, Any]:
        """The plan as cassette metadata."""
        jobs = None if self.jobs is None else list(self.jobs)
        return {
            "asid": self.asid,
            "jobs": jobs,
            "interval": self.interval,
            "max_polls": self.max_polls,
            "max_duration": self.max_duration,
            "queue_recovery": self.queue_recovery,
            "stop_stranded": self.stop_stranded,
            "max_stall": self.max_stall,
            "concurrency": self.concurrency,
            "requeue_failed": self.requeue_failed,
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], where: str) -> RunPlan:
        """Read a plan back; a cassette without one cannot be replayed (but can be read)."""
        try:
            jobs = meta.get("jobs")
            return cls(
                asid=int(meta["asid"]),
                jobs=None if jobs is None else tuple(int(j) for j in jobs),
                interval=float(meta.get("interval", 15.0)),
                max_polls=meta.get("max_polls"),
                max_duration=meta.get("max_duration"),
                # Recordings made before these settings existed ran without them.
                queue_recovery=_recovers(meta),
                stop_stranded=bool(meta.get("stop_stranded", False)),
                max_stall=meta.get("max_stall"),
                concurrency=_concurrency(meta),
                requeue_failed=int(meta.get("requeue_failed", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CassetteError(
                f"cassette {where} has no cfanalytics run plan in its metadata ({exc}), so it "
                "cannot be replayed; read it with events_from_cassette() instead"
            ) from exc


@dataclass
class Recording:
    """What records a run: a client whose transport feeds a recorder, a cassette and a log.

    :func:`arecord` and :class:`~cfanalytics.live.LiveSession` both open one. :meth:`close`
    writes the cassette (scrubbed) and closes the event log; what was recorded is kept even
    when the run ended by an error. With a ``history`` store, :meth:`keep` adds the run.
    """

    client: AsyncClient
    recorder: Recorder
    writer: CassetteWriter
    log: EventLog | None
    #: The sleep between polls: a resumed run does not wait while re-reading the recording.
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    #: Where the run goes when it ends (``history=``), else None.
    history: HistoryStore | None = None
    #: What a resumed run recorded before it was interrupted (its events).
    before: pd.DataFrame | None = None
    #: Held from open to close: no other run records into the same cassette meanwhile.
    lock: RecordingLock | None = None

    @classmethod
    def open(
        cls,
        *,
        cassette: str | os.PathLike[str],
        events_dir: str | os.PathLike[str] | None,
        metadata: dict[str, Any],
        run_id: str | None = None,
        overwrite: bool = False,
        history: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> Recording:
        """Resolve credentials, then wire recorder, cassette writer, journal, log and client.

        ``options``: ``base_url``, ``access_key``, ``secret_key``, ``transport``, ``clock``,
        ``sleep``, ``retry``, ``rng``, ``timeout``. ``history``: a history store folder
        that :meth:`keep` adds the run to (checked now, so a wrong folder fails first).
        """
        store = None if history is None else HistoryStore(history)
        credentials = _credentials(options)
        run_id = run_id or new_run_id()
        meta = metadata | {
            "cfanalytics": __version__,
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
        }
        lock = RecordingLock(cassette, run_id)  # before anything: a live run's files stay
        with _released_on_error(lock):
            writer = CassetteWriter(
                cassette, metadata=meta, secrets=credentials.secrets(), overwrite=overwrite
            )
            journal_file = journal_path(cassette)
            if journal_file.exists() and not overwrite:
                raise CassetteError(
                    f"{journal_file} holds an interrupted recording: resume it "
                    "(`cfanalytics record --resume`), or pass --overwrite to start afresh"
                )
            journal_file.unlink(missing_ok=True)
            recording = cls._wire(writer, events_dir, run_id, credentials, **options)
        recording.history, recording.lock = store, lock
        return recording

    @classmethod
    def reopen(
        cls,
        cassette: str | os.PathLike[str],
        *,
        events_dir: str | os.PathLike[str] | None,
        history: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> tuple[Recording, Cassette]:
        """Carry on an interrupted recording: its cassette, journal and event log.

        Returns the recording and what was recorded before; its client answers from that
        first (:class:`~cfanalytics.recording.ResumeTransport`), then talks to the API.
        """
        store = None if history is None else HistoryStore(history)
        credentials = _credentials(options)
        lock = RecordingLock(cassette, "a resumed run")  # the run may still be going
        with _released_on_error(lock):
            prior = interrupted(cassette)
            RunPlan.from_metadata(prior.metadata, str(cassette))  # one to carry on, or raise
            before = events_from_cassette(prior)  # now: an unreadable one fails here, too
            meta = dict(prior.metadata) | {"resumed": int(prior.metadata.get("resumed", 0)) + 1}
            lock.note(str(meta["run_id"]))
            writer = CassetteWriter(
                cassette, metadata=meta, secrets=credentials.secrets(), overwrite=True
            )
            for interaction in prior.interactions:
                writer.append(interaction)
            if options.get("base_url") is None:  # the API the run was recorded against
                options["base_url"] = meta.get("base_url")
            recording = cls._wire(
                writer, events_dir, str(meta["run_id"]), credentials, prior=prior, **options
            )
        recording.history, recording.before, recording.lock = store, before, lock
        return recording, prior

    @classmethod
    def _wire(
        cls,
        writer: CassetteWriter,
        events_dir: str | os.PathLike[str] | None,
        run_id: str,
        credentials: Credentials,
        *,
        prior: Cassette | None = None,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        **client_options: Any,
    ) -> Recording:
        secrets = credentials.secrets()
        log = EventLog(events_dir, run_id=run_id, secrets=secrets) if events_dir else None
        done = list(in_recorded_order(prior)) if prior is not None else []
        if log is not None and prior is not None:
            _catch_up(log, done, run_id)
        recorder = Recorder(
            run_id=run_id,
            eventlog=log,
            cassette=writer,
            secrets=secrets,
            first_seq=len(done),
            **_clock(clock),
        )
        wire: httpx.AsyncBaseTransport = recorder.wrap_async(
            transport or httpx.AsyncHTTPTransport()
        )
        if prior is not None:
            wire = resume = ResumeTransport(prior, wire)
            sleep = _unless_rereading(resume, sleep)
        retry = client_options.get("retry") or _retry_of(writer.metadata)  # resumed: as then
        client_options["retry"] = retry
        writer.metadata["retry"] = {  # what a replay must repeat; waits do not matter there
            "attempts": retry.attempts,
            "max_retry_after": retry.max_retry_after,
            "queue_recovery": retry.queue_recovery,
        }
        client = AsyncClient(
            base_url=base_url,
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            sleep=sleep,
            transport=wire,
            **client_options,
        )
        writer.metadata["base_url"] = str(client.base_url)
        writer.metadata["complete"] = False  # until the run ends by a stop condition
        fresh = not journal_path(writer.path).exists()
        recorder.journal = CassetteJournal(writer.path, writer.scrubbed_metadata())
        if fresh and prior is not None:
            _seed(recorder.journal, prior)  # resumed from a cassette: the journal holds all
        return cls(client, recorder, writer, log, sleep)

    @property
    def run_id(self) -> str:
        """The run's id, as in the events table and the cassette's metadata."""
        return self.recorder.run_id

    def close(self) -> None:
        """Write the cassette, then drop its journal; close the event log; let go of the
        cassette's lock (idempotent)."""
        journal = self.recorder.journal
        try:
            self.writer.close()
            # Saved, the cassette holds it all; with no answer received (a wrong URL, a dead
            # API) nothing was asked of the API but the first listing: nothing to resume.
            if journal is not None and (self.writer.saved or not self.writer.interactions):
                journal.discard()
        finally:
            try:
                if journal is not None:
                    with suppress(CassetteError):  # the error that stopped the run says more
                        journal.close()
                if self.log is not None:
                    self.log.close()
            finally:
                if self.lock is not None:
                    self.lock.release()

    @property
    def events(self) -> pd.DataFrame:
        """Every response of the run: those before a resume, then those recorded now."""
        now = self.recorder.events
        if self.before is None or self.before.empty:
            return now
        return conform(concat_events([self.before, now])) if len(now) else self.before

    def keep(self) -> HistoryAdded | None:
        """Add the run to the history store, if it has one (idempotent: call it again as the
        run grows). Raises :class:`~cfanalytics.exceptions.HistoryError`; the cassette and
        the event log hold the run whatever happens here."""
        return None if self.history is None else self.history.add(self.events)

    def result(self, progress: RolloutProgress, added: HistoryAdded | None = None) -> RecordedRun:
        """The recorded run, once closed."""
        folder = self.log.folder if self.log is not None else None
        return RecordedRun(self.run_id, progress, self.events, self.writer.path, folder, added)


async def arecord(
    plan: RunPlan,
    *,
    cassette: str | os.PathLike[str],
    events_dir: str | os.PathLike[str] | None = None,
    on_progress: Callable[[RolloutProgress], object] | None = None,
    **options: Any,
) -> RecordedRun:
    """Record ``plan`` against the API (or simulator): cassette, event log, events.

    ``options`` are those of :meth:`Recording.open`: ``base_url``, ``access_key``,
    ``secret_key``, ``run_id``, ``transport``; ``clock`` stamps each response's receive time
    (default: now, UTC); ``rng`` drives retry jitter; ``retry``, ``timeout``; ``overwrite``
    replaces an existing cassette; ``sleep`` waits between polls; ``history``, a history
    store folder the run is added to when it ends. Every response is in the cassette's
    journal and the event log the moment it arrives, so a killed run can be carried on with
    :func:`aresume`.
    """
    recording = Recording.open(
        cassette=cassette, events_dir=events_dir, metadata=plan.metadata(), **options
    )
    return await _record_with(recording, plan, on_progress)


async def aresume(
    cassette: str | os.PathLike[str],
    *,
    events_dir: str | os.PathLike[str] | None = None,
    on_progress: Callable[[RolloutProgress], object] | None = None,
    **options: Any,
) -> RecordedRun:
    """Carry on an interrupted recording to its end, into the same cassette and event log.

    The plan comes from the recording. Requests it answered get those answers again (no job
    is queued twice, no event is written twice); the rest go to the API. ``options`` as for
    :func:`arecord` (not ``run_id`` or ``overwrite``).
    """
    recording, prior = Recording.reopen(cassette, events_dir=events_dir, **options)
    plan = RunPlan.from_metadata(prior.metadata, str(cassette))
    run = await _record_with(recording, plan, on_progress)
    if not run.events.empty:
        return run
    empty = events_from_exchanges([], run_id=run.run_id)
    return dataclasses.replace(run, events=empty)


async def _record_with(
    recording: Recording,
    plan: RunPlan,
    on_progress: Callable[[RolloutProgress], object] | None,
) -> RecordedRun:
    try:
        async with recording.client as client:
            progress = await _run(client, plan, recording.sleep, on_progress)
            recording.writer.metadata |= {"complete": True, "stop_reason": progress.stop_reason}
    except BaseException:
        recording.close()
        _keep_anyway(recording)
        raise
    recording.close()
    added = await asyncio.to_thread(recording.keep)
    return recording.result(progress, added)


def _keep_anyway(recording: Recording) -> None:
    """Add what a run that failed recorded to its history store; a failure here is logged,
    never raised over the run's own error (the cassette and the event log hold the run)."""
    try:
        recording.keep()
    except (CfAnalyticsError, OSError) as exc:
        log.warning("the run was not added to its history store: %s", exc)


def interrupted(cassette: str | os.PathLike[str]) -> Cassette:
    """The interrupted recording of ``cassette``: from its journal, else the cassette itself.

    Raises :class:`~cfanalytics.CassetteError` when there is nothing to resume.
    """
    if journal_path(cassette).exists():
        return read_journal(cassette)
    if not Path(cassette).exists():
        raise CassetteError(f"nothing to resume: neither {cassette} nor its journal exists")
    loaded = load_cassette(cassette)
    if loaded.metadata.get("complete") is not False:
        raise CassetteError(f"cassette {cassette} holds a finished run; there is nothing to resume")
    return loaded


def resume(cassette: str | os.PathLike[str], **options: Any) -> RecordedRun:
    """:func:`aresume` run to the end; works inside a running event loop (Jupyter) too."""
    return run_sync(aresume(cassette, **options))


def _catch_up(log: EventLog, done: list[Interaction | RecordedFailure], run_id: str) -> None:
    """Write the rows of recorded exchanges the event log missed (a kill between the two)."""
    # From the last response the log has: a cut write may have kept only some of its rows
    # (rows read twice are dropped on load and compaction).
    for seq in range(max(log.next_seq - 1, 0), len(done)):
        log.append(exchange_rows(exchange_of(done[seq]), run_id=run_id, seq=seq))
    log.next_seq = max(log.next_seq, len(done))


def _seed(journal: CassetteJournal, prior: Cassette) -> None:
    """Copy a recording into a new journal, so a later kill loses none of it."""
    for interaction in prior.interactions:
        journal.interaction(interaction)
    for entry in prior.metadata.get(FAILURES_KEY) or []:
        journal.failure(entry)


def _unless_rereading(
    resume: ResumeTransport, sleep: Callable[[float], Awaitable[object]]
) -> Callable[[float], Awaitable[object]]:
    async def pause(seconds: float) -> None:
        if not resume.replaying:  # waiting only makes sense for new answers
            await sleep(seconds)

    return pause


def _clock(clock: Callable[[], datetime] | None) -> dict[str, Any]:
    return {} if clock is None else {"clock": clock}


async def _run(
    client: AsyncClient,
    plan: RunPlan,
    sleep: Callable[[float], Awaitable[object]],
    on_progress: Callable[[RolloutProgress], object] | None,
) -> RolloutProgress:
    runner = RolloutRunner(
        client,
        plan.asid,
        jobs=plan.jobs,
        interval=plan.interval,
        max_polls=plan.max_polls,
        max_duration=plan.max_duration,
        sleep=sleep,
        on_progress=on_progress,
        queue_recovery=plan.queue_recovery,
        stop_stranded=plan.stop_stranded,
        max_stall=plan.max_stall,
        concurrency=plan.concurrency,
        requeue_failed=plan.requeue_failed,
    )
    return await runner.run()


def record(plan: RunPlan, **options: Any) -> RecordedRun:
    """:func:`arecord` run to the end; works inside a running event loop (Jupyter) too."""
    return run_sync(arecord(plan, **options))


async def areplay(
    cassette: str | os.PathLike[str] | Cassette,
    *,
    on_progress: Callable[[RolloutProgress], object] | None = None,
) -> RecordedRun:
    """Run the recorded plan again over the cassette: offline, no sleeping, same events."""
    loaded = cassette if isinstance(cassette, Cassette) else open_cassette(cassette)
    where = str(loaded.path or "<in memory>")
    plan = RunPlan.from_metadata(loaded.metadata, where)
    client, recorder = replay_client(loaded)
    async with client:
        try:
            progress = await _run(client, plan, no_sleep, on_progress)
        except ReplayExhaustedError as exc:
            if loaded.metadata.get("complete") is False:
                raise CassetteError(
                    f"cassette {where} holds an interrupted recording, so its run cannot be "
                    "replayed to the end; read it with `cfanalytics summary` or "
                    "events_from_cassette() instead"
                ) from exc
            raise
    return RecordedRun(recorder.run_id, progress, recorder.events, loaded.path, None)


def replay_client(
    cassette: Cassette, *, ordered: bool | None = None
) -> tuple[AsyncClient, Recorder]:
    """A client answered from ``cassette`` (never the network), and the recorder of it all.

    ``ordered``: serve answers in the order they were recorded, as a run that sent requests
    concurrently needs to make the same decisions (:class:`ReplayTransport`); by default as
    the recorded plan says. Browsing a recording (asking some of its requests, in another
    order) needs ``ordered=False``.
    """
    where = str(cassette.path or "<in memory>")
    recorder = Recorder(run_id=str(cassette.metadata.get("run_id") or Path(where).stem))
    if ordered is None:
        ordered = _concurrency(cassette.metadata) > 1
    client = AsyncClient(
        base_url=cassette.metadata.get("base_url"),
        transport=recorder.wrap_async(ReplayTransport(cassette, ordered=ordered)),
        retry=_retry_of(cassette.metadata),
        sleep=no_sleep,
        access_key=_REPLAY_KEY,  # some keys are needed to build a client; never sent
        secret_key=_REPLAY_KEY,
    )
    return client, recorder


def _concurrency(metadata: Mapping[str, Any]) -> int:
    """How many queue requests a recording's plan sent at once (before it said: one)."""
    return int(metadata.get("concurrency", 1))


def _retry_of(metadata: Mapping[str, Any]) -> RetryPolicy:
    """How the recording's client retried: how often, how long a ``Retry-After`` it waited
    for, whether it resent refused queue requests. Recordings made before they kept it
    retried by default, and resent as their plan says."""
    kept = metadata.get("retry")
    if not isinstance(kept, Mapping):
        return RetryPolicy(queue_recovery=_recovers(metadata))
    default = RetryPolicy()
    try:
        return RetryPolicy(
            attempts=int(kept.get("attempts", default.attempts)),
            max_retry_after=float(kept.get("max_retry_after", default.max_retry_after)),
            queue_recovery=bool(kept.get("queue_recovery", _recovers(metadata))),
        )
    except (TypeError, ValueError) as exc:
        raise CassetteError(f"unreadable retry settings in the cassette's metadata: {exc}") from exc


def _recovers(metadata: Mapping[str, Any]) -> bool:
    """Whether a recording's plan recovers queue requests: recordings made before the plan
    said so did not, and their replays must not either."""
    return bool(metadata.get("queue_recovery", False))


@contextmanager
def _released_on_error(lock: RecordingLock) -> Iterator[None]:
    """Let go of ``lock`` when opening the recording it guards fails."""
    try:
        yield
    except BaseException:
        lock.release()
        raise


def _credentials(options: dict[str, Any]) -> Credentials:
    """The keys of ``options`` (else the environment), refused before anything is sent when
    they cannot be scrubbed from what is recorded."""
    credentials = resolve_credentials(
        options.pop("access_key", None), options.pop("secret_key", None), os.environ
    )
    credentials.check_scrubbable()
    return credentials


def replay(cassette: str | os.PathLike[str] | Cassette, **options: Any) -> RecordedRun:
    """:func:`areplay` run to the end; works inside a running event loop (Jupyter) too."""
    return run_sync(areplay(cassette, **options))
