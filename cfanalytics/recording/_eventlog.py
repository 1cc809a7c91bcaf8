"""The durable event log: append-only JSON Lines while recording, compacted to Parquet.

A log is a folder. While a run records, each response's rows are appended to
``_<run_id>.jsonl`` and flushed at once, so a crash loses at most the response in flight.
Closing the log compacts the journal into ``<run_id>.parquet`` (written to a hidden
temporary file, then renamed) and removes the journal. Dataset readers skip names that
start with ``_`` or ``.``, so the folder is a Parquet dataset that pandas, pyarrow, DuckDB
(``read_parquet('DIR/*.parquet')``), Polars, Spark and Dask read as it is, also while a
run records or after a crash. :func:`load_events` reads both forms, so a crashed run's
journal is never lost (nor one named ``<run_id>.jsonl``, as logs before kept it).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._files import drop_partial_line
from ..client import scrub
from ..events import COLUMNS, SCHEMA_VERSION, as_stored, concat_events, conform, empty_events
from ..exceptions import EventLogError
from ._eventcsv import read_events_csv, write_events_csv

__all__ = ["EXPORT_SUFFIXES", "EventLog", "load_events", "write_events"]

log = logging.getLogger("cfanalytics.eventlog")
_META_KEY = b"cfanalytics.schema_version"
#: The files :func:`write_events` writes, by suffix, and :func:`load_events` reads back.
EXPORT_SUFFIXES = (".parquet", ".csv")


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to the event log")


class EventLog:
    """Appends a run's events to ``folder``; reopening the same run appends to its journal."""

    def __init__(self, folder: str | os.PathLike[str], *, run_id: str, secrets: Sequence[str] = ()):
        self.folder = Path(folder)
        self.run_id = run_id
        self._secrets = tuple(s for s in secrets if s)
        self.journal = self.folder / f"_{run_id}.jsonl"
        self.parquet = self.folder / f"{run_id}.parquet"
        try:
            legacy = self.folder / f"{run_id}.jsonl"  # where logs before kept the journal
            if legacy.exists() and not self.journal.exists():
                legacy.replace(self.journal)
            # A killed run's half line would swallow the next one; and it is no response.
            drop_partial_line(self.journal)
            self.folder.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] | None = self.journal.open("a", encoding="utf-8")
        except OSError as exc:
            raise EventLogError(f"cannot write the event log in {self.folder}: {exc}") from exc
        #: The ``seq`` the next response of this run gets: reopening a log continues it.
        self.next_seq = _next_seq(self.journal, self.parquet)

    def __repr__(self) -> str:
        return f"EventLog({str(self.folder)!r}, run_id={self.run_id!r})"

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append one response's rows and flush them to the operating system."""
        if self._file is None:
            raise EventLogError(f"{self!r} is closed")
        text = "".join(
            scrub(json.dumps(row, default=_json_value, sort_keys=True), self._secrets) + "\n"
            for row in rows
        )
        try:
            self._file.write(text)
            self._file.flush()
        except OSError as exc:
            raise EventLogError(f"cannot append to {self.journal}: {exc}") from exc

    def close(self, *, compact: bool = True) -> None:
        """Close the journal and, by default, compact it into the run's Parquet file."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        if compact:
            compact_journal(self.journal, self.parquet)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _next_seq(journal: Path, parquet: Path) -> int:
    parts = [p for p in (parquet, journal) if p.exists()]
    frames = [_read_parquet(p) if p.suffix == ".parquet" else _read_journal(p) for p in parts]
    seqs = [frame["seq"].max() for frame in frames if len(frame)]
    return int(max(seqs)) + 1 if seqs else 0


def _read_journal(path: Path) -> pd.DataFrame:
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                rows.append(json.loads(line))
            except ValueError:
                # Only a crash mid-write leaves a broken line, and only as the last one.
                log.warning("%s:%d: skipping a partly written line", path, number)
    return conform(pd.DataFrame(rows, columns=list(COLUMNS))) if rows else empty_events()


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(as_stored(frame), preserve_index=False)
    metadata = dict(table.schema.metadata or {}) | {_META_KEY: str(SCHEMA_VERSION).encode()}
    tmp = path.with_name(f".{path.name}.tmp")  # hidden: dataset readers skip it
    pq.write_table(table.replace_schema_metadata(metadata), tmp)
    os.replace(tmp, path)


def write_events(events: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write an events table to one file, whole or not at all: ``.parquet`` as the event
    log writes its own (text and ``Int64`` columns, the schema version in its metadata), or
    ``.csv`` (times ISO 8601 UTC). :func:`load_events` (and ``cfanalytics summary``) read
    either back as it was."""
    path = Path(path)
    if path.suffix not in EXPORT_SUFFIXES:
        raise ValueError(f"cannot write {path}: use a .parquet or .csv file name")
    if path.suffix == ".csv":
        write_events_csv(events, path)
        return
    try:
        _write_parquet(conform(events), path)
    except OSError as exc:
        raise EventLogError(f"cannot write {path}: {exc}") from exc


def compact_journal(journal: Path, parquet: Path) -> None:
    """Merge ``journal`` into ``parquet`` (keeping rows already there), then remove it."""
    try:
        frames = [_read_parquet(parquet)] if parquet.exists() else []
        frames.append(_read_journal(journal))
        _write_parquet(_combine(frames), parquet)
        journal.unlink()
    except OSError as exc:
        raise EventLogError(f"cannot compact {journal} into {parquet}: {exc}") from exc


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise EventLogError(f"cannot read {path}: not a readable Parquet file ({exc})") from exc
    version = (table.schema.metadata or {}).get(_META_KEY, b"?").decode()
    if version != str(SCHEMA_VERSION):
        raise EventLogError(
            f"{path} holds events schema version {version}; this cfanalytics reads "
            f"version {SCHEMA_VERSION}"
        )
    return conform(table.to_pandas())


def load_events(source: str | os.PathLike[str]) -> pd.DataFrame:
    """Every event in an event log folder (or one .parquet / .jsonl file, or a .csv export
    of :func:`write_events`), typed.

    Rows come run by run (runs sorted by file name), each in recorded order.
    """
    path = Path(source)
    if not path.exists():
        raise EventLogError(f"no event log at {path}")
    files = [path] if path.is_file() else sorted([*path.glob("*.parquet"), *path.glob("*.jsonl")])
    if not files:
        raise EventLogError(f"{path} holds no event files (*.parquet or *.jsonl)")
    return _combine([_read_file(p) for p in files])


def _read_file(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return _read_parquet(path)
    return read_events_csv(path) if path.suffix == ".csv" else _read_journal(path)


def _combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate parts; a response seen twice (crash during compaction) is kept once."""
    if not frames:
        return empty_events()
    frame = concat_events(frames)
    frame = frame.drop_duplicates(subset=["run_id", "seq", "jobid"], keep="first")
    return conform(frame.sort_values(["run_id", "seq"], kind="stable"))
