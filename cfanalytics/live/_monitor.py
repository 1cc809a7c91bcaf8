"""Following a rollout live: the logic behind the live monitor widget.

:class:`Monitor` drives a :class:`~cfanalytics.recording.RolloutRunner` and reads what it
has recorded so far with the same analysis as every report (:mod:`cfanalytics.analysis`),
restricted to the jobs it follows; without a recorder it maps states as the analysis does.
Views ask it for the fleet now (:meth:`Monitor.fleet`), a one-line :meth:`Monitor.header`,
the forecast finish (:meth:`Monitor.forecasts`, and per job :meth:`Monitor.fleet_forecast`)
and the frames to plot; they never compute anything themselves.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analysis import (
    FLEET_STATE_BY_ID,
    FLEET_STATE_BY_OUTCOME,
    FLEET_STATES,
    FORECAST_JOB_SCHEMA,
    LATE_GRACE_S,
    SNAPSHOT_SCHEMA,
    STALLED_POLLS,
    FleetTimeline,
    Forecast,
    History,
    eta_errors,
    fleet_states,
    forecast,
    job_summary,
)
from ..client import QueueResult
from ..events import Schema, empty_events, split_rollouts
from ..recording import RolloutProgress, RolloutRunner

__all__ = ["FLEET_FORECAST_SCHEMA", "FleetHeader", "Monitor", "Throttle"]

_ENDED = ("completed", "failed", "other")
_FORECAST_COLUMNS = ("forecast_at", "lower_at", "upper_at")


def _after_jobeta(schema: Schema, added: dict[str, tuple[object, str]]) -> Schema:
    """``schema`` with the ``added`` columns right after ``jobeta``, where a reader looks."""
    entries = list(schema.entries().items())
    cut = [name for name, _ in entries].index("jobeta") + 1
    return Schema(dict(entries[:cut]) | added | dict(entries[cut:]))


#: :meth:`Monitor.fleet_forecast`: :data:`~cfanalytics.analysis.SNAPSHOT_SCHEMA` (same
#: columns, same order) with each open job's forecast completion and its 80 % interval
#: (:data:`~cfanalytics.analysis.FORECAST_JOB_SCHEMA`'s) right after ``jobeta``.
FLEET_FORECAST_SCHEMA = _after_jobeta(
    SNAPSHOT_SCHEMA,
    {
        name: (dtype, f"{meaning}; NaT too when ended or not forecast yet")
        for name, (dtype, meaning) in FORECAST_JOB_SCHEMA.entries(*_FORECAST_COLUMNS).items()
    },
)


@dataclass(frozen=True)
class FleetHeader:
    """The fleet in a line: jobs per state, share ended, and the spread of the ETAs."""

    jobs: int
    counts: dict[str, int]
    done_share: float  # completed, failed or otherwise ended, of the jobs followed
    eta_median_s: float | None  # median time to go until the ETAs of Running jobs
    eta_p90_s: float | None
    at: pd.Timestamp | None

    @classmethod
    def of(cls, fleet: pd.DataFrame) -> FleetHeader:
        """The header of a :data:`~cfanalytics.timeline.SNAPSHOT_SCHEMA` frame."""
        counts = fleet["state"].value_counts().reindex(FLEET_STATES, fill_value=0)
        at = fleet.attrs.get("at")
        running = fleet.loc[fleet["state"].eq("running") & fleet["jobeta"].notna(), "jobeta"]
        to_go = (running - at).dt.total_seconds().to_numpy(dtype=float) if at else np.array([])
        ended = int(counts[list(_ENDED)].sum())
        return cls(
            jobs=len(fleet),
            counts={str(k): int(v) for k, v in counts.items() if v},
            done_share=ended / len(fleet) if len(fleet) else 0.0,
            eta_median_s=float(np.median(to_go)) if len(to_go) else None,
            eta_p90_s=float(np.percentile(to_go, 90)) if len(to_go) else None,
            at=at,
        )


class Throttle:
    """Says when to redraw: at most once per ``every_s``, and at most ``share`` of the time.

    A redraw (analysis, then a PNG) can cost far more than a poll; on the kernel's event
    loop it delays the next poll, so the gap grows with what the last redraw cost
    (measured by :meth:`timing`). The clock is injectable.
    """

    def __init__(
        self, every_s: float, *, share: float = 0.25, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(
                f"share is the most of the time redraws may take: 0 < share <= 1, not {share}"
            )
        self.every_s = every_s
        self.share = share
        self.clock = clock
        self.cost_s = 0.0
        self._last: float | None = None

    @property
    def gap_s(self) -> float:
        """The least time between two redraws now."""
        return max(self.every_s, self.cost_s / self.share)

    def due(self, *, force: bool = False) -> bool:
        """Whether to redraw now; a redraw is then counted from now."""
        now = self.clock()
        if force or self._last is None or now - self._last >= self.gap_s:
            self._last = now
            return True
        return False

    @contextmanager
    def timing(self) -> Iterator[None]:
        """Measure the redraw in the block, so the next gap can allow for it."""
        start = self.clock()
        try:
            yield
        finally:
            self.cost_s = self.clock() - start


class Monitor:
    """Follow ``runner``'s jobs; read the fleet from what its recorder has recorded.

    ``history`` (a :class:`~cfanalytics.History` or a store folder) is handed to
    :func:`~cfanalytics.forecast`, so the forecasts also learn from earlier rollouts.
    """

    def __init__(
        self,
        runner: RolloutRunner,
        *,
        grace_s: float = LATE_GRACE_S,
        stalled_polls: int = STALLED_POLLS,
        history: History | str | os.PathLike[str] | None = None,
    ):
        self.runner = runner
        self.grace_s = grace_s
        self.stalled_polls = stalled_polls
        self.history = history
        # The last forecasts and what they were made of: one forecast per poll, not per redraw.
        self._forecast_cache: tuple[tuple[object, ...], tuple[Forecast, ...]] | None = None

    def __repr__(self) -> str:
        return f"<Monitor of {self.runner!r}>"

    @property
    def progress(self) -> RolloutProgress:
        """The runner's progress."""
        return self.runner.progress

    @property
    def following(self) -> frozenset[int]:
        """The job ids followed."""
        return self.runner.progress.watched

    def follow(self, queued: Iterable[QueueResult]) -> None:
        """Follow these queued jobs too."""
        self.runner.follow(queued)

    async def run(self) -> RolloutProgress:
        """Poll until every followed job has ended, or :meth:`stop`."""
        return await self.runner.run()

    def stop(self) -> None:
        """Stop polling (at once when between polls)."""
        self.runner.stop()

    def events(self) -> pd.DataFrame | None:
        """Everything recorded so far, or None when the runner has no recorder."""
        return self.runner.events

    def fleet(self, events: pd.DataFrame | None = None) -> pd.DataFrame:
        """The followed jobs at the latest poll: :data:`~cfanalytics.timeline.SNAPSHOT_SCHEMA`.

        ``events`` defaults to :meth:`events` (pass a copy taken earlier to work on it
        elsewhere). Without a recorder only what the runner's progress holds is filled in
        (state, progress, ETA); slips and flags need the recorded history.
        """
        events = self.events() if events is None else events
        if events is None:
            return _fleet_from_progress(self.progress)
        return _joined([now for _, now in self._rollouts(events)])

    def forecasts(self, events: pd.DataFrame | None = None) -> tuple[Forecast, ...]:
        """:func:`~cfanalytics.forecast` of the followed jobs, one per rollout they belong to,
        as of its latest poll: when each followed job not ended will complete, and when
        50/90/100 % of the followed jobs will have (the shares count the jobs followed, not
        the rollout's others; only the followed jobs teach it).

        Empty without a recorder, or before a poll was recorded. Made once per poll: asked
        again with nothing new recorded, it answers what it answered, at no cost.
        """
        events = self.events() if events is None else events
        if events is None or events.empty or not self.following:
            return ()
        return self._forecasts(events)

    def fleet_forecast(self, events: pd.DataFrame | None = None) -> pd.DataFrame:
        """:meth:`fleet` with each job's forecast completion and 80 % interval next to its
        ETA: :data:`FLEET_FORECAST_SCHEMA` (NaT for ended jobs, and before any forecast)."""
        events = self.events() if events is None else events
        if events is None:
            return _with_forecasts(_fleet_from_progress(self.progress), ())
        read = self._rollouts(events)
        fleet = _joined([now for _, now in read])
        return _with_forecasts(fleet, self._forecasts(events, read) if read else ())

    def _rollouts(self, events: pd.DataFrame) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
        """Each rollout of the followed jobs: its events, and its followed jobs at its
        latest poll."""
        if events.empty:
            return []
        return [
            (frame, self._now(frame))
            for name, frame in split_rollouts(events)
            if name is not None and frame["jobid"].isin(self.following).any()
        ]

    def _now(self, rollout: pd.DataFrame) -> pd.DataFrame:
        now = FleetTimeline(rollout, grace_s=self.grace_s, stalled_polls=self.stalled_polls).at()
        mine = now.loc[now["jobid"].isin(self.following)].reset_index(drop=True)
        mine.attrs["at"] = now.attrs["at"]
        return mine

    def _forecasts(
        self, events: pd.DataFrame, read: list[tuple[pd.DataFrame, pd.DataFrame]] | None = None
    ) -> tuple[Forecast, ...]:
        key = _forecast_key(events, self.following)
        cached = self._forecast_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        found = tuple(
            forecast(_followed(frame, self.following), at=now.attrs["at"], history=self.history)
            for frame, now in (self._rollouts(events) if read is None else read)
            if now.attrs["at"] is not None
        )
        self._forecast_cache = (key, found)  # one assignment: a worker thread may read it
        return found

    def header(self, fleet: pd.DataFrame | None = None) -> FleetHeader:
        """:class:`FleetHeader` of :meth:`fleet` (or of the frame given)."""
        return FleetHeader.of(self.fleet() if fleet is None else fleet)

    def eta_errors(self, events: pd.DataFrame | None = None) -> pd.DataFrame:
        """:func:`~cfanalytics.eta_errors` of the followed jobs that completed so far."""
        events = self.events() if events is None else events
        if events is None or events.empty:
            return eta_errors(empty_events())
        errors = eta_errors(events)
        return errors.loc[errors["jobid"].isin(self.following)].reset_index(drop=True)

    def fleet_states(self, events: pd.DataFrame | None = None) -> pd.DataFrame:
        """:func:`~cfanalytics.fleet_states` of the followed jobs, for a burn-up."""
        events = self.events() if events is None else events
        if events is None or events.empty or not self.following:
            return fleet_states(empty_events())
        jobs = job_summary(events)
        return fleet_states(events, summary=jobs.loc[jobs["jobid"].isin(self.following)])


def _joined(nows: list[pd.DataFrame]) -> pd.DataFrame:
    """One fleet of the rollouts' fleets, at the latest of their polls."""
    if not nows:
        return _empty_fleet()
    fleet = pd.concat(nows, ignore_index=True) if len(nows) > 1 else nows[0]
    times = [n.attrs["at"] for n in nows if n.attrs["at"] is not None]
    fleet.attrs["at"] = max(times, default=None)
    return fleet


def _forecast_key(events: pd.DataFrame, following: frozenset[int]) -> tuple[object, ...]:
    """What tells one recording's events from another's: a recorder only appends, so its
    length and its last response (run, seq, time) change with every poll."""
    last = events.iloc[-1]
    return (len(events), last["run_id"], last["seq"], last["observed_at"], following)


def _followed(rollout: pd.DataFrame, following: frozenset[int]) -> pd.DataFrame:
    """A rollout's events of the followed jobs, and the rows that name no job (a poll's
    empty list, an error): what their forecast is made of."""
    keep = rollout["jobid"].isna() | rollout["jobid"].isin(following)
    return rollout.loc[keep.to_numpy(dtype=bool)].reset_index(drop=True)


def _with_forecasts(fleet: pd.DataFrame, forecasts: tuple[Forecast, ...]) -> pd.DataFrame:
    """``fleet`` with :data:`FLEET_FORECAST_SCHEMA`'s forecast columns, by rollout and job."""
    columns = ["rollout", "jobid", *_FORECAST_COLUMNS]
    jobs = [f.jobs.assign(rollout=f.rollout_name)[columns] for f in forecasts]
    found = pd.concat(jobs, ignore_index=True) if jobs else pd.DataFrame(columns=columns)
    found = found.astype({name: FLEET_FORECAST_SCHEMA[name] for name in columns})
    joined = fleet.merge(found, on=["rollout", "jobid"], how="left", validate="one_to_one")
    joined = joined[list(FLEET_FORECAST_SCHEMA)].astype(dict(FLEET_FORECAST_SCHEMA))
    joined.attrs["at"] = fleet.attrs.get("at")
    return joined


def _empty_fleet() -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in SNAPSHOT_SCHEMA.items()})
    frame.attrs["at"] = None
    return frame


def _fleet_from_progress(progress: RolloutProgress) -> pd.DataFrame:
    """The fleet as the runner last saw it, when nothing was recorded."""
    rows = []
    for jobid in sorted(progress.watched):
        job = progress.latest.get(jobid)
        state = "waiting" if job is None else FLEET_STATE_BY_ID.get(job.jobstateid or 0, "other")
        state = FLEET_STATE_BY_OUTCOME.get(progress.ended.get(jobid, ""), state)
        fields = (
            {}
            if job is None
            else {
                "kind": job.kind,
                "location": job.location,
                "machine": job.machine,
                "mirror": job.mirror,
                "jobprogress": job.jobprogress,
                "jobeta": job.jobeta,
            }
        )
        rows.append({"jobid": jobid, "state": state, **fields})
    frame = pd.concat([_empty_fleet(), pd.DataFrame(rows)], ignore_index=True)
    frame = frame.astype(dict(SNAPSHOT_SCHEMA))[list(SNAPSHOT_SCHEMA)]
    frame.attrs["at"] = pd.Timestamp(progress.last_seen) if progress.last_seen else None
    return frame
