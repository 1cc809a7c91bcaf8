"""The events table: the spine every analysis reads.

One schema (columns, dtypes, the state vocabulary), versioned, and the builders that turn
recorded exchanges into rows by the live client's own reading rules.
"""

from ._build import (
    STAMP_HEADER,
    Exchange,
    events_from_exchanges,
    exchange_rows,
    observed_at,
)
from ._records import json_records, json_value
from ._rollouts import (
    choose_rollout,
    job_events,
    rollout_events,
    rollout_of,
    rollouts,
    single_rollout,
    split_rollouts,
)
from ._schema import (
    BOOL,
    COLUMNS,
    ENDPOINTS,
    FLOAT,
    INT,
    KINDS,
    LABEL,
    PROBLEMS,
    SCHEMA,
    SCHEMA_VERSION,
    STATES,
    TEXT,
    TIME,
    as_stored,
    category,
    concat_events,
    conform,
    empty_events,
    is_label,
    labels,
    validate,
)

__all__ = [
    "BOOL",
    "COLUMNS",
    "ENDPOINTS",
    "FLOAT",
    "INT",
    "KINDS",
    "LABEL",
    "PROBLEMS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "STAMP_HEADER",
    "STATES",
    "TEXT",
    "TIME",
    "Exchange",
    "as_stored",
    "category",
    "choose_rollout",
    "concat_events",
    "conform",
    "empty_events",
    "events_from_exchanges",
    "exchange_rows",
    "is_label",
    "job_events",
    "json_records",
    "json_value",
    "labels",
    "observed_at",
    "rollout_events",
    "rollout_of",
    "rollouts",
    "single_rollout",
    "split_rollouts",
    "validate",
]
