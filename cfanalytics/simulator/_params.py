"""Request-parameter parsing for the simulator's HTTP surface.

Each parser raises :class:`Reject`, which the app turns into an HTTP error response: 400 with
the error envelope for a missing or malformed parameter, 403 for a foreign ASID.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "Reject",
    "parse_bool",
    "parse_int",
    "parse_optional_bool",
    "parse_optional_int",
    "to_int",
]

_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


class Reject(Exception):
    """Stop handling the request and answer with ``status`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _required(query: Mapping[str, str], name: str) -> str:
    value = query.get(name)
    if value is None or value == "":
        raise Reject(400, f"missing parameter: {name}")
    return value


def to_int(value: str, name: str) -> int:
    """``value`` as a decimal integer, or a 400 naming ``name``."""
    text = value.strip()
    # 18 digits fit any id; longer input would only reach int()'s digit limit as a crash.
    if not text.lstrip("-").isdigit() or not text.isascii() or len(text) > 18:
        raise Reject(400, f"invalid parameter: {name} must be an integer, got {value!r}")
    return int(text)


def parse_int(query: Mapping[str, str], name: str) -> int:
    """A required integer parameter."""
    return to_int(_required(query, name), name)


def parse_optional_int(query: Mapping[str, str], name: str) -> int | None:
    """An optional integer parameter (absent or empty: None)."""
    value = query.get(name)
    return None if value is None or value == "" else to_int(value, name)


def parse_bool(query: Mapping[str, str], name: str) -> bool:
    """A required boolean parameter: true/false/1/0, any case."""
    value = _required(query, name)
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise Reject(400, f"invalid parameter: {name} must be true or false, got {value!r}")


def parse_optional_bool(query: Mapping[str, str], name: str, default: bool = False) -> bool:
    """An optional boolean parameter."""
    value = query.get(name)
    return default if value is None or value == "" else parse_bool(query, name)
