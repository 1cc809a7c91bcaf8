"""Backtest: walk a recording poll by poll, forecast from the data so far, score it after.

At each successful poll, :func:`~cfanalytics.analysis.forecast` sees only the events up to
it. Every Running observation of that poll with an ETA, of a job that completed, is scored
for three predictors against its completion (the window's midpoint, as
:func:`~cfanalytics.eta_errors` takes it): ``jobeta``, the linear rule (``baseline_eta``)
and the forecast's median. Errors are ``completion - prediction`` (positive: later than
predicted); an observation is *covered* when the completion lies inside the forecast's
interval. Figures are per job first, then across jobs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from ..events import BOOL, FLOAT, TEXT, TIME, Schema, split_rollouts, validate
from ._columns import returns
from ._common import conform, polls
from ._forecast import LEVEL, forecast_of, history_rows
from ._headline import rollout_start, time_to_share
from ._history import History
from ._summary import job_summary_of
from ._timing import ETA_ERROR_SCHEMA, eta_errors_of

__all__ = ["BACKTEST_SCHEMA", "PREDICTORS", "Backtest", "backtest"]

#: The predictors scored, in the order tables show them.
PREDICTORS = ("forecast", "jobeta", "linear")

#: :class:`Backtest`'s ``observations``: one row per scored Running observation.
BACKTEST_SCHEMA = Schema(
    {
        "rollout": (TEXT, "the rollout (ASID/version)"),
        **ETA_ERROR_SCHEMA.entries(
            "jobid", "kind", "location", "observed_at", "jobprogress", "progress_decile"
        ),
        "completed_at": (TIME, "its completion: exact, or the middle of its window"),
        "forecast_error_s": (FLOAT, "completion - the forecast's median, s (+: later)"),
        "jobeta_error_s": (FLOAT, "completion - jobeta, s"),
        "linear_error_s": (FLOAT, "completion - the linear rule, s"),
        "covered": (BOOL, "the completion lies inside the forecast's 80 % interval"),
        "width_s": (FLOAT, "the width of the forecast's 80 % interval, s"),
    }
)
_SCORES = Schema(
    {
        "<by>": ("as in the observations", "the group: its values of the columns ``by`` names"),
        "jobs": (np.dtype("int64"), "jobs scored in the group"),
        **{
            f"{name}_{kind}": (np.dtype("float64"), f"{what} of {name}'s errors, per job first, s")
            for name in PREDICTORS
            for kind, what in (("mae_s", "mean absolute value"), ("bias_s", "mean"))
        },
        "coverage": (np.dtype("float64"), "share inside the forecast's 80 % interval"),
        "width_s": (np.dtype("float64"), "mean width of the forecast's 80 % interval, s"),
    }
)
_ROLLOUT_SHARE = 25  # the rollout's time to 90 % is judged as forecast when this % completed


@dataclass(frozen=True)
class Backtest:
    """:func:`backtest`'s answer: ``observations`` (:data:`BACKTEST_SCHEMA`, one row per
    scored observation) and ``rollouts`` (one row per rollout: its actual time to 90 %, and
    the forecast of it made when :data:`_ROLLOUT_SHARE` % of its jobs had completed)."""

    observations: pd.DataFrame
    rollouts: pd.DataFrame

    @classmethod
    def combine(cls, parts: Sequence[Backtest]) -> Backtest:
        """The backtests of several sources as one: their observations and rollouts."""
        observations = [b.observations for b in parts if len(b.observations)]
        table = pd.concat(observations, ignore_index=True) if observations else None
        rollouts = [b.rollouts for b in parts if len(b.rollouts)]
        return cls(
            conform(
                table if table is not None else {n: [] for n in BACKTEST_SCHEMA}, BACKTEST_SCHEMA
            ),
            pd.concat(rollouts, ignore_index=True) if rollouts else pd.DataFrame(),
        )

    @returns(_SCORES)
    def scores(self, by: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Per predictor (and per group of ``by``: ``progress_decile``, ``location``,
        ``kind``): MAE and bias in seconds, per job first, then across jobs; for the
        forecast also its coverage and mean interval width."""
        return scores(self.observations, by=by)

    def summary(self) -> dict[str, Any]:
        """The figures as plain values, what ``cfanalytics backtest --format json`` prints."""
        table = self.scores()
        row = table.iloc[0] if len(table) else pd.Series(dtype=object)
        out: dict[str, Any] = {
            "jobs": int(self.observations["jobid"].nunique()),
            "observations": len(self.observations),
        }
        for name in PREDICTORS:
            out[name] = {
                "mae_s": _num(row.get(f"{name}_mae_s")),
                "bias_s": _num(row.get(f"{name}_bias_s")),
            }
        out["forecast"] |= {
            f"coverage_{LEVEL * 100:.0f}": _num(row.get("coverage")),
            f"width_{LEVEL * 100:.0f}_s": _num(row.get("width_s")),
        }
        out["rollouts"] = [
            {key: _plain(value) for key, value in record.items()}
            for record in self.rollouts.to_dict("records")
        ]
        return out


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 3)


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return round(float(value), 3) if isinstance(value, float | np.floating) else value


def backtest(
    events: pd.DataFrame,
    *,
    history: History | str | os.PathLike[str] | None = None,
    every: int = 1,
    at_most: int | None = None,
    on_progress: Any = None,
) -> Backtest:
    """Forecast at every ``every``-th successful poll of each rollout of ``events`` from the
    events so far, and score it (the module docstring says how); ``at_most`` spreads the
    forecasts evenly over at most that many polls of each rollout instead. ``history`` is
    passed on to :func:`~cfanalytics.analysis.forecast`; ``on_progress(done, total)`` is
    called after each forecast."""
    if every < 1 or (at_most is not None and at_most < 1):
        raise ValueError(f"every and at_most must be at least 1, not {every} and {at_most}")
    parts = [(name, frame) for name, frame in split_rollouts(validate(events)) if name]
    plans = [(name, frame, _sampled(_poll_times(frame), every, at_most)) for name, frame in parts]
    total, done = sum(len(times) for *_, times in plans), 0
    scored, rollouts = [], []
    for name, frame, times in plans:
        rows, row = _rollout(name, frame, times, history, on_progress, (done, total))
        scored.append(rows)
        rollouts.append(row)
        done += len(times)
    observations = pd.concat(scored, ignore_index=True) if scored else None
    table = conform(
        observations if observations is not None else {n: [] for n in BACKTEST_SCHEMA},
        BACKTEST_SCHEMA,
    )
    return Backtest(table, pd.DataFrame(rollouts))


def _sampled(times: list[pd.Timestamp], every: int, at_most: int | None) -> list[pd.Timestamp]:
    """Every ``every``-th of ``times``, or at most ``at_most`` of them evenly spread."""
    if at_most is None or len(times) <= at_most:
        return times[::every] if at_most is None else times
    return [times[i] for i in np.linspace(0, len(times) - 1, at_most).round().astype(int)]


def _poll_times(events: pd.DataFrame) -> list[pd.Timestamp]:
    return sorted(pd.Timestamp(t) for t in polls(events)["polled_at"].dropna().unique())


def _rollout(
    name: str,
    events: pd.DataFrame,
    times: list[pd.Timestamp],
    history: History | str | os.PathLike[str] | None,
    on_progress: Any,
    count: tuple[int, int],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One rollout's scored observations, and its rollout-level row."""
    summary = job_summary_of(events)
    truth = eta_errors_of(events, summary)
    start = rollout_start(summary)
    needed = time_to_share(summary["completed_at"], _ROLLOUT_SHARE, start)
    quarter = None if pd.isna(needed) else start + pd.Timedelta(seconds=cast(float, needed))
    frames, judged = [], None
    earlier = history_rows(history, events, name)  # read once, not at every poll
    for step, at in enumerate(times):
        made = forecast_of(events, name, at, earlier, seed=0)
        frames.append(_score(truth.loc[truth["observed_at"] == at], made.jobs))
        if judged is None and quarter is not None and at >= quarter:
            judged = made.rollout.set_index("share").loc[90]
        if on_progress is not None:
            on_progress(count[0] + step + 1, count[1])
    actual = time_to_share(summary["completed_at"], 90, start)
    row = {
        "rollout": name,
        "jobs": len(summary),
        "time_to_90_s": None if pd.isna(actual) else cast(float, actual),
        f"forecast_at_{_ROLLOUT_SHARE}_percent_s": None if judged is None else judged["forecast_s"],
        f"interval_at_{_ROLLOUT_SHARE}_percent_s": None
        if judged is None
        else [judged["lower_s"], judged["upper_s"]],
        f"reach_at_{_ROLLOUT_SHARE}_percent": None if judged is None else judged["reach"],
    }
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return rows.assign(rollout=name), row


def _score(truth: pd.DataFrame, jobs: pd.DataFrame) -> pd.DataFrame:
    """The observations of one poll (rows of :func:`eta_errors_of`) against the forecast
    made at it (its ``jobs``)."""
    made = jobs.set_index("jobid")[["forecast_at", "lower_at", "upper_at"]]
    rows = truth.join(made, on="jobid", how="inner")
    end = rows["completed_at"]
    return pd.DataFrame(
        {
            "jobid": rows["jobid"],
            "kind": rows["kind"],
            "location": rows["location"],
            "observed_at": rows["observed_at"],
            "jobprogress": rows["jobprogress"],
            "progress_decile": rows["progress_decile"],
            "completed_at": end,
            "forecast_error_s": (end - rows["forecast_at"]).dt.total_seconds(),
            "jobeta_error_s": rows["error_s"],
            "linear_error_s": rows["baseline_error_s"],
            "covered": (rows["lower_at"] <= end) & (end <= rows["upper_at"]),
            "width_s": (rows["upper_at"] - rows["lower_at"]).dt.total_seconds(),
        }
    )


def scores(observations: pd.DataFrame, *, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """:meth:`Backtest.scores` of a table of :data:`BACKTEST_SCHEMA`."""
    keys = [by] if isinstance(by, str) else list(by or [])
    rows = observations.assign(covered=observations["covered"].to_numpy(float, na_value=np.nan))
    for name in PREDICTORS:
        error = rows[f"{name}_error_s"].to_numpy(float, na_value=np.nan)
        rows[f"{name}_error_s"], rows[f"{name}_abs"] = error, np.abs(error)
    rows["width_s"] = rows["width_s"].to_numpy(float, na_value=np.nan)
    values = [f"{n}_{kind}" for n in PREDICTORS for kind in ("abs", "error_s")]
    per_job = rows.groupby([*keys, "rollout", "jobid"], observed=True)[
        [*values, "covered", "width_s"]
    ].mean()
    if keys:
        groups = per_job.groupby(level=list(range(len(keys))), observed=True)
        table, counts = groups.mean(), groups.size()
    else:
        table = per_job.mean().to_frame().T
        counts = pd.Series([len(per_job)], index=table.index)
    out = pd.DataFrame({"jobs": counts}, index=table.index)
    for name in PREDICTORS:
        out[f"{name}_mae_s"] = table[f"{name}_abs"]
        out[f"{name}_bias_s"] = table[f"{name}_error_s"]
    out["coverage"], out["width_s"] = table["covered"], table["width_s"]
    return out.reset_index() if keys else out.reset_index(drop=True)
