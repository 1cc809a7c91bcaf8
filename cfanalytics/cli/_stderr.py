"""What the command line says on stderr besides its results: a line per retried request,
and errors put in its own terms (options and environment variables, not Python keywords)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ..client import RETRY_LOGGER

__all__ = ["cli_terms", "retry_notices"]

# The library's messages name its keyword arguments; the options that set them here. Whole
# phrases first where the library names both, or names what has no option here.
_CLI_TERMS = (
    (r", or pass access_key= and secret_key= in Python", ""),  # keys: the environment only
    (r" \(--overwrite, or overwrite=True, replaces it\)", " (--overwrite replaces it)"),
    (r"`cfanalytics summary` or events_from_cassette\(\)", "`cfanalytics summary`"),
    (r"events_from_cassette\(\)", "`cfanalytics summary` or `cfanalytics events`"),
    (r"; pass allow_remote=True if you mean it", ": the command line serves it on loopback only"),
    (r"\bengine='dask'", "--engine dask"),
    (r"^(since|until): not a date", r"--\1: not a date"),
    (r"\brollout_a=", "--rollout-a"),
    (r"\brollout_b=", "--rollout-b"),
    (r"\brollout=", "--rollout"),
    (r"\bbase_url=", "--base-url"),
    (r"\btimeout=", "--timeout"),
)


def cli_terms(message: str) -> str:
    """``message`` with the library's keyword arguments named as this command line's options."""
    for pattern, replacement in _CLI_TERMS:
        message = re.sub(pattern, replacement, message)
    return message


class _Notices(logging.Handler):
    """Writes each record as ``cfanalytics: MESSAGE`` above any progress bar on the stream."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.stream = sys.stderr  # as it is now: tests capture it, and tqdm writes to it

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm  # a bar on a terminal is cleared, the line written, redrawn

            tqdm.write(f"cfanalytics: {record.getMessage()}", file=self.stream)
        except Exception:  # logging's rule: a failing handler reports, never raises
            self.handleError(record)


@contextmanager
def retry_notices() -> Iterator[None]:
    """For the block, a line on stderr per retried request (the client logs them at INFO)."""
    logger = logging.getLogger(RETRY_LOGGER)
    handler, level, propagate = _Notices(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # -v's root handler would print each line a second time
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
