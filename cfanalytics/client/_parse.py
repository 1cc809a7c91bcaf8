"""Reading Clanforge JSON as it really comes: quirky types, duplicate keys, missing ids.

A value that cannot be read as its documented type becomes None and is kept, as sent, in
the ``invalid`` mapping of the result: nothing the API said is lost, and odd data is
flagged rather than silently "fixed".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ._results import JobState

__all__ = ["BOUNDS", "JobReader", "as_int_in", "loads", "read_state_id"]

# Newer pages spell state 5 "Completed", older ones "Complete": both mean 5.
_STATE_BY_NAME = {state.name.lower(): int(state) for state in JobState} | {"completed": 5}
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
# Unix seconds beyond this are more likely milliseconds: flagged, not reinterpreted.
_MAX_UNIX_SECONDS = 10**11
# The events table stores integers as Int64: a larger one is unreadable, not truncated.
_DIGITS = re.compile(r"-?[0-9]+")
_INT64 = range(-(2**63), 2**63)
#: Documented ranges (percent done; a failure count): a value outside is flagged as invalid.
BOUNDS: dict[str, range] = {"jobprogress": range(101), "jobfailed": range(2**63)}


class JsonObject(dict[str, Any]):
    """A JSON object that remembers every value of a key sent more than once."""

    __slots__ = ("duplicates",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        seen: dict[str, list[Any]] = {}
        for key, value in pairs:
            seen.setdefault(key, []).append(value)
        self.duplicates = {k: tuple(v) for k, v in seen.items() if len(v) > 1}


def loads(text: str) -> Any:
    """Parse JSON; objects become :class:`JsonObject` (last duplicate wins, all kept)."""
    return json.loads(text, object_pairs_hook=JsonObject)


def _as_int(value: Any) -> int | None:
    number = _as_any_int(value)
    if number not in _INT64:
        raise ValueError(value)
    return number


def _as_any_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())  # ASCII digits only: str.isdigit() also passes "²"
    raise ValueError(value)


def as_int_in(key: str) -> Callable[[Any], int | None]:
    """The integer reader of field ``key``: :func:`_as_int`, refusing values out of its range.

    A progress of 150 or a failure count of -1 is not "fixed" to 100 or 0: it is refused,
    so the reader flags it (the value, as sent, goes to ``invalid``).
    """
    bounds = BOUNDS.get(key)
    if bounds is None:
        return _as_int

    def read(value: Any) -> int | None:
        number = _as_int(value)
        if number not in bounds:
            raise ValueError(value)
        return number

    return read


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(value)


def _as_time(value: Any) -> datetime | None:
    seconds = _as_int(value)
    if seconds is None or not 0 <= seconds < _MAX_UNIX_SECONDS:
        raise ValueError(value)
    return datetime.fromtimestamp(seconds, UTC)


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(value)


def read_state_id(obj: Mapping[str, Any], invalid: dict[str, Any]) -> int | None:
    """``jobstateid``, or the id its ``jobstatename`` stands for when the id is missing."""
    raw = obj.get("jobstateid")
    if raw not in (None, ""):
        try:
            return _as_int(raw)
        except ValueError:
            invalid["jobstateid"] = raw
    name = obj.get("jobstatename")
    return _STATE_BY_NAME.get(name.strip().lower()) if isinstance(name, str) else None


class JobReader:
    """Reads typed fields from one JSON object, collecting unreadable values in ``invalid``."""

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.obj = obj
        self.invalid: dict[str, Any] = {}
        self.used: set[str] = set()

    def _read(self, key: str, convert: Callable[[Any], Any]) -> Any:
        self.used.add(key)
        value = self.obj.get(key)
        if value is None or value == "":
            return None  # absent, null and "" all mean "not set" (jobstart before start)
        try:
            return convert(value)
        except (ValueError, OverflowError):
            self.invalid[key] = value
            return None

    def number(self, key: str) -> int | None:
        """An integer field (also from digit strings and integral floats)."""
        return self._read(key, as_int_in(key))  # type: ignore[no-any-return]

    def flag(self, key: str) -> bool | None:
        """A boolean field (bool, 0/1, "true"/"false")."""
        return self._read(key, _as_bool)  # type: ignore[no-any-return]

    def time(self, key: str) -> datetime | None:
        """A unix-seconds timestamp (int or digit string) as tz-aware UTC."""
        return self._read(key, _as_time)  # type: ignore[no-any-return]

    def text(self, key: str) -> str | None:
        """A string field (numbers are kept as their text)."""
        return self._read(key, _as_text)  # type: ignore[no-any-return]

    def state_id(self) -> int | None:
        """The state id, derived from the name when missing."""
        self.used.update(("jobstateid", "jobstatename"))
        return read_state_id(self.obj, self.invalid)

    def job_fields(self) -> dict[str, Any]:
        """The ten documented job fields as keyword arguments for :class:`JobFields`."""
        return {
            "jobstateid": self.state_id(),
            "jobstatename": self.text("jobstatename"),
            "jobprogress": self.number("jobprogress"),
            "jobcreated": self.time("jobcreated"),
            "jobstart": self.time("jobstart"),
            "jobupdated": self.time("jobupdated"),
            "jobeta": self.time("jobeta"),
            "jobfailed": self.number("jobfailed"),
            "joberror": self.text("joberror"),
            "success": self.flag("success"),
        }

    def leftovers(self) -> dict[str, Any]:
        """``extra``, ``invalid`` and ``duplicates``: everything not read into a typed field."""
        extra = {k: v for k, v in self.obj.items() if k not in self.used}
        duplicates = getattr(self.obj, "duplicates", {})
        return {"extra": extra, "invalid": dict(self.invalid), "duplicates": dict(duplicates)}
