"""One row per install job: what it was, how it ended, when, and how good its ETAs were.

:func:`job_summary` reads an events table (:mod:`cfanalytics.events`) and nothing else.
Snapshots, successful polls and state ids are as :mod:`._common` defines them; a job is
only compared with the polls of its own ``asid``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from ..events import FLOAT, INT, KINDS, TEXT, TIME, Schema, category
from . import _segments as segments
from ._columns import returns
from ._common import (
    COMPLETE,
    FAILED,
    NAT,
    NO_ASID,
    QUEUED,
    RUNNING,
    SQUASHED,
    answers,
    conform,
    known,
    per_rollout,
    polls,
    seconds,
    state_ids,
    with_rollout,
)

__all__ = [
    "OUTCOMES",
    "OUTCOME_MEANINGS",
    "SUMMARY_SCHEMA",
    "install_seconds",
    "job_summary",
    "job_summary_of",
]

#: The categories of ``outcome``.
OUTCOMES = ("completed", "failed", "squashed", "unfinished", "unknown")
#: What each outcome means, in the words every table, plot and report uses.
OUTCOME_MEANINGS: Mapping[str, str] = MappingProxyType(
    {
        "completed": "seen Complete, or gone from the status list after it was seen running",
        "failed": "last seen Failed",
        "squashed": "seen Squashed: superseded by a newer install",
        "unfinished": "still listed at the last successful poll (never queued ones included)",
        "unknown": "gone from the status list before it was seen running",
    }
)

# The columns of one rollout's summary, before its ``rollout``.
_JOB_COLUMNS = Schema(
    {
        "jobid": (INT, "the install job's id: a job is a (rollout, jobid)"),
        "kind": (category(KINDS), "a machine job or a mirror job"),
        "location": (TEXT, "the location of the job's machine (its last snapshot's)"),
        "machine": (TEXT, "the machine the job installs on (its last snapshot's)"),
        "mirror": (TEXT, "the mirror the job uses (its last snapshot's)"),
        "target_imageversionid": (INT, "the image version installed"),
        "outcome": (category(OUTCOMES), "how the job ended (OUTCOME_MEANINGS)"),
        "first_seen": (TIME, "its first snapshot"),
        "last_seen": (TIME, "its last snapshot"),
        "queued_at": (TIME, "first queue answer taking it, else first snapshot listed Queued"),
        "started_at": (TIME, "the API's ``jobstart``, else its first snapshot listed Running"),
        "completed_at": (
            TIME,
            "when it completed: exact, or the middle of its window when interval-censored",
        ),
        "completed_after": (TIME, "its completion window's start (exact: ``completed_at``)"),
        "completed_before": (TIME, "its completion window's end (exact: ``completed_at``)"),
        "failed_at": (TIME, "outcome failed only: when the final failure happened"),
        "error": (TEXT, "its last non-empty ``joberror``, else its last queue error message"),
        "n_observations": (INT, "its rows in successful status polls"),
        "first_eta": (TIME, "the first ``jobeta`` it was given while Running"),
        "last_eta": (TIME, "the last ``jobeta`` it was given while Running"),
        "eta_mae_s": (FLOAT, "mean absolute error of its Running ETAs, s"),
        "eta_bias_s": (
            FLOAT,
            "mean error (completion minus ETA) of its Running ETAs, s; > 0: late",
        ),
    }
)
#: Every column of the job summary, its dtype and meaning, in order: a job is a (rollout, jobid).
SUMMARY_SCHEMA = with_rollout(_JOB_COLUMNS)

_ATTRIBUTES = ("kind", "location", "machine", "mirror", "target_imageversionid")
#: The outcome (index into OUTCOMES) of each rule of job_summary, 1 to 6.
_OUTCOME_OF_RULE = np.array([-1, 0, 1, 2, 0, 3, 4])


@returns(SUMMARY_SCHEMA)
@per_rollout
def job_summary(events: pd.DataFrame) -> pd.DataFrame:
    """Summarise every job named by a ``status`` or ``queue`` row: one row per ``(rollout,
    jobid)``; each rollout is summarised on its own, as if recorded alone.

    Attributes (``kind``, ``location``, ...) are the last non-null value of the job's
    snapshots; the other columns are below.

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

    Rows are sorted by rollout, then ``jobid``, with a fresh ``RangeIndex``; columns below
    (:data:`SUMMARY_SCHEMA`). Raises :class:`~cfanalytics.exceptions.SchemaError` if
    ``events`` is not an events table.
    """
    return job_summary_of(events)


def job_summary_of(events: pd.DataFrame) -> pd.DataFrame:
    """:func:`job_summary` of one rollout's events (validated), without a ``rollout`` column."""
    rows = _sorted_rows(events)
    first_seen, last_seen = (rows.observed(at) for at in rows.jobs.ends(rows.seen))
    asid = rows.take("asid", rows.last_known("asid")).to_numpy(np.int64, na_value=NO_ASID)
    next_poll = _next_poll(last_seen, asid, polls(events))
    rule = _rule(rows, last_seen, next_poll)
    window = _window(rows, rule, last_seen, next_poll)
    return conform(
        {
            "jobid": rows.jobs.keys,
            "kind": _kind(rows),
            **{name: rows.take(name, rows.last_known(name)) for name in _ATTRIBUTES[1:]},
            "outcome": pd.Categorical.from_codes(_OUTCOME_OF_RULE[rule], list(OUTCOMES)),
            "first_seen": first_seen,
            "last_seen": last_seen,
            **_times(rows),
            **window,
            "failed_at": np.where(rule == 2, _failed_at(rows), NAT),
            "error": _error(rows),
            "n_observations": rows.jobs.count(rows.ok & rows.status),
            **_eta(rows, window["completed_at"]),
        },
        _JOB_COLUMNS,
    )


def install_seconds(summary: pd.DataFrame) -> pd.Series:
    """Per job of a :func:`job_summary`: how long its install took, ``completed_at -
    started_at`` in seconds, as ``Float64`` on the summary's index; NA unless both are known
    (a completed job seen to start). The one rule for an install's duration."""
    delta = summary["completed_at"] - summary["started_at"]
    return delta.dt.total_seconds().astype(FLOAT).rename("install_s")


def _either(values: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """``values``, and ``fallback`` where a value is NaT."""
    out: np.ndarray = np.where(np.isnat(values), fallback, values)
    return out


@dataclass(frozen=True, slots=True)
class _Rows:
    """The status and queue rows naming a job, sorted by job, then ``observed_at``.

    Unknown times last, equal times in table order: within a job, the order of a stable sort
    by time, which "first" and "last" refer to. Job ``j`` (by ascending ``jobid``) owns the
    rows of segment ``j`` of ``jobs``; ``src`` is each row's position in ``events``. Flags
    are kept per row in this order, values fetched from ``events`` at the few rows chosen.
    """

    events: pd.DataFrame
    src: np.ndarray
    jobs: segments.Segments  # keyed by jobid
    ok: np.ndarray  # a snapshot: no problem
    seen: np.ndarray  # a snapshot with an observed_at
    dated: np.ndarray  # has a jobupdated or an observed_at
    status: np.ndarray  # a status row, not a queue answer
    sid: np.ndarray  # the state id: -1 none, 8 any id above 7
    latest: np.ndarray  # per job: its last snapshot, else -1

    def known(self, name: str) -> np.ndarray:
        """Whether each row has a value in column ``name``."""
        out: np.ndarray = known(self.events, name)[self.src]
        return out

    def last_known(self, name: str) -> np.ndarray:
        """Per job: its last snapshot with a value in column ``name``, else -1."""
        given = known(self.events, name)
        if given[self.src[self.latest[self.latest >= 0]]].all():
            return self.latest  # the usual case: the last snapshot has it, no need to look back
        return self.jobs.last(self.ok & given[self.src])

    def state(self, sid: int) -> np.ndarray:
        """Whether each row is a snapshot in state ``sid``."""
        snapshot: np.ndarray = self.ok & (self.sid == sid)
        return snapshot

    def take(self, name: str, at: np.ndarray) -> pd.api.extensions.ExtensionArray:
        """Column ``name`` at rows ``at`` in its own dtype, NA where -1."""
        return self.events[name].array.take(segments.pick(self.src, at, -1), allow_fill=True)

    def times(self, name: str, at: np.ndarray) -> np.ndarray:
        """Time column ``name`` at rows ``at`` as ``datetime64[us]``, NaT where -1 or NA."""
        values = self.events[name].to_numpy(dtype="datetime64[us]")
        return segments.pick(values, segments.pick(self.src, at, -1), NAT)

    def observed(self, at: np.ndarray) -> np.ndarray:
        """``observed_at`` at rows ``at``, NaT where -1."""
        return self.times("observed_at", at)


def _sorted_rows(events: pd.DataFrame) -> _Rows:
    """The rows naming a job, sorted once: every per-job quantity is a reduction over them."""
    status = answers(events, "status")
    src = np.flatnonzero((status | answers(events, "queue")) & known(events, "jobid"))
    ids = events["jobid"].to_numpy(dtype=np.int64, na_value=0)[src]
    by_job = segments.order(ids, segments.sort_key(events["observed_at"].to_numpy("M8[us]")[src]))
    src, ids = src[by_job], ids[by_job]
    jobs = segments.Segments.of(ids)  # numbered in jobid order, the output's
    ok, timed = ~known(events, "problem")[src], known(events, "observed_at")[src]
    return _Rows(
        *(events, src, jobs, ok, ok & timed),
        dated=timed | known(events, "jobupdated")[src],
        status=status[src],
        sid=state_ids(events)[src],
        latest=jobs.last(ok),
    )


def _kind(rows: _Rows) -> pd.Categorical:
    """Each job's kind: from its snapshots, else their ``mirroring``, else any row naming it.

    An error answer to a queue request only echoes the kind that was asked for, which may be
    the wrong one: it is the last resort.
    """
    column = rows.events["kind"]
    codes = column.cat.codes.to_numpy()[rows.src]
    mirror, machine = (column.cat.categories.get_loc(kind) for kind in ("mirror", "machine"))
    seen = segments.pick(codes, rows.jobs.last(rows.ok & (codes >= 0)), -1)
    flag = rows.take("mirroring", rows.last_known("mirroring"))
    mirroring = flag.to_numpy(dtype=bool, na_value=False)
    derived = np.where(flag.isna(), -1, np.where(mirroring, mirror, machine))
    asked = segments.pick(codes, rows.jobs.last(codes >= 0), -1)
    chosen = np.where(seen >= 0, seen, np.where(derived >= 0, derived, asked))
    return pd.Categorical.from_codes(chosen, dtype=column.dtype)


def _times(rows: _Rows) -> dict[str, np.ndarray]:
    """Per job: ``queued_at`` and ``started_at``."""
    queue_answer = rows.observed(rows.jobs.first(rows.seen & ~rows.status))
    queued = rows.observed(rows.jobs.first(rows.seen & rows.status & (rows.sid == QUEUED)))
    running = rows.observed(rows.jobs.first(rows.seen & (rows.sid == RUNNING)))
    jobstart = rows.times("jobstart", rows.jobs.first(rows.ok & rows.known("jobstart")))
    return {"queued_at": _either(queue_answer, queued), "started_at": _either(jobstart, running)}


def _error(rows: _Rows) -> pd.Series:
    """Per job: the last non-empty ``joberror``, else the last queue ``error_message``."""
    joberror = rows.take("joberror", rows.jobs.last(rows.ok & _nonblank(rows, "joberror")))
    queue = rows.jobs.last(~rows.status & _nonblank(rows, "error_message"))
    # As text: the two labels' categories differ, which pandas 2 and 3 combine differently.
    message = rows.take("error_message", queue)
    return pd.Series(joberror, dtype=TEXT).combine_first(pd.Series(message, dtype=TEXT))


def _nonblank(rows: _Rows, name: str) -> np.ndarray:
    """Whether each row's text ``name`` is there and not only whitespace."""
    given = rows.known(name)
    at = np.flatnonzero(given)  # strip only the texts there are: most rows have none
    given[at] = (pd.Series(rows.take(name, at)).str.strip() != "").to_numpy(dtype=bool)
    return given


def _rule(rows: _Rows, last_seen: np.ndarray, next_poll: np.ndarray) -> np.ndarray:
    """Per job: the number of the first outcome rule of :func:`job_summary` that applies."""
    progress = (rows.events["jobprogress"].to_numpy(dtype=np.int64, na_value=0) > 0)[rows.src]
    running = (rows.sid == RUNNING) | progress | rows.known("jobstart")
    last_sid = segments.pick(rows.sid, rows.jobs.last(rows.ok & (rows.sid >= 0)), -1)
    vanished = ~np.isnat(next_poll)
    rule: np.ndarray = np.select(
        [
            rows.jobs.count(rows.state(COMPLETE)) > 0,
            last_sid == FAILED,  # the last state seen; vanishing afterwards does not undo it
            rows.jobs.count(rows.state(SQUASHED)) > 0,
            vanished & (rows.jobs.count(rows.ok & running) > 0),
            ~np.isnat(last_seen) & ~vanished,
        ],
        [1, 2, 3, 4, 5],
        default=6,
    )
    return rule


def _window(
    rows: _Rows, rule: np.ndarray, last_seen: np.ndarray, next_poll: np.ndarray
) -> dict[str, np.ndarray]:
    """Per job: the completion time and window, exact (rule 1) or interval-censored (4)."""
    exact = _stamp(rows, rows.jobs.first(rows.state(COMPLETE) & rows.dated))
    after = np.where(rule == 1, exact, np.where(rule == 4, last_seen, NAT))
    before = np.where(rule == 1, exact, np.where(rule == 4, next_poll, NAT))
    return {
        "completed_at": after + (before - after) / 2,  # timedelta / 2 truncates, as in pandas
        "completed_after": after,
        "completed_before": before,
    }


def _stamp(rows: _Rows, at: np.ndarray) -> np.ndarray:
    """``jobupdated``, else ``observed_at``, at rows ``at``; NaT where -1."""
    return _either(rows.times("jobupdated", at), rows.observed(at))


def _failed_at(rows: _Rows) -> np.ndarray:
    """Per job: the first Failed snapshot after its last snapshot in another state.

    Its ``jobupdated``, else its ``observed_at``: the first such snapshot with either.
    Snapshots without a state are skipped.
    """
    failed = rows.state(FAILED)
    other = rows.jobs.last(rows.ok & (rows.sid >= 0) & ~failed)  # -1 without one
    return _stamp(rows, rows.jobs.first_after(failed & rows.dated, other))


def _next_poll(last_seen: np.ndarray, asid: np.ndarray, found: pd.DataFrame) -> np.ndarray:
    """Per job: the first successful poll (of ``found``) of its ASID strictly after its last
    snapshot."""
    polled_at = found["polled_at"].to_numpy(dtype="datetime64[us]")
    jobs = np.flatnonzero(~np.isnat(last_seen))
    poll = segments.next_after(found["asid"].to_numpy(), polled_at, asid[jobs], last_seen[jobs])
    out = np.full(len(last_seen), NAT)
    out[jobs] = segments.pick(polled_at, poll, NAT)
    return out


def _eta(rows: _Rows, completed_at: np.ndarray) -> dict[str, np.ndarray]:
    """Per job: first and last ETA while Running, and the mean absolute and signed error (s)."""
    running = rows.state(RUNNING) & rows.known("jobeta")
    done = ~np.isnat(completed_at)  # errors need a completion
    at = np.flatnonzero(running & done[rows.jobs.of_row])
    job = rows.jobs.of_row[at]
    eta = rows.events["jobeta"].to_numpy(dtype="datetime64[us]")[rows.src[at]]
    error_s = seconds(completed_at[job] - eta)
    # pandas' grouped mean, for its compensated sums over each job's rows in time order
    by_job = pd.Categorical.from_codes(job, categories=pd.RangeIndex(len(rows.jobs.keys)))
    errors = pd.DataFrame({"mae": np.abs(error_s), "bias": error_s})
    means = errors.groupby(by_job, observed=False).mean()
    first, last = rows.jobs.ends(running)
    return {
        "first_eta": rows.times("jobeta", first),
        "last_eta": rows.times("jobeta", last),
        "eta_mae_s": means["mae"].to_numpy(),
        "eta_bias_s": means["bias"].to_numpy(),
    }
