"""Defaults the command line shows in its help, kept where importing them costs nothing."""

from __future__ import annotations

__all__ = ["MAX_STALL_S", "QUEUE_CONCURRENCY"]

#: A run stops after this many seconds of responses in which no followed job changed.
MAX_STALL_S = 3600.0
#: Queue requests a run has in flight at once (a real API answers in ~100 ms: 10,000 jobs
#: one by one take 17 minutes before the first poll).
QUEUE_CONCURRENCY = 8
