"""The one check of a time zone name, kept where importing it costs nothing (the CLI checks
``--tz`` as it parses)."""

from __future__ import annotations

import zoneinfo

__all__ = ["time_zone"]


def time_zone(name: str) -> str:
    """``name`` if it is a time zone this machine knows (IANA, such as ``Europe/Berlin``);
    a ValueError naming how to write one if not."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: give an IANA name such as UTC or Europe/Berlin"
        ) from None
    return name
