"""How good was Clanforge's ETA? The error of every ETA against the actual completion.

:func:`eta_errors` gives one row per Running observation that carries a ``jobeta``, of a job
whose completion is known (exactly, or as a window from interval censoring; see
:func:`~cfanalytics.job_summary`). Definitions follow ``eta-analysis.md``: for a poll at ``t``
with ETA ``E``, progress ``p`` and start ``s``, and completion ``T``:

- ``error_s = T - E``: positive when the job finished *later* than predicted;
  ``T`` is the exact completion or, when censored, the window's midpoint (``completed_at``),
  and ``error_lower_s`` / ``error_upper_s`` use the window's bounds instead;
- ``relative_error = (E - T) / (T - t)``, only while ``T - t`` is at least two poll
  intervals and 60 s (it explodes near the end);
- ``duration_error = (E - T) / (T - s)``: comparable between small and large images;
- ``baseline_eta``: linear extrapolation ``t + (t - s) (100 - p) / p``, scored the same way
  (``baseline_error_s``) so users see whether ``jobeta`` beats a naive rule.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .events import validate
from .summary import job_summary

__all__ = [
    "ETA_ERROR_SCHEMA",
    "error_by",
    "eta_errors",
    "job_eta_metrics",
    "poll_interval_s",
    "rollout_metrics",
]

_TIME = pd.DatetimeTZDtype(unit="us", tz="UTC")
_FLOAT = pd.Float64Dtype()

#: Every column of the ETA error table and its dtype, in order.
ETA_ERROR_SCHEMA: Mapping[str, object] = {
    "jobid": pd.Int64Dtype(),
    "kind": pd.CategoricalDtype(["mirror", "machine"]),
    "location": pd.StringDtype(),
    "observed_at": _TIME,
    "jobprogress": pd.Int64Dtype(),
    "progress_decile": pd.Int64Dtype(),  # 0 for 0-9 %, ..., 9 for 90-100 %
    "elapsed_fraction": _FLOAT,  # (t - s) / (T - s)
    "jobeta": _TIME,
    "completed_at": _TIME,
    "exact": pd.BooleanDtype(),  # completion seen exactly, not interval-censored
    "predicted_remaining_s": _FLOAT,  # E - t
    "actual_remaining_s": _FLOAT,  # T - t
    "error_s": _FLOAT,  # T - E, positive = later than predicted
    "abs_error_s": _FLOAT,
    "error_lower_s": _FLOAT,  # completed_after - E
    "error_upper_s": _FLOAT,  # completed_before - E
    "relative_error": _FLOAT,
    "duration_error": _FLOAT,
    "hit": pd.BooleanDtype(),  # finished by its ETA: T <= E
    "baseline_eta": _TIME,
    "baseline_error_s": _FLOAT,
}


def poll_interval_s(events: pd.DataFrame) -> float:
    """The median time between successive successful status polls, in seconds."""
    polls = events[(events["endpoint"] == "status") & events["problem"].isna()]
    times = polls.drop_duplicates(["run_id", "seq"]).sort_values(["run_id", "seq"])
    gaps = times.groupby("run_id", observed=True)["observed_at"].diff().dt.total_seconds()
    gaps = gaps.dropna()
    return float(gaps.median()) if len(gaps) else float("nan")


def _seconds(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds().astype(_FLOAT)


def _running(events: pd.DataFrame) -> pd.DataFrame:
    rows = events[
        (events["endpoint"] == "status")
        & events["problem"].isna()
        & (events["jobstateid"] == 4)
        & events["jobeta"].notna()
    ]
    return rows[["jobid", "observed_at", "jobprogress", "jobeta", "jobstart"]]


def eta_errors(events: pd.DataFrame, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per Running observation with an ETA, of every job with a known completion."""
    validate(events)
    jobs = job_summary(events) if summary is None else summary
    done = jobs[jobs["completed_at"].notna()]
    window = ["jobid", "kind", "location", "started_at", "completed_at"]
    window += ["completed_after", "completed_before"]
    rows = _running(events).merge(done[window], on="jobid", how="inner")
    start = rows["jobstart"].fillna(rows["started_at"])
    t, eta, end = rows["observed_at"], rows["jobeta"], rows["completed_at"]
    out = pd.DataFrame(
        {
            "jobid": rows["jobid"],
            "kind": rows["kind"],
            "location": rows["location"],
            "observed_at": t,
            "jobprogress": rows["jobprogress"],
            "progress_decile": (rows["jobprogress"].clip(0, 99) // 10),
            "elapsed_fraction": _seconds(t - start) / _seconds(end - start),
            "jobeta": eta,
            "completed_at": end,
            "exact": rows["completed_after"] == rows["completed_before"],
            "predicted_remaining_s": _seconds(eta - t),
            "actual_remaining_s": _seconds(end - t),
            "error_s": _seconds(end - eta),
            "error_lower_s": _seconds(rows["completed_after"] - eta),
            "error_upper_s": _seconds(rows["completed_before"] - eta),
            "duration_error": _seconds(eta - end) / _seconds(end - start),
        }
    )
    out["abs_error_s"] = out["error_s"].abs()
    out["hit"] = end <= eta
    floor = max(2 * poll_interval_s(events), 60.0) if len(out) else 60.0
    far = out["actual_remaining_s"] >= floor
    out["relative_error"] = (-out["error_s"] / out["actual_remaining_s"]).where(far)
    out["baseline_eta"], out["baseline_error_s"] = _baseline(t, start, rows["jobprogress"], end)
    return _conform(out)


def _baseline(
    t: pd.Series, start: pd.Series, progress: pd.Series, end: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """Linear extrapolation from progress and elapsed time, and its error ``T - E_lin``."""
    p = progress.astype(_FLOAT).where(progress > 0)
    elapsed = _seconds(t - start)
    remaining = elapsed * (100 - p) / p
    eta = t + pd.to_timedelta(remaining.astype("float64"), unit="s")
    return eta, _seconds(end - eta)


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    out = {name: frame[name].astype(dtype) for name, dtype in ETA_ERROR_SCHEMA.items()}
    result = pd.DataFrame(out).sort_values(["jobid", "observed_at"], kind="stable")
    result = result.replace([np.inf, -np.inf], pd.NA)
    return result.reset_index(drop=True)


def job_eta_metrics(
    events: pd.DataFrame,
    errors: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per job with a known completion: ETA accuracy, how the ETA moved, and where time went.

    ``eta_mae_s`` / ``eta_bias_s`` / ``baseline_mae_s`` average the job's observations;
    ``revisions`` counts changes of ``jobeta`` between polls and ``revision_total_s`` adds up
    their size (total variation: flapping ETAs score high); ``error_at_25/50/75_s`` is the
    error of the first ETA given at or past that progress; ``queue_wait_s`` runs from queued
    to started, ``run_time_s`` from started to completed.
    """
    summary = job_summary(events) if summary is None else summary
    errors = eta_errors(events, summary) if errors is None else errors
    by_job = errors.sort_values(["jobid", "observed_at"]).groupby("jobid", sort=True)
    out = pd.DataFrame(
        {
            "n_etas": by_job.size(),
            "eta_mae_s": by_job["abs_error_s"].mean(),
            "eta_bias_s": by_job["error_s"].mean(),
            "baseline_mae_s": by_job["baseline_error_s"].apply(lambda e: e.abs().mean()),
            "hit_rate": by_job["hit"].mean(),
            "revisions": by_job["jobeta"].apply(
                lambda e: int((e.diff().dropna() != pd.Timedelta(0)).sum())
            ),
            "revision_total_s": by_job["jobeta"].apply(
                lambda e: e.diff().dt.total_seconds().abs().sum()
            ),
        }
    )
    for level in (25, 50, 75):
        reached = errors[errors["jobprogress"] >= level].sort_values("observed_at")
        out[f"error_at_{level}_s"] = reached.groupby("jobid")["error_s"].first()
    summary = summary.set_index("jobid")
    out["queue_wait_s"] = _seconds(summary["started_at"] - summary["queued_at"])
    out["run_time_s"] = _seconds(summary["completed_at"] - summary["started_at"])
    return out.astype(_FLOAT).astype({"n_etas": "Int64", "revisions": "Int64"}).reset_index()


def error_by(errors: pd.DataFrame, by: str) -> pd.DataFrame:
    """ETA accuracy by ``by`` (e.g. ``progress_decile``, ``location``, ``kind``).

    Aggregated per job first, then across jobs, so long jobs with many polls do not dominate:
    ``mae_s`` is the mean over jobs of each job's mean absolute error in the group.
    """
    per_job = errors.groupby([by, "jobid"], observed=True).agg(
        mae=("abs_error_s", "mean"), bias=("error_s", "mean"), hit=("hit", "mean"),
        n=("error_s", "size"),
    )  # fmt: skip
    grouped = per_job.groupby(level=0, observed=True)
    return pd.DataFrame(
        {
            "n_jobs": grouped.size(),
            "n_observations": grouped["n"].sum(),
            "mae_s": grouped["mae"].mean(),
            "bias_s": grouped["bias"].mean(),
            "hit_rate": grouped["hit"].mean(),
        }
    ).reset_index()


def rollout_metrics(events: pd.DataFrame) -> pd.Series:
    """Headline numbers of a rollout.

    ``time_to_50/90/100_s`` run from the first queue answer (else the first observation) to
    the moment 50/90/100 % of the rollout's jobs had completed (``completed_at``; NA if never
    reached). ``skill`` is the ETA's MAE over the linear baseline's (below 1: ``jobeta``
    beats the naive rule). Per-job averages first, then across jobs.
    """
    summary = job_summary(events)
    per_job = job_eta_metrics(events, summary=summary)
    start = summary["queued_at"].min()
    if pd.isna(start):
        start = summary["first_seen"].min()
    done = summary["completed_at"].dropna().sort_values().reset_index(drop=True)
    durations = (summary["completed_at"] - summary["started_at"]).dt.total_seconds().dropna()
    metrics: dict[str, object] = {
        "n_jobs": len(summary),
        "completed": int((summary["outcome"] == "completed").sum()),
        "failed": int((summary["outcome"] == "failed").sum()),
        "unfinished": int(summary["outcome"].isin(["unfinished", "unknown"]).sum()),
        "started": start,
    }
    for share in (50, 90, 100):
        needed = int(np.ceil(len(summary) * share / 100))
        reached = done.iloc[needed - 1] if 0 < needed <= len(done) else pd.NaT
        metrics[f"time_to_{share}_s"] = (
            (reached - start).total_seconds() if pd.notna(reached) else pd.NA
        )
    metrics["duration_p50_s"] = durations.quantile(0.5) if len(durations) else pd.NA
    metrics["duration_p90_s"] = durations.quantile(0.9) if len(durations) else pd.NA
    eta_mae, baseline_mae = per_job["eta_mae_s"].mean(), per_job["baseline_mae_s"].mean()
    metrics["eta_mae_s"] = eta_mae
    metrics["eta_bias_s"] = per_job["eta_bias_s"].mean()
    metrics["hit_rate"] = per_job["hit_rate"].mean()
    metrics["baseline_mae_s"] = baseline_mae
    metrics["skill"] = eta_mae / baseline_mae if baseline_mae else pd.NA
    return pd.Series(metrics, dtype=object)
