"""The fleet over time: how many jobs were in each state at every poll, and who was where when.

Every function reads an events table (:mod:`cfanalytics.events`) and returns a tidy frame whose
columns, dtypes and meanings are declared below (``*_SCHEMA``). Snapshots, successful polls, a job's
vanishing poll and the fleet's states (:data:`FLEET_STATES`) are as :mod:`._common` defines
them; stragglers are in :mod:`._stragglers`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..events import FLOAT, INT, TIME, Schema, category, validate
from ._columns import returns
from ._common import (
    FLEET_CODE,
    FLEET_STATES,
    conform,
    deprecated_positional,
    endings,
    job_snapshots,
    last_of_job,
    per_rollout,
    poll_times,
    polls,
    vanishing,
    with_rollout,
)
from ._summary import SUMMARY_SCHEMA, job_summary_of

__all__ = [
    "FLEET_STATES_SCHEMA",
    "INTERVAL_SCHEMA",
    "PROGRESS_SCHEMA",
    "fleet_states",
    "progress_curves",
    "state_intervals",
]

_STATE = category(FLEET_STATES)

_STATE_COUNTS = Schema(
    {
        "observed_at": (TIME, "a successful poll's time"),
        "state": (_STATE, "a fleet state (STATE_MEANINGS)"),
        "jobs": (INT, "jobs in that state; the states of one time add up to every job"),
    }
)
_INTERVALS = Schema(
    {
        **SUMMARY_SCHEMA.entries("jobid", "kind", "location", "machine"),
        "state": (_STATE, "the fleet state of the run of snapshots (STATE_MEANINGS)"),
        "start": (TIME, "the run's first snapshot"),
        "end": (
            TIME,
            "the job's next snapshot (in another state), else its vanishing poll, else its "
            "last snapshot",
        ),
    }
)
_PROGRESS = Schema(
    {
        **SUMMARY_SCHEMA.entries("jobid", "kind", "location"),
        "observed_at": (TIME, "t: when the Running snapshot was seen"),
        "jobprogress": (INT, "its progress at t, percent"),
        "elapsed_fraction": (
            FLOAT,
            "(t - start) / (completed_at - start), start its jobstart else started_at; "
            "NA for a zero duration",
        ),
    }
)
#: :func:`fleet_states`: one row per rollout, successful poll time and state.
FLEET_STATES_SCHEMA = with_rollout(_STATE_COUNTS)
#: :func:`state_intervals`: one row per job and contiguous run of one state.
INTERVAL_SCHEMA = with_rollout(_INTERVALS)
#: :func:`progress_curves`: one row per Running snapshot of a job with a known completion.
PROGRESS_SCHEMA = with_rollout(_PROGRESS)


@returns(FLEET_STATES_SCHEMA)
@deprecated_positional("summary")
@per_rollout
def fleet_states(events: pd.DataFrame, *, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """How many jobs were in each of :data:`FLEET_STATES` at every successful poll.

    At poll time ``t`` a job is ``waiting`` until its first snapshot; then it has the state of
    its last snapshot at or before ``t`` (the state it is listed with, if the poll lists it;
    a job missing from some polls and listed again keeps its last state in between). From its
    vanishing poll on it has its outcome (``summary``, default :func:`job_summary`):
    ``completed`` (the completion window then starts before ``t``), ``failed``, or ``other``
    (squashed, unknown); ``unfinished`` jobs keep their last state. Every job of ``summary``
    is counted at every time. Poll times of all ASIDs are used; each job only vanishes at a
    poll of its own ASID.

    Columns below (:data:`FLEET_STATES_SCHEMA`); sorted by rollout, time, then state.
    """
    validate(events)
    jobs = job_summary_of(events) if summary is None else summary
    found = polls(events)
    times = poll_times(found)
    snaps = job_snapshots(events, of=jobs["jobid"])
    start, end, code = _segments(times, snaps, jobs, found)
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
    return conform(frame, _STATE_COUNTS, sort_by=["observed_at", "state"])


def _segments(
    times: np.ndarray, snaps: pd.DataFrame, jobs: pd.DataFrame, found: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poll-index segments ``[start, end)`` and state codes covering every job and poll."""
    at = np.searchsorted(times, snaps["observed_at"].to_numpy(dtype="datetime64[us]"), "left")
    jobids = snaps["jobid"].to_numpy(dtype=np.int64)
    last = last_of_job(jobids)
    first = np.append(True, last[:-1]) if len(last) else last
    ends = np.append(at[1:], 0)  # the next snapshot of the job, for all but the last
    outcome = jobs.set_index("jobid")["outcome"].reindex(jobids[last])
    gone, after = endings(snaps.loc[last], outcome, found, times)
    ends[last] = gone
    unseen = ~jobs["jobid"].isin(snaps["jobid"]).to_numpy(dtype=bool)
    n = len(times)
    return (
        np.concatenate([at, gone, np.zeros(first.sum() + unseen.sum(), np.int64)]),
        np.concatenate([ends, np.full(last.sum(), n), at[first], np.full(unseen.sum(), n)]),
        np.concatenate([snaps["code"].to_numpy(), after, np.full(first.sum() + unseen.sum(), 0)]),
    )


@returns(INTERVAL_SCHEMA)
@deprecated_positional("summary")
@per_rollout
def state_intervals(events: pd.DataFrame, *, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per job and contiguous run of snapshots in one of :data:`FLEET_STATES`.

    ``start`` is the run's first snapshot; ``end`` the job's next snapshot (in another
    state), or for its last run the vanishing poll, or when it never vanished its last
    snapshot. Failed polls in between change nothing. ``kind``, ``location`` and ``machine``
    come from ``summary`` (default :func:`job_summary`): the last value given.

    Columns below (:data:`INTERVAL_SCHEMA`); sorted by rollout, ``jobid``, ``start``.
    """
    validate(events)
    jobs = job_summary_of(events) if summary is None else summary
    snaps = job_snapshots(events)
    jobids, code = snaps["jobid"].to_numpy(dtype=np.int64), snaps["code"].to_numpy()
    new = np.ones(len(snaps), bool)
    new[1:] = (jobids[1:] != jobids[:-1]) | (code[1:] != code[:-1])
    runs = snaps.loc[new, ["jobid", "observed_at", "code"]].reset_index(drop=True)
    last = last_of_job(runs["jobid"].to_numpy(dtype=np.int64))
    end = runs["observed_at"].shift(-1)
    final = snaps.loc[last_of_job(jobids)]
    vanish = vanishing(final, polls(events)).fillna(final.set_index("jobid")["observed_at"])
    end.loc[last] = vanish.array
    runs = runs.assign(
        start=runs["observed_at"],
        end=end,
        state=pd.Categorical.from_codes(runs["code"].to_numpy(), dtype=_STATE),
    )
    attributes = jobs[["jobid", "kind", "location", "machine"]]
    frame = runs.merge(attributes, on="jobid", how="left")
    return conform(frame, _INTERVALS, sort_by=["jobid", "start"])


@returns(PROGRESS_SCHEMA)
@deprecated_positional("summary")
@per_rollout
def progress_curves(events: pd.DataFrame, *, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Progress against elapsed fraction: one row per Running snapshot of a completed job.

    ``elapsed_fraction = (t - start) / (completed_at - start)`` with ``start`` the snapshot's
    ``jobstart``, else the job's ``started_at``, and ``completed_at`` from ``summary``
    (default :func:`job_summary`; the window's midpoint when interval-censored). Jobs without
    a completion time (failed, unfinished, ...) are left out; NA where the duration is 0.

    Columns below (:data:`PROGRESS_SCHEMA`); sorted by rollout, ``jobid``, time.
    """
    validate(events)
    jobs = job_summary_of(events) if summary is None else summary
    snaps = job_snapshots(events)
    done = jobs.loc[jobs["completed_at"].notna()]
    done = done[["jobid", "kind", "location", "started_at", "completed_at"]]
    running = snaps["code"] == FLEET_CODE["running"]
    rows = snaps.loc[running, ["jobid", "observed_at", "jobprogress", "jobstart"]]
    rows = rows.merge(done, on="jobid", how="inner")
    start = rows["jobstart"].fillna(rows["started_at"])
    elapsed = (rows["observed_at"] - start).dt.total_seconds()
    duration = (rows["completed_at"] - start).dt.total_seconds()
    fraction = (elapsed / duration.where(duration != 0)).astype(FLOAT)
    rows["elapsed_fraction"] = fraction
    return conform(rows, _PROGRESS, sort_by=["jobid", "observed_at"])
