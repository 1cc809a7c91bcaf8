"""Where events come from: any cassette (ours or another tool's), its journal, a folder of
cassettes, an event log, an events export (.parquet or .csv), a history store.

Reading never re-runs anything: a cassette's recorded answers are read by the live client's
own rules, in the order they were recorded (:func:`events_from_cassette`).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Literal

import pandas as pd

from ..events import Exchange, conform, events_from_exchanges
from ..exceptions import RecordingError
from ._cassette import Cassette, Interaction, load_cassette
from ._eventlog import EXPORT_SUFFIXES, load_events
from ._history import HistoryStore, is_store
from ._journal import journal_path, read_journal
from ._replay import RecordedFailure, in_recorded_order

__all__ = [
    "CASSETTE_SUFFIXES",
    "SourceKind",
    "cassettes_in",
    "events_from_cassette",
    "exchange_of",
    "load_source",
    "open_cassette",
    "source_kind",
]

#: The file name endings of a cassette (vcrpy's YAML or JSON, gzipped or not).
CASSETTE_SUFFIXES = (".yaml", ".yml", ".json", ".gz")
#: What a source is, as :func:`source_kind` tells it.
SourceKind = Literal["history store", "event log", "cassettes", "cassette"]
_EVENT_SUFFIXES = (".parquet", ".jsonl")  # the files of an event log folder
_JOURNAL = ".journal"
# Read as a cassette besides CASSETTE_SUFFIXES: vcrpy adds no suffix to the name it is
# given, and a killed recording leaves its journal.
_ALSO_CASSETTES = ("", _JOURNAL)


def open_cassette(path: str | os.PathLike[str]) -> Cassette:
    """A cassette, or the journal of one whose recording was killed before it was written
    (given as the cassette's name or as the journal's own)."""
    if Path(path).suffix == _JOURNAL:
        return read_journal(Path(path).with_suffix(""))
    if not Path(path).exists() and journal_path(path).exists():
        return read_journal(path)
    return load_cassette(path)


def source_kind(source: str | os.PathLike[str]) -> SourceKind:
    """What ``source`` is: a history store (a folder of ``asid=<n>`` partitions), an event
    log (a folder of event files, or one .parquet / .jsonl file or .csv export), a folder of
    cassettes (and no event file), or a cassette (by its suffix, or none).

    Raises :class:`~cfanalytics.exceptions.RecordingError` naming what is read for a file
    of any other suffix.
    """
    path = Path(source)
    if is_store(path):
        return "history store"
    if path.is_dir():
        events = any(p.suffix in _EVENT_SUFFIXES for p in path.iterdir())
        return "cassettes" if not events and cassettes_in(path) else "event log"
    if path.suffix in (*_EVENT_SUFFIXES, *EXPORT_SUFFIXES):
        return "event log"
    if path.suffix.lower() in (*CASSETTE_SUFFIXES, *_ALSO_CASSETTES):
        return "cassette"
    raise RecordingError(
        f"{path} is not a source cfanalytics reads (no {path.suffix} files): give a cassette "
        f"({', '.join(CASSETTE_SUFFIXES)}), an events export (.parquet, .csv), or a folder: "
        "an event log, a history store or cassettes"
    )


def cassettes_in(folder: str | os.PathLike[str]) -> list[Path]:
    """The cassette files directly in ``folder``, by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix in CASSETTE_SUFFIXES)


def load_source(source: str | os.PathLike[str]) -> pd.DataFrame:
    """Events from any source (:func:`source_kind`): a cassette, a folder of cassettes (one
    after another, by name), an event log or a history store (every event it holds)."""
    path = Path(source)
    kind = source_kind(path)
    if kind == "history store":
        return HistoryStore(path).events()
    if kind == "event log":
        return load_events(path)
    if kind == "cassettes":
        frames = [events_from_cassette(p) for p in cassettes_in(path)]
        return conform(pd.concat(frames, ignore_index=True))
    return events_from_cassette(path)


def events_from_cassette(path: str | os.PathLike[str] | Cassette) -> pd.DataFrame:
    """The events table of any cassette of Clanforge interactions, without re-running.

    Works for cassettes recorded by other tools too (the run id is then the file name).
    """
    loaded = path if isinstance(path, Cassette) else open_cassette(path)
    run_id = str(loaded.metadata.get("run_id") or (loaded.path.stem if loaded.path else "run"))
    return events_from_exchanges(map(exchange_of, in_recorded_order(loaded)), run_id=run_id)


def exchange_of(item: Interaction | RecordedFailure) -> Exchange:
    """A recorded answer, or a request that got none, as the events builder reads it."""
    if isinstance(item, Interaction):
        return Exchange(item.method, item.uri, item.to_raw())
    at = datetime.fromisoformat(item.at) if item.at else None
    return Exchange(item.method, item.uri, None, f"{item.error}: {item.message}", at)
