"""The plain (JSON) form of any typed table: what the CLI prints and a Markdown draft shows.

Timestamps become ISO 8601 UTC text ending in ``Z``; every missing value (``NA``, ``NaT``,
``NaN``, ``None``) becomes ``None``; numpy scalars become Python numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

__all__ = ["json_records", "json_value"]


def json_value(value: Any) -> Any:
    """One value in its plain form."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value.item() if hasattr(value, "item") else value


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain JSON-ready dicts, columns in order."""
    rows = frame.astype(object).to_dict("records")
    return [{name: json_value(value) for name, value in row.items()} for row in rows]
