"""Keeping keys off disk: which keys can be blanked out of a recording, and how.

Scrubbing replaces each key wherever it occurs, so a key must be one that occurs nowhere
else: a one-letter key would blank every such letter of a recording, and a key such as
``installs`` every field name. Such keys are refused before anything is sent
(:func:`scrubbable`); every writer then blanks keys with :func:`scrub`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..exceptions import CredentialsError
from ._fields import FIELDS
from ._results import JobState

__all__ = ["FILTERED", "MIN_KEY_LENGTH", "scrub", "scrub_bytes", "scrubbable", "unsafe_reason"]

#: What a key is replaced by.
FILTERED = "<FILTERED>"
#: Keys shorter than this are too likely to be ordinary text. Clanforge's are much longer.
MIN_KEY_LENGTH = 8
#: Text every API answer holds: field names and envelope words. A key inside one of them
#: would blank parts of every answer.
_VOCABULARY = (
    *FIELDS,
    *(state.label for state in JobState),
    *("installs", "success", "error", "message", "true", "false", "null"),
)


def unsafe_reason(key: str) -> str | None:
    """Why ``key`` cannot be scrubbed without damage, or None when it can."""
    if len(key) < MIN_KEY_LENGTH:
        count = f"{len(key)} character{'s' if len(key) != 1 else ''}"
        return f"is {count} long, under {MIN_KEY_LENGTH}"
    word = next((w for w in _VOCABULARY if key.lower() in w.lower()), None)
    if word is not None:
        return f"occurs in the API's own field {word!r}"
    return None


def scrubbable(keys: dict[str, str]) -> None:
    """Refuse keys that cannot be blanked out of recordings without blanking other text.

    ``keys`` maps how each key is given (``"CLANFORGE_ACCESS_KEY"``) to the key. The error
    says which key and why, never the key.
    """
    for name, key in keys.items():
        reason = unsafe_reason(key)
        if reason is not None:
            raise CredentialsError(
                f"{name} {reason}: it cannot be kept out of a recording without blanking "
                "ordinary text too, so nothing was sent; use the real Clanforge keys "
                "(Clanforge > Auth Keys)"
            )


def _ordered(secrets: Iterable[str]) -> list[str]:
    """Non-empty, longest first: a secret holding another is replaced whole."""
    return sorted({s for s in secrets if s}, key=len, reverse=True)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by :data:`FILTERED`."""
    for secret in _ordered(secrets):
        if secret in text:
            text = text.replace(secret, FILTERED)
    return text


def scrub_bytes(data: bytes, secrets: Sequence[str]) -> bytes:
    """``data`` with every secret (as UTF-8) replaced by :data:`FILTERED`."""
    for secret in _ordered(secrets):
        encoded = secret.encode("utf-8")
        if encoded in data:
            data = data.replace(encoded, FILTERED.encode("ascii"))
    return data
