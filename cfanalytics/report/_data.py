"""Every table a report shows, computed once from the events."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pandas as pd

from ..analysis import (
    Backtest,
    History,
    api_errors,
    backtest,
    completion_curve,
    error_by,
    eta_errors,
    failure_rates,
    failures,
    fleet_states,
    job_eta_metrics,
    job_summary,
    other_endings,
    polling_gaps,
    progress_curves,
    queue_refusals,
    refusal_reasons,
    rollout_metrics,
    state_intervals,
    stragglers,
    time_zone,
)

__all__ = ["BACKTEST_POLLS", "ReportData", "analyse"]


@dataclass(frozen=True)
class ReportData:
    """The analyses behind one report."""

    events: pd.DataFrame
    summary: pd.DataFrame
    errors: pd.DataFrame
    per_job: pd.DataFrame
    metrics: pd.Series
    by_decile: pd.DataFrame
    by_location: pd.DataFrame
    by_kind: pd.DataFrame
    states: pd.DataFrame
    intervals: pd.DataFrame
    progress: pd.DataFrame
    stragglers: pd.DataFrame
    completion: pd.DataFrame
    completion_midpoint: pd.DataFrame
    durations: pd.DataFrame
    failures: pd.DataFrame
    failure_rates: pd.DataFrame
    api_errors: pd.DataFrame
    polling_gaps: pd.DataFrame
    other_endings: pd.DataFrame
    refusals: pd.DataFrame
    refusal_reasons: pd.DataFrame
    tz: str = "UTC"  # the zone times are shown in; the data stays UTC
    history: History | None = None  # earlier rollouts the forecast also learns from

    @functools.cached_property
    def backtest(self) -> Backtest:
        """The forecast made at up to :data:`BACKTEST_POLLS` of the polls, scored (made
        when first asked for: it is the slowest analysis)."""
        return backtest(self.events, history=self.history, at_most=BACKTEST_POLLS)


#: The most polls a report's backtest forecasts at (evenly spread): a forecast takes 0.1-0.5 s.
BACKTEST_POLLS = 12


def analyse(events: pd.DataFrame, *, tz: str = "UTC", history: History | None = None) -> ReportData:
    """Summary, ETA errors, per-job and rollout metrics, errors by group, the fleet over time;
    ``tz``: the zone the report shows times in; ``history``: what the forecast also learns
    from."""
    summary = job_summary(events)
    errors = eta_errors(events, summary=summary)
    per_job = job_eta_metrics(events, errors=errors, summary=summary)
    refusals = queue_refusals(events, summary=summary)
    return ReportData(
        events=events,
        summary=summary,
        errors=errors,
        per_job=per_job,
        metrics=rollout_metrics(events, summary=summary, errors=errors, per_job=per_job),
        by_decile=error_by(errors, "progress_decile"),
        by_location=error_by(errors, "location"),
        by_kind=error_by(errors, "kind"),
        states=fleet_states(events, summary=summary),
        intervals=state_intervals(events, summary=summary),
        progress=progress_curves(events, summary=summary),
        stragglers=stragglers(events, summary=summary),
        completion=completion_curve(summary),
        completion_midpoint=completion_curve(summary, method="midpoint"),
        durations=completion_curve(summary, clock="job"),
        failures=failures(events, summary=summary),
        failure_rates=failure_rates(summary, "location"),
        api_errors=api_errors(events),
        polling_gaps=polling_gaps(events),
        other_endings=other_endings(summary),
        refusals=refusals,
        refusal_reasons=refusal_reasons(refusals),
        tz=time_zone(tz),
        history=history,
    )
