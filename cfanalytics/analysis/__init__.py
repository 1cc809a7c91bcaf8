"""Analysis: pure functions over the events table (pandas in, pandas out).

Every domain rule is defined once in this package and imported where used: what a poll and
a snapshot are, the state ids and the fleet's states (``_common``), when a job is stalled or
overdue (``_stragglers``), when it finally failed (``_summary``). Functions take the events
(or the frame they analyse) first; every optional input is keyword-only. Every table's
columns, dtypes and meanings are declared once; ``help()`` of a function returning one shows
them, and so does :func:`describe`.
"""

from ._backtest import BACKTEST_SCHEMA, PREDICTORS, Backtest, backtest
from ._columns import describe
from ._common import (
    FLEET_STATE_BY_ID,
    FLEET_STATE_BY_OUTCOME,
    FLEET_STATES,
    STATE_MEANINGS,
    clock,
    time_zone,
)
from ._compare import COMPARE_SCHEMA, compare
from ._completion import COMPLETION_SCHEMA, completion_curve, time_to_fraction
from ._digest import DIGEST_GROUPS, UNIT_SCHEMA, Digest
from ._engines import ENGINES, Dask, Embedded, Engine
from ._failures import (
    API_ERROR_SCHEMA,
    ERROR_CLASSES,
    ERROR_RULES,
    FAILURE_SCHEMA,
    STRETCH_SCHEMA,
    api_error_stretches,
    api_errors,
    classify_error,
    failure_rates,
    failures,
    first_failure,
    other_endings,
    polling_gaps,
)
from ._fleet import (
    FLEET_STATES_SCHEMA,
    INTERVAL_SCHEMA,
    PROGRESS_SCHEMA,
    fleet_states,
    progress_curves,
    state_intervals,
)
from ._forecast import FORECAST_JOB_SCHEMA, FORECAST_ROLLOUT_SCHEMA, Forecast, forecast
from ._headline import GROUP_METRICS, group_metrics
from ._history import (
    MACHINE_HISTORY_SCHEMA,
    ORDER,
    REPEAT_K,
    REPEAT_N,
    ROLLOUTS_SCHEMA,
    History,
    Standing,
    machine_history,
    open_history,
    standing,
    started_between,
    trend,
)
from ._refusals import (
    REASONS_SCHEMA,
    REFUSAL_REASONS,
    REFUSAL_SCHEMA,
    REMEDIES,
    never_queued,
    queue_refusals,
    reason_label,
    refusal_reasons,
    refusal_sentence,
    remedy,
)
from ._rollout import METRICS_SCHEMA, metrics_by_rollout, rollout_metrics
from ._select import SELECTABLE, select_jobs
from ._stragglers import LATE_GRACE_S, STALLED_POLLS, STRAGGLER_SCHEMA, stragglers
from ._summary import OUTCOME_MEANINGS, OUTCOMES, SUMMARY_SCHEMA, install_seconds, job_summary
from ._timeline import SNAPSHOT_SCHEMA, FleetTimeline, fleet_at
from ._timing import ETA_ERROR_SCHEMA, error_by, eta_errors, job_eta_metrics, poll_interval_s

__all__ = [
    "API_ERROR_SCHEMA",
    "BACKTEST_SCHEMA",
    "COMPARE_SCHEMA",
    "COMPLETION_SCHEMA",
    "DIGEST_GROUPS",
    "ENGINES",
    "ERROR_CLASSES",
    "ERROR_RULES",
    "ETA_ERROR_SCHEMA",
    "FAILURE_SCHEMA",
    "FLEET_STATES",
    "FLEET_STATES_SCHEMA",
    "FLEET_STATE_BY_ID",
    "FLEET_STATE_BY_OUTCOME",
    "FORECAST_JOB_SCHEMA",
    "FORECAST_ROLLOUT_SCHEMA",
    "GROUP_METRICS",
    "INTERVAL_SCHEMA",
    "LATE_GRACE_S",
    "MACHINE_HISTORY_SCHEMA",
    "METRICS_SCHEMA",
    "ORDER",
    "OUTCOMES",
    "OUTCOME_MEANINGS",
    "PREDICTORS",
    "PROGRESS_SCHEMA",
    "REASONS_SCHEMA",
    "REFUSAL_REASONS",
    "REFUSAL_SCHEMA",
    "REMEDIES",
    "REPEAT_K",
    "REPEAT_N",
    "ROLLOUTS_SCHEMA",
    "SELECTABLE",
    "SNAPSHOT_SCHEMA",
    "STALLED_POLLS",
    "STATE_MEANINGS",
    "STRAGGLER_SCHEMA",
    "STRETCH_SCHEMA",
    "SUMMARY_SCHEMA",
    "UNIT_SCHEMA",
    "Backtest",
    "Dask",
    "Digest",
    "Embedded",
    "Engine",
    "FleetTimeline",
    "Forecast",
    "History",
    "Standing",
    "api_error_stretches",
    "api_errors",
    "backtest",
    "classify_error",
    "clock",
    "compare",
    "completion_curve",
    "describe",
    "error_by",
    "eta_errors",
    "failure_rates",
    "failures",
    "first_failure",
    "fleet_at",
    "fleet_states",
    "forecast",
    "group_metrics",
    "install_seconds",
    "job_eta_metrics",
    "job_summary",
    "machine_history",
    "metrics_by_rollout",
    "never_queued",
    "open_history",
    "other_endings",
    "poll_interval_s",
    "polling_gaps",
    "progress_curves",
    "queue_refusals",
    "reason_label",
    "refusal_reasons",
    "refusal_sentence",
    "remedy",
    "rollout_metrics",
    "select_jobs",
    "standing",
    "started_between",
    "state_intervals",
    "stragglers",
    "time_to_fraction",
    "time_zone",
    "trend",
]
