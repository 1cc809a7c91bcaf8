"""Where a report's numbers come from: the source, its hash, the API and the run's parameters.

Nothing here depends on when or where the report is made (no clock, no absolute paths),
so the same source always gives the same provenance, and so the same report bytes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from .._version import __version__
from ..recording import Cassette, events_from_cassette, load_cassette, load_source, source_kind

__all__ = ["Provenance", "load_with_provenance"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Provenance:
    """What a report was made from; every field is shown in the report."""

    source: str  # the file or folder name, without its directory
    kind: str  # a SourceKind: "cassette", "cassettes", "event log" or "history store"
    sha256: str
    api_host: str | None
    asids: tuple[int, ...]
    run_ids: tuple[str, ...]
    first_observed: pd.Timestamp | None
    last_observed: pd.Timestamp | None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    version: str = __version__


def load_with_provenance(
    source: str | os.PathLike[str], parameters: Mapping[str, Any] | None = None
) -> tuple[pd.DataFrame, Provenance]:
    """The events of any source (:func:`~cfanalytics.recording.load_source`), and the
    provenance of that source: a single cassette also gives its run's plan and API host."""
    path = Path(source)
    kind = source_kind(path)
    if kind == "cassette":
        cassette = load_cassette(path)
        events, meta = events_from_cassette(cassette), _run_metadata(cassette)
    else:
        events, meta = load_source(path), {}
    return events, _provenance(path, kind, events, meta, dict(parameters or {}))


def _provenance(
    path: Path, kind: str, events: pd.DataFrame, meta: dict[str, Any], params: dict[str, Any]
) -> Provenance:
    times = events["observed_at"].dropna()
    asids = sorted({int(a) for a in events["asid"].dropna()})
    return Provenance(
        source=path.resolve().name,
        kind=kind,
        sha256=sha256_of(path),
        api_host=meta.pop("api_host", None),
        asids=tuple(asids),
        run_ids=tuple(sorted({str(r) for r in events["run_id"].dropna()})),
        first_observed=times.min() if len(times) else None,
        last_observed=times.max() if len(times) else None,
        parameters=meta | params,
    )


def _run_metadata(cassette: Cassette) -> dict[str, Any]:
    """The run plan and stop reason a cassette carries, and the API host it talked to."""
    meta = dict(cassette.metadata)
    url = meta.get("base_url") or next((i.uri for i in cassette), None)
    found = {
        label: _with_unit(key, meta[key])
        for key, label in _RUN_LABELS.items()
        if meta.get(key) is not None
    }
    return found | {"api_host": _host(url)}


#: The run plan's entries a report shows, and how it names them.
_RUN_LABELS = {
    "interval": "run: poll interval",
    "max_polls": "run: at most, polls",
    "max_duration": "run: at most",
    "jobs": "run: jobs followed",
    "stop_reason": "run: stopped because",
    "complete": "run: every followed job ended",
}
_SECONDS = frozenset({"interval", "max_duration"})


def _with_unit(key: str, value: Any) -> Any:
    """Seconds with their unit (whole seconds, or the decimals they have); the rest as is."""
    return f"{float(value):g} s" if key in _SECONDS and isinstance(value, int | float) else value


def _host(url: str | None) -> str | None:
    """``host[:port]`` of a URL, never its user or password."""
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def sha256_of(path: Path) -> str:
    """SHA-256 of a file; of a folder, over each file's relative name and bytes, sorted."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            name = file.relative_to(path).as_posix()
            digest.update(f"{name}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
