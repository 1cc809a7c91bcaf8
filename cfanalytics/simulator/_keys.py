"""Throwaway keys for an embedded simulator: it never needs anyone's real ones."""

from __future__ import annotations

import secrets

__all__ = ["throwaway_keys"]


def throwaway_keys() -> tuple[str, str]:
    """A fresh random (access key, secret key) pair, good for one simulator only."""
    return "sim-" + secrets.token_hex(8), secrets.token_urlsafe(24)
