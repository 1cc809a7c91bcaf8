"""A SOURCE that is something this command line wrote other than events (a table it printed
as CSV or JSON, or saved; an HTML report) is named in one line, with what to give instead.

The library reads every events file cfanalytics writes; which of the command line's other
outputs a file is, only the command line knows (each table's columns, matched as a set).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..events import COLUMNS
from ._output import STATUS_COLUMNS

__all__ = ["check_source"]

_INSTEAD = "not events: give the cassette, event log or events export it came from"


def check_source(source: str) -> str:
    """``source`` itself, unless it is one of the command line's outputs other than events:
    then a ``ValueError`` naming it."""
    path = Path(source)
    if path.suffix == ".html" and path.is_file():
        raise ValueError(f"{path} is an HTML report (from cfanalytics report), {_INSTEAD}")
    columns = _columns(path)
    what = _table(columns) if columns and set(columns) != set(COLUMNS) else None
    if what is not None:
        kind = "CSV" if path.suffix == ".csv" else "JSON"
        raise ValueError(f"{path} is {what[0]} in {kind} (from {what[1]}), {_INSTEAD}")
    return source


def _columns(path: Path) -> list[str] | None:
    """The header of a CSV file, or the keys of the first row of a JSON array of rows."""
    if not path.is_file() or path.suffix not in (".csv", ".json"):
        return None
    try:
        with path.open(encoding="utf-8", newline="") as file:
            if path.suffix == ".csv":
                return next(csv.reader(file), None)
            if file.read(64).lstrip()[:1] != "[":  # a JSON cassette is an object
                return None
            file.seek(0)
            rows = json.load(file)
    except (OSError, ValueError, csv.Error):
        return None  # unreadable: the library's reader says so
    first = rows[0] if isinstance(rows, list) and rows else None
    return list(first) if isinstance(first, dict) else None


def _table(columns: list[str]) -> tuple[str, str] | None:
    """What table has exactly these columns, and the command that writes it."""
    from ..analysis import COMPARE_SCHEMA, ROLLOUTS_SCHEMA, SUMMARY_SCHEMA
    from ..recording import CATALOG_COLUMNS

    tables = {
        frozenset(SUMMARY_SCHEMA): ("a per-job summary", "cfanalytics summary"),
        frozenset(STATUS_COLUMNS): ("an install status list", "cfanalytics status"),
        frozenset(ROLLOUTS_SCHEMA): ("a table of rollouts", "cfanalytics rollouts"),
        frozenset(COMPARE_SCHEMA): ("a comparison of rollouts", "cfanalytics compare"),
        frozenset(CATALOG_COLUMNS): ("a history catalog", "cfanalytics history list"),
    }
    return tables.get(frozenset(columns))
