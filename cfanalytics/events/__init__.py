"""The events table: the spine every analysis reads. Schema in :mod:`._schema`."""

from ._schema import (
    COLUMNS,
    ENDPOINTS,
    KINDS,
    PROBLEMS,
    SCHEMA,
    SCHEMA_VERSION,
    STATES,
    conform,
    empty_events,
    validate,
)

__all__ = [
    "COLUMNS",
    "ENDPOINTS",
    "KINDS",
    "PROBLEMS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "STATES",
    "conform",
    "empty_events",
    "validate",
]
