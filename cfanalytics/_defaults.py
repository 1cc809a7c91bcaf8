"""Defaults the command line shows in its help, kept where importing them costs nothing."""

from __future__ import annotations

__all__ = ["MAX_STALL_S"]

#: A run stops after this many seconds of responses in which no followed job changed.
MAX_STALL_S = 3600.0
