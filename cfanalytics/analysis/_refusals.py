"""Queue refusals: the jobs the API would not queue, why, and what to do about it.

A rollout can fail before any install starts: an image locked by a diff, or an API that
answers queue requests with 5xx, refuses whole groups of jobs at queue time. Those jobs
never run, so install failures say nothing of them; this is where they are counted.

- :func:`never_queued`: the one rule for a job that was never queued;
- :func:`queue_refusals`: one row per never-queued job whose queue requests all went wrong,
  with the reason (:data:`REFUSAL_REASONS`), the diff that locks the image, if any, and
  the remedy (:data:`REMEDIES`);
- :func:`refusal_reasons`: the refusals grouped by reason (and by diff), largest first, each
  with its remedy: what a headline or a postmortem says first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from ..events import INT, TEXT, TIME, Schema, category, validate
from ._columns import returns
from ._common import answers, conform, per_rollout, per_rollout_rows, select, with_rollout
from ._failures import classify_error
from ._summary import SUMMARY_SCHEMA, job_summary_of

__all__ = [
    "REASONS_SCHEMA",
    "REFUSAL_REASONS",
    "REFUSAL_SCHEMA",
    "REMEDIES",
    "never_queued",
    "queue_refusals",
    "reason_label",
    "refusal_reasons",
    "refusal_sentence",
    "remedy",
]

#: Why the API refused to queue a job, from its last answer to a queue request.
REFUSAL_REASONS = (
    "diff_lock",  # an error envelope: "image locked by diffid: N"
    "server_error",  # HTTP 5xx
    "rate_limited",  # HTTP 429
    "forbidden",  # HTTP 401 or 403, or a "Forbidden" envelope: the keys may not do it
    "no_answer",  # a timeout or a dropped connection
    "garbled",  # an answer that could not be read (truncated, not JSON)
    "refused",  # any other error envelope or 4xx ("No rows in result set", ...)
)
#: What to do about each reason; ``{diffid}`` is the locking diff's id.
REMEDIES: Mapping[str, str] = {
    "diff_lock": "reject or finish diff {diffid}, then queue the jobs again",
    "server_error": "the API failed: queue the jobs again",
    "rate_limited": "the API asked to slow down: queue the jobs again, fewer at a time",
    "forbidden": "check that the keys may queue jobs of this ASID",
    "no_answer": "no answer came: queue again the jobs still listed as queueable",
    "garbled": "the answer was unreadable: queue again the jobs still listed as queueable",
    "refused": "read the API's message; queue the jobs again once it is resolved",
}
#: What a reason is called in a sentence ("17 image locked by diff 218599").
_LABELS: Mapping[str, str] = {
    "diff_lock": "image locked by diff {diffid}",
    "server_error": "server errors",
    "rate_limited": "rate limited",
    "forbidden": "forbidden",
    "no_answer": "no answer",
    "garbled": "unreadable answers",
    "refused": "refused",
}
_DIFFID = re.compile(r"diff(?:id)?\s*:?\s*(\d+)", re.IGNORECASE)

_REFUSAL_COLUMNS = Schema(
    {
        **SUMMARY_SCHEMA.entries("jobid", "kind", "location", "machine", "mirror"),
        "requests": (INT, "queue requests sent for the job, all answered with an error"),
        "first_refused_at": (TIME, "its first refused queue request"),
        "last_refused_at": (TIME, "its last refused queue request"),
        "http_status": (INT, "the last answer's HTTP status (NA: no answer came)"),
        "error_message": (TEXT, "the last answer's error message"),
        "reason": (category(REFUSAL_REASONS), "why, from the last answer (REFUSAL_REASONS)"),
        "diffid": (INT, "the diff that locks the image (diff_lock only)"),
        "remedy": (TEXT, "what to do about it (REMEDIES)"),
    }
)
#: Every column of :func:`queue_refusals`, its dtype and meaning, in order.
REFUSAL_SCHEMA = with_rollout(_REFUSAL_COLUMNS)

_REASON_COLUMNS = Schema(
    {
        **_REFUSAL_COLUMNS.entries("reason", "diffid"),
        "label": (TEXT, "the reason in a sentence: image locked by diff 218599"),
        "jobs": (INT, "jobs refused for it"),
        "requests": (INT, "queue requests refused for it"),
        "first_refused_at": (TIME, "the first of those requests"),
        "last_refused_at": (TIME, "the last of those requests"),
        **_REFUSAL_COLUMNS.entries("remedy"),
    }
)
#: Every column of :func:`refusal_reasons`, its dtype and meaning, in order.
REASONS_SCHEMA = with_rollout(_REASON_COLUMNS)

_ANSWER = ("jobid", "observed_at", "problem", "http_status", "error_message")


def never_queued(summary: pd.DataFrame) -> pd.Series:
    """Per job of a :func:`~cfanalytics.job_summary`: whether it was never queued (no queue
    answer took it, and no snapshot showed it Queued or later), as ``bool``."""
    out = summary["queued_at"].isna() & summary["started_at"].isna()
    return out.astype(bool).rename("never_queued")


@returns(REFUSAL_SCHEMA)
@per_rollout
def queue_refusals(events: pd.DataFrame, *, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per job the API refused to queue: every queue request sent for it got an
    error (status, envelope, unreadable answer or none), and it was never queued
    (:func:`never_queued`). In the order of their last refusal; columns below
    (:data:`REFUSAL_SCHEMA`).
    ``summary`` (:func:`~cfanalytics.job_summary` of ``events``) is computed unless given.
    """
    events = validate(events)
    jobs = job_summary_of(events) if summary is None else summary
    rows = select(events, answers(events, "queue") & events["jobid"].notna().to_numpy(), _ANSWER)
    rows = rows.drop_duplicates().sort_values("observed_at", kind="stable")
    taken = set(rows.loc[rows["problem"].isna(), "jobid"].dropna().astype(int))
    refused = set(jobs.loc[never_queued(jobs), "jobid"].astype(int)) - taken
    rows = rows.loc[rows["jobid"].isin(refused)]
    if rows.empty:
        return conform({name: [] for name in _REFUSAL_COLUMNS}, _REFUSAL_COLUMNS)
    per_job = rows.groupby("jobid", sort=False)
    last = per_job.tail(1).set_index("jobid")
    reason = [
        _reason(p, s, m)
        for p, s, m in last[["problem", "http_status", "error_message"]].itertuples(index=False)
    ]
    diffid = [
        _diffid(m) if r == "diff_lock" else None
        for r, m in zip(reason, last["error_message"], strict=True)
    ]
    attributes = jobs.set_index("jobid").reindex(last.index)
    out = {
        "jobid": last.index,
        **{name: attributes[name] for name in ("kind", "location", "machine", "mirror")},
        "requests": per_job.size().reindex(last.index),
        "first_refused_at": per_job["observed_at"].min().reindex(last.index),
        "last_refused_at": last["observed_at"],
        "http_status": last["http_status"],
        "error_message": last["error_message"],
        "reason": reason,
        "diffid": diffid,
        "remedy": [remedy(r, diffid=d) for r, d in zip(reason, diffid, strict=True)],
    }
    return conform(out, _REFUSAL_COLUMNS, sort_by=["last_refused_at"])


def remedy(reason: str, *, diffid: object = None) -> str:
    """What to do about refusals of ``reason`` (one of :data:`REFUSAL_REASONS`)."""
    return REMEDIES[reason].format(diffid=_shown(diffid))


def reason_label(reason: str, *, diffid: object = None) -> str:
    """A reason in a sentence: "image locked by diff 218599", "server errors"."""
    return _LABELS[reason].format(diffid=_shown(diffid))


@returns(REASONS_SCHEMA)
@per_rollout_rows
def refusal_reasons(refusals: pd.DataFrame) -> pd.DataFrame:
    """:func:`queue_refusals` grouped by reason and locking diff, most jobs first: how many
    jobs and requests, when, and the remedy. Columns below (:data:`REASONS_SCHEMA`)."""
    if refusals.empty:
        return conform({name: [] for name in _REASON_COLUMNS}, _REASON_COLUMNS)
    keys = ["reason", "diffid"]
    groups = refusals.groupby(keys, observed=True, dropna=False, sort=False)
    out = groups.agg(
        jobs=("jobid", "size"),
        requests=("requests", "sum"),
        first_refused_at=("first_refused_at", "min"),
        last_refused_at=("last_refused_at", "max"),
    ).reset_index()
    out["label"] = [
        reason_label(str(r), diffid=d) for r, d in zip(out["reason"], out["diffid"], strict=True)
    ]
    out["remedy"] = [
        remedy(str(r), diffid=d) for r, d in zip(out["reason"], out["diffid"], strict=True)
    ]
    out = out.sort_values(["jobs", "first_refused_at"], ascending=[False, True], kind="stable")
    return conform(out, _REASON_COLUMNS)


def refusal_sentence(reasons: pd.DataFrame, *, jobs: int) -> str:
    """One rollout's :func:`refusal_reasons` in a sentence, with what to do ("" when none):
    how many of its ``jobs`` jobs, for which reasons, then the remedies."""
    if reasons.empty:
        return ""
    said = ", ".join(
        f"{n} {label}" for n, label in zip(reasons["jobs"], reasons["label"], strict=True)
    )
    todo = "; ".join(dict.fromkeys(reasons["remedy"]))
    refused = int(reasons["jobs"].sum())
    return f"{refused} of {jobs} jobs were refused at queue time ({said}): {todo}."


def _reason(problem: object, status: object, message: object) -> str:
    """The :data:`REFUSAL_REASONS` name of one error answer to a queue request."""
    text = message if isinstance(message, str) else ""
    if problem == "transport":
        return "no_answer"
    if problem == "format":
        return "garbled"
    if problem == "envelope" and classify_error(text) == "diff_lock":
        return "diff_lock"
    code = -1 if pd.isna(status) else int(status)  # type: ignore[call-overload]
    if code == 429:
        return "rate_limited"
    if code >= 500:
        return "server_error"
    if code in (401, 403) or text.strip().lower() == "forbidden":
        return "forbidden"
    return "refused"


def _diffid(message: object) -> int | None:
    found = _DIFFID.search(message) if isinstance(message, str) else None
    return int(found.group(1)) if found else None


def _shown(diffid: object) -> str:
    return "(unnamed)" if diffid is None or pd.isna(diffid) else str(int(diffid))  # type: ignore[call-overload]
