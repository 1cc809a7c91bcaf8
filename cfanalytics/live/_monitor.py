"""Following a rollout live: the logic behind the live monitor widget.

:class:`Monitor` drives a :class:`~cfanalytics.recording.RolloutRunner` and reads what it
has recorded so far with the same analysis as every report (:mod:`cfanalytics.analysis`),
restricted to the jobs it follows; without a recorder it maps states as the analysis does.
Views ask it for the fleet now (:meth:`Monitor.fleet`), a one-line :meth:`Monitor.header`,
and the frames to plot; they never compute anything themselves.
"""

from __future__ import annotations

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
    LATE_GRACE_S,
    SNAPSHOT_SCHEMA,
    STALLED_POLLS,
    FleetTimeline,
    eta_errors,
    fleet_states,
    job_summary,
)
from ..client import QueueResult
from ..events import empty_events, split_rollouts
from ..recording import RolloutProgress, RolloutRunner

__all__ = ["FleetHeader", "Monitor", "Throttle"]

_ENDED = ("completed", "failed", "other")


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
    """Follow ``runner``'s jobs; read the fleet from what its recorder has recorded."""

    def __init__(
        self,
        runner: RolloutRunner,
        *,
        grace_s: float = LATE_GRACE_S,
        stalled_polls: int = STALLED_POLLS,
    ):
        self.runner = runner
        self.grace_s = grace_s
        self.stalled_polls = stalled_polls

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
        if events.empty:
            return _empty_fleet()
        nows = [
            FleetTimeline(frame, grace_s=self.grace_s, stalled_polls=self.stalled_polls).at()
            for name, frame in split_rollouts(events)
            if name is not None and frame["jobid"].isin(self.following).any()
        ]
        if not nows:
            return _empty_fleet()
        now = pd.concat(nows, ignore_index=True) if len(nows) > 1 else nows[0]
        fleet = now.loc[now["jobid"].isin(self.following)].reset_index(drop=True)
        times = [n.attrs["at"] for n in nows if n.attrs["at"] is not None]
        fleet.attrs["at"] = max(times, default=None)
        return fleet

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
