"""Forecasts: when each open job, and the rollout, will finish, with an 80 % interval.

Only what was observed up to the moment ``at`` is used. The method, step by step:

1. **Analogs.** Every job that completed by ``at`` (and every completed job of the earlier
   rollouts of a history) is a trajectory: how long it had run when it first reported each
   progress, and its run time (:func:`trajectories`). Jobs learn from jobs of their own kind
   only, once :data:`MIN_JOBS` of them have completed.
2. **A running job** at progress ``p`` after ``e`` seconds gets, from each analog, the time
   that analog still had to go from ``p``, scaled by how much slower this job got there, to a
   power ``pace`` between 0 (what is left does not depend on the job's speed so far) and 1
   (all of it does); the median over the analogs. ``pace`` is chosen per kind by the
   leave-one-job-out error on the completed jobs.
3. **Calibration.** Those leave-one-job-out predictions against the actual time to go give
   the residuals (log ratios) per quarter of progress (all together when a quarter has fewer
   than :data:`MIN_RESIDUALS`); their quantiles correct the median and give the interval.
   While fewer than :data:`TRUSTED_JOBS` jobs taught them, they are mixed with a spread of
   :data:`FALLBACK_SPREAD` times either way, so a few similar jobs are not overconfident.
4. **Nothing learned of a kind yet:** halfway (geometrically) between the job's ETA and the
   linear rule, with that fallback spread: honestly wide.
5. **Jobs not running yet** start after the usual wait from their queue answer, a machine
   after its mirror's job completes (never behind a failed one) and when a slot of its
   location frees (as many slots as machines seen running there at once); their run time is
   drawn from the completed and the running jobs of their kind and location.
6. **The rollout.** Every open job's completion is drawn :data:`DRAWS` times (residuals and
   run times from a bootstrap resample per draw, shared by the draw's jobs), each failing at
   the rate seen among ended jobs times the share of its install still ahead; a draw's time
   to 50/90/100 % of all jobs completed counts as :func:`~cfanalytics.analysis.rollout_metrics`
   does (from the rollout's start). The median of the draws is the forecast, their 10 % and
   90 % quantiles the interval; ``reach`` is the share of draws that got there at all.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist

import numpy as np
import pandas as pd

from ..events import FLOAT, INT, KINDS, TIME, Schema, category, validate
from ._common import (
    FLEET_STATES,
    conform,
    job_snapshots,
    last_of_job,
    one_rollout,
    polls,
    seconds,
    utc,
)
from ._headline import rollout_start
from ._history import History, earlier_rollouts, open_history
from ._refusals import queue_refusals
from ._summary import SUMMARY_SCHEMA, job_summary_of
from ._timing import eta_errors_of

__all__ = [
    "DRAWS",
    "FALLBACK_SPREAD",
    "FORECAST_JOB_SCHEMA",
    "FORECAST_ROLLOUT_SCHEMA",
    "LEVEL",
    "MIN_JOBS",
    "MIN_RESIDUALS",
    "TRUSTED_JOBS",
    "Forecast",
    "forecast",
    "forecast_of",
    "history_rows",
    "trajectories",
]

#: The interval's coverage: 80 % of completions should fall inside it.
LEVEL = 0.8
#: Residuals a band of progress needs before it gets quantiles of its own.
MIN_RESIDUALS = 20
#: Without residuals, the interval runs from the median / this to the median x this.
FALLBACK_SPREAD = 3.0
#: Completed jobs of a kind before its own shape and residuals are used.
MIN_JOBS = 3
#: Completed jobs of a kind before their residuals alone set its intervals.
TRUSTED_JOBS = 10
#: Monte Carlo draws of the rollout's completions.
DRAWS = 400
_RESIDUAL_BANDS = (0, 25, 50, 75, 101)  # progress bands calibrated apart: early ETAs err more

#: :class:`Forecast`'s ``jobs``: one row per job not ended at ``at``.
FORECAST_JOB_SCHEMA = Schema(
    {
        **SUMMARY_SCHEMA.entries("jobid", "kind", "location", "machine", "mirror"),
        "state": (category(FLEET_STATES), "its state at ``at``"),
        "jobprogress": (INT, "its last reported progress, %"),
        "observed_at": (TIME, "its last snapshot"),
        "jobeta": (TIME, "the API's ETA at its last snapshot"),
        "linear_eta": (TIME, "the linear rule: its elapsed time scaled by its progress"),
        "forecast_at": (TIME, "the forecast completion: the median"),
        "lower_at": (TIME, "the lower bound of the forecast's 80 % interval"),
        "upper_at": (TIME, "the upper bound of the forecast's 80 % interval (NaT: never)"),
        "basis": (
            category(("running", "waiting")),
            "running: from its progress so far; waiting: from a start and a run time",
        ),
    }
)
#: :class:`Forecast`'s ``rollout``: one row per share of the rollout's jobs completed.
FORECAST_ROLLOUT_SCHEMA = Schema(
    {
        "share": (INT, "% of all the rollout's jobs completed"),
        "forecast_s": (FLOAT, "seconds from the rollout's start: the median over the draws"),
        "lower_s": (FLOAT, "the lower bound of its 80 % interval, s"),
        "upper_s": (FLOAT, "the upper bound of its 80 % interval, s (NA: maybe never)"),
        "forecast_at": (TIME, "the forecast as a time"),
        "lower_at": (TIME, "the lower bound as a time"),
        "upper_at": (TIME, "the upper bound as a time"),
        "reach": (FLOAT, "share of the draws in which that share of jobs completed at all"),
        "done": ("boolean", "reached by ``at``: the times are the actual one"),
    }
)
_SHARES = (50, 90, 100)


@dataclass(frozen=True)
class Forecast:
    """:func:`forecast`'s answer: ``jobs`` (:data:`FORECAST_JOB_SCHEMA`, one row per job
    not ended at ``at``) and ``rollout`` (:data:`FORECAST_ROLLOUT_SCHEMA`, one row per share
    of jobs completed), as of ``at``; ``finished`` is how many completed jobs taught it
    (``history`` of them from earlier rollouts)."""

    rollout_name: str | None
    at: pd.Timestamp
    start: pd.Timestamp
    jobs: pd.DataFrame
    rollout: pd.DataFrame
    finished: int
    history: int


def forecast(
    events: pd.DataFrame,
    *,
    at: datetime | str | None = None,
    history: History | str | os.PathLike[str] | None = None,
    rollout: str | None = None,
    seed: int = 0,
) -> Forecast:
    """When each job not ended at ``at`` (default: the last successful poll) will complete,
    and when 50/90/100 % of the rollout's jobs will have: medians and :data:`LEVEL`
    intervals, from what was observed up to ``at`` only (the module docstring says how).

    ``history`` (a :class:`~cfanalytics.History` or a store folder) adds the completed jobs
    of the earlier rollouts of the same ASID to what the forecast learns from. ``rollout``
    picks one rollout (:class:`~cfanalytics.exceptions.RolloutError` names those found when
    it cannot tell). ``seed`` fixes the draws: the same input gives the same forecast.
    """
    name, frame = one_rollout(validate(events), rollout)
    return forecast_of(frame, name, _moment(frame, at), history_rows(history, frame, name), seed)


def forecast_of(
    frame: pd.DataFrame, name: str | None, when: pd.Timestamp, earlier: pd.DataFrame, seed: int
) -> Forecast:
    """:func:`forecast` of one rollout's events at ``when``, learning also from ``earlier``
    (:func:`history_rows`): what a backtest calls at each poll, the history read once."""
    seen = frame.loc[(frame["observed_at"] <= when).to_numpy(dtype=bool, na_value=False)]
    summary = job_summary_of(seen)
    learned = _Learned.of(_training(seen, summary), earlier)
    refused = queue_refusals(seen, summary=summary)["jobid"]
    rng = np.random.default_rng(seed)
    queued = summary.loc[~summary["jobid"].isin(refused)]
    jobs, drawn = _job_forecasts(seen, queued, when, learned, rng)
    start = rollout_start(summary)
    draws = _rollout_draws(jobs, drawn, summary, rng)
    return Forecast(
        rollout_name=name,
        at=when,
        start=start,
        jobs=conform(jobs.drop(columns=["to_go_s", "band", "run_start"]), FORECAST_JOB_SCHEMA),
        rollout=_rollout_table(summary, draws, start),
        finished=learned.jobs,
        history=learned.history_jobs,
    )


def _moment(events: pd.DataFrame, at: datetime | str | None) -> pd.Timestamp:
    if at is not None:
        return utc(at)
    times = polls(events)["polled_at"]
    if times.empty:
        raise ValueError("no successful status poll: nothing to forecast from")
    return pd.Timestamp(times.max())


# -- what the forecast learns --------------------------------------------------------------


_GRID = np.arange(101, dtype=float)  # progress points of a trajectory


def trajectories(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per completed job of ``rows`` (:func:`_training`'s): its id, the seconds it had run
    when it first reported each progress 0, 1, ..., 100 (interpolated between its polls;
    100 at its completion), and its run time."""
    ordered = rows.sort_values(["jobid", "progress", "elapsed_s"], kind="stable")
    ids, first = np.unique(ordered["jobid"].to_numpy(), return_index=True)
    bounds = np.append(first, len(ordered))
    progress, elapsed = ordered["progress"].to_numpy(), ordered["elapsed_s"].to_numpy()
    runs = ordered["run_s"].to_numpy()[first]
    times = np.empty((len(ids), len(_GRID)))
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        p, at = np.unique(progress[a:b], return_index=True)  # a plateau: when it was reached
        times[k] = np.interp(_GRID, np.r_[0.0, p, 100.0], np.r_[0.0, elapsed[a:b][at], runs[k]])
    return ids, times, runs


def _analog_to_go(
    times: np.ndarray,
    runs: np.ndarray,
    progress: np.ndarray,
    elapsed_s: np.ndarray,
    pace: float,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Seconds to go of jobs at ``progress`` after ``elapsed_s``: the median over the
    completed jobs (``times``, ``runs``: :func:`trajectories`) of the time each had to go
    from that progress, scaled by how much slower this job got there, to the power
    ``pace`` (1: all of the run scales with the job's pace; 0: what is left does not).
    ``mask`` (queries x jobs) leaves analogs out (a job's own, when scoring it)."""
    column = np.clip(progress, 0, 100)
    low = np.floor(column).astype(int)
    high = np.minimum(low + 1, 100)
    weight = (column - low)[:, None]
    reached = times[:, low].T * (1 - weight) + times[:, high].T * weight  # queries x jobs
    left = np.maximum(runs[None, :] - reached, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(reached > 0, elapsed_s[:, None] / reached, 1.0)
    guesses = left * np.power(np.clip(ratio, 0.05, 20.0), pace)
    if mask is not None:
        guesses = np.where(mask, np.nan, guesses)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a query with every analog masked
        out: np.ndarray = np.nanmedian(guesses, axis=1)
    return out


def _training(events: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per Running observation of a job completed by now: its job, kind, location,
    progress, seconds elapsed and to go, and its job's run time."""
    errors = eta_errors_of(events, summary)
    used = errors["elapsed_fraction"].to_numpy(dtype=float, na_value=np.nan)
    to_go = errors["actual_remaining_s"].to_numpy(dtype=float, na_value=np.nan)
    progress = errors["jobprogress"].to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        run = to_go / (1.0 - used)
    keep = (used > 0) & (used < 1) & (progress > 0) & (progress < 100) & (to_go > 0)
    return pd.DataFrame(
        {
            "jobid": errors["jobid"].to_numpy(dtype=np.int64, na_value=-1)[keep],
            "kind": errors["kind"].astype(str).to_numpy()[keep],
            "location": errors["location"].astype(str).to_numpy()[keep],
            "progress": progress[keep],
            "used": used[keep],
            "elapsed_s": (used * run)[keep],
            "to_go_s": to_go[keep],
            "run_s": run[keep],
        }
    )


_NO_ROWS = pd.DataFrame(
    {
        "jobid": np.zeros(0, np.int64),
        **{name: np.zeros(0, object) for name in ("kind", "location")},
        **{name: np.zeros(0) for name in ("progress", "used", "elapsed_s", "to_go_s", "run_s")},
    }
)


def history_rows(
    history: History | str | os.PathLike[str] | None, events: pd.DataFrame, name: str | None
) -> pd.DataFrame:
    """:func:`_training` rows of the earlier rollouts of the same ASID in ``history`` (none
    without one)."""
    if history is None or name is None:
        return _NO_ROWS
    found = open_history(history)
    parts = []
    for earlier in earlier_rollouts(events, found, rollout=name, previous=5):
        past = found.events(rollout=earlier)
        parts.append(_training(past, job_summary_of(past)).assign(jobid=lambda f: -f["jobid"]))
    return pd.concat(parts, ignore_index=True) if parts else _NO_ROWS


@dataclass(frozen=True)
class _Kind:  # not slotted: its pools are cached on it
    """What the completed jobs of one kind teach: their trajectories, the pace that best
    carries them over to a running job, and the residuals per band of progress."""

    ids: np.ndarray
    times: np.ndarray
    runs: np.ndarray
    pace: float
    residuals: tuple[np.ndarray, ...]  # log(actual / predicted to go), per _RESIDUAL_BANDS

    @classmethod
    def of(cls, rows: pd.DataFrame) -> _Kind:
        """From :func:`_training` rows of one kind; nothing with fewer than :data:`MIN_JOBS`
        jobs (a mirror's run says little of a machine's)."""
        if rows["jobid"].nunique() < MIN_JOBS:
            return _UNTAUGHT
        ids, times, runs = trajectories(rows)
        scored = rows.iloc[:: max(1, len(rows) // _MAX_SCORED)]  # enough to choose a pace
        own = scored["jobid"].to_numpy()[:, None] == ids[None, :]
        actual = np.log(np.maximum(scored["to_go_s"].to_numpy(), 1.0))
        best, residuals = 1.0, np.zeros(0)
        for pace in _PACES:
            guess = _analog_to_go(
                times,
                runs,
                scored["progress"].to_numpy(),
                scored["elapsed_s"].to_numpy(),
                pace,
                own,
            )
            error = actual - np.log(np.maximum(guess, 1.0))
            if not len(residuals) or np.nanmean(np.abs(error)) < np.nanmean(np.abs(residuals)):
                best, residuals = pace, error
        band = np.digitize(scored["progress"].to_numpy(), _RESIDUAL_BANDS[1:-1])
        kept = ~np.isnan(residuals)
        return cls(
            ids=ids,
            times=times,
            runs=runs,
            pace=best,
            residuals=tuple(residuals[kept & (band == b)] for b in range(_BANDS)),
        )

    @property
    def learned(self) -> bool:
        """Whether enough jobs of the kind completed to learn from."""
        return len(self.ids) >= MIN_JOBS

    def to_go(self, progress: np.ndarray, elapsed_s: np.ndarray) -> np.ndarray:
        """Seconds to go of running jobs of the kind (:func:`_analog_to_go`)."""
        return _analog_to_go(self.times, self.runs, progress, elapsed_s, self.pace)

    def pool(self, band: int) -> np.ndarray:
        """The residuals a job in progress ``band`` is calibrated with: its band's, or all;
        while fewer than :data:`TRUSTED_JOBS` jobs taught them, mixed with the fallback
        spread in proportion (a few similar jobs would make the interval overconfident)."""
        if band not in self._pools:  # kept: the same pool object for the same band
            self._pools[band] = self._pool(band)
        return self._pools[band]

    @functools.cached_property
    def _pools(self) -> dict[int, np.ndarray]:
        return {}

    def _pool(self, band: int) -> np.ndarray:
        own = self.residuals[band]
        if len(own) < MIN_RESIDUALS:
            own = np.concatenate(self.residuals)
        if len(own) < MIN_RESIDUALS:
            return _FALLBACK
        trust = min(len(self.ids) / TRUSTED_JOBS, 1.0)
        if trust == 1.0:
            return own
        # Each fallback value stands for as many residuals as makes its share 1 - trust.
        copies = max(1, round(len(own) * (1 - trust) / trust / len(_FALLBACK)))
        return np.concatenate([own, np.tile(_FALLBACK, copies)])


@dataclass(frozen=True)
class _Learned:  # not slotted: _run_arrays is cached on it
    """What the completed jobs teach, per kind of job, and their run times."""

    kinds: Mapping[str, _Kind]
    runs: pd.DataFrame  # kind, location, run_s: one row per completed job
    jobs: int
    history_jobs: int

    @classmethod
    def of(cls, mine: pd.DataFrame, earlier: pd.DataFrame) -> _Learned:
        rows = pd.concat([mine, earlier], ignore_index=True) if len(earlier) else mine
        runs = rows.drop_duplicates("jobid")[["kind", "location", "run_s"]]
        return cls(
            kinds={kind: _Kind.of(rows.loc[rows["kind"] == kind]) for kind in KINDS},
            runs=runs.reset_index(drop=True),
            jobs=int(mine["jobid"].nunique()),
            history_jobs=int(earlier["jobid"].nunique()),
        )

    def of_kind(self, kind: object) -> _Kind:
        """What jobs of ``kind`` taught (nothing, for a kind not seen)."""
        return self.kinds.get(str(kind)) or _UNTAUGHT

    def run_pool(self, kind: str, location: str) -> np.ndarray:
        """Run times of completed jobs like this one: its kind and location, else its kind,
        else any."""
        key = (kind, location)
        if key not in self._pools:  # kept: the same pool object for the same jobs
            kinds, locations, runs = self._run_arrays
            same = runs[(kinds == kind) & (locations == location)]
            if len(same) < MIN_JOBS:
                same = runs[kinds == kind]
            self._pools[key] = same if len(same) >= MIN_JOBS else runs
        return self._pools[key]

    @functools.cached_property
    def _pools(self) -> dict[tuple[str, str], np.ndarray]:
        return {}

    @functools.cached_property
    def _run_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        runs = self.runs
        return (
            runs["kind"].astype(str).to_numpy(),
            runs["location"].astype(str).to_numpy(),
            runs["run_s"].to_numpy(dtype=float),
        )

    def with_runs(self, more: pd.DataFrame) -> _Learned:
        """The same, with ``more`` run times (kind, location, run_s) in the pool."""
        runs = pd.concat([self.runs, more], ignore_index=True) if len(more) else self.runs
        return dataclasses.replace(self, runs=runs)


_BANDS = len(_RESIDUAL_BANDS) - 1
_UNTAUGHT = _Kind(
    ids=np.zeros(0, np.int64),
    times=np.zeros((0, len(_GRID))),
    runs=np.zeros(0),
    pace=1.0,
    residuals=(np.zeros(0),) * _BANDS,
)
_PACES = (1.0, 0.75, 0.5, 0.25, 0.0)  # how much of what is left scales with its pace; ties: 1
_MAX_SCORED = 3000  # observations a pace is chosen on: a sample of them past that
# Log-residuals of a lognormal spread whose LEVEL interval is x/÷ FALLBACK_SPREAD: its
# quantiles at evenly spaced probabilities.
_SPREAD = NormalDist(0, np.log(FALLBACK_SPREAD) / NormalDist().inv_cdf(1 - (1 - LEVEL) / 2))
_FALLBACK = np.array([_SPREAD.inv_cdf((i + 0.5) / 200) for i in range(200)])


# -- each open job ---------------------------------------------------------------------------

_LOW, _HIGH = (1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2


def _open_jobs(events: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """The jobs of ``summary`` not ended (unfinished), with their last snapshot's state,
    progress, ETA and time, and when their run started (``jobstart``, else the first poll
    seeing it run)."""
    jobs = summary.loc[summary["outcome"] == "unfinished"]
    snaps = job_snapshots(events, of=jobs["jobid"])
    snaps = snaps.loc[snaps["status"].to_numpy(dtype=bool, na_value=False)]
    last = snaps.loc[last_of_job(snaps["jobid"].to_numpy(dtype=np.int64))].set_index("jobid")
    frame = jobs.set_index("jobid")[["kind", "location", "machine", "mirror", "queued_at"]]
    frame = frame.join(
        last[["code", "jobprogress", "observed_at", "jobeta", "jobstart"]], how="left"
    )
    started = summary.set_index("jobid")["started_at"].reindex(frame.index)
    frame["run_start"] = frame["jobstart"].fillna(started) if "jobstart" in frame else started
    frame["state"] = [
        FLEET_STATES[int(c)] if pd.notna(c) else "pending" for c in frame["code"].to_numpy()
    ]
    return frame.reset_index()


def _job_forecasts(
    events: pd.DataFrame,
    summary: pd.DataFrame,
    at: pd.Timestamp,
    learned: _Learned,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Each open job's forecast, and its completions drawn :data:`DRAWS` times (epoch
    seconds, NaN: never), before any failure."""
    frame = _open_jobs(events, summary)
    t = frame["observed_at"].fillna(at)
    progress = frame["jobprogress"].to_numpy(dtype=float, na_value=np.nan)
    elapsed = seconds((t - frame["run_start"]).to_numpy(dtype="timedelta64[us]"))
    running = (
        (frame["state"] == "running").to_numpy()
        & (progress > 0)
        & (progress < 100)
        & ~np.isnan(elapsed)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        linear = elapsed * (100 - progress) / progress
    frame["to_go_s"] = np.where(
        running, _to_go(frame, t, progress, elapsed, linear, learned), np.nan
    )
    frame["band"] = np.digitize(np.nan_to_num(progress), _RESIDUAL_BANDS[1:-1])
    frame["basis"] = np.where(running, "running", "waiting")
    frame["linear_eta"] = _after(t, np.where(running, linear, np.nan))
    low, mid, high = _running_bounds(frame, learned)
    # Completed jobs are the fast ones early on: the running jobs' forecast run times join
    # the pool the waiting jobs' run times come from.
    totals = seconds((mid - frame["run_start"]).to_numpy(dtype="timedelta64[us]"))
    ran = running & np.isfinite(totals)
    more = pd.DataFrame(
        {
            "kind": frame["kind"].astype(str).to_numpy()[ran],
            "location": frame["location"].astype(str).to_numpy()[ran],
            "run_s": totals[ran],
        }
    )
    draws = _simulate(frame, events, summary, at, learned.with_runs(more), rng)
    drawn = _drawn_bounds(draws)
    for column, exact, simulated in zip(
        ("lower_at", "forecast_at", "upper_at"), (low, mid, high), drawn, strict=True
    ):
        frame[column] = exact.where(frame["basis"] == "running", simulated)
    return frame, draws


def _to_go(
    frame: pd.DataFrame,
    t: pd.Series,
    progress: np.ndarray,
    elapsed: np.ndarray,
    linear: np.ndarray,
    learned: _Learned,
) -> np.ndarray:
    """Seconds to go of each running job: from the completed jobs of its kind, or, when none
    taught anything, halfway (geometrically) between its ETA and the linear rule."""
    by_eta = seconds((frame["jobeta"] - t).to_numpy(dtype="timedelta64[us]"))
    out: np.ndarray = np.where(
        np.isfinite(by_eta) & (by_eta > 0),
        np.sqrt(np.maximum(by_eta, 1) * np.maximum(linear, 1)),
        linear,
    )
    for kind, rows in frame.groupby("kind", observed=True).indices.items():
        taught = learned.of_kind(kind)
        if taught.learned:
            out[rows] = taught.to_go(
                np.nan_to_num(progress[rows], nan=1.0), np.nan_to_num(elapsed[rows])
            )
    return out


def _after(t: pd.Series, to_go_s: np.ndarray) -> pd.Series:
    """``t`` plus ``to_go_s`` seconds (NaT where NaN)."""
    return t + pd.to_timedelta(to_go_s, unit="s")


def _running_bounds(
    frame: pd.DataFrame, learned: _Learned
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """A running job's median and interval: its time to go times the quantiles of its
    residuals."""
    t = frame["observed_at"]
    out = []
    for q in (_LOW, 0.5, _HIGH):
        factor = np.array(
            [
                np.exp(np.quantile(learned.of_kind(k).pool(b), q))
                for k, b in zip(frame["kind"], frame["band"], strict=True)
            ]
        )
        out.append(_after(t, frame["to_go_s"].to_numpy(dtype=float) * factor))
    return out[0], out[1], out[2]


def _drawn_bounds(draws: np.ndarray) -> tuple[pd.Series, pd.Series, pd.Series]:
    """The interval's bounds and the median of each row of ``draws`` (NaT: never)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row never completes
        quantiles = np.nanquantile(draws, [_LOW, 0.5, _HIGH], axis=1) if len(draws) else []
    out = [_from_epoch(row) for row in quantiles] or [_from_epoch(np.zeros(0))] * 3
    return out[0], out[1], out[2]


def _from_epoch(values: np.ndarray) -> pd.Series:
    micros = np.where(np.isnan(values), np.iinfo(np.int64).min, np.rint(values * 1e6))
    return (
        pd.Series(micros.astype(np.int64).view("M8[us]"), dtype="datetime64[us]")
        .dt.tz_localize("UTC")
        .astype(TIME)
    )


def _typical_wait_s(summary: pd.DataFrame) -> float:
    """The median seconds from a queue answer to the first poll seeing the job run."""
    waits = (summary["started_at"] - summary["queued_at"]).dt.total_seconds().dropna()
    return float(waits.median()) if len(waits) else 0.0


def _concurrency(events: pd.DataFrame, summary: pd.DataFrame) -> dict[str, int]:
    """Per location: the most machine installs seen running at once (a location's limit,
    as observed)."""
    machines = summary.loc[summary["kind"] == "machine"].set_index("jobid")["location"]
    snaps = job_snapshots(events, of=machines.index)
    running = snaps.loc[(snaps["code"] == FLEET_STATES.index("running")).to_numpy()]
    where = machines.reindex(running["jobid"]).to_numpy()
    counts = pd.DataFrame({"at": running["observed_at"].to_numpy(), "location": where})
    per_poll = counts.dropna().groupby(["at", "location"]).size()
    return {str(k): int(v) for k, v in per_poll.groupby(level=1).max().items()}


def _simulate(
    frame: pd.DataFrame,
    events: pd.DataFrame,
    summary: pd.DataFrame,
    at: pd.Timestamp,
    learned: _Learned,
    rng: np.random.Generator,
) -> np.ndarray:
    """Completion draws (epoch seconds) of each open job, one column per draw.

    A running job: its time to go times a resampled residual. A job not running: it starts
    after the usual wait from now (or its queue answer), a machine not before its mirror's
    job completes (never behind a failed one) nor before a slot of its location is free
    (as many slots as machines seen running there at once); then a run time of completed or
    running jobs like it.
    """
    out = np.full((len(frame), DRAWS), np.nan)
    now = _epoch_s(pd.Series([at], dtype=TIME))[0]
    t = _epoch_s(frame["observed_at"].fillna(at))
    running = (frame["basis"] == "running").to_numpy()
    boot = _Bootstrap(rng)
    for i in map(int, np.flatnonzero(running)):
        pool = learned.of_kind(frame["kind"].iat[i]).pool(int(frame["band"].iat[i]))
        out[i] = t[i] + frame["to_go_s"].iat[i] * np.exp(boot.draw(pool))
    begin = np.maximum(np.nan_to_num(_epoch_s(frame["queued_at"]), nan=now), now)
    begin += _typical_wait_s(summary)
    mirrors = _MirrorClock(frame, summary, out)
    slots = _Slots(frame, out, _concurrency(events, summary), now)
    for i in _waiting_order(frame):
        runs = learned.run_pool(str(frame["kind"].iat[i]), str(frame["location"].iat[i]))
        if not len(runs):
            continue
        ready = np.full(DRAWS, begin[i])
        if frame["kind"].iat[i] == "machine":
            ready = np.maximum(ready, mirrors.done(frame["mirror"].iat[i]))
        out[i] = slots.run(
            str(frame["location"].iat[i]), frame["kind"].iat[i], ready, boot.draw(runs)
        )
    return out


class _Bootstrap:
    """Draws from a pool of values, each draw from its own bootstrap resample of the pool:
    what the completed jobs say is uncertain too, and shared by every job of a draw (a
    fleet slower than its first jobs is slower for all), which independent draws would
    average away."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.samples: dict[int, np.ndarray] = {}

    def draw(self, pool: np.ndarray) -> np.ndarray:
        """One value per draw, from that draw's resample of ``pool``."""
        key = id(pool)  # pools are kept by who gives them: the same pool, the same resample
        if key not in self.samples:
            self.samples[key] = self.rng.integers(0, len(pool), (DRAWS, len(pool)))
        chosen = self.samples[key][np.arange(DRAWS), self.rng.integers(0, len(pool), DRAWS)]
        values: np.ndarray = pool[chosen]
        return values


def _waiting_order(frame: pd.DataFrame) -> list[int]:
    """The jobs not running, in the order they will start: mirrors first, then by queue
    answer and job id."""
    waiting = frame.loc[frame["basis"] == "waiting"]
    order = waiting.assign(machine=waiting["kind"] == "machine").sort_values(
        ["machine", "queued_at", "jobid"], na_position="last", kind="stable"
    )
    return [int(frame.index.get_loc(i)) for i in order.index]


class _MirrorClock:
    """When each mirror's job completes, per draw: as it did, as drawn, or never (failed)."""

    def __init__(self, frame: pd.DataFrame, summary: pd.DataFrame, draws: np.ndarray):
        self.draws = draws
        mirrors = summary.loc[(summary["kind"] == "mirror") & summary["mirror"].notna()]
        self.jobs = mirrors.drop_duplicates("mirror", keep="last").set_index("mirror")
        self.rows = {int(j): k for k, j in enumerate(frame["jobid"])}

    def done(self, mirror: object) -> np.ndarray:
        """Per draw, when the job of ``mirror`` completes (0: no such job known)."""
        if pd.isna(mirror) or mirror not in self.jobs.index:
            return np.zeros(DRAWS)
        job = self.jobs.loc[mirror]
        if job["outcome"] == "failed":
            return np.full(DRAWS, np.nan)
        if pd.notna(job["completed_at"]):
            return np.full(DRAWS, _epoch_s(pd.Series([job["completed_at"]], dtype=TIME))[0])
        row = self.rows.get(int(job["jobid"]))
        return self.draws[row] if row is not None else np.zeros(DRAWS)


class _Slots:
    """Each location's machine install slots, per draw: when each is free next."""

    def __init__(self, frame: pd.DataFrame, draws: np.ndarray, limits: dict[str, int], now: float):
        self.free: dict[str, np.ndarray] = {}
        running = (frame["basis"] == "running") & (frame["kind"] == "machine")
        for location, limit in limits.items():
            busy = draws[np.flatnonzero((running & (frame["location"] == location)).to_numpy())]
            idle = np.full((max(limit - len(busy), 0), DRAWS), now)
            self.free[location] = np.vstack([busy, idle]) if len(busy) or len(idle) else idle

    def run(self, location: str, kind: object, ready: np.ndarray, run_s: np.ndarray) -> np.ndarray:
        """Completions of a job ready at ``ready`` running ``run_s``: a machine waits for its
        location's first free slot, then holds it."""
        slots = self.free.get(location)
        if kind != "machine" or slots is None or not len(slots):
            unbounded: np.ndarray = ready + run_s
            return unbounded
        draw = np.arange(DRAWS)
        first = np.argmin(np.where(np.isnan(slots), np.inf, slots), axis=0)
        end: np.ndarray = np.maximum(ready, slots[first, draw]) + run_s
        slots[first, draw] = np.where(np.isnan(end), slots[first, draw], end)
        return end


# -- the rollout -----------------------------------------------------------------------------


def _epoch_s(times: pd.Series) -> np.ndarray:
    """Times as float seconds since the epoch, NaN for NaT."""
    values = times.astype(TIME).to_numpy(dtype="datetime64[us]")
    out: np.ndarray = np.where(np.isnat(values), np.nan, values.astype(np.int64) / 1e6)
    return out


def _rollout_draws(
    jobs: pd.DataFrame, draws: np.ndarray, summary: pd.DataFrame, rng: np.random.Generator
) -> np.ndarray:
    """Completion times (epoch seconds, NaN: never) of every job of ``summary``, one column
    per draw: completed jobs as they did, open ones as drawn, each failing at the rate
    seen among ended jobs times the share of its install still ahead of it (a job at 90 %
    has a tenth of its run left to fail in)."""
    out = np.tile(_epoch_s(summary["completed_at"])[:, None], (1, DRAWS))
    row = pd.Index(summary["jobid"]).get_indexer(jobs["jobid"])
    ahead = 1 - jobs["jobprogress"].to_numpy(float, na_value=0.0).clip(0, 100) / 100
    ahead = np.where((jobs["basis"] == "running").to_numpy(), ahead, 1.0)
    fails = rng.random((len(row), DRAWS)) < (_failure_rate(summary) * ahead)[:, None]
    out[row] = np.where(fails, np.nan, draws)
    return out


def _failure_rate(summary: pd.DataFrame) -> float:
    """The share of ended jobs that failed, shrunk toward 5 % while few have ended (the first
    to end are often the first to fail: a missing image fails at once)."""
    ended = summary["outcome"].isin(["completed", "failed", "squashed"]).sum()
    failed = (summary["outcome"] == "failed").sum()
    return float((failed + 0.5) / (ended + 10))


def _rollout_table(summary: pd.DataFrame, draws: np.ndarray, start: pd.Timestamp) -> pd.DataFrame:
    origin = _epoch_s(pd.Series([start], dtype=TIME))[0]
    done = _epoch_s(summary["completed_at"])
    rows = []
    for share in _SHARES:
        needed = int(np.ceil(len(summary) * share / 100))
        reached = np.sort(done[~np.isnan(done)])
        if 0 < needed <= len(reached):
            value = reached[needed - 1] - origin
            rows.append((share, value, value, value, 1.0, True))
            continue
        ranked = np.sort(np.where(np.isnan(draws), np.inf, draws), axis=0)
        times = ranked[needed - 1] - origin if needed else np.full(draws.shape[1], np.nan)
        finite = np.isfinite(times)
        # No interpolation: a draw that never got there is infinite, and inf - inf is NaN.
        low, mid, high = np.quantile(times, [_LOW, 0.5, _HIGH], method="inverted_cdf")
        rows.append((share, mid, low, high, float(finite.mean()), False))
    frame = pd.DataFrame(
        rows, columns=["share", "forecast_s", "lower_s", "upper_s", "reach", "done"]
    ).replace([np.inf, -np.inf], np.nan)
    for name in ("forecast", "lower", "upper"):
        frame[f"{name}_at"] = start + pd.to_timedelta(frame[f"{name}_s"], unit="s")
    return conform(frame, FORECAST_ROLLOUT_SCHEMA)
