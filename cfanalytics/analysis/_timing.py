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

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from ..events import BOOL, FLOAT, INT, TIME, Schema
from . import _segments as segments
from ._columns import returns
from ._common import (
    FAILED,
    RUNNING,
    answers,
    conform,
    deprecated_positional,
    is_snapshot,
    known,
    per_rollout,
    per_rollout_rows,
    polls,
    seconds,
    select,
    state_ids,
    with_rollout,
)
from ._segments import mean_by, sort_key
from ._summary import SUMMARY_SCHEMA, install_seconds, job_summary_of

__all__ = [
    "ETA_ERROR_SCHEMA",
    "error_by",
    "eta_errors",
    "eta_errors_of",
    "job_eta_metrics",
    "job_eta_metrics_of",
    "poll_interval_s",
]

# The columns of one rollout's ETA errors, before its ``rollout``. t: the poll, E: its ETA,
# T: the completion, s: the start, p: the progress (module docstring).
_ERROR_COLUMNS = Schema(
    {
        **SUMMARY_SCHEMA.entries("jobid", "kind", "location", "machine", "mirror"),
        "observed_at": (TIME, "t: when the Running snapshot was seen"),
        "jobprogress": (INT, "p: its progress at t, percent"),
        "progress_decile": (INT, "0 for 0-9 %, ..., 9 for 90-100 %"),
        "elapsed_fraction": (FLOAT, "(t - s) / (T - s): the share of its run time gone by"),
        "jobeta": (TIME, "E: the ETA given at t"),
        "completed_at": (TIME, "T: its completion, exact or its window's middle"),
        "exact": (BOOL, "completion seen exactly, not interval-censored"),
        "predicted_remaining_s": (FLOAT, "E - t, s"),
        "actual_remaining_s": (FLOAT, "T - t, s"),
        "error_s": (FLOAT, "T - E, s; positive: it finished later than predicted"),
        "abs_error_s": (FLOAT, "|T - E|, s"),
        "error_lower_s": (FLOAT, "completed_after - E, s: the error's lower bound"),
        "error_upper_s": (FLOAT, "completed_before - E, s: the error's upper bound"),
        "relative_error": (
            FLOAT,
            "(E - T) / (T - t); NA while T - t is under two poll intervals or 60 s",
        ),
        "duration_error": (FLOAT, "(E - T) / (T - s): compares small and large images"),
        "hit": (BOOL, "finished by its ETA: T <= E"),
        "baseline_eta": (TIME, "naive linear ETA: t + (t - s) (100 - p) / p"),
        "baseline_error_s": (FLOAT, "T - baseline_eta, s: what jobeta is judged against"),
    }
)
#: Every column of the ETA error table, its dtype and meaning, in order.
ETA_ERROR_SCHEMA = with_rollout(_ERROR_COLUMNS)
#: The progress levels :func:`job_eta_metrics` gives the error at.
_LEVELS = (25, 50, 75)
# job_eta_metrics: one row per job with a known completion.
_METRIC_COLUMNS = with_rollout(
    Schema(
        {
            **SUMMARY_SCHEMA.entries("jobid"),
            "n_etas": (INT, "its ETA observations: its rows of eta_errors"),
            "eta_mae_s": (FLOAT, "mean absolute error of its ETAs, s"),
            "eta_bias_s": (FLOAT, "mean error of its ETAs (T - E), s; positive: late"),
            "baseline_mae_s": (FLOAT, "the naive linear ETA's mean absolute error, s"),
            "paired_mae_s": (
                FLOAT,
                "eta_mae_s over the observations the baseline could score (progress "
                "strictly between 0 and 100): compares like with like",
            ),
            "hit_rate": (FLOAT, "share of its ETAs it finished by"),
            "revisions": (INT, "changes of jobeta between its polls"),
            "revision_total_s": (FLOAT, "their total size, s: flapping ETAs score high"),
            **{
                f"error_at_{level}_s": (FLOAT, f"error of its first ETA at or past {level} %, s")
                for level in _LEVELS
            },
            "queue_wait_s": (FLOAT, "from queued to started, s"),
            "run_time_s": (FLOAT, "from started to completed, s (install_seconds)"),
        }
    )
)
# error_by: one row per group of ETA errors.
_GROUP_COLUMNS = with_rollout(
    Schema(
        {
            "<by>": ("as in the errors", "the group: its values of the columns ``by`` names"),
            "n_jobs": (np.dtype("int64"), "jobs with ETA errors in the group"),
            "n_observations": (INT, "ETA errors in the group"),
            "mae_s": (FLOAT, "mean over its jobs of each job's mean absolute error, s"),
            "bias_s": (FLOAT, "mean over its jobs of each job's mean error (T - E), s"),
            "hit_rate": (FLOAT, "mean over its jobs of each job's share of ETAs hit"),
        }
    )
)

_NAT = np.iinfo(np.int64).min
#: The summary columns an ETA error row takes from its job.
_ATTRIBUTES = ["kind", "location", "machine", "mirror"]
_WINDOW = ["jobid", *_ATTRIBUTES, "started_at", "completed_at"]
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


def _listed(events: pd.DataFrame) -> np.ndarray:
    """The state id (by the one rule, :func:`state_ids`) of each status snapshot, else -1."""
    listed = is_snapshot(events) & answers(events, "status")
    out: np.ndarray = np.where(listed, state_ids(events), -1)
    return out


def _floats(values: np.ndarray) -> pd.arrays.FloatingArray:
    """``values`` as ``Float64``: NaN is NA, and so is the infinite ratio of a zero duration."""
    return pd.arrays.FloatingArray(values, ~np.isfinite(values))


def _times(events: pd.DataFrame, name: str, at: np.ndarray) -> np.ndarray:
    """Time column ``name`` of ``events`` at rows ``at``, as ``datetime64[us]``."""
    out: np.ndarray = events[name].to_numpy(dtype="datetime64[us]")[at]
    return out


def _running(
    events: pd.DataFrame, listed: np.ndarray, done: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Running status rows (``listed``: :func:`_listed`) with an ETA, of the jobs in ``done``:
    for each row of their inner join on ``jobid``, its position in ``events`` and in ``done``,
    and its ``observed_at``; sorted by ``jobid``, then ``observed_at`` (stably, NA last)."""
    at = np.flatnonzero((listed == RUNNING) & known(events, "jobeta"))
    jobid = events["jobid"].array
    if done["jobid"].is_unique:
        job = pd.Index(done["jobid"]).get_indexer(jobid[at])
        at, job = at[job >= 0], job[job >= 0]
    else:  # not one row per job: the general join
        left = pd.DataFrame({"jobid": jobid[at], "at": at})
        right = pd.DataFrame({"jobid": done["jobid"].array, "job": np.arange(len(done))})
        pairs = left.merge(right, on="jobid", how="inner")
        at, job = pairs["at"].to_numpy(), pairs["job"].to_numpy()
    ids = events["jobid"].to_numpy(dtype=np.int64, na_value=segments.LAST)[at]
    t = _times(events, "observed_at", at)
    by_job = segments.order(ids, sort_key(t))
    return at[by_job], job[by_job], t[by_job]


def _last_attempt(
    events: pd.DataFrame,
    listed: np.ndarray,
    done: pd.DataFrame,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows (of :func:`_running`) observed after their job's last Failed snapshot, if it
    has one.

    A job that failed and was queued again completed in its last attempt: ETAs of the
    failed attempt predicted a completion that never came, so they are not scored.
    """
    failed = select(events, listed == FAILED, ["jobid", "observed_at"])
    last = failed.groupby("jobid")["observed_at"].max()
    if last.empty:
        return rows
    at, job, t = rows
    after = last.reindex(done["jobid"]).to_numpy(dtype="datetime64[us]")[job]
    keep = np.isnat(after) | (t > after)
    return at[keep], job[keep], t[keep]


def eta_errors_of(events: pd.DataFrame, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`eta_errors` of one rollout's events, without a ``rollout`` column."""
    jobs = job_summary_of(events) if summary is None else summary
    done = jobs.loc[jobs["completed_at"].notna(), _WINDOW]
    listed = _listed(events)
    at, job, t = _last_attempt(events, listed, done, _running(events, listed, done))
    floor = max(2 * poll_interval_s(events), 60.0) if len(at) else 60.0
    columns = {
        "jobid": events["jobid"].array.take(at),
        **{name: done[name].array.take(job) for name in _ATTRIBUTES},
        "observed_at": pd.array(t, dtype=TIME),
        **_scores(events, done, (at, job, t), floor),
    }
    return conform(pd.DataFrame(columns, copy=False), _ERROR_COLUMNS)


def _scores(
    events: pd.DataFrame,
    done: pd.DataFrame,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    floor: float,
) -> dict[str, object]:
    """The columns of :func:`eta_errors` that score each of ``rows`` (:func:`_running`),
    from its ETA, its progress, and its job's start and completion (``done``); a relative
    error only while ``T - t`` is at least ``floor`` seconds."""
    at, job, t = rows
    eta, jobstart = _times(events, "jobeta", at), _times(events, "jobstart", at)
    end, after, before, started = (
        done[name].to_numpy(dtype="datetime64[us]")[job]
        for name in ("completed_at", "completed_after", "completed_before", "started_at")
    )
    start = np.where(np.isnat(jobstart), started, jobstart)
    progress = events["jobprogress"].array.take(at)
    error_s, actual_s = seconds(end - eta), seconds(end - t)
    elapsed_s, duration_s = seconds(t - start), seconds(end - start)
    baseline_eta, baseline_error_s = _baseline(t, elapsed_s, progress, end)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "jobprogress": progress,
            "progress_decile": _decile(progress),
            "elapsed_fraction": _floats(elapsed_s / duration_s),
            "jobeta": pd.array(eta, dtype=TIME),
            "completed_at": pd.array(end, dtype=TIME),
            "exact": after == before,
            "predicted_remaining_s": _floats(seconds(eta - t)),
            "actual_remaining_s": _floats(actual_s),
            "error_s": _floats(error_s),
            "abs_error_s": _floats(np.abs(error_s)),
            "error_lower_s": _floats(seconds(after - eta)),
            "error_upper_s": _floats(seconds(before - eta)),
            "relative_error": _floats(np.where(actual_s >= floor, -error_s / actual_s, np.nan)),
            "duration_error": _floats(seconds(eta - end) / duration_s),
            "hit": end <= eta,
            "baseline_eta": baseline_eta,
            "baseline_error_s": _floats(baseline_error_s),
        }


@returns(ETA_ERROR_SCHEMA)
@deprecated_positional("summary")
@per_rollout
def eta_errors(events: pd.DataFrame, *, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per Running observation with an ETA, of every job with a known completion.

    Sorted by rollout, ``jobid``, then ``observed_at``; columns below
    (:data:`ETA_ERROR_SCHEMA`): t is the poll, E its ETA, T the completion, s the start, p
    the progress. ``summary`` (:func:`job_summary` of ``events``) is computed unless given.
    """
    return eta_errors_of(events, summary)


def _decile(progress: pd.api.extensions.ExtensionArray) -> pd.arrays.IntegerArray:
    """The progress decile of each ``jobprogress``: 0 for 0-9 %, ..., 9 for 90-100 %."""
    values = np.clip(progress.to_numpy(dtype=np.int64, na_value=0), 0, 99) // 10
    return pd.arrays.IntegerArray(values, np.asarray(progress.isna()))


def _baseline(
    t: np.ndarray,
    elapsed_s: np.ndarray,
    progress: pd.api.extensions.ExtensionArray,
    end: np.ndarray,
) -> tuple[pd.api.extensions.ExtensionArray, np.ndarray]:
    """Linear extrapolation from progress and the seconds elapsed since the start, and its
    error ``T - E_lin`` in seconds (NaN where unknown); times are ``datetime64[us]``.

    Computed in nanoseconds as ``t + pd.to_timedelta(remaining, unit="s")`` does, without
    its Python loop; pandas itself takes over near the limits of nanosecond times.
    """
    p = progress.to_numpy(dtype=np.float64, na_value=np.nan)
    p[(p <= 0) | (p >= 100)] = np.nan  # no rule
    remaining = elapsed_s * (100 - p) / p
    t_us, end_us = t.view(np.int64), end.view(np.int64)
    ok = ~np.isnan(remaining) & ~np.isnat(t)
    far = (np.abs(remaining[ok]) + np.abs(t_us[ok]) / 1e6).max(initial=0.0) >= 9e9 or np.abs(
        end_us[~np.isnat(end)]
    ).max(initial=0) >= 9e15
    if far:
        eta = pd.Series(t).dt.tz_localize("UTC") + pd.to_timedelta(remaining, unit="s")
        return eta.astype(TIME).array, seconds((pd.Series(end).dt.tz_localize("UTC") - eta).array)
    eta_ns = np.where(ok, t_us * 1000 + _nanoseconds(np.where(ok, remaining, 0.0)), _NAT)
    error = np.where(ok & ~np.isnat(end), (end_us * 1000 - eta_ns) / 1e9, np.nan)
    return pd.array(eta_ns.view("M8[ns]").astype("M8[us]"), dtype=TIME), error


def _nanoseconds(seconds: np.ndarray) -> np.ndarray:
    """``pd.to_timedelta(seconds, unit="s")`` as int64, the same values without a Python loop.

    As pandas does, whole seconds and the fraction (rounded to 9 digits) are cast separately.
    """
    whole = seconds.astype(np.int64)
    fraction = np.round(seconds - whole, 9)
    return whole * 1_000_000_000 + (fraction * 1e9).astype(np.int64)


def _in_job_order(errors: pd.DataFrame) -> pd.DataFrame:
    """``errors`` sorted by ``jobid`` then ``observed_at`` (as :func:`eta_errors` gives it)."""
    job, t = sort_key(errors["jobid"]), sort_key(errors["observed_at"])
    ordered = (job[1:] > job[:-1]) | ((job[1:] == job[:-1]) & (t[1:] >= t[:-1]))
    return errors if ordered.all() else errors.sort_values(["jobid", "observed_at"])


def _revisions(errors: pd.DataFrame, jobs: segments.Segments) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``errors`` (in job order, ``jobs`` its segments): did ``jobeta`` change since
    the job's previous row, and by how much (microseconds, 0 for a first row or a missing ETA)."""
    eta = sort_key(errors["jobeta"])
    step = np.zeros(len(errors), dtype=np.int64)
    step[1:] = eta[1:] - eta[:-1]
    given = errors["jobeta"].notna().to_numpy()
    moved = ~segments.changes(jobs.of_row) & given & np.concatenate([[False], given[:-1]])
    return moved & (step != 0), np.where(moved, np.abs(step), 0)


def job_eta_metrics_of(
    events: pd.DataFrame,
    *,
    errors: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """:func:`job_eta_metrics` of one rollout's events, without a ``rollout`` column."""
    summary = job_summary_of(events) if summary is None else summary
    errors = _in_job_order(eta_errors_of(events, summary) if errors is None else errors)
    if errors["jobid"].hasnans:  # grouped by none: left out (NA sorts last)
        errors = errors.loc[errors["jobid"].notna().to_numpy()]
    jobs = segments.Segments.of(errors["jobid"].to_numpy(dtype=np.int64))
    error_s, baseline = errors["error_s"], errors["baseline_error_s"]
    out = mean_by(
        {
            "eta_mae_s": errors["abs_error_s"],
            "eta_bias_s": error_s,
            "baseline_mae_s": baseline.abs(),
            "paired_mae_s": errors["abs_error_s"].where(baseline.notna()),
        },
        jobs.of_row,
        len(jobs.keys),
    ).set_axis(pd.Index(pd.array(jobs.keys, dtype=INT), name="jobid"))
    out.insert(0, "n_etas", jobs.sizes())
    hit, given = _flags(errors["hit"])
    with np.errstate(invalid="ignore"):  # a job without a known hit: NA
        out["hit_rate"] = jobs.count(hit) / jobs.count(given)
    revised, revision_us = _revisions(errors, jobs)
    out["revisions"] = jobs.count(revised)
    out["revision_total_s"] = jobs.sum(revision_us) / 1e6
    progress = errors["jobprogress"].to_numpy(dtype=np.int64, na_value=-1)
    error = _float_values(errors, "error_s")
    for level in _LEVELS:
        first = jobs.first((progress >= level) & ~np.isnan(error))
        out[f"error_at_{level}_s"] = segments.pick(error, first, np.nan)
    summary = summary.set_index("jobid")
    waited = seconds((summary["started_at"] - summary["queued_at"]).to_numpy("m8[us]"))
    out["queue_wait_s"] = pd.Series(waited, index=summary.index)
    out["run_time_s"] = install_seconds(summary)
    return out.astype(FLOAT).astype({"n_etas": INT, "revisions": INT}).reset_index()


def _group_keys(
    errors: pd.DataFrame, keys: list[str]
) -> tuple[np.ndarray, dict[str, ExtensionArray | np.ndarray]]:
    """Per row, the number of its combination of ``keys`` among those present in sorted
    order (-1: a key is missing); and per key, its value in each combination."""
    codes, uniques = zip(*(segments.factorize(errors[key]) for key in keys), strict=True)
    if len(keys) == 1:
        return codes[0], {keys[0]: uniques[0]}
    shape = tuple(len(u) for u in uniques)
    number = np.full(len(errors), -1, dtype=np.int64)
    known = np.logical_and.reduce([c >= 0 for c in codes])
    if not known.any():
        return number, {key: u[:0] for key, u in zip(keys, uniques, strict=True)}
    flat = np.ravel_multi_index([c[known] for c in codes], shape)
    number[known], present = segments.group_numbers(flat, int(np.prod(shape)))
    which = np.unravel_index(present, shape)
    return number, {key: u.take(w) for key, u, w in zip(keys, uniques, which, strict=True)}


def _flags(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Where a boolean ``column`` is true, and where it is known: its mean is the share of
    the one among the other, the same number whichever way it is summed."""
    return column.to_numpy(dtype=bool, na_value=False), column.notna().to_numpy()


def _float_values(table: pd.DataFrame, name: str) -> np.ndarray:
    """Column ``name`` as ``float64``, NaN where missing."""
    out: np.ndarray = table[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return out


@returns(_METRIC_COLUMNS)
@deprecated_positional("errors", "summary")
@per_rollout
def job_eta_metrics(
    events: pd.DataFrame,
    *,
    errors: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per job (of each rollout) with a known completion: ETA accuracy over its observations
    (:func:`eta_errors`), how the ETA moved, and where time went.

    ``summary`` (:func:`job_summary`) and ``errors`` (:func:`eta_errors`) of the same
    ``events`` are computed unless given.
    """
    return job_eta_metrics_of(events, errors=errors, summary=summary)


@returns(_GROUP_COLUMNS)
@per_rollout_rows
def error_by(errors: pd.DataFrame, by: str | Sequence[str]) -> pd.DataFrame:
    """ETA accuracy by ``by``: one column of :func:`eta_errors` (``progress_decile``,
    ``location``, ``kind``, ``machine``, ``mirror``, ``rollout``...) or several, one row per
    combination present, in sorted order; rows with a missing key are left out, as groupby
    does.

    Aggregated per job first, then across jobs, so long jobs with many polls do not dominate.
    """
    keys = [by] if isinstance(by, str) else list(by)
    unknown = [key for key in keys if key not in errors.columns]
    if not keys or unknown:
        raise ValueError(
            f"cannot group ETA errors by {', '.join(map(repr, unknown)) or 'nothing'}: give "
            f"columns of eta_errors ({', '.join(errors.columns)})"
        )
    group, labels = _group_keys(errors, keys)
    values = np.arange(len(next(iter(labels.values()))))
    job, jobids = segments.factorize(errors["jobid"])
    keep = (group >= 0) & (job >= 0)
    rows = slice(None) if keep.all() else np.flatnonzero(keep)  # usually all: no copies
    pair, pairs = segments.group_numbers(
        group[rows] * len(jobids) + job[rows], len(values) * len(jobids)
    )
    columns = {"mae": "abs_error_s", "bias": "error_s"}
    per_job = mean_by(
        {name: errors[column].array[rows] for name, column in columns.items()}, pair, len(pairs)
    )
    hit, given = (flags[rows] for flags in _flags(errors["hit"]))
    with np.errstate(invalid="ignore"):  # a pair without a known hit: NaN, skipped below
        rate = np.bincount(pair, hit, len(pairs)) / np.bincount(pair, given, len(pairs))
    per_job["hit"] = _floats(rate)  # nullable, as pandas would give it: summed alike below
    groups = segments.Segments.of(pairs // len(jobids))  # pairs by group, then job
    means = mean_by(per_job, groups.of_row, len(groups.keys))
    return pd.DataFrame(
        {
            **{key: label.take(groups.keys) for key, label in labels.items()},
            "n_jobs": groups.sizes(),
            "n_observations": pd.array(groups.sum(np.bincount(pair, minlength=len(pairs))), INT),
            "mae_s": means["mae"].array,
            "bias_s": means["bias"].array,
            "hit_rate": means["hit"].array,
        }
    )
