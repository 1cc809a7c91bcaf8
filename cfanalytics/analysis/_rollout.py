"""Headline numbers of a rollout: how long it took, and how good its ETAs were overall.

Built on :func:`~cfanalytics.job_summary` and :func:`job_eta_metrics` (per-job ETA errors);
averages are per job first, then across jobs.
"""

from __future__ import annotations

import pandas as pd

from ..events import FLOAT, INT, TIME, Schema, split_rollouts
from ._columns import returns
from ._common import (
    ROLLOUT,
    SQUASHED,
    conform,
    is_snapshot,
    of_rollout,
    one_rollout,
    select,
    state_ids,
)
from ._headline import GROUP_METRICS, group_metrics, rollout_start, time_to_share
from ._refusals import never_queued
from ._summary import job_summary_of
from ._timing import job_eta_metrics_of

__all__ = ["METRICS_SCHEMA", "metrics_by_rollout", "rollout_metrics"]

_SHARES = (50, 90, 100)
#: What each share of jobs is of, in the names ``time_to_<share><of>_s``.
_OF = {"": "completed", "_ended": "ended for good", "_queued": "of the jobs queued completed"}
#: The headline numbers of a rollout, their dtypes and meanings, in order
#: (:func:`rollout_metrics`).
METRICS_SCHEMA = Schema(
    {
        **ROLLOUT,
        "n_jobs": (INT, "every job of the rollout"),
        "n_queued": (INT, "of them, queued (not never_queued)"),
        **GROUP_METRICS.entries("completed", "failed", "unfinished"),
        "started": (TIME, "its first queue answer, else its first observation"),
        **{
            f"time_to_{share}{of}_s": (FLOAT, f"from started until {share} % {said}, s")
            for of, said in _OF.items()
            for share in _SHARES
        },
        "duration_p50_s": (FLOAT, GROUP_METRICS.meanings["install_p50_s"]),
        "duration_p90_s": (FLOAT, GROUP_METRICS.meanings["install_p90_s"]),
        **GROUP_METRICS.entries("eta_mae_s", "eta_bias_s"),
        "hit_rate": (FLOAT, "mean over jobs of each job's share of ETAs hit"),
        "baseline_mae_s": (FLOAT, "the same MAE of the naive linear ETA, s"),
        "skill": (FLOAT, "the ETA's MAE over the baseline's, paired; below 1: jobeta is better"),
    }
)


@returns(METRICS_SCHEMA, note="A Series: the columns are its index.")
def rollout_metrics(
    events: pd.DataFrame,
    *,
    summary: pd.DataFrame | None = None,
    errors: pd.DataFrame | None = None,
    per_job: pd.DataFrame | None = None,
    rollout: str | None = None,
) -> pd.Series:
    """Headline numbers of one rollout: ``rollout``, or the only one in ``events``.

    Raises :class:`~cfanalytics.exceptions.RolloutError`, naming the rollouts found, when
    ``events`` hold several and ``rollout`` is not given, or not one of them.

    Returns a Series of :data:`METRICS_SCHEMA`'s names, each value of its dtype (counts as
    integers, times as ``Timestamp``, the rest as floats; NA where unknown);
    :func:`metrics_by_rollout` gives the same as a typed frame, one row per rollout.

    Times run from the first queue answer (else the first observation); NA if never reached.
    Shares are of all the rollout's jobs, unfinished and unknown ones included:

    - ``time_to_50/90/100_s``: until 50/90/100 % of the jobs had *completed*
      (``completed_at``). Failed jobs never complete: with 10 % of them failed,
      ``time_to_90_s`` is NA;
    - ``time_to_50/90/100_ended_s``: until 50/90/100 % had *ended for good*, "when was the
      fleet 90 % done": completed (``completed_at``), failed (``failed_at``: the first
      Failed snapshot of the job's final run of Failed states) or squashed (its first
      Squashed snapshot); a snapshot's time is its ``jobupdated``, else when it was observed;
    - ``time_to_50/90/100_queued_s``: until 50/90/100 % of the jobs *queued* had completed:
      jobs the API refused to queue (:func:`~cfanalytics.analysis.never_queued`) left out.

    ``skill`` is the ETA's MAE over the linear baseline's (below 1: ``jobeta`` beats the
    naive rule). Per-job averages first, then across jobs.

    ``summary`` (:func:`~cfanalytics.job_summary`), ``errors`` (:func:`eta_errors`) and
    ``per_job`` (:func:`job_eta_metrics`) of the same ``events`` are computed unless given.
    """
    frame = _metrics(events, summary=summary, errors=errors, per_job=per_job, rollout=rollout)
    return pd.Series({name: frame[name].iloc[0] for name in frame.columns}, dtype=object)


@returns(METRICS_SCHEMA)
def metrics_by_rollout(events: pd.DataFrame) -> pd.DataFrame:
    """:func:`rollout_metrics` of every rollout of ``events``, one row each in their order:
    a frame of :data:`METRICS_SCHEMA`."""
    rows = [_metrics(frame) for name, frame in split_rollouts(events) if name is not None]
    if not rows:
        return conform({name: [] for name in METRICS_SCHEMA}, METRICS_SCHEMA)
    return pd.concat(rows, ignore_index=True)


def _metrics(
    events: pd.DataFrame,
    *,
    summary: pd.DataFrame | None = None,
    errors: pd.DataFrame | None = None,
    per_job: pd.DataFrame | None = None,
    rollout: str | None = None,
) -> pd.DataFrame:
    """:func:`rollout_metrics` as a one-row frame of :data:`METRICS_SCHEMA`."""
    name, events = one_rollout(events, rollout)
    summary = (
        job_summary_of(events) if summary is None else of_rollout(summary, name, what="summary=")
    )
    if per_job is None:  # errors are only read to make it
        errors = None if errors is None else of_rollout(errors, name, what="errors=")
        per_job = job_eta_metrics_of(events, errors=errors, summary=summary)
    else:
        per_job = of_rollout(per_job, name, what="per_job=")
    start = rollout_start(summary)
    head = group_metrics(summary, per_job).iloc[0]
    queued = ~never_queued(summary)
    metrics: dict[str, object] = {
        "rollout": name,
        "n_jobs": head["jobs"],
        "n_queued": int(queued.sum()),
        **{key: head[key] for key in ("completed", "failed", "unfinished")},
        "started": start,
    }
    ended = _ended_at(events, summary)
    for share in _SHARES:
        metrics[f"time_to_{share}_s"] = time_to_share(summary["completed_at"], share, start)
    for share in _SHARES:
        metrics[f"time_to_{share}_ended_s"] = time_to_share(ended, share, start)
    done = summary["completed_at"][queued.to_numpy()]
    for share in _SHARES:
        metrics[f"time_to_{share}_queued_s"] = time_to_share(done, share, start)
    metrics["duration_p50_s"] = head["install_p50_s"]
    metrics["duration_p90_s"] = head["install_p90_s"]
    baseline_mae, paired_mae = per_job["baseline_mae_s"].mean(), per_job["paired_mae_s"].mean()
    metrics["eta_mae_s"] = head["eta_mae_s"]
    metrics["eta_bias_s"] = head["eta_bias_s"]
    metrics["hit_rate"] = per_job["hit_rate"].mean()
    metrics["baseline_mae_s"] = baseline_mae
    known = pd.notna(baseline_mae) and baseline_mae != 0  # no ETA errors: no skill either
    metrics["skill"] = paired_mae / baseline_mae if known else pd.NA
    return conform({key: [value] for key, value in metrics.items()}, METRICS_SCHEMA)


def _ended_at(events: pd.DataFrame, summary: pd.DataFrame) -> pd.Series:
    """Per row of ``summary``: when the job ended for good (completed, failed or squashed).

    Failed: the summary's ``failed_at``; a summary from before that column gets it from
    :func:`job_summary`, the one home of the rule.
    """
    outcome = summary["outcome"]
    if "failed_at" in summary:
        failed_at = summary["failed_at"]
    else:
        failed_at = _by_job(job_summary_of(events).set_index("jobid")["failed_at"], summary)
    squashed_at = _by_job(_first_squashed(events), summary)
    ended = summary["completed_at"].where(outcome == "completed")
    ended = ended.fillna(failed_at.where(outcome == "failed"))
    return ended.fillna(squashed_at.where(outcome == "squashed"))


def _by_job(at: pd.Series, summary: pd.DataFrame) -> pd.Series:
    """``at`` (by ``jobid``) per row of ``summary``; a time even with no job in it."""
    return pd.Series(at.astype(TIME).reindex(summary["jobid"]).array, index=summary.index)


def _first_squashed(events: pd.DataFrame) -> pd.Series:
    """Per job seen Squashed, by ``jobid``: its first Squashed snapshot's ``jobupdated``, else
    its ``observed_at`` (the first such snapshot with either)."""
    keep = is_snapshot(events) & (state_ids(events) == SQUASHED)
    rows = select(events, keep, ["jobid", "observed_at", "jobupdated"])
    rows = rows.sort_values("observed_at", kind="stable")
    at = rows["jobupdated"].fillna(rows["observed_at"])
    return at.groupby(rows["jobid"]).first()
