"""The completion curve: the share of a rollout's jobs that had completed, failed or been
squashed by each time, when completions are only known to lie in a window.

:func:`completion_curve` reads a job summary (:func:`~cfanalytics.job_summary`). Each job
of the risk set is one observation, following ``eta-analysis.md`` ("Censoring"):

- ``completed``: the completion lies in ``(completed_after, completed_before]`` (a single
  time when the two are equal);
- ``failed`` at ``failed_at`` and ``squashed`` at ``last_seen``: exact times of *competing
  outcomes*. Treating them as censored, as ``1 - Kaplan-Meier`` would, overstates the
  completion probability;
- ``unfinished``, and ``unknown`` jobs that were seen: right-censored at ``last_seen``, the
  outcome and its time both unknown;
- ``unknown`` jobs never seen successfully tell nothing: they are not in the risk set.

The estimate is the cumulative incidence function (CIF) of each outcome ``k``,
``F_k(t) = P(ended as k by t)``. ``method="npmle"`` gives its nonparametric maximum likelihood
estimate under interval censoring with competing risks (Hudgens, Satten & Longini,
*Nonparametric maximum likelihood estimation for competing risks survival data subject to
interval censoring and truncation*, Biometrics 57, 2001), computed by self-consistency (EM),
as Turnbull (JRSS B 38, 1976) does for one outcome. We implement it here because lifelines
does not cover the combination: its ``AalenJohansenFitter`` takes right-censored data only,
and ``KaplanMeierFitter.fit_interval_censoring`` (Turnbull) knows one outcome only.
``method="midpoint"`` is the Aalen-Johansen estimate (Aalen & Johansen, Scand. J. Stat. 5,
1978) with each completion at the middle of its window (``completed_at``): the cross-check.

A job censored after the last time anything ended may end later, in a way nobody saw: the
NPMLE keeps that mass apart, of no cause, so the incidences then add up to less than 1.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..events import FLOAT, INT, TIME, Schema, category
from ..exceptions import SchemaError
from ._columns import returns
from ._common import conform, of_rollout, per_rollout_rows, pick_rollout, with_rollout

__all__ = ["COMPLETION_SCHEMA", "completion_curve", "time_to_fraction"]

_log = logging.getLogger(__name__)

#: The outcomes a curve is drawn for, in this order: always all three.
_ENDINGS = ("completed", "failed", "squashed")

#: Every column of a completion curve, its dtype and meaning, in order. A curve has exactly
#: one of the two time columns: ``time`` with ``clock="wall"``, ``elapsed_s`` with ``clock="job"``.
COMPLETION_SCHEMA = with_rollout(
    Schema(
        {
            "time": (TIME, 'when (clock="wall" only)'),
            "elapsed_s": (FLOAT, 'seconds since each job\'s started_at (clock="job" only)'),
            "outcome": (category(_ENDINGS), "the outcome the row's shares are of"),
            "incidence": (FLOAT, "the CIF: share of the risk set ended this way by this time"),
            "lower": (FLOAT, "share certainly ended this way by this time"),
            "upper": (FLOAT, "share that may have ended this way by this time"),
            "n_jobs": (INT, "jobs in the risk set, the same on every row"),
        }
    )
)

_TOLERANCE = 1e-9  # EM stops when no cell's mass moves more than this...
_MAX_ITERATIONS = 10_000  # ...or after this many EM steps
_EPOCH = pd.Timestamp(0, tz="UTC")
_MICROSECOND = pd.Timedelta(microseconds=1)
_USED = (
    *("outcome", "first_seen", "last_seen", "started_at"),
    *("completed_at", "completed_after", "completed_before", "failed_at"),
)

_Floats = npt.NDArray[np.float64]
_Ints = npt.NDArray[np.int64]
_Bools = npt.NDArray[np.bool_]


class _Jobs(NamedTuple):
    """The risk set, times in microseconds on the chosen clock.

    ``cause`` indexes completed, failed, squashed, or is -1 when right-censored. The ending lies in
    ``(after, before]``, or is exactly ``before`` when the two are equal; ``before`` is
    infinite when censored. ``mid`` is the midpoint (``after`` when censored).
    """

    cause: _Ints
    after: _Floats
    before: _Floats
    mid: _Floats


@returns(COMPLETION_SCHEMA, note='One of time (clock="wall") and elapsed_s (clock="job").')
@per_rollout_rows
def completion_curve(
    summary: pd.DataFrame,
    *,
    clock: Literal["wall", "job"] = "wall",
    method: Literal["npmle", "midpoint"] = "npmle",
) -> pd.DataFrame:
    """The cumulative incidence of each outcome over time: completed, failed, squashed.

    One curve per rollout of ``summary`` (its ``rollout`` column), each from its jobs only.

    ``summary`` is a job summary; its jobs form the risk set as the module docstring says
    (``unknown`` jobs never seen are left out). ``clock="wall"`` counts in UTC (column
    ``time``); ``clock="job"`` in seconds since each job's ``started_at`` (column
    ``elapsed_s``), and also leaves out the jobs without a ``started_at``.

    Rows: for each outcome (always all three, at 0 when it never happened), one per time
    where the curve or its band can change, each holding until the next: the origin first
    (the earliest ``first_seen`` or window end on the wall clock, 0 s or earlier on the job
    clock; incidence 0 unless a job ended exactly then), then every window end.

    ``lower`` counts a job once its window closed, ``upper`` once its window opened (or it
    was censored and may have ended so afterwards): any estimate that spreads each job over
    its own window, as both methods do, lies in ``[lower, upper]``.

    With ``method="npmle"``, how mass spreads within a cell (an innermost interval) is not
    identified: it is placed at the cell's right end, so the curve rises as late as the
    data allow. Rows are sorted by rollout, outcome, then time; columns below
    (:data:`COMPLETION_SCHEMA`).
    """
    _check(summary, clock, method)
    jobs, origin = _risk_set(summary, clock)
    grid = _grid(jobs, origin, midpoints=method == "midpoint")
    estimate = _npmle if method == "npmle" else _aalen_johansen
    incidence = estimate(jobs, grid) if len(jobs.cause) else np.zeros((len(_ENDINGS), 0))
    lower, upper = _bounds(jobs, grid)
    return _frame(grid, incidence, lower, upper, len(jobs.cause), clock)


def time_to_fraction(
    curve: pd.DataFrame, fraction: float, *, outcome: str = "completed", rollout: str | None = None
) -> Any:
    """The first ``time`` (or ``elapsed_s``) at which ``outcome``'s incidence reaches ``fraction``.

    Of ``rollout``'s curve, or of the only one ``curve`` holds: raises
    :class:`~cfanalytics.exceptions.RolloutError` naming them when it holds several.

    ``NaT`` (wall clock) or ``NA`` (job clock) if it never does. A tolerance of 1e-9, the
    EM's, absorbs rounding: 2 jobs of 4 reach 0.5 even if the sum is 0.49999999999.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], not {fraction!r}")
    if outcome not in _ENDINGS:
        raise ValueError(f"outcome must be one of {_ENDINGS}, not {outcome!r}")
    curve = of_rollout(curve, pick_rollout([curve], rollout), what="curve")
    column = "time" if "time" in curve.columns else "elapsed_s"
    rows = curve.loc[curve["outcome"] == outcome].sort_values(column, kind="stable")
    reached = rows.loc[(rows["incidence"] >= fraction - _TOLERANCE).fillna(False), column]
    if len(reached):
        return reached.iloc[0]
    return pd.NaT if column == "time" else pd.NA


def _check(summary: pd.DataFrame, clock: str, method: str) -> None:
    """Refuse unknown options, and a summary without the columns this module reads."""
    if clock not in ("wall", "job"):
        raise ValueError(f"clock must be 'wall' or 'job', not {clock!r}")
    if method not in ("npmle", "midpoint"):
        raise ValueError(f"method must be 'npmle' or 'midpoint', not {method!r}")
    missing = [name for name in _USED if name not in summary.columns]
    if missing:
        raise SchemaError(f"not a job summary: missing {missing}")


def _microseconds(times: pd.Series, base: Any) -> _Floats:
    """``times - base`` in microseconds, NaN where either is missing."""
    delta = (times - base) / _MICROSECOND
    # A copy: pandas 3 hands out read-only views, and the caller writes into this array.
    return np.array(delta.astype("float64").to_numpy(na_value=np.nan), dtype=np.float64)


def _risk_set(summary: pd.DataFrame, clock: str) -> tuple[_Jobs, float]:
    """The jobs of the risk set on ``clock``, and the clock's origin (see the docstring)."""
    outcome = summary["outcome"].astype("string")
    cause = np.select([(outcome == k).fillna(False) for k in _ENDINGS], range(len(_ENDINGS)), -1)
    done = cause == 0
    event = summary["failed_at"].where(cause == 1, summary["last_seen"])
    base = _EPOCH if clock == "wall" else summary["started_at"]
    after = _microseconds(summary["completed_after"].where(done, event), base)
    before = _microseconds(summary["completed_before"].where(done, event), base)
    mid = _microseconds(summary["completed_at"].where(done, event), base)
    censored = outcome.isin(["unfinished", "unknown"]).fillna(False).to_numpy(dtype=bool)
    before[censored] = np.inf
    keep = ((cause >= 0) | censored) & ~np.isnan(after) & ~np.isnan(before) & ~np.isnan(mid)
    jobs = _Jobs(cause[keep].astype(np.int64), after[keep], before[keep], mid[keep])
    if clock == "job":
        return jobs, float(np.min(jobs.after, initial=0.0))
    first_seen = _microseconds(summary["first_seen"], base)[keep]
    return jobs, float(np.min(np.fmin(first_seen, jobs.after), initial=np.inf))


def _grid(jobs: _Jobs, origin: float, *, midpoints: bool) -> _Floats:
    """The origin and every finite window end (and midpoint if asked), sorted, unique."""
    times = [np.array([origin]), jobs.after, jobs.before[np.isfinite(jobs.before)]]
    if midpoints:
        times.append(jobs.mid)
    return np.unique(np.concatenate(times)) if len(jobs.cause) else np.array([])


# The NPMLE. Cell j is (grid[j - 1], grid[j]], its mass shown at grid[j]; one more cell
# (grid[-1], +inf) holds what ended after the last time seen, or never, of unknown cause.
# Each job covers a contiguous range [lo, hi] of cells, for its cause or (censored) for any.


def _cells(jobs: _Jobs, grid: _Floats) -> tuple[_Ints, _Ints]:
    """Each job's range of cells ``[lo, hi]``; censored jobs reach the last cell (+inf)."""
    end = np.searchsorted(grid, jobs.before).astype(np.int64)  # len(grid) when infinite
    start = np.searchsorted(grid, jobs.after).astype(np.int64)
    return start + (jobs.after < jobs.before), end


def _innermost_ends(lo: _Ints, hi: _Ints, width: int) -> _Bools:
    """Cells ending one of Turnbull's innermost intervals of the ranges ``[lo, hi]``.

    An innermost interval is a range start followed by a range end, with no start or end
    between them (at one cell, starts come first: both ranges include it).
    """
    cell = np.arange(width)
    has_start, has_end = np.zeros(width, dtype=bool), np.zeros(width, dtype=bool)
    has_start[lo], has_end[hi] = True, True
    last_start = np.maximum.accumulate(np.where(has_start, cell, -1))
    last_end = np.maximum.accumulate(np.where(has_end, cell, -1))
    end_before = np.concatenate([[-1], last_end[:-1]])
    return has_end & (last_start > end_before)


def _support(cause: _Ints, lo: _Ints, hi: _Ints, width: int) -> _Bools:
    """Where mass may go: rows are the causes plus one for "unknown", columns the cells.

    Hudgens et al.: cause ``k`` needs only the innermost intervals of its own windows and
    the censored ones. The last cell belongs to the "unknown" row, and only if every cause
    leaves it innermost: otherwise some ending after every censoring explains them better.
    """
    censored = cause < 0
    members = [censored | (cause == k) for k in range(len(_ENDINGS))]
    ends = [_innermost_ends(lo[member], hi[member], width) for member in members]
    mask = np.zeros((len(_ENDINGS) + 1, width), dtype=bool)
    mask[:-1, :-1] = np.stack(ends)[:, :-1]
    mask[-1, -1] = censored.any() and all(end[-1] for end in ends)
    return mask


class _Windows(NamedTuple):
    """The distinct windows of the NPMLE, indexed into (rows, cells + 1) arrays."""

    specific: _Bools  # for one cause; else censored: any cause, up to the last cell
    opens: _Ints  # flat index of (cause, first cell)
    closes: _Ints  # flat index of (cause, last cell + 1)
    lo: _Ints  # first cell
    weight: _Floats  # jobs with this window


def _windows(cause: _Ints, lo: _Ints, hi: _Ints, width: int) -> _Windows:
    """Group the jobs by (cause, first cell, last cell); ``width`` counts the cells."""
    (cause, lo, hi), weight = np.unique(np.stack([cause, lo, hi]), axis=1, return_counts=True)
    row = np.maximum(cause, 0) * (width + 1)
    return _Windows(cause >= 0, row + lo, row + hi + 1, lo, weight.astype(np.float64))


def _npmle(jobs: _Jobs, grid: _Floats) -> _Floats:
    """The NPMLE of each cause's CIF at each grid time, shape (causes, len(grid))."""
    lo, hi = _cells(jobs, grid)
    mask = _support(jobs.cause, lo, hi, len(grid) + 1)
    mass = _self_consistency(mask / mask.sum(), _windows(jobs.cause, lo, hi, len(grid) + 1))
    return np.cumsum(mass[:-1, :-1], axis=1)


def _em_step(mass: _Floats, windows: _Windows) -> tuple[_Floats, float]:
    """One self-consistency step, and the log-likelihood of ``mass``.

    Each job spreads itself over its window's cells in proportion to their mass; the new
    mass of a cell is the average over jobs of what it received.
    """
    rows, width = mass.shape
    below = np.zeros((rows, width + 1))
    below[:, 1:] = np.cumsum(mass, axis=1)  # below[r, j]: row r's mass in cells < j
    flat, total, mine = below.ravel(), below.sum(axis=0), windows.specific
    any_cause = total[-1] - total[windows.lo]
    inside = np.where(mine, flat[windows.closes] - flat[windows.opens], any_cause)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = windows.weight / inside
        loglik = float(np.dot(windows.weight, np.log(inside)))
    size = rows * (width + 1)
    got = np.bincount(windows.opens[mine], share[mine], size)
    got -= np.bincount(windows.closes[mine], share[mine], size)
    got = got.reshape(rows, width + 1) + np.bincount(windows.lo[~mine], share[~mine], width + 1)
    return mass * np.cumsum(got, axis=1)[:, :-1] / windows.weight.sum(), loglik


def _self_consistency(mass: _Floats, windows: _Windows) -> _Floats:
    """EM from ``mass`` until a step moves no cell by 1e-9, or for 10,000 steps (logged).

    Accelerated by SQUAREM (Varadhan & Roland, Scand. J. Stat. 35, 2008): two EM steps
    give a direction, extrapolated as far as the likelihood keeps rising. The fixed point
    is EM's, and the result is always the image of an EM step.
    """
    steps, moved = 0, np.inf
    while steps < _MAX_ITERATIONS:
        first, loglik = _em_step(mass, windows)
        moved = float(np.abs(first - mass).max())
        if moved < _TOLERANCE:
            return first
        second, _ = _em_step(first, windows)
        mass, used = _extrapolate(mass, first, second, loglik, windows)
        steps += 2 + used
    _log.warning("NPMLE: no convergence in %d EM steps (last change %.2g)", steps, moved)
    return mass


def _extrapolate(
    mass: _Floats, first: _Floats, second: _Floats, loglik: float, windows: _Windows
) -> tuple[_Floats, int]:
    """SQUAREM's step (its "SqS3" length) from ``mass``, then one EM step; and steps used.

    The step is halved towards plain EM (``alpha = -1``, which lands on ``second``) while
    it leaves the simplex or lowers the likelihood.
    """
    r, v = first - mass, second - 2 * first + mass
    norm_v = float(np.sqrt(np.sum(v * v)))
    alpha = min(-float(np.sqrt(np.sum(r * r))) / norm_v, -1.0) if norm_v > 0 else -1.0
    used = 0
    while True:
        point = second if alpha == -1.0 else mass - 2 * alpha * r + alpha**2 * v
        if alpha == -1.0 or point.min() >= 0:
            image, point_loglik = _em_step(point, windows)
            used += 1
            if alpha == -1.0 or point_loglik >= loglik:
                return image, used
        alpha = (alpha - 1) / 2 if alpha < -1.01 else -1.0


def _aalen_johansen(jobs: _Jobs, grid: _Floats) -> _Floats:
    """Aalen-Johansen CIF of each cause at each grid time, completions at their midpoints.

    At a time, endings come before censorings: a job censored then was still at risk.
    """
    at = np.searchsorted(grid, jobs.mid)
    size = len(grid)
    at_risk = len(jobs.mid) - np.concatenate([[0], np.cumsum(np.bincount(at, minlength=size))])
    at_risk = at_risk[:-1].astype(np.float64)
    ended = np.stack(
        [np.bincount(at[jobs.cause == k], minlength=size) for k in range(len(_ENDINGS))]
    )
    hazard = np.divide(ended, at_risk, out=np.zeros(ended.shape), where=at_risk > 0)
    survival = np.cumprod(1 - hazard.sum(axis=0))
    survival_before = np.concatenate([[1.0], survival[:-1]])
    return np.asarray(np.cumsum(survival_before * hazard, axis=1), dtype=np.float64)


def _bounds(jobs: _Jobs, grid: _Floats) -> tuple[_Floats, _Floats]:
    """Per cause and grid time: the shares that certainly / possibly had ended that way."""
    n = max(len(jobs.cause), 1)
    censored = np.sort(jobs.after[jobs.cause < 0])
    late = np.searchsorted(censored, grid, side="right")
    lower, upper = [], []
    for k in range(len(_ENDINGS)):
        mine = jobs.cause == k
        lower.append(np.searchsorted(np.sort(jobs.before[mine]), grid, side="right"))
        upper.append(np.searchsorted(np.sort(jobs.after[mine]), grid, side="right") + late)
    return np.stack(lower) / n, np.stack(upper) / n


def _frame(
    grid: _Floats, incidence: _Floats, lower: _Floats, upper: _Floats, n_jobs: int, clock: str
) -> pd.DataFrame:
    """The long frame: one row per outcome and grid time, typed by :data:`COMPLETION_SCHEMA`."""
    times = np.tile(grid, len(_ENDINGS))
    if clock == "wall":
        column, values = "time", pd.to_datetime(times.astype(np.int64), unit="us", utc=True)
    else:
        column, values = "elapsed_s", times / 1e6
    frame = pd.DataFrame(
        {
            column: values,
            "outcome": np.repeat(_ENDINGS, len(grid)),
            "incidence": incidence.ravel(),
            "lower": lower.ravel(),
            "upper": upper.ravel(),
            "n_jobs": n_jobs,
        }
    )
    return conform(frame, {name: t for name, t in COMPLETION_SCHEMA.items() if name in frame})
