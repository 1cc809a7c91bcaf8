"""Option values checked as argparse reads them, so a bad one is a usage error naming the
option (``argument --asid: not a whole number of at least 1: '-1'``), not a library error
naming a Python parameter."""

from __future__ import annotations

import argparse
import math

from .._zones import time_zone

__all__ = [
    "column_names",
    "count",
    "port",
    "positive",
    "positive_number",
    "share",
    "zone",
]


def positive(text: str) -> int:
    """A whole number of at least 1 (ids, counts)."""
    return _whole(text, 1)


def count(text: str) -> int:
    """A whole number of at least 0 (how many times; 0: never)."""
    return _whole(text, 0)


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"not a whole number of at least {least}: {text!r}")
    return value


def positive_number(text: str) -> float:
    """A number above 0 (seconds to wait, a speed-up)."""
    return _between(text, 0, math.inf, "a number above 0")


def share(text: str) -> float:
    """A number between 0 and 1, both excluded (a confidence level)."""
    return _between(text, 0, 1, "a number between 0 and 1")


def _between(text: str, low: float, high: float, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low < value < high:  # NaN fails too
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 to 65535 (0: any free one)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port (0 to 65535): {text!r}")
    return value


def column_names(text: str) -> tuple[str, ...]:
    """Comma-separated names; empty parts (and so ``''``) are dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def zone(text: str) -> str:
    """A time zone name this machine knows (``UTC``, ``Europe/Berlin``)."""
    try:
        return time_zone(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
