"""Postmortems: which installs failed, why, and what the API itself got wrong.

- :func:`classify_error` maps a ``joberror`` text to one of :data:`ERROR_CLASSES`, the
  install-failure causes the Clanforge docs list, by the rules in :data:`ERROR_RULES`
  (first match wins; unknown text is ``other`` and is always kept as it was);
- :func:`failures`: one row per install job that failed at least once;
- :func:`failure_rates`: the share of ended jobs that failed, by location, mirror, ...;
- :func:`api_errors`: one row per response that was an error (HTTP status, error envelope,
  unreadable body) or a request that got no response at all;
- :func:`polling_gaps`: stretches without a successful status poll.
"""

from __future__ import annotations

import re

import pandas as pd

from ..events import BOOL, ENDPOINTS, FLOAT, INT, TEXT, TIME, Schema, category, validate
from ..events import SCHEMA as EVENTS
from ._columns import returns
from ._common import (
    FAILED,
    answers,
    clock,
    conform,
    deprecated_positional,
    known,
    of_rollout,
    per_rollout,
    per_rollout_rows,
    pick_rollout,
    polls,
    select,
    snapshots,
    with_rollout,
)
from ._summary import OUTCOMES, SUMMARY_SCHEMA, job_summary_of

__all__ = [
    "API_ERROR_SCHEMA",
    "ERROR_CLASSES",
    "ERROR_RULES",
    "FAILURE_SCHEMA",
    "STRETCH_SCHEMA",
    "api_error_stretches",
    "api_errors",
    "classify_error",
    "ended_failed",
    "error_kind",
    "failure_rates",
    "failures",
    "first_failure",
    "other_endings",
    "polling_gaps",
]

#: Each class and the pattern (case-insensitive) its error texts match, tried in this order.
#: The first seven are the causes the Clanforge docs list; extend by adding a pair.
ERROR_RULES: tuple[tuple[str, str], ...] = (
    ("diff_lock", r"locked by (a |the )?diff|diffid"),
    # Before network and disk space: "disk I/O timed out" is the drive, not the network.
    (
        "failing_drive",
        r"failing drive|(drive|disk) fail|i/o (error|timed out)|input/output"
        r"|\beio\b|bad sector|smart (error|failure)|timed out waiting for disk",
    ),
    (
        "disk_space",
        r"disk space|no space|(not enough|insufficient|out of)( free)? (disk )?space"
        r"|disk (is )?full|enospc|quota exceeded",
    ),
    ("image_missing", r"image\b.*\b(does not exist|not found|missing)|no such image"),
    ("permissions", r"permission|eacces|access denied|not permitted|read-only file"),
    (
        "unreachable",
        r"unreachable|did not respond|not responding|no route to host|offline"
        r"|host is down|machine timed out",
    ),
    ("network", r"network|connect|download interrupted|transfer|timed out|timeout"),
)
#: The categories of ``error_class``.
ERROR_CLASSES = (*(name for name, _ in ERROR_RULES), "other")
_COMPILED = tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern in ERROR_RULES)


# The columns of one rollout's failures, before its ``rollout``.
_FAILURE_COLUMNS = Schema(
    {
        **SUMMARY_SCHEMA.entries("jobid", "kind", "location", "machine", "mirror"),
        **SUMMARY_SCHEMA.entries("target_imageversionid"),
        "error": (TEXT, "its first failure's ``joberror``, as the API wrote it"),
        "error_class": (category(ERROR_CLASSES), "the cause ``error`` names (ERROR_RULES)"),
        "failed_at": (TIME, "its first Failed snapshot's ``jobupdated``, else when it was seen"),
        "progress_at_failure": (INT, "that snapshot's ``jobprogress``, else the last one before"),
        "time_to_failure_s": (FLOAT, "``failed_at`` minus its ``started_at``, s"),
        "times_failed": (INT, "the largest ``jobfailed`` seen, at least the Failed runs seen"),
        "requeued": (BOOL, "seen in another state after failing"),
        "outcome": (category(OUTCOMES), "as job_summary: completed if it recovered"),
    }
)
#: :func:`failures`: one row per job that failed at least once.
FAILURE_SCHEMA = with_rollout(_FAILURE_COLUMNS)
# The columns of one rollout's API errors, before its ``rollout``.
_API_ERROR_COLUMNS = Schema(
    {
        "observed_at": (TIME, "when the error answer came, or the request gave up"),
        "run_id": (TEXT, EVENTS.meanings["run_id"]),
        **EVENTS.entries("seq", "endpoint", "problem"),
        "http_status": (INT, "the answer's HTTP status (NA: none came)"),
        **EVENTS.entries("error_code"),
        "error_message": (TEXT, "the answer's error message, as the API wrote it"),
        "jobid": (INT, "the job the request named (queue requests), else NA"),
    }
)
#: :func:`api_errors`: one row per error response or request without a response.
API_ERROR_SCHEMA = with_rollout(_API_ERROR_COLUMNS)

_STRETCH_COLUMNS = Schema(
    {
        "endpoint": (category(ENDPOINTS), "the request the errors answer"),
        "kind": (TEXT, "5xx, 429, 404..., an envelope's message, unreadable, no answer"),
        "statuses": (TEXT, "its HTTP error statuses, most frequent first, with counts"),
        "errors": (INT, "error answers (or missing ones) in the stretch"),
        "jobs": (INT, "distinct jobs the requests named (queue requests)"),
        "first_at": (TIME, "its first error"),
        "last_at": (TIME, "its last error"),
        "span_s": (INT, "``last_at`` minus ``first_at``, whole seconds"),
    }
)
#: :func:`api_error_stretches`: errors of one kind close in time, one row a stretch.
STRETCH_SCHEMA = with_rollout(_STRETCH_COLUMNS)
# failure_rates: per group of jobs; <by> is the column ``by`` names.
_RATES = with_rollout(
    Schema(
        {
            "<by>": ("as in the summary", "the group: its value of the column ``by`` names"),
            "n_jobs": (INT, "jobs in the group"),
            "n_failed": (INT, "of them, outcome failed"),
            "n_ended": (INT, "of them, ended: completed, failed or squashed"),
            "failure_rate": (FLOAT, "``n_failed / n_ended``, worst first; NA before any ended"),
        }
    )
)
# polling_gaps: one row per stretch without a successful status poll.
_GAPS = with_rollout(
    Schema(
        {
            "start": (TIME, "the last successful status poll before the gap"),
            "end": (TIME, "the next successful status poll"),
            "gap_s": (FLOAT, "``end`` minus ``start``, s"),
            "failed_polls": (INT, "status responses in between that were no successful poll"),
        }
    )
)
# other_endings: the summary's columns that say where and how a job ended.
_OTHER = with_rollout(
    Schema(SUMMARY_SCHEMA.entries("jobid", "kind", "location", "machine", "outcome", "last_seen"))
)
_NO_STATUS = {"format": "unreadable", "transport": "no answer"}


def classify_error(text: object) -> str:
    """The :data:`ERROR_CLASSES` name of an error text: the first rule matching it, or other."""
    if not isinstance(text, str):
        return "other"
    return next((name for name, pattern in _COMPILED if pattern.search(text)), "other")


@returns(FAILURE_SCHEMA)
@deprecated_positional("summary")
@per_rollout
def failures(events: pd.DataFrame, *, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per install job seen Failed at least once, in the order they first failed.

    Columns below (:data:`FAILURE_SCHEMA`). ``error``, ``failed_at`` and the progress
    and time to failure describe the job's *first* failure; ``times_failed`` counts them
    all. A job that failed, was queued again and then completed is listed with
    ``requeued`` true and ``outcome`` ``completed``. ``summary`` (:func:`job_summary` of
    ``events``) is computed unless given.
    """
    snaps = snapshots(validate(events))
    failed = snaps.loc[(snaps["sid"] == FAILED).fillna(False)]
    if failed.empty:
        return conform({name: [] for name in _FAILURE_COLUMNS}, _FAILURE_COLUMNS)
    jobs = (job_summary_of(events) if summary is None else summary).set_index("jobid")
    ids = failed["jobid"].drop_duplicates()
    out = jobs.loc[ids.to_numpy(), list(_FAILURE_COLUMNS)[1:6]].copy()
    first = failed.groupby("jobid").first()
    # The error of that first failure; the job's last error if the Failed row had none.
    said = first["joberror"].where(first["joberror"].str.strip() != "")
    out["error"] = said.reindex(out.index).fillna(jobs.loc[out.index, "error"])
    out["error_class"] = out["error"].map(classify_error, na_action=None)
    out["failed_at"] = first["jobupdated"].fillna(first["observed_at"])
    out["progress_at_failure"] = _progress_at_failure(snaps, first)
    out["time_to_failure_s"] = (out["failed_at"] - jobs["started_at"]).dt.total_seconds()
    out["times_failed"] = _times_failed(snaps, failed)
    out["requeued"] = _requeued(snaps, first["observed_at"])
    out["outcome"] = jobs["outcome"]
    return conform(out.reset_index(), _FAILURE_COLUMNS, sort_by=["failed_at", "jobid"])


def _progress_at_failure(snaps: pd.DataFrame, first: pd.DataFrame) -> pd.Series:
    """The first Failed snapshot's progress, else the last progress seen before it."""
    before = snaps.join(first["observed_at"].rename("failed_seen"), on="jobid", how="inner")
    before = before.loc[before["observed_at"] <= before["failed_seen"]]
    last = before.dropna(subset=["jobprogress"]).groupby("jobid")["jobprogress"].last()
    return first["jobprogress"].combine_first(last)


def _times_failed(snaps: pd.DataFrame, failed: pd.DataFrame) -> pd.Series:
    """The API's ``jobfailed`` count, at least the number of separate Failed runs seen."""
    previous = snaps.groupby("jobid")["sid"].shift().fillna(0)  # the job's first row: none
    runs = ((snaps["sid"] == FAILED) & (previous != FAILED)).fillna(False)
    seen = runs.groupby(snaps["jobid"]).sum()
    reported = failed.groupby("jobid")["jobfailed"].max()
    return pd.concat([seen.reindex(reported.index), reported], axis=1).max(axis=1)


def _requeued(snaps: pd.DataFrame, failed_seen: pd.Series) -> pd.Series:
    """Per failed job: whether a later snapshot shows it in another state (queued again)."""
    later = snaps.join(failed_seen.rename("failed_seen"), on="jobid", how="inner")
    later = later.loc[(later["observed_at"] > later["failed_seen"]) & (later["sid"] != FAILED)]
    flag = pd.Series(False, index=failed_seen.index)
    flag[flag.index.isin(later["jobid"].unique())] = True
    return flag


@returns(API_ERROR_SCHEMA)
@per_rollout
def api_errors(events: pd.DataFrame) -> pd.DataFrame:
    """Every error answer or missing answer, one row per response, in recording order.

    ``problem`` says what went wrong: ``http_status`` (4xx/5xx, 429 included),
    ``envelope`` (``success: false``, even with HTTP 200, e.g. "image locked by diffid: N"),
    ``format`` (truncated or non-JSON) or ``transport`` (no response: timeout, dropped).
    """
    rows = validate(events).loc[events["problem"].notna()]
    rows = rows.drop_duplicates(["run_id", "seq"]).sort_values(["observed_at", "run_id", "seq"])
    return conform(rows, _API_ERROR_COLUMNS)


@returns(STRETCH_SCHEMA)
@per_rollout_rows
def api_error_stretches(errors: pd.DataFrame, *, within_s: float = 300.0) -> pd.DataFrame:
    """:func:`api_errors` grouped by kind and by stretch of time: errors of one endpoint and
    kind (:func:`error_kind`) less than ``within_s`` seconds apart are one stretch. In the
    order stretches began; columns below (:data:`STRETCH_SCHEMA`). What a reader wants
    of 90 errors: "5xx on the status list: 9 in 2 min from 09:06"."""
    if errors.empty:
        return conform({name: [] for name in _STRETCH_COLUMNS}, _STRETCH_COLUMNS)
    rows = errors.assign(kind=error_kind(errors))
    rows = rows.sort_values(["endpoint", "kind", "observed_at"], kind="stable")
    gap = rows.groupby(["endpoint", "kind"], observed=True)["observed_at"].diff()
    rows["_stretch"] = (gap.isna() | (gap.dt.total_seconds() >= within_s)).cumsum()
    stretches = rows.groupby("_stretch", sort=False)
    out = stretches.agg(
        endpoint=("endpoint", "first"),
        kind=("kind", "first"),
        errors=("observed_at", "size"),
        jobs=("jobid", "nunique"),
        first_at=("observed_at", "min"),
        last_at=("observed_at", "max"),
    )
    errors_only = rows["http_status"].where(
        rows["problem"] == "http_status"
    )  # not an envelope's 200
    out["statuses"] = errors_only.groupby(rows["_stretch"], sort=False).agg(_statuses)
    out["span_s"] = (out["last_at"] - out["first_at"]).dt.total_seconds().round()
    return conform(out.sort_values("first_at", kind="stable"), _STRETCH_COLUMNS)


def error_kind(errors: pd.DataFrame) -> pd.Series:
    """Per :func:`api_errors` row, its kind: ``5xx`` (any server error), ``429``, another
    status as itself (``404``), an error envelope by its message, ``unreadable`` (a body
    that could not be read), ``no answer`` (timeout, dropped connection)."""
    status = errors["http_status"].astype("Int64")
    text = status.astype("string").where(status.lt(500), "5xx")
    text = text.where(errors["problem"] != "envelope", errors["error_message"].astype("string"))
    for problem, said in _NO_STATUS.items():
        text = text.where(errors["problem"] != problem, said)
    return text.fillna("other").astype("string").rename("kind")


def _statuses(codes: pd.Series) -> str:
    counts = codes.dropna().astype(int).value_counts(sort=True)
    return ", ".join(f"{code} \u00d7{n}" for code, n in counts.items())


def ended_failed(summary: pd.DataFrame) -> pd.Series:
    """Per job of a summary: whether it ended failed, as ``boolean`` on the summary's index.

    True: outcome failed; False: it ended otherwise (completed or squashed); NA: it has not
    ended (unfinished, unknown). The mean is the failure rate, failed / ended.
    """
    outcome = summary["outcome"]
    ended = outcome.isin(["completed", "failed", "squashed"]).to_numpy(dtype=bool)
    failed = (outcome == "failed").to_numpy(dtype=bool)
    return pd.Series(pd.arrays.BooleanArray(failed, ~ended), index=summary.index, name="failed")


@returns(_RATES)
@per_rollout_rows
def failure_rates(summary: pd.DataFrame, by: str) -> pd.DataFrame:
    """Share of jobs that ended failed, by ``by`` (location, mirror, machine, kind, ...) of a
    job summary: worst first, so a bad mirror or location stands out."""
    failed = ended_failed(summary)
    frame = summary.assign(
        failed=failed.fillna(False).astype("int64"), ended=failed.notna().astype("int64")
    )
    grouped = frame.groupby(by, observed=True, dropna=False)
    out = pd.DataFrame(
        {
            "n_jobs": grouped.size(),
            "n_failed": grouped["failed"].sum(),
            "n_ended": grouped["ended"].sum(),
        }
    ).astype(INT)
    out["failure_rate"] = (out["n_failed"] / out["n_ended"].where(out["n_ended"] > 0)).astype(FLOAT)
    out = out.reset_index().sort_values(["failure_rate", "n_failed"], ascending=False)
    return out.reset_index(drop=True)


@returns(_GAPS)
@per_rollout
def polling_gaps(events: pd.DataFrame, *, factor: float = 2.0) -> pd.DataFrame:
    """Stretches without a successful status poll longer than ``factor`` median intervals,
    one row each. Jobs can't be seen to end during a gap, so completion windows there are
    wide."""
    ok = polls(validate(events))["polled_at"].reset_index(drop=True)
    gaps = ok.diff().dt.total_seconds()
    limit = factor * float(gaps.median()) if gaps.notna().any() else float("inf")
    wide = gaps > limit
    out = pd.DataFrame({"start": ok.shift()[wide], "end": ok[wide], "gap_s": gaps[wide]})
    failed = answers(events, "status") & known(events, "problem")
    responses = select(events, failed, ["run_id", "seq", "observed_at"])
    failed_at = responses.drop_duplicates(["run_id", "seq"])["observed_at"].to_numpy()
    out["failed_polls"] = [
        int(((failed_at > s) & (failed_at < e)).sum())
        for s, e in zip(out["start"].to_numpy(), out["end"].to_numpy(), strict=True)
    ]
    return out.astype({"gap_s": FLOAT, "failed_polls": INT}).reset_index(drop=True)


@returns(_OTHER)
@per_rollout_rows
def other_endings(summary: pd.DataFrame) -> pd.DataFrame:
    """Jobs squashed by a newer install, or gone from the list with no known outcome: listed
    so that a postmortem does not hide them, in the order they were last seen."""
    shown = list(_OTHER)[1:]  # after the rollout
    rows = summary.loc[summary["outcome"].isin(["squashed", "unknown"]), shown]
    return rows.sort_values(["last_seen", "jobid"], kind="stable").reset_index(drop=True)


def first_failure(
    failures: pd.DataFrame,
    errors: pd.DataFrame,
    *,
    within_s: float = 600.0,
    rollout: str | None = None,
    tz: str = "UTC",
) -> str:
    """One sentence: the rollout's first failure, and what followed within ``within_s``;
    its time in the zone ``tz``.

    Of ``rollout``, or of the only rollout ``failures`` and ``errors`` name: raises
    :class:`~cfanalytics.exceptions.RolloutError` naming them when there are several.
    """
    rollout = pick_rollout((failures, errors), rollout)
    failures, errors = of_rollout(failures, rollout), of_rollout(errors, rollout)
    if failures.empty:
        return "No install failed."
    first = failures.iloc[0]
    until = first["failed_at"] + pd.Timedelta(seconds=within_s)
    more = int(
        ((failures["failed_at"] > first["failed_at"]) & (failures["failed_at"] <= until)).sum()
    )
    api = int(
        ((errors["observed_at"] >= first["failed_at"]) & (errors["observed_at"] <= until)).sum()
    )
    return (
        f"The first failure was job {first['jobid']} ({first['kind']}, {first['location']}) "
        f"at {clock(first['failed_at'], tz=tz)}, {first['error_class']}; within "
        f"{within_s / 60:.0f} min followed {more} more failure(s) and {api} API error(s)."
    )
