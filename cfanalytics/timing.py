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

__all__ = ["ETA_ERROR_SCHEMA", "eta_errors", "poll_interval_s"]

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
