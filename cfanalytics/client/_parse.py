"""Reading Clanforge JSON as it really comes: quirky types, duplicate keys, missing ids.

Each field is read by its rule in :data:`~cfanalytics.client._fields.FIELDS`. A value that
cannot be read as its field's type becomes None and is kept, as sent, in the ``invalid``
mapping of the result: nothing the API said is lost, and odd data is flagged rather than
silently "fixed".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ._fields import FIELDS, state_id_of

__all__ = ["JobReader", "loads"]


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


class JobReader:
    """Reads typed fields from one JSON object, collecting unreadable values in ``invalid``."""

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.obj = obj
        self.invalid: dict[str, Any] = {}
        self.used: set[str] = set()

    def read(self, name: str) -> Any:
        """Field ``name`` by its rule; None when absent, null, "" or unreadable (flagged).

        A missing or unreadable ``state`` is the id its ``jobstatename`` stands for.
        """
        rule = FIELDS[name]
        self.used.add(name)
        value = self.obj.get(name)
        typed = None
        if value is not None and value != "":  # "" means "not set" (jobstart before start)
            try:
                typed = rule.read(value)
            except (ValueError, OverflowError):
                self.invalid[name] = value
        if typed is None and rule.type == "state":
            self.used.add("jobstatename")
            typed = state_id_of(self.obj.get("jobstatename"))
        return typed

    def read_all(self, names: Iterable[str]) -> dict[str, Any]:
        """The fields ``names`` (e.g. :data:`~cfanalytics.client._fields.JOB_FIELDS`) by name."""
        return {name: self.read(name) for name in names}

    def leftovers(self) -> dict[str, Any]:
        """``extra``, ``invalid`` and ``duplicates``: everything not read into a typed field."""
        extra = {k: v for k, v in self.obj.items() if k not in self.used}
        duplicates = getattr(self.obj, "duplicates", {})
        return {"extra": extra, "invalid": dict(self.invalid), "duplicates": dict(duplicates)}
