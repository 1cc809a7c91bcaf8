"""The fleet over time: how many jobs were in each state at every poll, and who was where when.

Every function reads an events table (:mod:`cfanalytics.events`) and returns a tidy frame whose
columns and dtypes are declared below (``*_SCHEMA``), applied by :func:`_conform` only.
Words follow :func:`~cfanalytics.job_summary`: a *snapshot* is a successful ``status`` or
``queue`` row naming a job; a *successful poll* is a status response without any problem row
(failed polls say nothing about absence). A job's *vanishing poll* is the first successful poll
of its own ``asid`` after its last snapshot.

States are the fleet's coarse vocabulary :data:`FLEET_STATES`: ``waiting`` (not listed yet),
``pending`` (Created or Pending: listed, not queued), ``queued``, ``running``, ``completed``,
``failed`` and ``other`` (Squashed, or no readable state).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from ..events import KINDS, validate
from ._summary import OUTCOMES, _job_rows, _polls, job_summary

__all__ = [
    "FLEET_STATES",
    "FLEET_STATES_SCHEMA",
    "INTERVAL_SCHEMA",
    "PROGRESS_SCHEMA",
    "STRAGGLER_SCHEMA",
    "fleet_states",
    "progress_curves",
    "state_intervals",
    "stragglers",
]

#: The categories of every ``state`` column here, bottom of a burn-up last.
FLEET_STATES = ("waiting", "pending", "queued", "running", "completed", "failed", "other")
WAITING, PENDING, QUEUED, RUNNING, COMPLETED, FAILED, OTHER = range(len(FLEET_STATES))
_NO_ASID = -1  # as job_summary: a missing asid is one more ASID

_TIME = pd.DatetimeTZDtype(unit="us", tz="UTC")
_INT = pd.Int64Dtype()
_FLOAT = pd.Float64Dtype()
_TEXT = pd.StringDtype()
_KIND = pd.CategoricalDtype(list(KINDS))
_STATE = pd.CategoricalDtype(list(FLEET_STATES))

#: :func:`fleet_states`: one row per successful poll time and state.
FLEET_STATES_SCHEMA: Mapping[str, object] = {
    "observed_at": _TIME,
    "state": _STATE,
    "jobs": _INT,  # jobs in that state; the states of one time add up to every job
}
#: :func:`state_intervals`: one row per job and contiguous run of one state.
INTERVAL_SCHEMA: Mapping[str, object] = {
    "jobid": _INT,
    "kind": _KIND,
    "location": _TEXT,
    "machine": _TEXT,
    "state": _STATE,
    "start": _TIME,  # first snapshot in the state
    "end": _TIME,  # next snapshot in another state, else the vanishing poll, else last snapshot
}
#: :func:`progress_curves`: one row per Running snapshot of a job with a known completion.
PROGRESS_SCHEMA: Mapping[str, object] = {
    "jobid": _INT,
    "kind": _KIND,
    "location": _TEXT,
    "observed_at": _TIME,
    "jobprogress": _INT,
    "elapsed_fraction": _FLOAT,  # (t - start) / (completed_at - start)
}
#: :func:`stragglers`: one row per job that ran past its ETA or stalled.
STRAGGLER_SCHEMA: Mapping[str, object] = {
    "jobid": _INT,
    "kind": _KIND,
    "location": _TEXT,
    "machine": _TEXT,
    "overdue_since": _TIME,  # first poll listing it Running past its (first) ETA and grace
    "max_overdue_s": _FLOAT,  # largest t - ETA over those polls
    "stalled_since": _TIME,  # first poll of its first stall
    "longest_stall_polls": _INT,  # most consecutive Running polls at one jobprogress
    "last_state": _STATE,  # of its last snapshot
    "outcome": pd.CategoricalDtype(list(OUTCOMES)),
    "reason": pd.CategoricalDtype(["overdue", "stalled", "both"]),
}

# Fleet state by jobstateid 0..7 (0 and anything unreadable: other).
_BY_STATE_ID = np.array([OTHER, PENDING, PENDING, QUEUED, RUNNING, COMPLETED, FAILED, OTHER])
# What a job is once it has left the list, by job_summary's outcome; -1: as last seen.
_AFTER = {"completed": COMPLETED, "failed": FAILED, "squashed": OTHER, "unknown": OTHER}


def _conform(frame: pd.DataFrame, schema: Mapping[str, object], by: list[str]) -> pd.DataFrame:
    """Apply ``schema``: its columns in order and dtypes, rows sorted by ``by``, a RangeIndex."""
    out = pd.DataFrame({name: frame[name].astype(dtype) for name, dtype in schema.items()})
    return out.sort_values(by, kind="stable").reset_index(drop=True)


def _codes(sid: pd.Series) -> np.ndarray:
    """Fleet state codes of state ids (``Int64``, NA allowed)."""
    ids = sid.fillna(0).to_numpy(dtype=np.int64)
    return _BY_STATE_ID[np.where((ids >= 0) & (ids < len(_BY_STATE_ID)), ids, 0)]


def _snapshots(events: pd.DataFrame) -> pd.DataFrame:
    """Every snapshot: ``jobid``, ``observed_at``, ``asid``, ``code`` and the job columns.

    Sorted by job, then time (recording order among equal times). ``asid`` is ``int64``.
    """
    rows = _job_rows(events)  # in time order
    snaps = rows.loc[rows["ok"]]
    snaps = snaps.iloc[np.argsort(snaps["jobid"].to_numpy(dtype=np.int64), kind="stable")]
    return snaps.assign(
        code=_codes(snaps["sid"]),
        asid=snaps["asid"].fillna(_NO_ASID).to_numpy(dtype=np.int64),
    ).reset_index(drop=True)


def _last_of_job(jobids: np.ndarray) -> np.ndarray:
    """Whether each row (sorted by job) is its job's last."""
    return np.append(jobids[1:] != jobids[:-1], True) if len(jobids) else np.zeros(0, bool)


def _vanishing(last: pd.DataFrame, polls: pd.DataFrame) -> pd.Series:
    """Per last snapshot (``jobid``, ``observed_at``, ``asid``): its vanishing poll, or NaT.

    ``polls`` are the successful polls (:func:`~cfanalytics.summary._polls`).
    """
    left = last[["jobid", "observed_at", "asid"]].sort_values("observed_at", kind="stable")
    nxt = pd.merge_asof(
        left, polls, left_on="observed_at", right_on="polled_at", by="asid",
        direction="forward", allow_exact_matches=False,
    )  # fmt: skip
    return nxt.set_index("jobid")["polled_at"].reindex(last["jobid"]).astype(_TIME)


def fleet_states(events: pd.DataFrame, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """How many jobs were in each of :data:`FLEET_STATES` at every successful poll.

    At poll time ``t`` a job is ``waiting`` until its first snapshot; then it has the state of
    its last snapshot at or before ``t`` (the state it is listed with, if the poll lists it;
    a job missing from some polls and listed again keeps its last state in between). From its
    vanishing poll on it has its outcome (``summary``, default :func:`job_summary`):
    ``completed`` (the completion window then starts before ``t``), ``failed``, or ``other``
    (squashed, unknown); ``unfinished`` jobs keep their last state. Every job of ``summary``
    is counted at every time. Poll times of all ASIDs are used; each job only vanishes at a
    poll of its own ASID.

    Columns and dtypes: :data:`FLEET_STATES_SCHEMA`; sorted by time, then state.
    """
    validate(events)
    jobs = job_summary(events) if summary is None else summary
    polls = _polls(events)
    times = np.unique(polls["polled_at"].to_numpy(dtype="datetime64[us]"))
    snaps = _snapshots(events)
    snaps = snaps.loc[snaps["jobid"].isin(jobs["jobid"])].reset_index(drop=True)
    start, end, code = _segments(times, snaps, jobs, polls)
    n, width = len(times), len(FLEET_STATES)
    delta = np.bincount(start * width + code, minlength=(n + 1) * width)
    delta -= np.bincount(end * width + code, minlength=(n + 1) * width)
    counts = delta.reshape(n + 1, width)[:n].cumsum(axis=0)
    frame = pd.DataFrame(
        {
            "observed_at": pd.Series(np.repeat(times, width)).dt.tz_localize("UTC"),
            "state": pd.Categorical.from_codes(np.tile(np.arange(width), n), dtype=_STATE),
            "jobs": counts.reshape(-1),
        }
    )
    return _conform(frame, FLEET_STATES_SCHEMA, ["observed_at", "state"])


def _segments(
    times: np.ndarray, snaps: pd.DataFrame, jobs: pd.DataFrame, polls: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poll-index segments ``[start, end)`` and state codes covering every job and poll."""
    at = np.searchsorted(times, snaps["observed_at"].to_numpy(dtype="datetime64[us]"), "left")
    jobids = snaps["jobid"].to_numpy(dtype=np.int64)
    last = _last_of_job(jobids)
    first = np.append(True, last[:-1]) if len(last) else last
    ends = np.append(at[1:], 0)  # the next snapshot of the job, for all but the last
    vanish = _vanishing(snaps.loc[last], polls).to_numpy(dtype="datetime64[us]")
    gone = np.searchsorted(times, vanish, "left")  # NaT sorts last: never gone
    ends[last] = gone
    outcome = jobs.set_index("jobid")["outcome"].astype(object).reindex(jobids[last])
    after = outcome.map(_AFTER).fillna(-1).to_numpy(dtype=np.int64)
    after = np.where(after < 0, snaps["code"].to_numpy()[last], after)
    unseen = ~jobs["jobid"].isin(snaps["jobid"]).to_numpy(dtype=bool)
    n = len(times)
    return (
        np.concatenate([at, gone, np.zeros(first.sum() + unseen.sum(), np.int64)]),
        np.concatenate([ends, np.full(last.sum(), n), at[first], np.full(unseen.sum(), n)]),
        np.concatenate([snaps["code"].to_numpy(), after, np.full(first.sum() + unseen.sum(), 0)]),
    )


def state_intervals(events: pd.DataFrame, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per job and contiguous run of snapshots in one of :data:`FLEET_STATES`.

    ``start`` is the run's first snapshot; ``end`` the job's next snapshot (in another
    state), or for its last run the vanishing poll, or when it never vanished its last
    snapshot. Failed polls in between change nothing. ``kind``, ``location`` and ``machine``
    come from ``summary`` (default :func:`job_summary`): the last value given.

    Columns and dtypes: :data:`INTERVAL_SCHEMA`; sorted by ``jobid`` and ``start``.
    """
    validate(events)
    jobs = job_summary(events) if summary is None else summary
    snaps = _snapshots(events)
    jobids, code = snaps["jobid"].to_numpy(dtype=np.int64), snaps["code"].to_numpy()
    new = np.ones(len(snaps), bool)
    new[1:] = (jobids[1:] != jobids[:-1]) | (code[1:] != code[:-1])
    runs = snaps.loc[new, ["jobid", "observed_at", "code"]].reset_index(drop=True)
    last = _last_of_job(runs["jobid"].to_numpy(dtype=np.int64))
    end = runs["observed_at"].shift(-1)
    final = snaps.loc[_last_of_job(jobids)]
    vanish = _vanishing(final, _polls(events)).fillna(final.set_index("jobid")["observed_at"])
    end.loc[last] = vanish.array
    runs = runs.assign(
        start=runs["observed_at"], end=end,
        state=pd.Categorical.from_codes(runs["code"].to_numpy(), dtype=_STATE),
    )  # fmt: skip
    attributes = jobs[["jobid", "kind", "location", "machine"]]
    return _conform(runs.merge(attributes, on="jobid", how="left"), INTERVAL_SCHEMA,
                    ["jobid", "start"])  # fmt: skip


def progress_curves(events: pd.DataFrame, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Progress against elapsed fraction: one row per Running snapshot of a completed job.

    ``elapsed_fraction = (t - start) / (completed_at - start)`` with ``start`` the snapshot's
    ``jobstart``, else the job's ``started_at``, and ``completed_at`` from ``summary``
    (default :func:`job_summary`; the window's midpoint when interval-censored). Jobs without
    a completion time (failed, unfinished, ...) are left out; NA where the duration is 0.

    Columns and dtypes: :data:`PROGRESS_SCHEMA`; sorted by ``jobid`` and ``observed_at``.
    """
    validate(events)
    jobs = job_summary(events) if summary is None else summary
    snaps = _snapshots(events)
    done = jobs.loc[jobs["completed_at"].notna()]
    done = done[["jobid", "kind", "location", "started_at", "completed_at"]]
    rows = snaps.loc[snaps["code"] == RUNNING, ["jobid", "observed_at", "jobprogress", "jobstart"]]
    rows = rows.merge(done, on="jobid", how="inner")
    start = rows["jobstart"].fillna(rows["started_at"])
    elapsed = (rows["observed_at"] - start).dt.total_seconds()
    duration = (rows["completed_at"] - start).dt.total_seconds()
    fraction = (elapsed / duration.where(duration != 0)).astype(_FLOAT)
    rows["elapsed_fraction"] = fraction
    return _conform(rows, PROGRESS_SCHEMA, ["jobid", "observed_at"])


def stragglers(
    events: pd.DataFrame,
    *,
    stalled_polls: int = 3,
    grace_s: float = 60.0,
    against: Literal["first", "current"] = "first",
    at: pd.Timestamp | str | None = None,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Jobs that were stragglers at some point of the recording up to ``at`` (default: all).

    A job is *overdue* when a successful poll lists it Running more than ``grace_s`` seconds
    (an ETA a few seconds short is not worth a flag) after its ETA: by default the *first*
    ETA it was given while Running, the promise people planned with (the API keeps moving
    ``jobeta`` forward, so a job is rarely far past the ETA of the same poll);
    ``against="current"`` compares with the ``jobeta`` of each poll instead. *Stalled*
    when ``stalled_polls`` or more consecutive successful polls of its ASID list it Running
    at the same ``jobprogress`` (failed polls in between do not break the run; a poll not
    listing it Running does). ``reason`` says which: ``overdue``, ``stalled`` or ``both``.
    ``longest_stall_polls`` is its longest such run (1: progress moved at every poll).
    ``last_state`` and ``outcome`` (:func:`job_summary`) are as of ``at``.

    ``summary`` (:func:`job_summary` of ``events``) is computed unless given; it is ignored
    with ``at``, which needs the summary as of that moment.

    Columns and dtypes: :data:`STRAGGLER_SCHEMA`; sorted by ``jobid``; no rows when none.
    """
    validate(events)
    if stalled_polls < 2:
        raise ValueError(f"stalled_polls must be at least 2, not {stalled_polls}")
    if at is not None:
        events, summary = events.loc[events["observed_at"] <= _utc(at)], None
    jobs = (job_summary(events) if summary is None else summary).set_index("jobid")
    snaps = _snapshots(events)
    running = _running_polls(snaps, events)
    if against not in ("first", "current"):
        raise ValueError(f"against must be 'first' or 'current', not {against!r}")
    found = _stalls(running, stalled_polls).join(_overdue(running, grace_s, against))
    found = found.loc[found["overdue_since"].notna() | found["stalled_since"].notna()]
    overdue, stalled = found["overdue_since"].notna(), found["stalled_since"].notna()
    found["reason"] = np.where(overdue & stalled, "both", np.where(overdue, "overdue", "stalled"))
    last = snaps.loc[_last_of_job(snaps["jobid"].to_numpy(dtype=np.int64))].set_index("jobid")
    found["last_state"] = pd.Categorical.from_codes(
        last["code"].reindex(found.index).to_numpy(dtype=np.int64), dtype=_STATE
    )
    found = found.join(jobs[["kind", "location", "machine", "outcome"]])
    return _conform(found.reset_index(), STRAGGLER_SCHEMA, ["jobid"])


def _utc(at: pd.Timestamp | str) -> pd.Timestamp:
    """``at`` as a UTC timestamp; a naive one is taken to be UTC already."""
    stamp = pd.Timestamp(at)
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")


def _running_polls(snaps: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Running status snapshots in successful polls, with ``poll``: the poll's number in its
    ASID's sequence of successful polls. Sorted by job and poll."""
    polls = _polls(events).drop_duplicates(ignore_index=True)
    polls["poll"] = polls.groupby("asid").cumcount()
    rows = snaps.loc[snaps["status"] & (snaps["code"] == RUNNING)]
    rows = rows[["jobid", "asid", "observed_at", "jobprogress", "jobeta"]].merge(
        polls, left_on=["asid", "observed_at"], right_on=["asid", "polled_at"], how="inner"
    )
    return rows.sort_values(["jobid", "poll"], kind="stable").reset_index(drop=True)


def _overdue(running: pd.DataFrame, grace_s: float, against: str) -> pd.DataFrame:
    """Per job ever overdue: the first poll past its ETA and grace, and the largest lateness (s).

    ``running`` is sorted by job and poll, so ``first`` is the job's first ETA.
    """
    eta = running["jobeta"]
    if against == "first":
        eta = eta.groupby(running["jobid"]).transform("first")
    late_by = running["observed_at"] - eta
    mask = (late_by > pd.Timedelta(seconds=grace_s)).fillna(False).to_numpy(dtype=bool)
    lateness = late_by[mask].dt.total_seconds()
    late = running.loc[mask]
    by_job = late.assign(lateness=lateness).groupby("jobid")
    return pd.DataFrame(
        {"overdue_since": by_job["observed_at"].min(), "max_overdue_s": by_job["lateness"].max()}
    )


def _stalls(running: pd.DataFrame, stalled_polls: int) -> pd.DataFrame:
    """Per job seen Running: its first stall's start and its longest run at one progress."""
    jobid = running["jobid"].to_numpy(dtype=np.int64)
    poll = running["poll"].to_numpy(dtype=np.int64)
    known = running["jobprogress"].notna().to_numpy(dtype=bool)
    progress = running["jobprogress"].fillna(-1).to_numpy(dtype=np.int64)
    same = np.zeros(len(running), bool)
    same[1:] = (
        (jobid[1:] == jobid[:-1]) & (poll[1:] == poll[:-1] + 1)
        & known[1:] & known[:-1] & (progress[1:] == progress[:-1])
    )  # fmt: skip
    starts = np.flatnonzero(~same)
    runs = pd.DataFrame(
        {
            "jobid": running["jobid"].array[starts],
            "since": running["observed_at"].array[starts],
            "length": np.diff(np.append(starts, len(running))),
        }
    )
    stalls = runs.loc[runs["length"] >= stalled_polls].groupby("jobid")["since"].first()
    by_job = runs.groupby("jobid")
    return pd.DataFrame({"longest_stall_polls": by_job["length"].max(), "stalled_since": stalls})
