"""Stragglers: jobs that ran past their ETA or stopped making progress.

The rules, defined here once for :func:`stragglers` (over a recording),
:class:`~cfanalytics.analysis.FleetTimeline` (at each poll) and the report:

- *late by* (``late_s``, one number per job): its end minus the *first* ETA it was given
  while Running, the promise people planned with. Its end is its completion (exact, or the
  window's midpoint, as :func:`~cfanalytics.analysis.eta_errors` takes it); for a job that
  did not complete, the last poll listing it Running, so the number is a lower bound
  (:func:`late_by`);
- *overdue*: a successful poll lists the job Running more than ``grace_s`` seconds
  (:data:`LATE_GRACE_S` unless told) after an ETA it was given (:func:`overdue`; an ETA a
  few seconds short is not worth a flag);
- *stalled*: ``stalled_polls`` or more consecutive successful polls of its ASID list it
  Running at the same known ``jobprogress`` (:func:`stall_streaks`). Failed polls in
  between do not break the run; a poll not listing it Running does.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from ..events import FLOAT, INT, TIME, Schema, category, validate
from ._columns import returns
from ._common import (
    FLEET_CODE,
    FLEET_STATES,
    conform,
    job_snapshots,
    last_of_job,
    per_rollout,
    polls,
    utc,
    with_rollout,
)
from ._summary import SUMMARY_SCHEMA, job_summary_of

__all__ = [
    "LATE_GRACE_S",
    "STALLED_POLLS",
    "STRAGGLER_SCHEMA",
    "check_stalled_polls",
    "late_by",
    "numbered_polls",
    "overdue",
    "running_polls",
    "stall_streaks",
    "stragglers",
]

#: Seconds past an ETA before a job running on counts as overdue: a few seconds short is noise.
LATE_GRACE_S = 60.0
#: Consecutive polls at one progress that make a stall: one repeat is a slow poll, not a stall.
STALLED_POLLS = 3

_STRAGGLERS = Schema(
    {
        **SUMMARY_SCHEMA.entries("jobid", "kind", "location", "machine"),
        "overdue_since": (TIME, "first poll listing it Running past its ETA and the grace"),
        "max_overdue_s": (FLOAT, "largest t - ETA over the polls listing it Running, s"),
        "late_s": (FLOAT, "late by: its end minus its first ETA, s (late_by)"),
        "stalled_since": (TIME, "first poll of its first stall"),
        "longest_stall_polls": (INT, "most consecutive Running polls at one progress"),
        "last_state": (category(FLEET_STATES), "the fleet state of its last snapshot"),
        **SUMMARY_SCHEMA.entries("outcome"),
        "reason": (category(("overdue", "stalled", "both")), "why it is a straggler"),
    }
)
#: :func:`stragglers`: one row per job that ran past its ETA or stalled.
STRAGGLER_SCHEMA = with_rollout(_STRAGGLERS)


@returns(STRAGGLER_SCHEMA)
@per_rollout
def stragglers(
    events: pd.DataFrame,
    *,
    stalled_polls: int = STALLED_POLLS,
    grace_s: float = LATE_GRACE_S,
    against: Literal["first", "current"] = "first",
    at: pd.Timestamp | str | None = None,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Jobs that were stragglers at some point of the recording up to ``at`` (default: all).

    *Overdue* and *stalled* as the module docstring says. The ETA a job is overdue against
    is by default the *first* it was given while Running, the promise people planned with
    (the API keeps moving ``jobeta`` forward, so a job is rarely far past the ETA of the
    same poll); ``against="current"`` compares with the ``jobeta`` of each poll instead.
    ``late_s`` is against the first ETA whatever ``against``; ``longest_stall_polls`` is 1
    when progress moved at every poll. ``last_state`` and ``outcome`` are as of ``at``.

    ``summary`` (:func:`job_summary` of ``events``) is computed unless given; it is ignored
    with ``at``, which needs the summary as of that moment.

    Columns below (:data:`STRAGGLER_SCHEMA`); sorted by rollout, then ``jobid``; no rows
    when none.
    """
    validate(events)
    check_stalled_polls(stalled_polls)
    if at is not None:
        events, summary = events.loc[events["observed_at"] <= utc(at)], None
    jobs = (job_summary_of(events) if summary is None else summary).set_index("jobid")
    snaps = job_snapshots(events)
    running = running_polls(snaps, polls(events))
    if against not in ("first", "current"):
        raise ValueError(f"against must be 'first' or 'current', not {against!r}")
    found = _stalls(running, stalled_polls).join(_overdue(running, grace_s, against))
    found = found.loc[found["overdue_since"].notna() | found["stalled_since"].notna()]
    late, stalled = found["overdue_since"].notna(), found["stalled_since"].notna()
    found["reason"] = np.where(late & stalled, "both", np.where(late, "overdue", "stalled"))
    last = snaps.loc[last_of_job(snaps["jobid"].to_numpy(dtype=np.int64))].set_index("jobid")
    found["last_state"] = pd.Categorical.from_codes(
        last["code"].reindex(found.index).to_numpy(dtype=np.int64), dtype=category(FLEET_STATES)
    )
    found = found.join(jobs[["kind", "location", "machine", "outcome"]])
    found["late_s"] = late_by(running, jobs["completed_at"]).reindex(found.index)
    return conform(found.reset_index(), _STRAGGLERS, sort_by=["jobid"])


def late_by(running: pd.DataFrame, completed_at: pd.Series) -> pd.Series:
    """Seconds each job of ``running`` (:func:`running_polls`) was late: its end minus the
    first ETA it was given while Running (positive: late). Its end is ``completed_at``
    (indexed by job id; exact or a window's midpoint), else its last Running poll, which
    makes the number a lower bound. NA for a job never given an ETA while Running."""
    by_job = running.groupby("jobid")
    first_eta, last_running = by_job["jobeta"].first(), by_job["observed_at"].last()
    end = completed_at.reindex(first_eta.index).fillna(last_running)
    late: pd.Series = (end - first_eta).dt.total_seconds().astype(FLOAT)
    return late


def check_stalled_polls(stalled_polls: int) -> None:
    """Refuse a stall shorter than two polls: one poll at a progress is no stall."""
    if stalled_polls < 2:
        raise ValueError(f"stalled_polls must be at least 2, not {stalled_polls}")


def overdue(now: np.ndarray | np.datetime64, eta: np.ndarray, grace_s: float) -> np.ndarray:
    """Whether ``now`` is more than ``grace_s`` seconds past ``eta`` (``datetime64``; NaT: no)."""
    late: np.ndarray = (now - eta) > pd.Timedelta(seconds=grace_s).to_timedelta64()
    return late


def numbered_polls(found: pd.DataFrame) -> pd.DataFrame:
    """The successful polls (:func:`~._common.polls`), one per ASID and time, with ``poll``:
    its number in its ASID's sequence, from 0."""
    distinct = found[["asid", "polled_at"]].drop_duplicates(ignore_index=True)
    return distinct.assign(poll=distinct.groupby("asid").cumcount())


def running_polls(snaps: pd.DataFrame, found: pd.DataFrame) -> pd.DataFrame:
    """Running status snapshots (of :func:`~._common.job_snapshots`) in successful polls
    (``found``), with ``poll`` (:func:`numbered_polls`). Sorted by job and poll."""
    rows = snaps.loc[snaps["status"] & (snaps["code"] == FLEET_CODE["running"])]
    rows = rows[["jobid", "asid", "observed_at", "jobprogress", "jobeta"]].merge(
        numbered_polls(found),
        left_on=["asid", "observed_at"],
        right_on=["asid", "polled_at"],
        how="inner",
    )
    return rows.sort_values(["jobid", "poll"], kind="stable").reset_index(drop=True)


def stall_streaks(running: pd.DataFrame) -> np.ndarray:
    """Per row of ``running`` (:func:`running_polls`): how many consecutive polls of its ASID,
    ending at it, listed its job Running at the same known progress (1: it moved, or is NA)."""
    jobid = running["jobid"].to_numpy(dtype=np.int64)
    poll = running["poll"].to_numpy(dtype=np.int64)
    known = running["jobprogress"].notna().to_numpy(dtype=bool)
    progress = running["jobprogress"].to_numpy(dtype=np.int64, na_value=-1)
    same = np.zeros(len(running), bool)
    same[1:] = (
        (jobid[1:] == jobid[:-1])
        & (poll[1:] == poll[:-1] + 1)
        & known[1:]
        & known[:-1]
        & (progress[1:] == progress[:-1])
    )
    rows = np.arange(len(same))
    streak: np.ndarray = rows - np.maximum.accumulate(np.where(same, 0, rows)) + 1
    return streak


def _overdue(running: pd.DataFrame, grace_s: float, against: str) -> pd.DataFrame:
    """Per job ever overdue: the first poll past its ETA and grace, and the largest lateness (s).

    ``running`` is sorted by job and poll, so ``first`` is the job's first ETA.
    """
    eta = running["jobeta"]
    if against == "first":
        eta = eta.groupby(running["jobid"]).transform("first")
    now = running["observed_at"]
    mask = overdue(now.to_numpy("datetime64[us]"), eta.to_numpy("datetime64[us]"), grace_s)
    late = running.loc[mask]
    lateness = (now[mask] - eta[mask]).dt.total_seconds()
    by_job = late.assign(lateness=lateness).groupby("jobid")
    return pd.DataFrame(
        {"overdue_since": by_job["observed_at"].min(), "max_overdue_s": by_job["lateness"].max()}
    )


def _stalls(running: pd.DataFrame, stalled_polls: int) -> pd.DataFrame:
    """Per job seen Running: its first stall's start and its longest run at one progress."""
    starts = np.flatnonzero(stall_streaks(running) == 1)
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
