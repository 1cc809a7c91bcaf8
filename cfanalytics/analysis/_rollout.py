"""Headline numbers of a rollout: how long it took, and how good its ETAs were overall.

Built on :mod:`cfanalytics.timing` (per-observation and per-job ETA errors) and
:func:`~cfanalytics.job_summary`; averages are per job first, then across jobs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._summary import _state_ids, job_summary
from ._timing import _FAILED, _SQUASHED, _TIME, _rows, job_eta_metrics

__all__ = ["rollout_metrics"]


def rollout_metrics(
    events: pd.DataFrame,
    *,
    summary: pd.DataFrame | None = None,
    errors: pd.DataFrame | None = None,
    per_job: pd.DataFrame | None = None,
) -> pd.Series:
    """Headline numbers of a rollout.

    Times run from the first queue answer (else the first observation); NA if never reached.
    Shares are of all the rollout's jobs, unfinished and unknown ones included:

    - ``time_to_50/90/100_s``: until 50/90/100 % of the jobs had *completed*
      (``completed_at``). Failed jobs never complete: with 10 % of them failed,
      ``time_to_90_s`` is NA;
    - ``time_to_50/90/100_ended_s``: until 50/90/100 % had *ended for good*, "when was the
      fleet 90 % done": completed (``completed_at``), failed (``failed_at`` of the summary,
      else the first Failed snapshot of the job's final run of Failed states) or squashed
      (its first Squashed snapshot); a snapshot's time is its ``jobupdated``, else when it
      was observed.

    ``skill`` is the ETA's MAE over the linear baseline's (below 1: ``jobeta`` beats the
    naive rule). Per-job averages first, then across jobs.

    ``summary`` (:func:`~cfanalytics.job_summary`), ``errors`` (:func:`eta_errors`) and
    ``per_job`` (:func:`job_eta_metrics`) of the same ``events`` are computed unless given.
    """
    summary = job_summary(events) if summary is None else summary
    if per_job is None:
        per_job = job_eta_metrics(events, errors, summary)
    start = summary["queued_at"].min()
    if pd.isna(start):
        start = summary["first_seen"].min()
    durations = (summary["completed_at"] - summary["started_at"]).dt.total_seconds().dropna()
    metrics: dict[str, object] = {
        "n_jobs": len(summary),
        "completed": int((summary["outcome"] == "completed").sum()),
        "failed": int((summary["outcome"] == "failed").sum()),
        "unfinished": int(summary["outcome"].isin(["unfinished", "unknown"]).sum()),
        "started": start,
    }
    ended = _ended_at(events, summary)
    for share in (50, 90, 100):
        metrics[f"time_to_{share}_s"] = _time_to(summary["completed_at"], share, start)
    for share in (50, 90, 100):
        metrics[f"time_to_{share}_ended_s"] = _time_to(ended, share, start)
    metrics["duration_p50_s"] = durations.quantile(0.5) if len(durations) else pd.NA
    metrics["duration_p90_s"] = durations.quantile(0.9) if len(durations) else pd.NA
    eta_mae, baseline_mae = per_job["eta_mae_s"].mean(), per_job["baseline_mae_s"].mean()
    paired_mae = per_job["paired_mae_s"].mean()
    metrics["eta_mae_s"] = eta_mae
    metrics["eta_bias_s"] = per_job["eta_bias_s"].mean()
    metrics["hit_rate"] = per_job["hit_rate"].mean()
    metrics["baseline_mae_s"] = baseline_mae
    known = pd.notna(baseline_mae) and baseline_mae != 0  # no ETA errors: no skill either
    metrics["skill"] = paired_mae / baseline_mae if known else pd.NA
    return pd.Series(metrics, dtype=object)


def _time_to(times: pd.Series, share: int, start: pd.Timestamp) -> object:
    """Seconds from ``start`` until ``share`` % of all rows of ``times`` had happened."""
    needed = int(np.ceil(len(times) * share / 100))
    done = times.dropna().sort_values().reset_index(drop=True)
    reached = done.iloc[needed - 1] if 0 < needed <= len(done) else pd.NaT
    return (reached - start).total_seconds() if pd.notna(reached) else pd.NA


def _ended_at(events: pd.DataFrame, summary: pd.DataFrame) -> pd.Series:
    """Per row of ``summary``: when the job ended for good (completed, failed or squashed)."""
    outcome = summary["outcome"]

    def by_job(at: pd.Series) -> pd.Series:  # keeps the dtype, even with no job in the state
        return pd.Series(at.astype(_TIME).reindex(summary["jobid"]).array, index=summary.index)

    if "failed_at" in summary:
        failed_at = summary["failed_at"]
    else:
        failed_at = by_job(_entered(events, _FAILED, final=True))
    squashed_at = by_job(_entered(events, _SQUASHED, final=False))
    ended = summary["completed_at"].where(outcome == "completed")
    ended = ended.fillna(failed_at.where(outcome == "failed"))
    return ended.fillna(squashed_at.where(outcome == "squashed"))


def _entered(events: pd.DataFrame, state: int, *, final: bool) -> pd.Series:
    """Per job seen in ``state``: its first snapshot in that state, by ``jobid``.

    With ``final``, the first of the job's last run of snapshots in that state (a job that
    failed, was requeued and failed again failed the second time). A snapshot's time is its
    ``jobupdated``, else its ``observed_at``; snapshots without a state are skipped.
    """
    sid = _state_ids(events)
    stated = sid >= 0
    keep = _snapshots(events) & stated
    jobid = events["jobid"]
    keep &= jobid.isin(jobid[keep & (sid == state)].unique()).to_numpy()
    snaps = _rows(events, keep, ["jobid", "observed_at", "jobupdated"]).assign(sid=sid[keep])
    snaps = snaps.sort_values("observed_at", kind="stable").reset_index(drop=True)
    inside = (snaps["sid"] == state).to_numpy(dtype=bool, copy=True)  # written to below
    if final:  # after the job's last snapshot in another state
        order = pd.Series(np.arange(len(snaps)))
        last_other = order[~inside].groupby(snaps["jobid"][~inside]).max()
        inside &= (order > snaps["jobid"].map(last_other).fillna(-1)).to_numpy(dtype=bool)
    entered = snaps.loc[inside]
    at = entered["jobupdated"].fillna(entered["observed_at"])
    return at.groupby(entered["jobid"]).first()


def _snapshots(events: pd.DataFrame) -> np.ndarray:
    """Successful ``status`` and ``queue`` rows naming a job (as :func:`job_summary` reads)."""
    endpoint = events["endpoint"].isin(["status", "queue"]).to_numpy(dtype=bool)
    named = events["jobid"].notna().to_numpy()
    snapshot: np.ndarray = endpoint & named & events["problem"].isna().to_numpy()
    return snapshot
