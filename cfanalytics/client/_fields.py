"""How each field of a Clanforge answer is read: one table, and the value readers it uses.

:data:`FIELDS` names every field read into a typed value, with its type, where it is sent
and, for integers and times, the range a value must lie in. The client's
:class:`~cfanalytics.client._parse.JobReader` and both column readers of the events table
take their field lists and rules from it, so a rule changes in one place.

Types (a value that is none of them raises ``ValueError``, and the readers flag it):

- ``int``: an int, an integral float, or a string of ASCII digits (sign allowed, spaces
  around); within int64 (the events table stores ``Int64``) and within ``bounds`` when set.
  A bool counts as 0/1.
- ``time``: unix seconds, read as an ``int`` within ``bounds`` (:data:`UNIX_SECONDS`),
  as a tz-aware UTC datetime.
- ``flag``: a bool, the int 0 or 1, or "true"/"false", "1"/"0", "yes"/"no" (any case).
- ``text``: a string; a number (not a bool) is kept as its text.
- ``state``: ``jobstateid``, an ``int``; when it is missing or unreadable, the id its
  ``jobstatename`` stands for (:func:`state_id_of`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ._results import JobState

__all__ = [
    "FIELDS",
    "JOB_FIELDS",
    "STATE_BY_NAME",
    "STATUS_FIELDS",
    "UNIX_SECONDS",
    "FieldRule",
    "FieldType",
    "as_bool",
    "as_int",
    "as_text",
    "state_id_of",
]

FieldType = Literal["int", "time", "flag", "text", "state"]
#: Where a field is sent: every job object (queue answers and status entries), status
#: entries only, queue answers only, or the image status.
SentIn = Literal["job", "install", "queue", "image"]

# Newer pages spell state 5 "Completed", older ones "Complete": both mean 5.
STATE_BY_NAME = {state.name.lower(): int(state) for state in JobState} | {
    "completed": int(JobState.COMPLETE)
}
#: Unix seconds a time may take: larger ones are more likely milliseconds (flagged, not
#: reinterpreted).
UNIX_SECONDS = range(10**11)
_INT64 = range(-(2**63), 2**63)
_DIGITS = re.compile(r"-?[0-9]+")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def as_int(value: Any) -> int:
    """An int within int64 from an int, bool, integral float or ASCII digit string."""
    number = _any_int(value)
    if number not in _INT64:
        raise ValueError(value)
    return number


def _any_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())  # ASCII digits only: str.isdigit() also passes "²"
    raise ValueError(value)


def as_bool(value: Any) -> bool:
    """A flag from a bool, 0/1, or "true"/"false", "1"/"0", "yes"/"no" (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(value)


def as_text(value: Any) -> str:
    """A string as sent; a number (not a bool) as its text."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(value)


def state_id_of(name: Any) -> int | None:
    """The state id a ``jobstatename`` stands for (any case, spaces around), or None."""
    return STATE_BY_NAME.get(name.strip().lower()) if isinstance(name, str) else None


@dataclass(frozen=True, slots=True)
class FieldRule:
    """How one field is read: its type, where it is sent, and the range of its number.

    ``bounds`` holds an ``int`` field's documented range, or a ``time`` field's unix
    seconds; a value outside is refused (flagged), never clipped.
    """

    name: str
    type: FieldType
    sent_in: SentIn
    bounds: range | None = None

    def __post_init__(self) -> None:
        if self.type == "time" and self.bounds is None:
            raise ValueError(f"time field {self.name!r} needs bounds (unix seconds)")

    def read(self, value: Any) -> Any:
        """``value`` as this field's type; ValueError when it is not one or is out of bounds.

        A ``state`` reads as its id alone here; the name stands in only where it is missing.
        """
        if self.type == "flag":
            return as_bool(value)
        if self.type == "text":
            return as_text(value)
        number = as_int(value)
        if self.bounds is not None and number not in self.bounds:
            raise ValueError(value)
        return datetime.fromtimestamp(number, UTC) if self.type == "time" else number


_RULES = (
    FieldRule("jobstateid", "state", "job"),
    FieldRule("jobstatename", "text", "job"),
    FieldRule("jobprogress", "int", "job", range(101)),  # percent done
    FieldRule("jobcreated", "time", "job", UNIX_SECONDS),
    FieldRule("jobstart", "time", "job", UNIX_SECONDS),  # documented as a digit string
    FieldRule("jobupdated", "time", "job", UNIX_SECONDS),
    FieldRule("jobeta", "time", "job", UNIX_SECONDS),
    FieldRule("jobfailed", "int", "job", range(2**63)),  # a 0/1 flag or a count: a count
    FieldRule("joberror", "text", "job"),
    FieldRule("success", "flag", "job"),
    FieldRule("jobid", "int", "install"),
    FieldRule("mirroring", "flag", "install"),
    FieldRule("restart", "flag", "install"),
    FieldRule("location", "text", "install"),
    FieldRule("machine", "text", "install"),
    FieldRule("mirror", "text", "install"),
    FieldRule("imagepath", "text", "install"),
    FieldRule("install_at", "time", "install", UNIX_SECONDS),
    FieldRule("target_imageversionid", "int", "install"),
    FieldRule("versionmirrorid", "int", "queue"),
    FieldRule("machinejobid", "int", "queue"),
    FieldRule("installs_squashed", "int", "queue"),  # or a list of job ids
    FieldRule("pending_machines", "int", "image"),
    FieldRule("failed_machines", "int", "image"),
    FieldRule("completed_machines", "int", "image"),
)
#: Every field read into a typed value, by name.
FIELDS: Mapping[str, FieldRule] = {rule.name: rule for rule in _RULES}
#: The ten job fields every queue answer and status entry carries.
JOB_FIELDS: Mapping[str, FieldRule] = {n: r for n, r in FIELDS.items() if r.sent_in == "job"}
#: The fields of one entry of the install status list: the job fields and its own.
STATUS_FIELDS: Mapping[str, FieldRule] = {
    n: r for n, r in FIELDS.items() if r.sent_in in ("job", "install")
}
