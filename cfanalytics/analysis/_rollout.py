"""Headline numbers of a rollout: how long it took, and how good its ETAs were overall.

Built on :func:`~cfanalytics.job_summary` and :func:`job_eta_metrics` (per-job ETA errors);
averages are per job first, then across jobs.
"""

from __future__ import annotations

import pandas as pd

from ..events import TIME
from ._common import SQUASHED, is_snapshot, of_rollout, one_rollout, select, state_ids
from ._headline import group_metrics, rollout_start, time_to_share
from ._summary import job_summary_of
from ._timing import job_eta_metrics_of

__all__ = ["rollout_metrics"]


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

    Times run from the first queue answer (else the first observation); NA if never reached.
    Shares are of all the rollout's jobs, unfinished and unknown ones included:

    - ``time_to_50/90/100_s``: until 50/90/100 % of the jobs had *completed*
      (``completed_at``). Failed jobs never complete: with 10 % of them failed,
      ``time_to_90_s`` is NA;
    - ``time_to_50/90/100_ended_s``: until 50/90/100 % had *ended for good*, "when was the
      fleet 90 % done": completed (``completed_at``), failed (``failed_at``: the first
      Failed snapshot of the job's final run of Failed states) or squashed (its first
      Squashed snapshot); a snapshot's time is its ``jobupdated``, else when it was observed.

    ``skill`` is the ETA's MAE over the linear baseline's (below 1: ``jobeta`` beats the
    naive rule). Per-job averages first, then across jobs.

    ``summary`` (:func:`~cfanalytics.job_summary`), ``errors`` (:func:`eta_errors`) and
    ``per_job`` (:func:`job_eta_metrics`) of the same ``events`` are computed unless given.
    """
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
    metrics: dict[str, object] = {
        "rollout": name,
        "n_jobs": head["jobs"],
        **{key: head[key] for key in ("completed", "failed", "unfinished")},
        "started": start,
    }
    ended = _ended_at(events, summary)
    for share in (50, 90, 100):
        metrics[f"time_to_{share}_s"] = time_to_share(summary["completed_at"], share, start)
    for share in (50, 90, 100):
        metrics[f"time_to_{share}_ended_s"] = time_to_share(ended, share, start)
    metrics["duration_p50_s"] = head["install_p50_s"]
    metrics["duration_p90_s"] = head["install_p90_s"]
    baseline_mae, paired_mae = per_job["baseline_mae_s"].mean(), per_job["paired_mae_s"].mean()
    metrics["eta_mae_s"] = head["eta_mae_s"]
    metrics["eta_bias_s"] = head["eta_bias_s"]
    metrics["hit_rate"] = per_job["hit_rate"].mean()
    metrics["baseline_mae_s"] = baseline_mae
    known = pd.notna(baseline_mae) and baseline_mae != 0  # no ETA errors: no skill either
    metrics["skill"] = paired_mae / baseline_mae if known else pd.NA
    return pd.Series(metrics, dtype=object)


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
