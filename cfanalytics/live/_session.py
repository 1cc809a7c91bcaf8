"""Live sessions for notebooks: one object that connects, records and hands out runners.

A notebook opens a :class:`LiveSession` on the embedded simulator, the real API or a
cassette; the widgets take its ``client`` and :meth:`~LiveSession.runner`. Every response
goes to a cassette and an event log, exactly as ``cfanalytics record`` does, so a rollout
queued and watched from a notebook can be replayed, summarised and reported on afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..client import AsyncClient
from ..exceptions import ConfigurationError, HistoryError
from ..recording import (
    CASSETTE_SUFFIXES,
    Recorder,
    Recording,
    RolloutProgress,
    RolloutRunner,
    RunPlan,
    load_cassette,
    new_run_id,
    no_sleep,
    replay_client,
)
from ..simulator import (
    ScaledClock,
    Scenario,
    SimServer,
    Simulator,
    default_scenario,
    serve,
    throwaway_keys,
)

__all__ = ["SOURCES", "LiveSession"]

log = logging.getLogger("cfanalytics.live")

#: What :meth:`LiveSession.open` connects to, besides the path of a cassette to replay.
SOURCES = ("simulator", "api")
_ENDED_ALL = "every queued job ended"


class LiveSession:
    """A connection for interactive work: a client, its ASID, and what it recorded.

    Build one with :meth:`open` (or :meth:`simulator`, :meth:`api`, :meth:`replay`), use
    ``client`` and :meth:`runner`, and :meth:`close` it to write the cassette. ``interval``
    is the time between polls in real seconds (the simulator's is scaled by its speed).
    """

    def __init__(
        self,
        client: AsyncClient,
        recorder: Recorder,
        *,
        asid: int,
        interval: float,
        source: str,
        recording: Recording | None = None,
        server: SimServer | None = None,
        replaying: bool = False,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.asid = asid
        self.interval = interval
        self.source = source
        self.recording = recording
        self.replaying = replaying
        self._server = server
        self._runners: list[RolloutRunner] = []
        self.closed = False

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        source: str | os.PathLike[str] = "simulator",
        *,
        asid: int | None = None,
        speed: float = 60.0,
        seed: int = 1,
        interval: float = 15.0,
        out_dir: str | os.PathLike[str] = "live-out",
        history: str | os.PathLike[str] | None = None,
    ) -> LiveSession:
        """``source``: ``"simulator"``, ``"api"`` (keys from the environment) or a cassette.

        ``speed`` and ``seed`` only matter to the simulator, ``asid`` only to the API (the
        simulator has its own; a replay takes the recorded one). ``history``: a history
        store folder the run is added to when a rollout ends and on :meth:`close` (never a
        replay's: it recorded nothing new).
        """
        if source == "simulator":
            return cls.simulator(
                speed=speed, seed=seed, interval=interval, out_dir=out_dir, history=history
            )
        if source == "api":
            if asid is None:
                raise ConfigurationError(
                    "the real API needs your ASID: set `asid` in the parameters cell"
                )
            return cls.api(asid=asid, interval=interval, out_dir=out_dir, history=history)
        path = Path(source)
        if path.suffix not in CASSETTE_SUFFIXES:
            raise ConfigurationError(
                f"unknown source {str(source)!r}: use 'simulator', 'api' or a cassette's path"
            )
        if history is not None:
            raise ConfigurationError("a replay records nothing new: it adds nothing to a history")
        return cls.replay(path)

    @classmethod
    def simulator(
        cls,
        *,
        speed: float = 60.0,
        seed: int = 1,
        interval: float = 15.0,
        out_dir: str | os.PathLike[str] = "live-out",
        scenario: Scenario | None = None,
        faults: float = 0.0,
        history: str | os.PathLike[str] | None = None,
    ) -> LiveSession:
        """Start the embedded simulator on loopback (real HTTP) and record through it.

        ``speed`` is simulated seconds per real second; ``interval`` is in simulated seconds.
        ``history``: as for :meth:`open`.
        """
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        scenario = scenario or default_scenario()
        access, secret = throwaway_keys()
        clock = ScaledClock(start=scenario.start, speed=speed)
        sim = Simulator(
            scenario, seed=seed, clock=clock, access_key=access, secret_key=secret, faults=faults
        )

        def sim_now() -> datetime:
            # Stamp responses in simulated time, so they agree with the API's timestamps.
            return datetime.fromtimestamp(sim.clock.now(), UTC)

        server = serve(sim)
        try:
            recording = _open_recording(
                out_dir,
                sim.asid,
                interval / speed,
                base_url=server.url,
                access_key=access,
                secret_key=secret,
                clock=sim_now,
                history=history,
            )
        except BaseException:
            server.close()
            raise
        label = f"embedded simulator on {server.url} at {speed:g}x"
        return cls._recorded(recording, sim.asid, interval / speed, label, server)

    @classmethod
    def api(
        cls,
        *,
        asid: int,
        base_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        interval: float = 15.0,
        out_dir: str | os.PathLike[str] = "live-out",
        history: str | os.PathLike[str] | None = None,
    ) -> LiveSession:
        """The real Clanforge API (keys: arguments, else ``CLANFORGE_*`` variables);
        ``history``: as for :meth:`open`."""
        recording = _open_recording(
            out_dir,
            asid,
            interval,
            base_url=base_url,
            access_key=access_key,
            secret_key=secret_key,
            history=history,
        )
        label = f"Clanforge API at {recording.client.base_url}"
        return cls._recorded(recording, asid, interval, label)

    @classmethod
    def replay(cls, cassette: str | os.PathLike[str]) -> LiveSession:
        """A cassette, served back in recorded order per request: browse it, never queue for
        real. Browsing asks what it likes, in its own order, so answers are not held back for
        the requests a run made before them (``ordered=False``)."""
        loaded = load_cassette(cassette)
        plan = RunPlan.from_metadata(loaded.metadata, str(cassette))
        client, recorder = replay_client(loaded, ordered=False)
        return cls(
            client,
            recorder,
            asid=plan.asid,
            interval=0.0,
            source=f"replay of {cassette}",
            replaying=True,
        )

    @classmethod
    def _recorded(
        cls,
        recording: Recording,
        asid: int,
        interval: float,
        label: str,
        server: SimServer | None = None,
    ) -> LiveSession:
        return cls(
            recording.client,
            recording.recorder,
            asid=asid,
            interval=interval,
            source=label,
            recording=recording,
            server=server,
        )

    # -- using ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        where = "" if self.recording is None else f", recording to {self.folder}"
        state = " (closed)" if self.closed else ""
        return f"<LiveSession {self.source}, ASID {self.asid}{where}{state}>"

    @property
    def folder(self) -> Path | None:
        """Where the cassette and the event log go (None for a replay)."""
        return None if self.recording is None else self.recording.writer.path.parent

    @property
    def cassette(self) -> Path | None:
        """The cassette file written by :meth:`close` (None for a replay)."""
        return None if self.recording is None else self.recording.writer.path

    @property
    def events(self) -> pd.DataFrame:
        """Every response so far as events (:mod:`cfanalytics.events`)."""
        return self.recorder.events

    def runner(self, **options: Any) -> RolloutRunner:
        """A runner that follows jobs queued elsewhere (``queue=False``), recording polls."""
        sleep: dict[str, Callable[..., Any]] = {"sleep": no_sleep} if self.replaying else {}
        runner = RolloutRunner(
            self.client,
            self.asid,
            interval=self.interval,
            queue=False,
            recorder=self.recorder,
            on_finish=self._finished,
            **(sleep | options),
        )
        self._runners.append(runner)
        return runner

    def _finished(self, progress: RolloutProgress) -> None:
        # A finished rollout is worth a cassette now, not only when the kernel is closed.
        if not self.closed:
            try:
                self.save()
            except HistoryError as exc:  # close() tries again; the runner's work is done
                log.warning("the run was not added to its history store yet: %s", exc)
        log.info("rollout followed to its end (%s)", progress.stop_reason)

    def save(self) -> Path | None:
        """Write the cassette as it stands (the event log is already on disk), and add the
        run to the history store, if the session has one."""
        if self.recording is None:
            return None
        self._describe_run(self.recording)
        self.recording.writer.save()
        self.recording.keep()
        return self.recording.writer.path

    async def aclose(self) -> None:
        """Stop the runners and wait for a poll under way, then :meth:`close` everything."""
        for runner in self._runners:
            runner.stop()
        await asyncio.gather(*(runner.finished.wait() for runner in self._runners))
        self.close()
        await self.client.aclose()

    def close(self) -> None:
        """Stop the runners, write the cassette, close the event log and the simulator.

        A poll under way when this is called loses its answer: from a coroutine (a notebook
        cell can ``await``), prefer :meth:`aclose`, which waits for it.
        """
        if self.closed:
            return
        self.closed = True
        for runner in self._runners:
            runner.stop()
        try:
            if self.recording is not None:
                self._describe_run(self.recording)
                self.recording.close()
                self.recording.keep()
        finally:
            if self._server is not None:
                self._server.close()

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _describe_run(self, recording: Recording) -> None:
        """Put the run's plan in the cassette, and whether a replay can repeat it.

        The plan's jobs are every job a queue request named, accepted or refused, in the
        order sent: a replay then sends the same requests and gets the same answers.
        """
        events = self.recorder.events
        asked = events.loc[events["endpoint"] == "queue"].drop_duplicates("seq")["jobid"]
        jobs = tuple(dict.fromkeys(int(j) for j in asked.dropna()))
        plan = _session_plan(self.asid, self.interval, jobs)
        ended = [runner.progress.stop_reason for runner in self._runners]
        once = len(asked) == len(jobs)  # a job asked twice would be asked once on replay
        complete = ended == [_ENDED_ALL] and once and _one_batch(events)
        recording.writer.metadata |= plan.metadata() | {
            "complete": complete,
            "stop_reason": ended[-1] if ended else None,
        }


def _open_recording(
    out_dir: str | os.PathLike[str], asid: int, interval: float, **options: Any
) -> Recording:
    run_id = new_run_id()
    folder = Path(out_dir) / run_id
    plan = _session_plan(asid, interval)
    recording = Recording.open(
        cassette=folder / "rollout.yaml",
        events_dir=folder / "events",
        metadata=plan.metadata(),
        run_id=run_id,
        **options,
    )
    log.info("recording to %s", folder)
    return recording


def _session_plan(asid: int, interval: float, jobs: tuple[int, ...] | None = None) -> RunPlan:
    """The plan a session's replay follows: what the panel and the monitor did. The panel
    sends each queue request once and shows what failed, for the user to retry (no resending
    or settling); the monitor follows until the user stops it (no stall or stranded stop)."""
    return RunPlan(
        asid=asid,
        jobs=jobs,
        interval=interval,
        queue_recovery=False,
        stop_stranded=False,
        max_stall=None,
        concurrency=1,
    )


def _one_batch(events: pd.DataFrame) -> bool:
    """Whether the responses came as a queueing run makes them: list, queue..., poll...

    Only then can :func:`~cfanalytics.replay` repeat the session request for request.
    """
    if events.empty:
        return False
    endpoints = events.drop_duplicates("seq").sort_values("seq")["endpoint"].astype(str)
    letters = "".join(endpoints.str[0])
    head, _, rest = letters.partition("q")
    return head == "s" and "q" not in rest.lstrip("q")
