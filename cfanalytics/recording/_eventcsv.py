"""Events as CSV: one text form per dtype when written, the one schema when read back.

Times are ISO 8601 UTC to the microsecond (``2026-11-02T09:00:00.000000Z``), numbers as
digits, flags ``True``/``False``, labels and text as they are, a missing value an empty cell
(the API's ``""`` is read as missing, so no event holds an empty string). Read back, every
column gets its schema dtype (:func:`~cfanalytics.events.conform`): the frame equals the one
the same events give through Parquet.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd

from ..events import BOOL, COLUMNS, INT, SCHEMA, as_stored, conform
from ..exceptions import EventLogError

__all__ = ["CSV_TIME_FORMAT", "read_events_csv", "write_events_csv"]

#: How a CSV of events (or of any table cfanalytics writes) gives a time.
CSV_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def write_events_csv(events: pd.DataFrame, path: Path) -> None:
    """Write ``events`` as CSV, whole or not at all (a hidden file renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        as_stored(conform(events)).to_csv(tmp, index=False, date_format=CSV_TIME_FORMAT)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EventLogError(f"cannot write {path}: {exc}") from exc


def read_events_csv(path: Path) -> pd.DataFrame:
    """The events of a CSV export, typed; one line naming the file when it holds no events."""
    _check_header(path)
    # Numbers and flags are parsed by pandas as their nullable types; every other column is
    # read as text and typed by the schema. Only an empty cell is missing ("NA" is text).
    kinds = {name: getattr(dtype, "kind", "O") for name, dtype in SCHEMA.items()}
    dtypes = {name: INT if k == "i" else BOOL if k == "b" else str for name, k in kinds.items()}
    try:
        frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as exc:  # ValueError: a cell not of its column's type
        raise EventLogError(f"cannot read {path} as events: {_one_line(exc)}") from exc
    return conform(frame)


def _check_header(path: Path) -> None:
    try:
        with path.open(encoding="utf-8", newline="") as file:
            header = next(csv.reader(file), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EventLogError(f"cannot read {path} as a CSV file: {_one_line(exc)}") from exc
    if not header:
        raise EventLogError(f"{path} is empty, not a CSV of events")
    if sorted(header) != sorted(COLUMNS):
        shown = ", ".join(header[:6]) + (", ..." if len(header) > 6 else "")
        raise EventLogError(
            f"{path} is a CSV file but not of events (its columns: {shown}): give the "
            "cassette, event log or events export it came from"
        )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
