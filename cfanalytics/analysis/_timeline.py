"""The fleet as it was at a moment: one row per job, as the responses showed it then.

A live monitor shows the fleet at the latest poll; a replay scrubber slides over a recorded
run and shows the fleet at each moment next to what happened in the end. Both ask for a
moment many times a second, so :class:`FleetTimeline` indexes the recording once and
:meth:`FleetTimeline.at` is a few vectorised look-ups, never a scan of the events table.

A moment is shown as of the last successful poll at or before it (``attrs["at"]``): every
column describes the fleet at that poll. Words and rules are :mod:`._common`'s (snapshot
states, the vanishing poll, the state after it) and :mod:`._stragglers`' (overdue, stalls
counted in polls of the job's ASID), so :meth:`FleetTimeline.counts` equals
:func:`~cfanalytics.analysis.fleet_states` at every poll.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from ..events import BOOL, FLOAT, INT, TEXT, TIME, Schema, category
from . import _segments as segments
from ._columns import returns
from ._common import (
    FLEET_CODE,
    FLEET_STATES,
    NAT,
    conform,
    deprecated_positional,
    endings,
    job_snapshots,
    labelled,
    last_of_job,
    one_rollout,
    poll_times,
    polls,
    seconds,
    utc,
    with_rollout,
)
from ._stragglers import (
    LATE_GRACE_S,
    STALLED_POLLS,
    check_stalled_polls,
    numbered_polls,
    overdue,
    running_polls,
    stall_streaks,
)
from ._summary import OUTCOMES, SUMMARY_SCHEMA, job_summary_of

__all__ = ["SNAPSHOT_SCHEMA", "FleetTimeline", "fleet_at"]

_STATE = category(FLEET_STATES)
_WAITING, _RUNNING, _FAILED = (FLEET_CODE[state] for state in ("waiting", "running", "failed"))

#: :meth:`FleetTimeline.at`: one row per job, the fleet at a poll and what happened later.
SNAPSHOT_SCHEMA = with_rollout(
    Schema(
        {
            **SUMMARY_SCHEMA.entries("jobid", "kind", "location", "machine", "mirror"),
            "state": (_STATE, "its fleet state at that poll, as fleet_states counts it"),
            "jobprogress": (INT, "its last known progress at or before the poll, percent"),
            "jobeta": (TIME, "the ETA its last snapshot at or before the poll showed"),
            "first_eta": (TIME, "the first ETA it was given while Running in this attempt"),
            "slip_s": (FLOAT, "jobeta - first_eta, s: how far its ETA moved"),
            "seen_at": (TIME, "its last snapshot at or before the poll"),
            "overdue": (BOOL, "Running, more than grace_s past first_eta"),
            "stalled": (BOOL, "Running at one progress for stalled_polls polls"),
            "outcome": (category(OUTCOMES), "what happened in the end (job_summary)"),
            **SUMMARY_SCHEMA.entries("completed_at", "failed_at"),
            "eta_error_s": (FLOAT, "completed_at - jobeta, s; positive: later than shown then"),
        }
    )
)
_LATER = ("kind", "location", "machine", "mirror", "outcome", "completed_at", "failed_at")


@dataclass(frozen=True, slots=True)
class _History:
    """Every snapshot, sorted by job then time, as flat arrays; times are ``datetime64[us]``.

    ``key`` is ``job * (polls + 1) + i`` with ``i`` the first poll time at or after the
    snapshot: the rows a poll ``k`` has seen of job ``j`` are those with a key up to
    ``j * (polls + 1) + k``, and the last of them is one ``searchsorted`` away.
    """

    key: np.ndarray
    job: np.ndarray  # the job's row in the summary
    code: np.ndarray  # fleet state
    asid: np.ndarray
    seen: np.ndarray
    eta: np.ndarray
    first_eta: np.ndarray  # as of this snapshot, in its attempt
    known: np.ndarray  # the job's last row with a jobprogress up to this one, -1 if none
    progress: np.ndarray  # jobprogress, anything where NA


@dataclass(frozen=True, slots=True)
class _Stalls:
    """Running snapshots of successful polls, numbered per ASID, with their stall length.

    ``streak`` counts the consecutive polls of the ASID, ending at that row, that listed the
    job Running at the same known progress (the run :func:`~cfanalytics.analysis.stragglers`
    measures). ``last_poll[k, a]`` is the number of ASID ``asids[a]``'s last poll at or
    before poll time ``k``, -1 before its first.
    """

    key: np.ndarray  # job * width + poll number
    asid: np.ndarray
    streak: np.ndarray
    asids: np.ndarray
    last_poll: np.ndarray
    width: int


class FleetTimeline:
    """One rollout's recording, indexed once so the fleet at any moment is a cheap lookup.

    Of ``rollout``, or of the only rollout in ``events``: raises
    :class:`~cfanalytics.exceptions.RolloutError` naming them when there are several.

    ``grace_s`` and ``stalled_polls`` are :func:`~cfanalytics.analysis.stragglers`' options
    (overdue against the first ETA). ``times`` are the successful poll times of every ASID,
    the moments the fleet can be shown at; ``summary`` is :func:`~cfanalytics.job_summary`
    of the whole recording, what happened in the end.
    """

    def __init__(
        self,
        events: pd.DataFrame,
        *,
        grace_s: float = LATE_GRACE_S,
        stalled_polls: int = STALLED_POLLS,
        rollout: str | None = None,
    ) -> None:
        check_stalled_polls(stalled_polls)
        self.rollout, events = one_rollout(events, rollout)
        self.grace_s, self.stalled_polls = grace_s, stalled_polls
        self.summary = labelled(job_summary_of(events), self.rollout)
        found = polls(events)
        stamps = poll_times(found)
        self.times = pd.DatetimeIndex(stamps, name="observed_at").tz_localize("UTC")
        self._stamps = stamps
        jobids = self.summary["jobid"].to_numpy(dtype=np.int64)
        snaps = job_snapshots(events, of=jobids)
        job = np.searchsorted(jobids, snaps["jobid"].to_numpy(dtype=np.int64))
        self._history = _history(snaps, job, stamps)
        self._gone, self._after = _ends(snaps, job, self.summary, found, stamps)
        self._stalls = _stalls(running_polls(snaps, found), jobids, found, stamps)
        self._later = {name: self.summary[name].array for name in _LATER}
        self._completed = self.summary["completed_at"].to_numpy(dtype="datetime64[us]")

    def __len__(self) -> int:
        return len(self.times)

    def __repr__(self) -> str:
        span = f"{self.times[0]} to {self.times[-1]}" if len(self.times) else "no polls"
        return (
            f"<FleetTimeline {self.rollout}: {len(self.summary)} jobs, {len(self)} polls, {span}>"
        )

    def _poll(self, when: pd.Timestamp | str | datetime | None = None) -> int:
        """The index in :attr:`times` of the last poll at or before ``when``, -1 if none.

        ``None`` is the latest poll; strings and naive times are UTC.
        """
        if when is None:
            return len(self.times) - 1
        stamp = pd.Timestamp(when)
        if pd.isna(stamp):
            raise ValueError("when must be a time, not NaT")
        instant = utc(stamp).tz_localize(None).floor("us").to_datetime64()
        return int(np.searchsorted(self._stamps, instant, "right")) - 1

    def counts(self, when: pd.Timestamp | str | datetime | None = None) -> pd.Series:
        """Jobs per state of :data:`~cfanalytics.analysis.FLEET_STATES` at ``when``.

        Indexed like ``fleet_states(events).set_index("state")["jobs"]`` at that poll (every
        state, ``Int64``, named ``jobs``), so the two compare with ``equals``.
        """
        k = self._poll(when)
        codes = self._states(k, self._last_rows(k))
        index = pd.CategoricalIndex(FLEET_STATES, dtype=_STATE, name="state")
        jobs = np.bincount(codes, minlength=len(FLEET_STATES))
        return pd.Series(jobs, index=index, name="jobs").astype(INT)

    @returns(SNAPSHOT_SCHEMA)
    def at(self, when: pd.Timestamp | str | datetime | None = None) -> pd.DataFrame:
        """The fleet at ``when``: one row per job, as of the last poll at or before it.

        Before the first poll every job is ``waiting`` and ``attrs["at"]`` is None; otherwise
        ``attrs["at"]`` is that poll's time. Sorted by ``jobid``; columns below
        (:data:`SNAPSHOT_SCHEMA`).
        """
        k = self._poll(when)
        rows = self._last_rows(k)
        state = self._states(k, rows)
        h = self._history
        eta, first_eta = (segments.pick(column, rows, NAT) for column in (h.eta, h.first_eta))
        known = segments.pick(h.known, rows, -1)
        running = state == _RUNNING
        now = self._stamps[k] if k >= 0 else NAT
        late = overdue(now, first_eta, self.grace_s)
        frame = conform(
            {
                "rollout": pd.array([self.rollout] * len(self.summary), dtype=TEXT),
                "jobid": self.summary["jobid"].array,
                "state": pd.Categorical.from_codes(state, dtype=_STATE),
                "jobprogress": pd.arrays.IntegerArray(
                    segments.pick(h.progress, known, 0), known < 0
                ),
                "jobeta": eta,
                "first_eta": first_eta,
                "slip_s": _seconds(eta - first_eta),
                "seen_at": segments.pick(h.seen, rows, NAT),
                "overdue": running & late,
                "stalled": running & self._stalled(k, rows),
                **self._later,
                "eta_error_s": _seconds(self._completed - eta),
            },
            SNAPSHOT_SCHEMA,
        )
        frame.attrs["at"] = self.times[k] if k >= 0 else None
        return frame

    def _last_rows(self, k: int) -> np.ndarray:
        """Per job: its last snapshot (a row of the history) at or before poll ``k``, else -1."""
        jobs = np.arange(len(self.summary))
        if k < 0 or len(self._history.key) == 0:
            return np.full(len(jobs), -1)
        rows = np.searchsorted(self._history.key, jobs * (len(self) + 1) + k, "right") - 1
        mine = self._history.job[np.maximum(rows, 0)] == jobs
        return np.where((rows >= 0) & mine, rows, -1)

    def _states(self, k: int, rows: np.ndarray) -> np.ndarray:
        """Per job: its fleet state code at poll ``k``, as :func:`fleet_states` counts it."""
        state = segments.pick(self._history.code, rows, _WAITING)
        return np.where(self._gone <= k, self._after, state)

    def _stalled(self, k: int, rows: np.ndarray) -> np.ndarray:
        """Per job: whether its ASID's last ``stalled_polls`` polls up to poll ``k`` listed
        it Running at one progress (its ASID: that of its last snapshot, ``rows``)."""
        s = self._stalls
        if k < 0 or len(s.key) == 0:
            return np.zeros(len(rows), bool)
        asid = segments.pick(self._history.asid, rows, -1)
        at = np.minimum(np.searchsorted(s.asids, asid), len(s.asids) - 1)
        number = np.where(s.asids[at] == asid, s.last_poll[k, at], -1)
        wanted = np.arange(len(rows)) * s.width + number
        hit = np.minimum(np.searchsorted(s.key, wanted), len(s.key) - 1)
        same = (s.key[hit] == wanted) & (s.asid[hit] == asid) & (number >= 0)
        stalled: np.ndarray = same & (s.streak[hit] >= self.stalled_polls)
        return stalled


@deprecated_positional("when")
@returns(SNAPSHOT_SCHEMA)
def fleet_at(
    events: pd.DataFrame,
    *,
    when: pd.Timestamp | str | datetime | None = None,
    grace_s: float = LATE_GRACE_S,
    stalled_polls: int = STALLED_POLLS,
    rollout: str | None = None,
) -> pd.DataFrame:
    """The fleet of one rollout at one moment: ``FleetTimeline(events, ...).at(when)``.

    For many moments of one recording, build the :class:`FleetTimeline` once instead.
    """
    timeline = FleetTimeline(events, grace_s=grace_s, stalled_polls=stalled_polls, rollout=rollout)
    return timeline.at(when)


def _seconds(delta: np.ndarray) -> pd.arrays.FloatingArray:
    """``timedelta64`` values in seconds (by the one rule, :func:`seconds`), ``Float64``
    with NaT as NA."""
    missing = np.isnat(delta)
    return pd.arrays.FloatingArray(np.where(missing, 0.0, seconds(delta)), missing)


def _history(snaps: pd.DataFrame, job: np.ndarray, stamps: np.ndarray) -> _History:
    """Index the snapshots (sorted by job, then time) by job and poll."""
    seen = snaps["observed_at"].to_numpy(dtype="datetime64[us]")
    code = snaps["code"].to_numpy(dtype=np.int64)
    eta = snaps["jobeta"].to_numpy(dtype="datetime64[us]")
    first = segments.changes(job)
    return _History(
        key=job * (len(stamps) + 1) + np.searchsorted(stamps, seen, "left"),
        job=job,
        code=code,
        asid=snaps["asid"].to_numpy(dtype=np.int64),
        seen=seen,
        eta=eta,
        first_eta=_first_eta(first, code, eta),
        known=_last_known(first, snaps["jobprogress"].notna().to_numpy(dtype=bool)),
        progress=snaps["jobprogress"].to_numpy(dtype=np.int64, na_value=0),
    )


def _latest(flags: np.ndarray, otherwise: int = 0) -> np.ndarray:
    """Per row: the last row up to it where ``flags`` is set, else ``otherwise``."""
    rows = np.arange(len(flags))
    latest: np.ndarray = np.maximum.accumulate(np.where(flags, rows, otherwise))
    return latest


def _last_known(first: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Per row (``first`` marks each job's first): its job's last ``known`` row up to it, -1."""
    last = _latest(known, -1)
    out: np.ndarray = np.where(last >= _latest(first), last, -1)
    return out


def _first_eta(first: np.ndarray, code: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Per snapshot: the first ETA its attempt was given while Running, up to it; else NaT.

    An attempt starts at a job's first snapshot and at every snapshot following a Failed
    one that is not Failed itself (the job was queued again): a retry owes nothing to the
    failed attempt's promise, as :func:`~cfanalytics.eta_errors` scores the last attempt only.
    """
    rows, failed = np.arange(len(code)), code == _FAILED
    new = first.copy()
    new[1:] |= failed[:-1] & ~failed[1:]
    given = np.where((code == _RUNNING) & ~np.isnat(eta), rows, len(rows))
    following = np.minimum.accumulate(given[::-1])[::-1]  # the next row given one, from each
    chosen = following[_latest(new)]
    return segments.pick(eta, np.where(chosen <= rows, chosen, -1), NAT)


def _ends(
    snaps: pd.DataFrame,
    job: np.ndarray,
    summary: pd.DataFrame,
    found: pd.DataFrame,
    stamps: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per job: the index of its vanishing poll (past the last poll if none) and its state
    from then on (:func:`~._common.endings`)."""
    gone, after = np.full(len(summary), len(stamps)), np.full(len(summary), _WAITING)
    last = np.flatnonzero(last_of_job(job))
    outcome = summary["outcome"].iloc[job[last]]
    gone[job[last]], after[job[last]] = endings(snaps.iloc[last], outcome, found, stamps)
    return gone, after


def _stalls(
    running: pd.DataFrame, jobids: np.ndarray, found: pd.DataFrame, stamps: np.ndarray
) -> _Stalls:
    """Index ``running`` (:func:`~._stragglers.running_polls`) by job and poll."""
    job = np.searchsorted(jobids, running["jobid"].to_numpy(dtype=np.int64))
    poll = running["poll"].to_numpy(dtype=np.int64)
    asids, last_poll = _last_polls(found, stamps)
    width = int(last_poll.max(initial=0)) + 2
    return _Stalls(
        key=job * width + poll,
        asid=running["asid"].to_numpy(dtype=np.int64),
        streak=stall_streaks(running),
        asids=asids,
        last_poll=last_poll,
        width=width,
    )


def _last_polls(found: pd.DataFrame, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ASIDs polled, and ``[k, a]``: the number of ASID ``a``'s last poll at or before
    poll time ``k`` (-1 before its first), as :func:`~._stragglers.numbered_polls` numbers
    them."""
    numbered = numbered_polls(found)
    asids = np.unique(numbered["asid"].to_numpy(dtype=np.int64))
    out = np.full((len(stamps), len(asids)), -1, dtype=np.int64)
    for a, asid in enumerate(asids):  # a few ASIDs at most
        times = numbered.loc[numbered["asid"] == asid, "polled_at"].to_numpy("datetime64[us]")
        out[:, a] = np.searchsorted(times, stamps, "right") - 1
    return asids, out
