"""The headline figures of a rollout, or of a group of its jobs, each defined once.

:func:`~cfanalytics.rollout_metrics`, :func:`group_metrics` (and through it the history's
tables and trends) and :func:`~cfanalytics.compare` all take their figures from here:

- when a rollout started (:func:`rollout_start`) and how long until a share of its jobs had
  done something (:func:`time_to_share`);
- the outcome counts (:func:`outcome_counts`);
- the figures that are a statistic of one value per job (:data:`STATISTICS` over
  :func:`job_values`): install time p50 and p90 (:func:`install_seconds`), the ETA's MAE
  and bias averaged across jobs (per job first: :func:`job_eta_metrics`) and the failure
  rate (failed / ended: :func:`ended_failed`);
- which way is worse (:func:`severity`): larger, or for a bias further from 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..events import FLOAT, INT, TEXT, TIME, Schema
from ..exceptions import RolloutError
from ._columns import returns
from ._common import conform, pick_rollout, seconds
from ._failures import ended_failed
from ._summary import install_seconds

__all__ = [
    "GROUP_METRICS",
    "STATISTICS",
    "TWO_SIDED",
    "group_metrics",
    "job_values",
    "outcome_counts",
    "rollout_start",
    "severity",
    "statistic",
    "time_to_share",
]

#: Headline figures of a rollout or a group of its jobs, their dtypes and meanings.
GROUP_METRICS = Schema(
    {
        "jobs": (INT, "jobs in the group"),
        "completed": (INT, "of them, completed"),
        "failed": (INT, "of them, failed"),
        "unfinished": (INT, "of them, unfinished or unknown"),
        "failure_rate": (FLOAT, "failed / ended (completed, failed or squashed)"),
        "time_to_50_s": (FLOAT, "from the rollout's start until 50 % of the jobs completed, s"),
        "time_to_90_s": (FLOAT, "from the rollout's start until 90 % of the jobs completed, s"),
        "install_p50_s": (FLOAT, "median install time (started to completed), s"),
        "install_p90_s": (FLOAT, "90th percentile of the install time, s"),
        "eta_mae_s": (FLOAT, "mean over jobs of each job's ETA mean absolute error, s"),
        "eta_bias_s": (FLOAT, "mean over jobs of each job's mean ETA error (T - E), s"),
    }
)
# group_metrics: the figures of each group of ``by``, or of all the jobs.
_GROUPS = Schema(
    {"<by>": (TEXT, "the group's value of the summary column ``by`` names (none without)")}
    | GROUP_METRICS.entries()
)


def _median(x: np.ndarray) -> Any:
    return np.quantile(x, 0.5, axis=-1)


def _p90(x: np.ndarray) -> Any:
    return np.quantile(x, 0.9, axis=-1)  # linear interpolation, as pandas' quantile


def _mean(x: np.ndarray) -> Any:
    return x.mean(axis=-1)


#: Each figure that is a statistic of one value per job (a :func:`job_values` column): the
#: column and the statistic, over the last axis (a bootstrap's resamples in one call).
STATISTICS: Mapping[str, tuple[str, Callable[[np.ndarray], Any]]] = {
    "install_p50_s": ("install_s", _median),
    "install_p90_s": ("install_s", _p90),
    "eta_mae_s": ("eta_mae_s", _mean),
    "eta_bias_s": ("eta_bias_s", _mean),
    "failure_rate": ("failed", _mean),
}
#: Figures bad either way from 0: judged (compared, ranked) by their size.
TWO_SIDED = frozenset({"eta_bias_s"})


def severity(metric: str, values: Any) -> Any:
    """``values`` of ``metric`` as how bad they are, larger worse: a bias by its size."""
    return np.abs(values) if metric in TWO_SIDED else values


def rollout_start(summary: pd.DataFrame) -> pd.Timestamp:
    """When a rollout started, from its job summary: its first queue answer, else its first
    observation (NaT for no jobs). Every "time to" of a rollout counts from here."""
    start = summary["queued_at"].min()
    return summary["first_seen"].min() if pd.isna(start) else start


def time_to_share(times: pd.Series, share: int, start: pd.Timestamp) -> object:
    """Seconds from ``start`` until ``share`` % of all rows of ``times`` had happened (NA if
    never: a missing time counts in the total but is never reached)."""
    return _time_to_share(_instants(times), share, start)


def outcome_counts(outcome: pd.Series) -> dict[str, int]:
    """``jobs``, ``completed``, ``failed`` and ``unfinished`` (or unknown) of the outcomes."""
    return {"jobs": len(outcome), **{k: int(v.sum()) for k, v in _outcomes(outcome).items()}}


def _outcomes(outcome: pd.Series) -> dict[str, np.ndarray]:
    """Per counted outcome, which rows have it."""
    found = {
        "completed": outcome == "completed",
        "failed": outcome == "failed",
        "unfinished": outcome.isin(["unfinished", "unknown"]),
    }
    return {name: rows.to_numpy(dtype=bool, na_value=False) for name, rows in found.items()}


def _instants(times: pd.Series) -> np.ndarray:
    """Times as UTC ``datetime64[us]`` (NaT: none), what :func:`_time_to_share` takes."""
    instants: np.ndarray = times.astype(TIME).to_numpy(
        dtype="datetime64[us]", na_value=np.datetime64("NaT")
    )
    return instants


def _time_to_share(instants: np.ndarray, share: int, start: pd.Timestamp) -> object:
    """:func:`time_to_share` of :func:`_instants` (one group's: no pandas per group)."""
    needed = int(np.ceil(len(instants) * share / 100))
    done = np.sort(instants[~np.isnat(instants)])
    if not 0 < needed <= len(done):
        return pd.NA
    if pd.isna(start):
        return np.nan
    began = np.datetime64(pd.Timestamp(start).tz_convert("UTC").tz_localize(None), "us")
    return float(seconds(done[needed - 1 : needed] - began)[0])


def job_values(summary: pd.DataFrame, per_job: pd.DataFrame) -> pd.DataFrame:
    """Per job of one rollout's summary (its rows, in order): the values the
    :data:`STATISTICS` are of, as floats, NaN where a job has none: ``install_s``,
    ``eta_mae_s``, ``eta_bias_s`` (from ``per_job``, :func:`job_eta_metrics`) and ``failed``
    (1 failed, 0 ended otherwise, NaN not ended)."""
    etas = per_job.set_index("jobid")
    columns = {
        "install_s": install_seconds(summary),
        "eta_mae_s": etas["eta_mae_s"].reindex(summary["jobid"]),
        "eta_bias_s": etas["eta_bias_s"].reindex(summary["jobid"]),
        "failed": ended_failed(summary).astype(FLOAT),
    }
    return pd.DataFrame(
        {name: values.to_numpy(np.float64, na_value=np.nan) for name, values in columns.items()}
    )


def statistic(metric: str, values: np.ndarray) -> float:
    """``metric`` (one of :data:`STATISTICS`) of the known ``values`` (NaN: none)."""
    known = values[~np.isnan(values)]
    return float(STATISTICS[metric][1](known)) if len(known) else np.nan


@returns(_GROUPS)
def group_metrics(
    summary: pd.DataFrame, per_job: pd.DataFrame, *, by: str | None = None
) -> pd.DataFrame:
    """:data:`GROUP_METRICS` of one rollout's jobs, whole (one row) or per value of ``by``
    (a column of the summary: ``location``, ``kind``...; NA is a group too), from its
    :func:`job_summary` and :func:`job_eta_metrics`. Times count from the rollout's start.

    Raises :class:`~cfanalytics.exceptions.RolloutError` for tables of several rollouts.
    """
    try:
        pick_rollout([summary, per_job], None)
    except RolloutError as exc:
        raise RolloutError(
            f"group_metrics takes the tables of one rollout: {str(exc).split(';')[0]}; "
            "cut them to one with table[table['rollout'] == ID]"
        ) from None
    if by is not None and by not in summary.columns:
        raise ValueError(f"cannot group by {by!r}: not a job summary column")
    start = rollout_start(summary)
    values = job_values(summary, per_job)
    if by is None:  # one group, even of no jobs
        codes, keys = np.zeros(len(summary), dtype=np.int64), ["all"]
    else:
        codes, keys = pd.factorize(summary[by].astype(TEXT), use_na_sentinel=False)
    outcomes, completed = _outcomes(summary["outcome"]), _instants(summary["completed_at"])
    rows = []
    for code, key in enumerate(keys):
        at = np.flatnonzero(codes == code)
        row: dict[str, Any] = {"_key": key, "jobs": len(at)}
        row |= {name: int(rows_of[at].sum()) for name, rows_of in outcomes.items()}
        for share in (50, 90):
            row[f"time_to_{share}_s"] = _time_to_share(completed[at], share, start)
        for metric, (column, _) in STATISTICS.items():
            row[metric] = statistic(metric, values[column].to_numpy()[at])
        rows.append(row)
    out = pd.DataFrame(rows, columns=["_key", *GROUP_METRICS])
    out = out.sort_values("_key", na_position="last", kind="stable", ignore_index=True)
    if by is None:
        return conform(out, GROUP_METRICS)
    return conform(out.rename(columns={"_key": by}), {by: TEXT, **GROUP_METRICS})
