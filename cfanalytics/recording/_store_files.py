"""The history store's files: what :mod:`._history`'s docstring describes, as code.

The layout's names (partition folders, staging, manifest, metadata keys), a file's schema
and footer (:class:`StoredFile`, :func:`inspect_file`), and the checks that a folder is a store.
Both the add (:mod:`._store_add`) and the readers (:mod:`._history`) build on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from hashlib import sha256
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .._version import __version__
from ..events import BOOL, COLUMNS, INT, SCHEMA_VERSION, TEXT, as_stored, empty_events
from ..exceptions import HistoryError, RolloutError

NO_ASID = -1
NO_MONTH = "none"
STAGING = "_staging"
MANIFEST = "_commit.json"
_SCHEMA_KEY = b"cfanalytics.schema_version"  # the event log's key too
_VERSION_KEY = b"cfanalytics.version"
_RUN_KEY = b"cfanalytics.run_id"
_START_KEY = b"cfanalytics.run_start"
EXTRA_COLUMNS = ("rollout", "row")
NO_TIME = np.iinfo(np.int64).max  # the month of rows without a time: after every month
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_LAYOUT = "a store holds only asid=<n>/month=<YYYY-MM>/<run>.parquet"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A Parquet file of the store, its footer read and checked."""

    path: Path
    run_id: str
    start: pd.Timestamp  # the run's first observed_at (NaT: none)
    rollouts: tuple[str, str] | None = None  # the least and greatest rollout (None: unknown)

    @property
    def asid(self) -> int:
        """The ASID its folder says (:data:`NO_ASID` for rows without one)."""
        return int(self.path.parent.parent.name.removeprefix("asid="))

    def may_hold(self, rollout: str) -> bool:
        """Whether the file may hold rows of ``rollout``, by its footer's statistics."""
        return self.rollouts is None or self.rollouts[0] <= rollout <= self.rollouts[1]


def check_store(path: Path) -> None:
    """Raise unless ``path`` is absent, or a folder holding only the store's layout."""
    if not path.exists():
        return
    if not path.is_dir():
        raise HistoryError(f"{path} is not a history store: it is a file ({_LAYOUT})")
    strays = [
        p.name
        for p in path.iterdir()
        if not (p.name.startswith(("_", ".")) or (p.name.startswith("asid=") and p.is_dir()))
    ]
    if strays:
        raise HistoryError(
            f"{path} is not a history store: it holds {sorted(strays)[0]!r} ({_LAYOUT})"
        )


def month_name(month: int) -> str:
    """A partition's month (months since 1970, or :data:`NO_TIME`) as its folder says it."""
    return NO_MONTH if month == NO_TIME else str(np.datetime64(month, "M"))


def file_metadata(run: str, start: object) -> dict[bytes, bytes]:
    return {
        _SCHEMA_KEY: str(SCHEMA_VERSION).encode(),
        _VERSION_KEY: __version__.encode(),
        _RUN_KEY: run.encode(),
        _START_KEY: b"" if pd.isna(start) else pd.Timestamp(start).isoformat().encode(),
    }


def inspect_file(path: Path) -> StoredFile:
    """Read a file's footer: a readable cfanalytics file of this schema version, or raise."""
    try:
        footer = pq.read_metadata(path)
        schema = footer.schema.to_arrow_schema()
    except (OSError, pa.ArrowException) as exc:
        raise HistoryError(f"{path} is not a readable Parquet file: {_first_line(exc)}") from exc
    meta = schema.metadata or {}
    version = meta.get(_SCHEMA_KEY, b"").decode()
    if _RUN_KEY not in meta or version != str(SCHEMA_VERSION):
        raise HistoryError(
            f"{path} holds events schema version {version or 'none'} (not written by this "
            f"cfanalytics, which reads version {SCHEMA_VERSION})"
        )
    if schema.names != FILE_COLUMNS:
        raise HistoryError(f"{path} does not hold the store's columns")
    start = meta.get(_START_KEY, b"").decode()
    return StoredFile(
        path,
        meta[_RUN_KEY].decode(),
        pd.Timestamp(start) if start else pd.NaT,
        _rollout_range(footer, FILE_COLUMNS.index("rollout")),
    )


def _rollout_range(footer: pq.FileMetaData, column: int) -> tuple[str, str] | None:
    """The least and greatest rollout of a file, from its row groups' statistics (None if
    a row group with rollouts has none exact: the file is then read to know)."""
    lows, highs = [], []
    for group in range(footer.num_row_groups):
        rows = footer.row_group(group)
        stats = rows.column(column).statistics
        if stats is not None and stats.null_count == rows.num_rows:
            continue  # no rollout in this row group
        exact = getattr(stats, "is_min_value_exact", True) and getattr(
            stats, "is_max_value_exact", True
        )
        if stats is None or not stats.has_min_max or not exact:
            return None
        lows.append(stats.min)
        highs.append(stats.max)
    return (min(lows), max(highs)) if lows else ("", "")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def asid_of(rollout: str) -> int:
    """The ASID a rollout id names (``?``: rows without one)."""
    where = rollout.partition("/")[0]
    if where == "?":
        return NO_ASID
    if not where.isdigit():
        raise RolloutError(f"{rollout!r} is not a rollout id ('<asid>/<imageversionid>')")
    return int(where)


def file_name(run: str) -> str:
    """A run's file name: its id where that is a safe name, else a safe one with a hash."""
    if _SAFE_NAME.fullmatch(run):
        return run
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", run).strip("._-")[:60]
    return f"{cleaned or 'run'}-{sha256(run.encode()).hexdigest()[:12]}"


def pandas_type(arrow: pa.DataType) -> object:
    """Nullable pandas dtypes for Arrow's, so no integer column turns into floats and no
    flag into objects."""
    return {pa.int64(): INT, pa.large_string(): TEXT, pa.string(): TEXT, pa.bool_(): BOOL}.get(
        arrow
    )


#: The columns of every file: the events' but ``asid`` (the folder's), then ours.
FILE_COLUMNS = [c for c in COLUMNS if c != "asid"] + list(EXTRA_COLUMNS)


@cache
def events_schema() -> pa.Schema:
    """The events dtypes as pyarrow maps them."""
    return pa.Schema.from_pandas(as_stored(empty_events()), preserve_index=False).remove_metadata()


@cache
def file_schema() -> pa.Schema:
    """The Arrow schema of every file: the events dtypes as pyarrow maps them, then ours."""
    fields = [events_schema().field(c) for c in FILE_COLUMNS if c in COLUMNS]
    return pa.schema([*fields, pa.field("rollout", pa.large_string()), pa.field("row", pa.int64())])


@cache
def pandas_metadata() -> dict[bytes, bytes]:
    """The ``pandas`` metadata of every file, as ``Table.from_pandas`` writes it for the
    events dtypes (pandas and Dask read the columns back with them: nullable, categorical)."""
    frame = as_stored(empty_events()).drop(columns="asid")
    frame = frame.assign(rollout=pd.Series(dtype=TEXT), row=pd.Series(dtype=np.int64))
    table = pa.Table.from_pandas(frame, schema=file_schema(), preserve_index=False)
    return dict(table.schema.metadata or {})


@cache
def hive_partitioning() -> ds.Partitioning:
    keys = pa.schema([("asid", pa.int64()), ("month", pa.string())])
    return ds.partitioning(keys, flavor="hive")


@cache
def dataset_schema() -> pa.Schema:
    return pa.schema([*file_schema(), *hive_partitioning().schema])
