"""The cassette's journal: every interaction on disk the moment it is recorded.

A cassette is one YAML (or JSON) document, written whole when the run ends. Until then each
interaction (scrubbed) and each request that got no response is appended to
``<cassette>.journal`` as one JSON line and flushed, so a killed recorder loses nothing it
had received. ``cfanalytics record --resume`` reads the journal back (:func:`read_journal`);
a clean close writes the cassette and removes the journal.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from .._files import drop_partial_line
from ..exceptions import CassetteError
from ._cassette import Cassette, Interaction
from ._replay import FAILURES_KEY

__all__ = ["CassetteJournal", "journal_path", "read_journal"]

log = logging.getLogger("cfanalytics.journal")


def journal_path(cassette: str | os.PathLike[str]) -> Path:
    """Where the journal of ``cassette`` lives: beside it, ``.journal`` appended."""
    path = Path(cassette)
    return path.with_name(path.name + ".journal")


class CassetteJournal:
    """Appends a recording's interactions as JSON lines, flushed one by one."""

    def __init__(self, cassette: str | os.PathLike[str], metadata: Mapping[str, Any]) -> None:
        self.path = journal_path(cassette)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists()
            drop_partial_line(self.path)
            self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise CassetteError(f"cannot write the cassette journal {self.path}: {exc}") from exc
        if fresh:
            self._write({"metadata": dict(metadata)})

    def __repr__(self) -> str:
        return f"CassetteJournal({str(self.path)!r})"

    def interaction(self, interaction: Interaction) -> None:
        """Keep one (already scrubbed) interaction."""
        self._write({"interaction": _encode(interaction)})

    def failure(self, entry: Mapping[str, Any]) -> None:
        """Keep one request that got no response (the cassette's failure list entry)."""
        self._write({"failure": dict(entry)})

    def discard(self) -> None:
        """Close and remove the journal: the cassette is written, it holds everything."""
        file, self._file = self._file, None
        if file is not None:
            with suppress(OSError):  # what could not be flushed is in the cassette now
                file.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the file; the journal stays for ``--resume``."""
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            file.close()
        except OSError as exc:
            raise CassetteError(f"cannot finish {self.path}: {exc}") from exc

    def _write(self, record: Mapping[str, Any]) -> None:
        if self._file is None:
            raise CassetteError(f"{self!r} is closed")
        try:
            self._file.write(json.dumps(record, sort_keys=True) + "\n")
            self._file.flush()
        except OSError as exc:
            raise CassetteError(f"cannot append to {self.path}: {exc}") from exc


def read_journal(cassette: str | os.PathLike[str]) -> Cassette:
    """The interrupted recording a journal holds, as a cassette (its path: the cassette's)."""
    path = journal_path(cassette)
    metadata: dict[str, Any] = {}
    interactions: list[Interaction] = []
    failures: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CassetteError(f"cannot read the cassette journal {path}: {exc}") from exc
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines.pop()  # written in part by a killed run: appending will cut it, so skip it now
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            if "metadata" in record:
                metadata = dict(record["metadata"])
            elif "failure" in record:
                failures.append(dict(record["failure"]))
            else:
                interactions.append(_decode(record["interaction"]))
        except (ValueError, KeyError, TypeError) as exc:
            if number < len(lines):
                raise CassetteError(f"{path}:{number}: a corrupt journal line ({exc})") from exc
            log.warning("%s:%d: skipping a partly written last line", path, number)
    metadata[FAILURES_KEY] = failures
    return Cassette(interactions=tuple(interactions), metadata=metadata, path=Path(cassette))


def _encode(interaction: Interaction) -> dict[str, Any]:
    return {
        "method": interaction.method,
        "uri": interaction.uri,
        "request_headers": [list(pair) for pair in interaction.request_headers],
        "status_code": interaction.status_code,
        "reason": interaction.reason,
        "headers": [list(pair) for pair in interaction.headers],
        **_body(interaction.body),
    }


def _body(body: bytes) -> dict[str, str]:
    """UTF-8 text as it is (JSON bodies: no base64 bloat), anything else as base64."""
    try:
        return {"text": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode("ascii")}


def _decode(data: Mapping[str, Any]) -> Interaction:
    return Interaction(
        method=str(data["method"]),
        uri=str(data["uri"]),
        request_headers=tuple((str(k), str(v)) for k, v in data["request_headers"]),
        status_code=int(data["status_code"]),
        reason=str(data["reason"]),
        headers=tuple((str(k), str(v)) for k, v in data["headers"]),
        body=data["text"].encode("utf-8") if "text" in data else base64.b64decode(data["body"]),
    )
