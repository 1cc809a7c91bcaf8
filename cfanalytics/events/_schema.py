"""The events table: one schema, declared once, applied and checked in one place.

One row per job object in each install-status response (``endpoint="status"``), one row per
queue response, success or error envelope (``endpoint="queue"``), one row per image-status
response (``endpoint="image_status"``), and one row per failed, non-JSON or error response
with the job columns empty (``problem`` says what went wrong).

Timestamps are tz-aware UTC ``datetime64[us, UTC]``; ids and counts nullable ``Int64``;
flags nullable ``boolean``; free text nullable ``string``; fixed vocabularies categorical.
``extra`` is a JSON object (as text) of everything the API sent that has no column:
unknown fields, plus ``"__invalid__"`` (values not readable as their documented type) and
``"__duplicates__"`` (every value of a key sent twice) when present.

Bump :data:`SCHEMA_VERSION` on any change of columns or dtypes.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..client import JobState
from ..exceptions import SchemaError

__all__ = [
    "BOOL",
    "COLUMNS",
    "ENDPOINTS",
    "FLOAT",
    "INT",
    "KINDS",
    "PROBLEMS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "STATES",
    "TEXT",
    "TIME",
    "category",
    "conform",
    "empty_events",
    "validate",
]

SCHEMA_VERSION = 1

#: State names by ``jobstateid`` 1..7, the categories of ``state`` in id order: the client's
#: :class:`~cfanalytics.client.JobState` labels.
STATES = tuple(state.label for state in sorted(JobState))
ENDPOINTS = ("status", "queue", "image_status", "other")
KINDS = ("mirror", "machine")
#: What went wrong with a response, if anything.
PROBLEMS = ("http_status", "envelope", "format", "transport")

# The dtypes of every table cfanalytics returns, named once: events, summaries, analyses.
#: Timestamps: tz-aware UTC at microseconds (pandas 3 would otherwise pick the unit).
TIME = pd.DatetimeTZDtype(unit="us", tz="UTC")
#: Ids and counts.
INT = pd.Int64Dtype()
#: Durations (seconds), shares and other measures.
FLOAT = pd.Float64Dtype()
#: Flags.
BOOL = pd.BooleanDtype()
#: Free text.
TEXT = pd.StringDtype()


def category(values: tuple[str, ...], *, ordered: bool = False) -> pd.CategoricalDtype:
    """A fixed vocabulary as a categorical dtype, categories in the order given."""
    return pd.CategoricalDtype(list(values), ordered=ordered)


#: Every column of the events table and its dtype, in order.
SCHEMA: Mapping[str, object] = {
    "run_id": TEXT,
    "seq": INT,  # order of the response within its run, from 0
    "observed_at": TIME,  # when the response was received (recorded, never replay time)
    "endpoint": category(ENDPOINTS),
    "http_status": INT,
    "problem": category(PROBLEMS),
    "asid": INT,
    "jobid": INT,
    "kind": category(KINDS),
    "jobstateid": INT,
    "state": category(STATES, ordered=True),
    "jobprogress": INT,
    "jobcreated": TIME,
    "jobstart": TIME,
    "jobupdated": TIME,
    "jobeta": TIME,
    "install_at": TIME,
    "jobfailed": INT,
    "joberror": TEXT,
    "success": BOOL,
    "error_code": INT,
    "error_message": TEXT,
    "mirroring": BOOL,
    "restart": BOOL,
    "location": TEXT,
    "machine": TEXT,
    "mirror": TEXT,
    "imagepath": TEXT,
    "target_imageversionid": INT,
    "versionmirrorid": INT,
    "machinejobid": INT,
    "installs_squashed": INT,
    "extra": TEXT,
}
COLUMNS = tuple(SCHEMA)


def empty_events() -> pd.DataFrame:
    """An events table with no rows and every column typed."""
    return conform(pd.DataFrame({name: [] for name in COLUMNS}))


def _cast(column: pd.Series, dtype: object) -> pd.Series:
    if column.dtype == dtype:
        return column
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pd.to_datetime(column, utc=True, format="ISO8601").astype(dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        return column.astype(TEXT).astype(dtype)
    return column.astype(dtype)


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the schema: every column, in order, with its dtype; unknown columns are an error."""
    unknown = set(frame.columns) - set(COLUMNS)
    if unknown:
        raise SchemaError(f"columns not in the events schema: {sorted(unknown)}")
    frame = frame.reset_index(drop=True)  # align on position, whatever the index was
    out = {}
    for name, dtype in SCHEMA.items():
        column = frame[name] if name in frame else pd.Series(pd.NA, index=frame.index)
        try:
            out[name] = _cast(column, dtype)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"column {name!r} cannot be read as {dtype}: {exc}") from exc
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def validate(frame: pd.DataFrame) -> pd.DataFrame:
    """Check ``frame`` follows the schema exactly (columns, order, dtypes); return it."""
    if tuple(frame.columns) != COLUMNS:
        missing = [c for c in COLUMNS if c not in frame.columns]
        extra = [c for c in frame.columns if c not in SCHEMA]
        raise SchemaError(
            f"not an events table: missing {missing}, unexpected {extra}, or columns out of order"
        )
    wrong = {
        name: str(frame[name].dtype) for name, dtype in SCHEMA.items() if frame[name].dtype != dtype
    }
    if wrong:
        raise SchemaError(f"columns with the wrong dtype: {wrong}")
    return frame
