"""Where events come from: any cassette (ours or another tool's), its journal, an event log,
a history store.

Reading never re-runs anything: a cassette's recorded answers are read by the live client's
own rules, in the order they were recorded (:func:`events_from_cassette`).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pandas as pd

from ..events import Exchange, events_from_exchanges
from ._cassette import Cassette, Interaction, load_cassette
from ._eventlog import load_events
from ._history import HistoryStore, is_store
from ._journal import journal_path, read_journal
from ._replay import RecordedFailure, in_recorded_order

__all__ = ["events_from_cassette", "exchange_of", "load_source", "open_cassette"]


def open_cassette(path: str | os.PathLike[str]) -> Cassette:
    """A cassette, or the journal of one whose recording was killed before it was written."""
    if not Path(path).exists() and journal_path(path).exists():
        return read_journal(path)
    return load_cassette(path)


def load_source(source: str | os.PathLike[str]) -> pd.DataFrame:
    """Events from a cassette (a file), an event log (a folder, .parquet or .jsonl) or a
    history store (a folder of ``asid=<n>`` partitions: every event it holds)."""
    path = Path(source)
    if is_store(path):
        return HistoryStore(path).events()
    if path.is_dir() or path.suffix in (".parquet", ".jsonl"):
        return load_events(path)
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
