"""Is this rollout worse than that one, beyond noise? Two rollouts, metric by metric.

:func:`compare` takes the events of two rollouts, ``a`` (the reference, e.g. last week's) and
``b`` (the one in question), and gives one row per metric and group of jobs. Every metric is
a rule defined elsewhere, imported here:

- ``jobs``: how many jobs (:func:`~cfanalytics.job_summary` rows);
- the figures that are a statistic of one value per job, as every headline gives them
  (:data:`~cfanalytics.analysis._headline.STATISTICS`): ``install_p50_s`` /
  ``install_p90_s`` (install durations), ``eta_mae_s`` / ``eta_bias_s`` (per job first, then
  across jobs; the bias is positive when jobs finished later than their ETAs said) and
  ``failure_rate`` (failed / ended).

Noise is measured by the bootstrap: the jobs behind a value are resampled with replacement,
``n_boot`` times, in ``a`` and ``b`` independently, and the difference ``b - a`` is computed
for each resample; ``low`` and ``high`` are its percentile interval at ``level``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..events import FLOAT, INT, TEXT, Schema, category
from ..exceptions import RolloutError
from ._columns import returns
from ._common import conform, one_rollout
from ._headline import STATISTICS, job_values, severity
from ._summary import SUMMARY_SCHEMA, job_summary_of
from ._timing import job_eta_metrics_of

__all__ = ["ALL", "COMPARE_SCHEMA", "METRICS", "VERDICTS", "compare"]

#: The metrics compared, in the order of the rows of each group.
METRICS = ("jobs", *STATISTICS)
#: The categories of ``verdict``; NA where no verdict can be given.
VERDICTS = ("better", "same", "worse")
#: What the group columns hold in the rows about every job of the rollouts.
ALL = "all"

_DEFAULT_BY = ("location", "kind")
#: Resamples drawn at once: bounds the memory a bootstrap takes (n jobs x this, int64).
_CHUNK = 100


def _schema(by: Sequence[str]) -> Schema:
    """The columns, dtypes and meanings of a comparison grouped by ``by``."""
    return Schema(
        {
            "rollout_a": (TEXT, "the reference rollout"),
            "rollout_b": (TEXT, "the rollout in question"),
            "metric": (category(METRICS), "what is compared (module docstring)"),
            **dict.fromkeys(by, (TEXT, "the group's value of this summary column, or all")),
            "a": (FLOAT, "the metric's value in a"),
            "b": (FLOAT, "the metric's value in b"),
            "diff": (FLOAT, "b - a"),
            "low": (FLOAT, "the bootstrap percentile interval of diff at level: its low end"),
            "high": (FLOAT, "its high end"),
            "n_a": (INT, "the jobs behind the value in a: with a duration, ETA errors, ended"),
            "n_b": (INT, "the same in b"),
            "verdict": (category(VERDICTS), "b against a, beyond noise (below); NA: none given"),
        }
    )


#: Every column of :func:`compare` with the default ``by``, its dtype and meaning, in order.
#: Another ``by`` puts its columns (text) where ``location`` and ``kind`` are.
COMPARE_SCHEMA = _schema(_DEFAULT_BY)


@returns(_schema(["<by>"]))
def compare(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    by: str | Sequence[str] = _DEFAULT_BY,
    level: float = 0.9,
    n_boot: int = 2000,
    seed: int = 0,
    rollout_a: str | None = None,
    rollout_b: str | None = None,
) -> pd.DataFrame:
    """Rollout ``b`` against rollout ``a``: for each metric (module docstring), by group.

    ``a`` and ``b`` are events tables of one rollout each (``rollout_a`` / ``rollout_b``
    pick one of several); :class:`~cfanalytics.exceptions.RolloutError` names the rollouts
    found when a table holds several and none is named. A rollout may be compared with itself.

    One row per group and metric, tidy: the group's rows about every job first (each ``by``
    column holds :data:`ALL`), then one group per combination of the ``by`` columns (job
    summary columns, as text; a missing value is NA) seen in either rollout, sorted. In each
    group the metrics come in :data:`METRICS` order. Columns below (:data:`COMPARE_SCHEMA`
    for the default ``by``); ``verdict``:

    - ``worse``: the interval lies above 0 (slower installs, larger ETA error, more
      failures); ``better``: below 0; ``same``: it holds 0;
    - ``eta_bias_s`` is bad either way from 0, so its verdict compares ``|bias|``: ``worse``
      when the interval of ``|b| - |a|``, from the same resamples, lies above 0. Its
      ``diff``, ``low`` and ``high`` stay signed: positive when jobs of ``b`` finish later,
      relative to their ETAs, than those of ``a``;
    - NA (no verdict, ``low`` and ``high`` NA too) for ``jobs``, and wherever a side has
      fewer than 2 jobs behind the value.

    Each row's resamples come from ``numpy.random.default_rng([seed, k])``, ``k`` a checksum
    of its metric and group, so the same inputs give the same table byte for byte, and a row
    does not change with the other rows (the ``all`` rows are the same whatever ``by``).
    """
    by = (by,) if isinstance(by, str) else tuple(by)
    _check(by, level, n_boot)
    name_a, jobs_a = _jobs(a, rollout_a, by, side="a")
    name_b, jobs_b = _jobs(b, rollout_b, by, side="b")
    rows = [
        {
            "rollout_a": name_a,
            "rollout_b": name_b,
            "metric": metric,
            **dict(zip(by, group or [ALL] * len(by), strict=True)),
            **_row(metric, group, values_a, values_b, level=level, n_boot=n_boot, seed=seed),
        }
        for group, values_a, values_b in _groups(jobs_a, jobs_b, by)
        for metric in METRICS
    ]
    return conform(pd.DataFrame(rows, columns=list(_schema(by))), _schema(by))


def _check(by: tuple[str, ...], level: float, n_boot: int) -> None:
    """Raise ValueError for arguments :func:`compare` cannot use."""
    unknown = [name for name in by if name not in SUMMARY_SCHEMA or name == "rollout"]
    if unknown or len(set(by)) < len(by):
        raise ValueError(f"cannot group by {list(by)}: use distinct job summary columns")
    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1, not {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, not {n_boot}")


def _jobs(
    events: pd.DataFrame, rollout: str | None, by: tuple[str, ...], *, side: str
) -> tuple[str | None, pd.DataFrame]:
    """The rollout's name and one row per job: its ``by`` columns as text and its values
    (``install_s``, ``eta_mae_s``, ``eta_bias_s``, ``failed`` as 1/0), NaN where none."""
    try:
        name, events = one_rollout(events, rollout)
    except RolloutError as exc:  # say which side, and which keyword picks one
        raise RolloutError(f"{side}: {exc}".replace("rollout=", f"rollout_{side}=")) from exc
    summary = job_summary_of(events)  # one rollout's events already: split once
    jobs = job_values(summary, job_eta_metrics_of(events, summary=summary))
    for column in by:
        jobs[column] = summary[column].astype(TEXT).to_numpy(dtype=object, na_value=None)
    return name, jobs


def _groups(
    jobs_a: pd.DataFrame, jobs_b: pd.DataFrame, by: tuple[str, ...]
) -> list[tuple[tuple[Any, ...] | None, pd.DataFrame, pd.DataFrame]]:
    """Every job of each side first (key None: the :data:`ALL` rows), then each group of
    ``by`` seen on either side, sorted (NA last): its key and its jobs on each side."""
    found: list[tuple[tuple[Any, ...] | None, pd.DataFrame, pd.DataFrame]]
    found = [(None, jobs_a, jobs_b)]
    if not by:
        return found
    keys_a, keys_b = (list(map(tuple, jobs[list(by)].to_numpy())) for jobs in (jobs_a, jobs_b))
    order = sorted(set(keys_a) | set(keys_b), key=lambda key: [(v is None, v or "") for v in key])
    rows_a, rows_b = _rows_by_key(keys_a), _rows_by_key(keys_b)
    for key in order:
        found.append((key, jobs_a.iloc[rows_a.get(key, [])], jobs_b.iloc[rows_b.get(key, [])]))
    return found


def _rows_by_key(keys: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], list[int]]:
    """The positions of each key, in one pass."""
    rows: dict[tuple[Any, ...], list[int]] = {}
    for position, key in enumerate(keys):
        rows.setdefault(key, []).append(position)
    return rows


def _row(
    metric: str,
    group: tuple[Any, ...] | None,
    jobs_a: pd.DataFrame,
    jobs_b: pd.DataFrame,
    *,
    level: float,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """The values, difference, interval, counts and verdict of one metric in one group."""
    if metric == "jobs":
        n_a, n_b = len(jobs_a), len(jobs_b)
        return {"a": n_a, "b": n_b, "diff": n_b - n_a, "n_a": n_a, "n_b": n_b}
    value, statistic = STATISTICS[metric]
    x_a, x_b = (_sample(jobs, value) for jobs in (jobs_a, jobs_b))
    a, b = (float(statistic(x)) if len(x) else np.nan for x in (x_a, x_b))
    row: dict[str, Any] = {"a": a, "b": b, "diff": b - a, "n_a": len(x_a), "n_b": len(x_b)}
    if min(len(x_a), len(x_b)) < 2:
        return row
    rng = np.random.default_rng([seed, zlib.crc32(repr((metric, group)).encode())])
    draws_a, draws_b = (_bootstrap(x, statistic, n_boot, rng) for x in (x_a, x_b))
    tails = [(1 - level) / 2, (1 + level) / 2]
    row["low"], row["high"] = np.quantile(draws_b - draws_a, tails)
    judged = severity(metric, draws_b) - severity(metric, draws_a)
    low, high = np.quantile(judged, tails)
    row["verdict"] = "worse" if low > 0 else "better" if high < 0 else "same"
    return row


def _bootstrap(x: np.ndarray, statistic: Any, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``statistic`` of ``n_boot`` resamples of ``x``, drawn :data:`_CHUNK` at a time."""
    parts = [
        statistic(x[rng.integers(0, len(x), (min(_CHUNK, n_boot - done), len(x)))])
        for done in range(0, n_boot, _CHUNK)
    ]
    out: np.ndarray = np.concatenate(parts)
    return out


def _sample(jobs: pd.DataFrame, value: str) -> np.ndarray:
    """The known values of column ``value``: one per job behind the metric."""
    x: np.ndarray = jobs[value].to_numpy(np.float64)
    known: np.ndarray = x[~np.isnan(x)]
    return known
