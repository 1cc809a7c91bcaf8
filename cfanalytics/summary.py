"""One row per install job: what it was, how it ended, when, and how good its ETAs were.

:func:`job_summary` reads an events table (:mod:`cfanalytics.events`) and nothing else.

Words used below:

- a *snapshot* is a successful row (``problem`` is NA) of the ``status`` or ``queue``
  endpoint that names a job: the API's view of that job at ``observed_at``;
- a *successful poll* is a status response (``run_id``, ``seq``) none of whose rows has a
  ``problem``; an empty list counts (its one row has no ``jobid``). Failed, non-JSON or
  error responses are no poll at all: they never make a job look absent;
- polls of one ASID say nothing about jobs of another, so a job is only compared with the
  polls of its own ``asid``.

A state is read from ``jobstateid``, else from the ``state`` name.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .events import KINDS, validate

__all__ = ["OUTCOMES", "SUMMARY_SCHEMA", "job_summary"]

#: The categories of ``outcome``.
OUTCOMES = ("completed", "failed", "squashed", "unfinished", "unknown")

_TIME = pd.DatetimeTZDtype(unit="us", tz="UTC")
_INT = pd.Int64Dtype()
_FLOAT = pd.Float64Dtype()
_TEXT = pd.StringDtype()

#: Every column of the job summary and its dtype, in order.
SUMMARY_SCHEMA: Mapping[str, object] = {
    "jobid": _INT,
    "kind": pd.CategoricalDtype(list(KINDS)),
    "location": _TEXT,
    "machine": _TEXT,
    "mirror": _TEXT,
    "target_imageversionid": _INT,
    "outcome": pd.CategoricalDtype(list(OUTCOMES)),
    "first_seen": _TIME,  # first snapshot
    "last_seen": _TIME,  # last snapshot
    "queued_at": _TIME,
    "started_at": _TIME,
    "completed_at": _TIME,  # exact, or the midpoint of the window when interval-censored
    "completed_after": _TIME,
    "completed_before": _TIME,
    "failed_at": _TIME,  # outcome failed only: when the final failure happened
    "error": _TEXT,
    "n_observations": _INT,  # rows of successful status polls naming the job
    "first_eta": _TIME,
    "last_eta": _TIME,
    "eta_mae_s": _FLOAT,
    "eta_bias_s": _FLOAT,
}

_QUEUED, _RUNNING, _COMPLETE, _FAILED, _SQUASHED = 3, 4, 5, 6, 7
_NO_ASID = -1
_ATTRIBUTES = ("kind", "location", "machine", "mirror", "target_imageversionid")
#: The events columns a summary reads.
_USED = (
    *("jobid", "observed_at", "endpoint", "problem", "asid", "mirroring", *_ATTRIBUTES),
    *("jobstateid", "state", "jobprogress", "jobstart", "jobupdated", "jobeta"),
    *("joberror", "error_message"),
)


def job_summary(events: pd.DataFrame) -> pd.DataFrame:
    """Summarise every job named by a ``status`` or ``queue`` row: one row per ``jobid``.

    Attributes (``kind``, ``location``, ...) are the last non-null value of the job's
    snapshots. ``first_seen`` / ``last_seen`` are its first and last snapshot,
    ``n_observations`` its rows in successful status polls. ``queued_at`` is the first
    successful queue answer, else the first status snapshot in state Queued; ``started_at``
    the API's ``jobstart``, else the first snapshot in state Running. ``error`` is the last
    non-empty ``joberror``, else the last ``error_message`` of a queue answer.

    ``outcome`` follows the first rule that applies:

    1. a Complete state (5) was seen: ``completed``; ``completed_at``, ``completed_after``
       and ``completed_before`` are its ``jobupdated`` (else its ``observed_at``);
    2. the last state seen is Failed (6), whether or not it vanished afterwards: ``failed``;
       ``failed_at`` is the ``jobupdated`` (else the ``observed_at``) of the first Failed
       snapshot of the final run of Failed states: a job that failed, was requeued and
       failed again failed at its second failure;
    3. Squashed (7) was seen: ``squashed``;
    4. the job vanished after it was seen running (state 4, ``jobprogress`` > 0 or
       ``jobstart`` set): ``completed``, interval-censored: ``completed_after`` is its last
       snapshot, ``completed_before`` the first successful poll after that (which therefore
       did not list it), ``completed_at`` the midpoint of the two;
    5. it did not vanish (no successful poll after its last snapshot): ``unfinished``;
    6. otherwise (vanished before running, or never seen successfully): ``unknown``.

    ``failed_at`` is NA unless the outcome is ``failed``; the completion columns are NA
    unless it is ``completed``.

    ``first_eta`` / ``last_eta`` and the ETA errors use the job's Running snapshots that carry
    a ``jobeta``. For each, ``e = completed_at - jobeta`` in seconds, positive when the job
    finished later than predicted: ``eta_mae_s`` is the mean of ``|e|``, ``eta_bias_s`` the
    mean of ``e``; NA without a ``completed_at`` or without such a snapshot. When completion
    is interval-censored, ``completed_at`` is the window's midpoint, so each error is
    uncertain by half of ``completed_before - completed_after``.

    Rows are sorted by ``jobid`` with a fresh ``RangeIndex``; columns and dtypes are
    :data:`SUMMARY_SCHEMA`. Raises :class:`~cfanalytics.exceptions.SchemaError` if
    ``events`` is not an events table.
    """
    rows = _job_rows(validate(events))
    snaps = rows.loc[rows["ok"]]
    jobs = pd.Index(rows["jobid"].unique(), dtype=_INT, name="jobid")
    out = _attributes(snaps, jobs)
    out["kind"] = _kind(rows, snaps, jobs)
    out = out.join(_times(snaps)).join(_errors(rows))
    out = out.join(_outcomes(snaps, out, _polls(events)))
    out = out.join(_eta(snaps, out["completed_at"]))
    return _conform(out.reset_index())


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Apply :data:`SUMMARY_SCHEMA`: its columns in order, its dtypes, sorted by ``jobid``."""
    out = pd.DataFrame({name: frame[name].astype(dtype) for name, dtype in SUMMARY_SCHEMA.items()})
    return out.sort_values("jobid", kind="stable").reset_index(drop=True)


def _job_rows(events: pd.DataFrame) -> pd.DataFrame:
    """Status and queue rows naming a job, in time order, with ``ok``, ``status`` and ``sid``.

    ``sid`` is the state id: ``jobstateid``, else read from the ``state`` name.
    """
    named = events["endpoint"].isin(["status", "queue"]) & events["jobid"].notna()
    rows = events.loc[named, list(_USED)].sort_values("observed_at", kind="stable")
    by_name = pd.Series(rows["state"].cat.codes, index=rows.index).astype(_INT) + 1
    return rows.assign(
        ok=rows["problem"].isna().to_numpy(dtype=bool),
        status=(rows["endpoint"] == "status").to_numpy(dtype=bool),
        sid=rows["jobstateid"].fillna(by_name.where(by_name > 0)),
    )


def _polls(events: pd.DataFrame) -> pd.DataFrame:
    """Successful status polls, one row per response: ``asid`` and ``polled_at``, in order.

    A response is successful when none of its rows has a ``problem``.
    """
    keys = ["run_id", "seq"]
    status = events.loc[events["endpoint"] == "status", [*keys, "observed_at", "asid", "problem"]]
    failed = status.loc[status["problem"].notna(), keys].drop_duplicates()
    polls = status.loc[status["problem"].isna()].drop_duplicates(keys)
    polls = polls.merge(failed, on=keys, how="left", indicator=True)
    polls = polls.loc[(polls["_merge"] == "left_only") & polls["observed_at"].notna()]
    return pd.DataFrame(
        {
            "asid": polls["asid"].fillna(_NO_ASID).to_numpy(dtype=np.int64),
            "polled_at": polls["observed_at"].reset_index(drop=True),
        }
    ).sort_values("polled_at", kind="stable")


def _attributes(snaps: pd.DataFrame, jobs: pd.Index) -> pd.DataFrame:
    """Per job: last non-null attributes and ``asid``, first and last snapshot, status rows."""
    by_job = snaps.groupby("jobid")
    out = by_job[[*_ATTRIBUTES, "asid"]].last()
    out["first_seen"] = by_job["observed_at"].min()
    out["last_seen"] = by_job["observed_at"].max()
    out["n_observations"] = snaps.loc[snaps["status"]].groupby("jobid").size()
    out = out.reindex(jobs)
    out["n_observations"] = out["n_observations"].fillna(0)
    return out


def _kind(rows: pd.DataFrame, snaps: pd.DataFrame, jobs: pd.Index) -> pd.Series:
    """Each job's kind: from its snapshots, else their ``mirroring``, else any row naming it.

    An error answer to a queue request only echoes the kind that was asked for, which may be
    the wrong one: it is the last resort.
    """
    dtype = SUMMARY_SCHEMA["kind"]
    seen = snaps.groupby("jobid")["kind"].last().reindex(jobs)
    mirroring = snaps.groupby("jobid")["mirroring"].last().reindex(jobs)
    derived = mirroring.map({True: "mirror", False: "machine"}).astype(dtype)
    asked = rows.groupby("jobid")["kind"].last().reindex(jobs)
    return seen.fillna(derived).fillna(asked)


def _times(snaps: pd.DataFrame) -> pd.DataFrame:
    """Per job: ``queued_at`` and ``started_at``."""

    def first_at(mask: pd.Series) -> pd.Series:
        return snaps.loc[mask, ["jobid", "observed_at"]].groupby("jobid")["observed_at"].first()

    sid = snaps["sid"]
    queue_answer = first_at(~snaps["status"])
    queued_state = first_at(snaps["status"] & (sid == _QUEUED).fillna(False))
    running = first_at((sid == _RUNNING).fillna(False))
    jobstart = snaps.groupby("jobid")["jobstart"].first()
    return pd.DataFrame(
        {
            "queued_at": queue_answer.combine_first(queued_state),
            "started_at": jobstart.combine_first(running),
        }
    )


def _errors(rows: pd.DataFrame) -> pd.DataFrame:
    """Per job: the last non-empty ``joberror``, else the last queue ``error_message``."""

    def last_text(column: str, mask: pd.Series) -> pd.Series:
        text = rows[column]
        keep = mask & (text.str.strip() != "").fillna(False)
        return rows.loc[keep].groupby("jobid")[column].last()

    joberror = last_text("joberror", rows["ok"])
    message = last_text("error_message", ~rows["status"])
    return pd.DataFrame({"error": joberror.combine_first(message)})


def _flags(snaps: pd.DataFrame, jobs: pd.Index) -> pd.DataFrame:
    """Per job: Complete seen, Squashed seen, seen running, and the last state seen."""
    sid = snaps["sid"]
    running = (sid == _RUNNING) | (snaps["jobprogress"] > 0) | snaps["jobstart"].notna()
    seen = pd.DataFrame(
        {
            "complete": (sid == _COMPLETE).fillna(False).to_numpy(dtype=bool),
            "squashed": (sid == _SQUASHED).fillna(False).to_numpy(dtype=bool),
            "ran": running.fillna(False).to_numpy(dtype=bool),
        },
        index=snaps["jobid"],
    )
    out = seen.groupby(level="jobid").any().reindex(jobs, fill_value=False)
    out["last_sid"] = snaps.loc[sid.notna()].groupby("jobid")["sid"].last()
    return out


def _completed_at(snaps: pd.DataFrame) -> pd.Series:
    """Per job with a Complete snapshot: the first one's ``jobupdated``, else its time."""
    done = snaps.loc[(snaps["sid"] == _COMPLETE).fillna(False)]
    at = done["jobupdated"].fillna(done["observed_at"])
    return at.groupby(done["jobid"]).first()


def _failed_at(snaps: pd.DataFrame) -> pd.Series:
    """Per job: the first Failed snapshot after its last snapshot in another state.

    Its ``jobupdated``, else its ``observed_at``. Snapshots without a state are skipped.
    """
    stated = snaps.loc[snaps["sid"].notna()]
    failed = (stated["sid"] == _FAILED).to_numpy(dtype=bool)
    order = pd.Series(np.arange(len(stated)), index=stated.index)
    last_other = order[~failed].groupby(stated["jobid"]).max()
    since = stated["jobid"].map(last_other).fillna(-1)
    final = stated.loc[failed & (order > since).to_numpy(dtype=bool)]
    at = final["jobupdated"].fillna(final["observed_at"])
    return at.groupby(final["jobid"]).first()


def _next_poll(jobs: pd.DataFrame, polls: pd.DataFrame) -> pd.Series:
    """Per job: the first successful poll of its ASID strictly after its last snapshot."""
    left = jobs.loc[jobs["last_seen"].notna(), ["last_seen", "asid"]].reset_index()
    left["asid"] = left["asid"].fillna(_NO_ASID).to_numpy(dtype=np.int64)
    left = left.sort_values("last_seen", kind="stable")
    nxt = pd.merge_asof(
        left,
        polls,
        left_on="last_seen",
        right_on="polled_at",
        by="asid",
        direction="forward",
        allow_exact_matches=False,
    )
    return nxt.set_index("jobid")["polled_at"].reindex(jobs.index)


def _outcomes(snaps: pd.DataFrame, jobs: pd.DataFrame, polls: pd.DataFrame) -> pd.DataFrame:
    """Per job: ``outcome`` and the completion window, by the rules of :func:`job_summary`."""
    flags = _flags(snaps, jobs.index)
    last_seen = jobs["last_seen"]
    next_poll = _next_poll(jobs, polls)
    vanished = next_poll.notna().to_numpy(dtype=bool)
    failed = (flags["last_sid"] == _FAILED).fillna(False).to_numpy(dtype=bool)
    rule = np.select(
        [
            flags["complete"].to_numpy(dtype=bool),
            failed,  # the last state seen; vanishing afterwards does not undo it
            flags["squashed"].to_numpy(dtype=bool),
            vanished & flags["ran"].to_numpy(dtype=bool),
            last_seen.notna().to_numpy(dtype=bool) & ~vanished,
        ],
        [1, 2, 3, 4, 5],
        default=6,
    )
    outcome = np.array(
        ["", "completed", "failed", "squashed", "completed", "unfinished", "unknown"]
    )
    exact = _completed_at(snaps).reindex(jobs.index).where(rule == 1)
    after = exact.fillna(last_seen.where(rule == 4))
    before = exact.fillna(next_poll.where(rule == 4))
    return pd.DataFrame(
        {
            "outcome": outcome[rule],
            "completed_at": after + (before - after) / 2,
            "completed_after": after,
            "completed_before": before,
            "failed_at": _failed_at(snaps).reindex(jobs.index).where(rule == 2),
        },
        index=jobs.index,
    )


def _eta(snaps: pd.DataFrame, completed_at: pd.Series) -> pd.DataFrame:
    """Per job: first and last ETA while Running, and the mean absolute and signed error (s)."""
    running = (snaps["sid"] == _RUNNING).fillna(False) & snaps["jobeta"].notna()
    run = snaps.loc[running, ["jobid", "jobeta"]].join(completed_at, on="jobid")
    error_s = (run["completed_at"] - run["jobeta"]).dt.total_seconds()
    by_job = run.groupby("jobid")
    return pd.DataFrame(
        {
            "first_eta": by_job["jobeta"].first(),
            "last_eta": by_job["jobeta"].last(),
            "eta_mae_s": error_s.abs().groupby(run["jobid"]).mean(),
            "eta_bias_s": error_s.groupby(run["jobid"]).mean(),
        }
    )
