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

from ..events import BOOL, FLOAT, INT, KINDS, TEXT, TIME, category, validate
from ._common import (
    FAILED,
    RUNNING,
    answers,
    conform,
    deprecated_positional,
    is_snapshot,
    per_rollout,
    per_rollout_rows,
    polls,
    select,
    state_ids,
    with_rollout,
)
from ._summary import install_seconds, job_summary

__all__ = [
    "ETA_ERROR_SCHEMA",
    "error_by",
    "eta_errors",
    "job_eta_metrics",
    "poll_interval_s",
]

# The columns of one rollout's ETA errors, before its ``rollout``.
_ERROR_COLUMNS: Mapping[str, object] = {
    "jobid": INT,
    "kind": category(KINDS),
    "location": TEXT,
    "observed_at": TIME,
    "jobprogress": INT,
    "progress_decile": INT,  # 0 for 0-9 %, ..., 9 for 90-100 %
    "elapsed_fraction": FLOAT,  # (t - s) / (T - s)
    "jobeta": TIME,
    "completed_at": TIME,
    "exact": BOOL,  # completion seen exactly, not interval-censored
    "predicted_remaining_s": FLOAT,  # E - t
    "actual_remaining_s": FLOAT,  # T - t
    "error_s": FLOAT,  # T - E, positive = later than predicted
    "abs_error_s": FLOAT,
    "error_lower_s": FLOAT,  # completed_after - E
    "error_upper_s": FLOAT,  # completed_before - E
    "relative_error": FLOAT,
    "duration_error": FLOAT,
    "hit": BOOL,  # finished by its ETA: T <= E
    "baseline_eta": TIME,
    "baseline_error_s": FLOAT,
}
#: Every column of the ETA error table and its dtype, in order.
ETA_ERROR_SCHEMA = with_rollout(_ERROR_COLUMNS)

_NAT = np.iinfo(np.int64).min
#: The summary columns an ETA error row takes from its job.
_WINDOW = ["jobid", "kind", "location", "started_at", "completed_at"]
_WINDOW += ["completed_after", "completed_before"]


def poll_interval_s(events: pd.DataFrame) -> float:
    """The median time between successive successful status polls of one ASID, in seconds.

    Per run and ASID: a run polling two ASIDs in turn still polls each every interval. A
    poll without a time leaves the intervals on either side of it unknown.
    """
    found = polls(events, undated=True).sort_values(["run_id", "seq"])
    by_poller = found.groupby(["run_id", "asid"], observed=True)
    gaps = by_poller["polled_at"].diff().dt.total_seconds().dropna()
    return float(gaps.median()) if len(gaps) else float("nan")


def _listed(events: pd.DataFrame, state: int) -> np.ndarray:
    """Status snapshots of jobs in ``state`` (by the one state-id rule, :func:`state_ids`)."""
    in_state = state_ids(events) == state
    listed: np.ndarray = is_snapshot(events) & answers(events, "status") & in_state
    return listed


def _seconds(delta: pd.Series) -> pd.Series:
    """A timedelta Series in seconds, ``Float64`` (NaT is NA)."""
    values = delta.dt.total_seconds().to_numpy(dtype=np.float64)
    floats = pd.arrays.FloatingArray(values, np.isnan(values))
    return pd.Series(floats, index=delta.index, copy=False)


def _sort_key(column: pd.Series) -> np.ndarray:
    """int64 keys ordering ``column`` (integers or times) with NA last."""
    values = np.asarray(column.to_numpy(dtype=np.int64, na_value=_NAT))
    return np.where(np.asarray(column.isna()), np.iinfo(np.int64).max, values)


def _job_order(jobid: pd.Series, observed_at: pd.Series) -> np.ndarray:
    """The positions sorting rows by ``jobid`` then ``observed_at``: stable, NA last."""
    return np.lexsort((_sort_key(observed_at), _sort_key(jobid)))


def _running(events: pd.DataFrame, done: pd.DataFrame) -> pd.DataFrame:
    """Running status rows with an ETA, of the jobs in ``done``, with ``done``'s columns.

    An inner join on ``jobid``, sorted by ``jobid`` then ``observed_at``.
    """
    keep = _listed(events, RUNNING) & events["jobeta"].notna().to_numpy()
    columns = ["jobid", "observed_at", "jobprogress", "jobeta", "jobstart"]
    if not done["jobid"].is_unique:  # not one row per job: the general join
        rows = select(events, keep, columns).merge(done, on="jobid", how="inner")
        return rows.take(_job_order(rows["jobid"], rows["observed_at"])).reset_index(drop=True)
    at = np.flatnonzero(keep)
    job = pd.Index(done["jobid"]).get_indexer(events["jobid"].array[at])
    at, job = at[job >= 0], job[job >= 0]
    order = _job_order(events["jobid"].array[at], events["observed_at"].array[at])
    at, job = at[order], job[order]
    out = {name: events[name].array[at] for name in columns}
    out |= {name: done[name].array[job] for name in done.columns if name != "jobid"}
    return pd.DataFrame(out, copy=False)


@deprecated_positional("summary")
@per_rollout
def eta_errors(events: pd.DataFrame, *, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per Running observation with an ETA, of every job with a known completion.

    Columns and dtypes: :data:`ETA_ERROR_SCHEMA` (signs and ratios: the module docstring),
    sorted by rollout, ``jobid``, then ``observed_at``. ``summary`` (:func:`job_summary` of
    ``events``) is computed unless given.
    """
    validate(events)
    jobs = job_summary(events) if summary is None else summary
    rows = _running(events, jobs.loc[jobs["completed_at"].notna(), _WINDOW])
    rows = _last_attempt(rows, events)
    start = rows["jobstart"].fillna(rows["started_at"])
    t, eta, end = rows["observed_at"], rows["jobeta"], rows["completed_at"]
    error_s, actual_s = _seconds(end - eta), _seconds(end - t)
    floor = max(2 * poll_interval_s(events), 60.0) if len(rows) else 60.0
    baseline_eta, baseline_error_s = _baseline(t, start, rows["jobprogress"], end)
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
            "actual_remaining_s": actual_s,
            "error_s": error_s,
            "abs_error_s": error_s.abs(),
            "error_lower_s": _seconds(rows["completed_after"] - eta),
            "error_upper_s": _seconds(rows["completed_before"] - eta),
            "relative_error": (-error_s / actual_s).where(actual_s >= floor),
            "duration_error": _seconds(eta - end) / _seconds(end - start),
            "hit": end <= eta,
            "baseline_eta": baseline_eta,
            "baseline_error_s": baseline_error_s,
        },
        copy=False,
    )
    return _finite(conform(out, _ERROR_COLUMNS))


def _last_attempt(rows: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """``rows`` observed after their job's last Failed snapshot, if it has one.

    A job that failed and was queued again completed in its last attempt: ETAs of the
    failed attempt predicted a completion that never came, so they are not scored.
    """
    failed = _listed(events, FAILED)
    last = select(events, failed, ["jobid", "observed_at"]).groupby("jobid")["observed_at"].max()
    if last.empty:
        return rows
    after = rows["jobid"].map(last)
    keep = (after.isna() | (rows["observed_at"] > after)).to_numpy(dtype=bool)
    return rows.loc[keep].reset_index(drop=True)


def _baseline(
    t: pd.Series, start: pd.Series, progress: pd.Series, end: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """Linear extrapolation from progress and elapsed time, and its error ``T - E_lin``.

    Computed in nanoseconds as ``t + pd.to_timedelta(remaining, unit="s")`` does, without
    its Python loop; pandas itself takes over near the limits of nanosecond times.
    """
    p = progress.astype(FLOAT).where((progress > 0) & (progress < 100))  # else no rule
    remaining = (_seconds(t - start) * (100 - p) / p).to_numpy(np.float64, na_value=np.nan)
    t_us, end_us = _sort_key(t), _sort_key(end)  # NA is int64 max: masked below
    ok = ~np.isnan(remaining) & t.notna().to_numpy()
    seconds = np.abs(remaining[ok]) + np.abs(t_us[ok]) / 1e6  # of the ETA, from 1970
    far = (
        seconds.max(initial=0.0) >= 9e9
        or np.abs(end_us[end.notna().to_numpy()]).max(initial=0) >= 9e15
    )
    if far or t.dtype != TIME or end.dtype != TIME:
        eta = t + pd.to_timedelta(remaining, unit="s")
        return eta, _seconds(end - eta)
    eta_ns = np.where(ok, t_us * 1000 + _nanoseconds(np.where(ok, remaining, 0.0)), _NAT)
    error = (end_us * 1000 - eta_ns) / 1e9
    missing = ~ok | end.isna().to_numpy()
    eta = pd.Series(eta_ns.view("M8[ns]").astype("M8[us]"), index=t.index).dt.tz_localize("UTC")
    error_s = pd.arrays.FloatingArray(np.where(missing, np.nan, error), missing)
    return eta, pd.Series(error_s, index=t.index, copy=False)


def _nanoseconds(seconds: np.ndarray) -> np.ndarray:
    """``pd.to_timedelta(seconds, unit="s")`` as int64, the same values without a Python loop.

    As pandas does, whole seconds and the fraction (rounded to 9 digits) are cast separately.
    """
    whole = seconds.astype(np.int64)
    fraction = np.round(seconds - whole, 9)
    return whole * 1_000_000_000 + (fraction * 1e9).astype(np.int64)


def _finite(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its infinite ratios (of a zero duration) as NA."""
    for name, dtype in _ERROR_COLUMNS.items():
        if dtype == FLOAT:
            inf = np.isinf(frame[name].to_numpy(dtype=np.float64, na_value=0.0))
            if inf.any():
                frame[name] = frame[name].mask(inf)
    return frame


def _in_job_order(errors: pd.DataFrame) -> pd.DataFrame:
    """``errors`` sorted by ``jobid`` then ``observed_at`` (as :func:`eta_errors` gives it)."""
    job, t = _sort_key(errors["jobid"]), _sort_key(errors["observed_at"])
    ordered = (job[1:] > job[:-1]) | ((job[1:] == job[:-1]) & (t[1:] >= t[:-1]))
    return errors if ordered.all() else errors.sort_values(["jobid", "observed_at"])


def _revisions(errors: pd.DataFrame) -> pd.DataFrame:
    """Per row of ``errors`` in job order: did ``jobeta`` change since the job's previous row,
    and by how much (microseconds, 0 for the first row or a missing ETA)."""
    jobid = errors["jobid"]
    same_job = jobid.eq(jobid.shift()).to_numpy(dtype=bool, na_value=False)
    eta = _sort_key(errors["jobeta"])
    step = np.zeros(len(errors), dtype=np.int64)
    step[1:] = eta[1:] - eta[:-1]
    known = errors["jobeta"].notna().to_numpy()
    moved = same_job & known & np.concatenate([[False], known[:-1]])
    return pd.DataFrame(
        {
            "jobid": jobid,
            "revised": moved & (step != 0),
            "revision_us": np.where(moved, np.abs(step), 0),
        },
        index=errors.index,
    )


@deprecated_positional("errors", "summary")
@per_rollout
def job_eta_metrics(
    events: pd.DataFrame,
    *,
    errors: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per job (of each rollout) with a known completion: ETA accuracy, how the ETA moved,
    and where time went.

    ``eta_mae_s`` / ``eta_bias_s`` / ``baseline_mae_s`` average the job's observations;
    ``paired_mae_s`` is ``eta_mae_s`` over the observations the baseline could score
    (progress between 0 and 100, exclusive), so the two compare like with like;
    ``revisions`` counts changes of ``jobeta`` between polls and ``revision_total_s`` adds up
    their size (total variation: flapping ETAs score high); ``error_at_25/50/75_s`` is the
    error of the first ETA given at or past that progress; ``queue_wait_s`` runs from queued
    to started, ``run_time_s`` from started to completed.

    ``summary`` (:func:`job_summary`) and ``errors`` (:func:`eta_errors`) of the same
    ``events`` are computed unless given.
    """
    summary = job_summary(events) if summary is None else summary
    errors = _in_job_order(eta_errors(events, summary=summary) if errors is None else errors)
    by_job = errors.groupby("jobid", sort=True)
    moves = _revisions(errors).groupby("jobid", sort=True)
    paired = errors["abs_error_s"].where(errors["baseline_error_s"].notna())
    out = pd.DataFrame(
        {
            "n_etas": by_job.size(),
            "eta_mae_s": by_job["abs_error_s"].mean(),
            "eta_bias_s": by_job["error_s"].mean(),
            "baseline_mae_s": errors["baseline_error_s"].abs().groupby(errors["jobid"]).mean(),
            "paired_mae_s": paired.groupby(errors["jobid"]).mean(),
            "hit_rate": by_job["hit"].mean(),
            "revisions": moves["revised"].sum(),
            "revision_total_s": moves["revision_us"].sum() / 1e6,
        }
    )
    error_s, progress = errors["error_s"], errors["jobprogress"]
    for level in (25, 50, 75):
        reached = (progress >= level).to_numpy(dtype=bool, na_value=False) & error_s.notna()
        out[f"error_at_{level}_s"] = error_s[reached].groupby(errors["jobid"][reached]).first()
    summary = summary.set_index("jobid")
    out["queue_wait_s"] = _seconds(summary["started_at"] - summary["queued_at"])
    out["run_time_s"] = install_seconds(summary)
    return out.astype(FLOAT).astype({"n_etas": INT, "revisions": INT}).reset_index()


@per_rollout_rows
def error_by(errors: pd.DataFrame, by: str) -> pd.DataFrame:
    """ETA accuracy by ``by`` (e.g. ``progress_decile``, ``location``, ``kind``), per rollout.

    Aggregated per job first, then across jobs, so long jobs with many polls do not dominate:
    ``mae_s`` is the mean over jobs of each job's mean absolute error in the group.
    """
    per_job = errors.groupby([by, "jobid"], observed=True).agg(
        mae=("abs_error_s", "mean"),
        bias=("error_s", "mean"),
        hit=("hit", "mean"),
        n=("error_s", "size"),
    )
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
