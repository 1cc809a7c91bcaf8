"""The rollout history store: every recording an analyst keeps, in one Parquet dataset.

A store is a folder holding a Hive-partitioned Parquet dataset, and nothing else once an add
has finished (Polars refuses a folder holding any file that is not Parquet)::

    DIR/asid=<n>/month=<YYYY-MM>/<run>.parquet

One file per run and partition: the run's rows on that ASID observed in that month (UTC).
Rows without an ASID go under ``asid=-1`` and rows without a time under ``month=none``:
``__HIVE_DEFAULT_PARTITION__`` reads as null in pyarrow, DuckDB and Polars, but
``pandas.read_parquet`` and Dask fail on it, and a word in ``asid=`` would make every
reader's ``asid`` text. cfanalytics reads ``-1`` back as NA; other tools see ``-1``.

Each file holds the events columns except ``asid`` (the folder says it; in both places, the
readers' types for it conflict), plus ``rollout`` (:func:`~cfanalytics.events.rollout_of`
over all the run's rows, NA for shared rows) and ``row`` (the row's position in its run's
recording order). Rows are sorted by rollout, jobid and observed_at; zstd; the key-value
metadata holds the events schema version, the cfanalytics version, the run id and the
run's first ``observed_at`` (readers order runs by it without reading every file).

An add is a transaction under an exclusive ``flock`` on the folder itself (a lock file would
trip Polars): the new files of every run it touches are written to ``_staging/<txid>/*.tmp``
(readers skip ``_`` folders, DuckDB's ``**/*.parquet`` skips ``.tmp``), then the manifest
``_commit.json`` is written atomically (the commit), then the files are renamed into place.
To tell what is new an add reads only the ``seq`` of the runs it touches; it rewrites a run's
files only when the run gains responses, a few runs at a time.
An add killed before its manifest is undone at the next use of the store, one killed after
it is finished then. cfanalytics readers hold a shared lock, so they see a store as it was
before an add or after it; other tools take no lock, and see the files as they are (while
``_staging`` exists, Polars wants ``pl.scan_parquet("DIR/**/*.parquet", hive_partitioning=True)``).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from hashlib import sha256
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .._files import write_atomically
from .._version import __version__
from ..events import (
    COLUMNS,
    INT,
    SCHEMA,
    SCHEMA_VERSION,
    TEXT,
    TIME,
    conform,
    empty_events,
    rollout_events,
    rollout_of,
    validate,
)
from ..exceptions import HistoryError, RolloutError, SchemaError

__all__ = ["HistoryAdded", "HistoryProgress", "HistoryStore", "is_store"]

#: What :meth:`HistoryStore.add` takes: an events table, or anything ``load_source`` reads.
Source: TypeAlias = pd.DataFrame | str | os.PathLike[str]
Stage: TypeAlias = Literal["locked", "staged", "committed", "applied"]

_NO_ASID = -1
_NO_MONTH = "none"
_STAGING = "_staging"
_MANIFEST = "_commit.json"
_SCHEMA_KEY = b"cfanalytics.schema_version"  # the event log's key too
_VERSION_KEY = b"cfanalytics.version"
_RUN_KEY = b"cfanalytics.run_id"
_START_KEY = b"cfanalytics.run_start"
_EXTRA = ("rollout", "row")
_ROLLOUT_INPUT = ["run_id", "asid", "target_imageversionid", "endpoint", "jobid"]  # rollout_of's
_NO_TIME = np.iinfo(np.int64).max  # the month of rows without a time: after every month
_ROW_GROUP = 1024 * 1024  # rows per row group, pyarrow's default
_MAX_WORKERS = 4  # runs staged at once, at most
_IN_FLIGHT = _ROW_GROUP // 2  # rows staged at once, at most (unless one run has more)
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_LAYOUT = "a store holds only asid=<n>/month=<YYYY-MM>/<run>.parquet"
#: The catalog's columns and dtypes.
_CATALOG = {"rollout": TEXT, "asid": INT, "imageversionid": INT}
_CATALOG |= {"first_seen": TIME, "last_seen": TIME, "runs": INT, "jobs": INT}


@dataclass(frozen=True, slots=True)
class HistoryAdded:
    """What one :meth:`HistoryStore.add` did: the runs it wrote (new or grown), and the
    responses (``(run_id, seq)``) it added and those the store already held."""

    runs: tuple[str, ...]
    responses_added: int
    responses_present: int


@dataclass(frozen=True, slots=True)
class HistoryProgress:
    """Where an add is: ``locked`` (the store is its own), ``staged`` (``done`` of ``total``
    runs written aside), ``committed`` (it will happen, even if killed now), ``applied``
    (``done`` of ``total`` files in place)."""

    stage: Stage
    done: int
    total: int


def is_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder with ``asid=<n>`` partitions (an empty one is not)."""
    folder = Path(path)
    return folder.is_dir() and any(p.name.startswith("asid=") for p in folder.iterdir())


class HistoryStore:
    """Every recording added to it, in one folder (module docstring for the layout).

    ``HistoryStore(path)`` does not create the folder; the first :meth:`add` does. A folder
    that holds anything else raises :class:`~cfanalytics.exceptions.HistoryError`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        _check_store(self.path)
        # Each file's footer, by its size and time: read once while it is unchanged.
        self._inspected: dict[Path, tuple[tuple[int, int], _File]] = {}

    def __repr__(self) -> str:
        return f"HistoryStore({str(self.path)!r})"

    # -- adding ------------------------------------------------------------------------

    def add(
        self, *sources: Source, on_progress: Callable[[HistoryProgress], object] | None = None
    ) -> HistoryAdded:
        """Add the responses of ``sources`` the store does not hold yet, all or nothing.

        A response is identified by ``(run_id, seq)``: adding a run twice, or a recording and
        its resumed continuation, keeps each response once (the first copy). A run already
        in the store gets its files rewritten with the union, its ``rollout`` recomputed.
        """
        runs = _runs_of([_events_of(source) for source in sources])
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"cannot create the history store {self.path}: {exc}") from exc
        with self._locked(exclusive=True):
            return _Transaction(self, on_progress).run(runs)

    # -- reading -----------------------------------------------------------------------

    def events(
        self,
        *,
        rollout: str | None = None,
        asid: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The stored events, in recording order (runs by their first ``observed_at``, then
        run id; rows as recorded), reading only what the filters need.

        ``rollout``: :func:`~cfanalytics.events.rollout_events` of the runs that saw it, on
        its ASID, as when analysing that rollout alone. ``asid``: that ASID's rows.
        ``since`` <= ``observed_at`` < ``until`` (naive times are UTC; rows without a time
        are then left out). ``columns``: only these, in this order.
        """
        names = _column_names(columns)
        start, end = _utc(since), _utc(until)
        with self._locked(exclusive=False):
            if rollout is not None:
                frame = _within(self._rollout(rollout), asid, start, end)
                return frame if names is None else frame[names]
            files = self._files(asid=asid, since=start, until=end)
            wanted = None if names is None else list(dict.fromkeys([*names, "run_id", "row"]))
            frame = _ordered(self._read(files, wanted, _time_filter(start, end)), files)
        events = _events_only(frame)
        return events if names is None else events[names]

    def catalog(self, *, asid: int | None = None) -> pd.DataFrame:
        """One row per rollout (of ``asid`` only, reading only its folder): ``rollout``,
        ``asid``, ``imageversionid``, ``first_seen``, ``last_seen``, ``runs`` and ``jobs``
        (distinct), from a few stored columns only."""
        with self._locked(exclusive=False):
            return self._catalog(asid)

    # -- inside the lock ---------------------------------------------------------------

    @contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        """Hold the store's lock (``flock`` on the folder); finish or undo a killed add."""
        _check_store(self.path)
        if not self.path.exists():
            raise HistoryError(f"no history store at {self.path}: add a recording first")
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise HistoryError(f"cannot open the history store {self.path}: {exc}") from exc
        try:
            _flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, self.path)
            if (self.path / _STAGING).exists():
                _flock(fd, fcntl.LOCK_EX, self.path)  # a killed add: finish or undo it first
                self._recover()
            _check_store(self.path)  # as it is now that it is ours
            yield
        finally:
            os.close(fd)  # releases the lock

    def _recover(self) -> None:
        """Finish every committed add a kill interrupted; delete every uncommitted one."""
        staging = self.path / _STAGING
        if not staging.exists():
            return  # another process finished it while this one waited for the lock
        try:
            for tx in sorted(staging.iterdir()):
                if (tx / _MANIFEST).exists():
                    _apply(self.path, tx, _read_manifest(tx / _MANIFEST))
                elif tx.is_dir():
                    shutil.rmtree(tx)
                else:
                    tx.unlink()
            staging.rmdir()
        except OSError as exc:
            raise HistoryError(
                f"cannot finish an interrupted add in {self.path} (open it once with write "
                f"access): {exc}"
            ) from exc

    def _files(
        self,
        *,
        asid: int | None = None,
        since: pd.Timestamp | None = None,
        until: pd.Timestamp | None = None,
        name: str | None = None,
    ) -> list[_File]:
        """The files in the partitions the filters need (partition pruning), inspected."""
        found = []
        for folder in sorted(self.path.glob("asid=*")):
            if asid is not None and folder.name != f"asid={asid}":
                continue
            for month in sorted(folder.glob("month=*")):
                if _month_needed(month.name.removeprefix("month="), since, until):
                    found += sorted(month.glob(f"{name or '*'}.parquet"))
        return [self._inspect(path) for path in found]

    def _inspect(self, path: Path) -> _File:
        """:func:`_inspect`, once per version of the file (its size and time)."""
        stat = path.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        known = self._inspected.get(path)
        if known is None or known[0] != key:
            known = self._inspected[path] = (key, _inspect(path))
        return known[1]

    def _read(
        self, files: list[_File], columns: list[str] | None, where: Any = None
    ) -> pd.DataFrame:
        """The rows of ``files`` matching ``where`` (row groups pruned by their statistics)."""
        if not files:
            return empty_events().assign(rollout=pd.Series(dtype=TEXT), row=pd.Series(dtype=INT))
        frame = self._table(files, columns, where).to_pandas(types_mapper=_pandas_type)
        if "asid" in frame:  # the folder's -1 is "no ASID"
            frame["asid"] = frame["asid"].mask(frame["asid"] == _NO_ASID)
        return frame

    def _table(self, files: list[_File], columns: list[str] | None, where: Any = None) -> pa.Table:
        """:meth:`_read`'s rows as Arrow (``asid`` as stored: -1 for none)."""
        try:
            return self._dataset(files).to_table(columns=columns, filter=where)
        except (OSError, pa.ArrowException) as exc:
            raise HistoryError(f"cannot read the history store {self.path}: {exc}") from exc

    def _dataset(self, files: list[_File]) -> ds.Dataset:
        """``files`` as one dataset, ``asid`` and ``month`` from their folders."""
        return ds.dataset(
            [str(f.path) for f in files],
            schema=_dataset_schema(),
            format="parquet",
            partitioning=_partitioning(),
            partition_base_dir=str(self.path),
        )

    def _rollout(self, rollout: str) -> pd.DataFrame:
        """The rollout's events: every row of the runs that saw it, on its ASID, cut down by
        the one rule (:func:`~cfanalytics.events.rollout_events`)."""
        files = self._files(asid=_asid_of(rollout))
        maybe = [f for f in files if f.may_hold(rollout)]  # by the footers: no file opened
        seen = self._table(maybe, ["run_id"], ds.field("rollout") == rollout)["run_id"]
        runs = set(pc.unique(seen).drop_null().to_pylist())
        if not runs:
            found = self._catalog()["rollout"].tolist()
            raise RolloutError(
                f"no rollout {rollout!r} in {self.path}; found: {', '.join(found) or 'none'}"
            )
        files = [f for f in files if f.run_id in runs]
        frame = _ordered(self._read(files, None), files)
        return rollout_events(_events_only(frame), rollout)

    def _catalog(self, asid: int | None = None) -> pd.DataFrame:
        """The catalog, streamed: each file's rows are reduced to one row per (rollout, job)
        a batch at a time, so memory follows the jobs of the history, never its rows."""
        catalog = _Catalog()
        files = self._files(asid=asid)
        with ThreadPoolExecutor(min(_MAX_WORKERS, os.cpu_count() or 1)) as pool:
            for file, part in zip(files, pool.map(_catalog_of, files), strict=True):
                catalog.add(file, part)
        out = catalog.frame()
        order = ["asid", "imageversionid", "rollout"]
        out = out.astype(_CATALOG)[list(_CATALOG)]
        return out.sort_values(order, na_position="last", kind="stable", ignore_index=True)

    def _by_name(self) -> dict[str, list[Path]]:
        """Every file of the store by its name (a run's files share one), in one walk."""
        found: dict[str, list[Path]] = {}
        for path in sorted(self.path.glob("asid=*/month=*/*.parquet")):
            found.setdefault(path.stem, []).append(path)
        return found

    def _run_files(self, run: str, paths: list[Path]) -> list[_File]:
        """A run's files (``paths``: those of its name), inspected: each must hold it."""
        files = [self._inspect(path) for path in paths]
        strangers = [f.path for f in files if f.run_id != run]
        if strangers:
            raise HistoryError(f"{strangers[0]} holds another run than {run!r}")
        return files

    def _stored_seqs(self, files: list[_File]) -> np.ndarray:
        """The responses (``seq``) a run's files hold, sorted, each once."""
        if not files:
            return np.empty(0, np.int64)
        return _distinct(self._table(files, ["seq"])["seq"].to_numpy())

    def _stored_rows(self, files: list[_File]) -> tuple[pa.Table, np.ndarray]:
        """A run's stored rows (events columns, ``asid`` NA for none) and their ``row``."""
        if not files:
            return _events_schema().empty_table(), np.empty(0, np.int64)
        table = self._table(files, [*COLUMNS, "row"])
        asid = table["asid"]
        none = pc.equal(asid, _NO_ASID)
        table = table.set_column(
            COLUMNS.index("asid"), "asid", pc.if_else(none, pa.scalar(None, pa.int64()), asid)
        )
        return table.select(list(COLUMNS)), table["row"].to_numpy()


_CATALOG_KEYS = ["rollout", "asid", "run_id", "jobid"]
_CATALOG_READ = ["rollout", "jobid", "target_imageversionid", "observed_at"]  # of a file
_CATALOG_AGGREGATES = [
    ("target_imageversionid", "min", "imageversionid"),
    ("observed_at", "min", "first_seen"),
    ("observed_at", "max", "last_seen"),
]


class _CatalogPartial:
    """The catalog's running reduction: one row per ``keys`` with the smallest image
    version and the first and last time seen, reduced again as it grows."""

    BATCH_ROWS = 1 << 16  # rows read at once
    FOLD_ROWS = 1 << 20  # reduced rows kept before they are reduced again

    def __init__(self, keys: list[str]) -> None:
        self._keys = keys
        self._parts: list[pa.Table] = []
        self._rows = 0

    def add(self, rows: pa.Table | pa.RecordBatch, *, reduced: bool = False) -> None:
        """Fold in stored rows (:data:`_CATALOG_READ` and the keys) or, ``reduced``,
        another reduction (a :meth:`table`)."""
        again = [(name, how, name) for _, how, name in _CATALOG_AGGREGATES]
        part = _reduce(rows, self._keys, again if reduced else _CATALOG_AGGREGATES)
        self._parts.append(part)
        self._rows += part.num_rows
        if self._rows > self.FOLD_ROWS:
            self._parts = [self.table()]
            self._rows = self._parts[0].num_rows

    def table(self) -> pa.Table:
        """The reduction so far: the keys, then the aggregates' names."""
        if not self._parts:
            return _reduce(_dataset_schema().empty_table(), self._keys, _CATALOG_AGGREGATES)
        again = [(name, how, name) for _, how, name in _CATALOG_AGGREGATES]
        return _reduce(pa.concat_tables(self._parts), self._keys, again)


class _Catalog:
    """The catalog being read, file by file (:func:`_catalog_of` of each): per rollout and
    ASID, the least image version, the first and last time, the runs, and the distinct jobs,
    kept as numbers (12 bytes per job and file), so a year of jobs stays small."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, int], int] = {}  # (rollout, asid): its number
        self._heads: list[pd.DataFrame] = []  # per file: "key" and the aggregates
        self._runs: set[tuple[int, str]] = set()
        self._jobs: list[tuple[np.ndarray, np.ndarray]] = []  # per file: keys, jobids

    def add(self, file: _File, part: pa.Table) -> None:
        """Fold in :func:`_catalog_of` of ``file``."""
        asid = int(file.path.parent.parent.name.removeprefix("asid="))
        key = self._numbered(part["rollout"], asid)
        self._runs.update((k, file.run_id) for k in np.unique(key).tolist())
        job = part["jobid"].to_numpy(zero_copy_only=False)  # float with NaN if nulls
        known = ~pd.isna(job)
        self._jobs.append((key[known], job[known].astype(np.int64)))
        columns = {name: part[name] for _, _, name in _CATALOG_AGGREGATES}
        head = pa.table({"key": key, **columns}).group_by(["key"], use_threads=False)
        aggregates = [(name, how) for _, how, name in _CATALOG_AGGREGATES]
        self._heads.append(head.aggregate(aggregates).to_pandas(types_mapper=_pandas_type))

    def frame(self) -> pd.DataFrame:
        """One row per (rollout, ASID): the catalog's columns, in no order."""
        if not self._keys:
            return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in _CATALOG.items()})
        heads = pd.concat(self._heads, ignore_index=True).groupby("key", sort=True)
        out = heads.agg(
            **{name: (f"{name}_{how}", how) for _, how, name in _CATALOG_AGGREGATES}
        ).reset_index()
        named = list(self._keys)
        out["rollout"] = pd.array([named[k][0] for k in out["key"]], dtype=TEXT)
        out["asid"] = pd.Series([named[k][1] for k in out["key"]], dtype=INT, index=out.index)
        out["asid"] = out["asid"].mask(out["asid"] == _NO_ASID)
        runs = np.bincount([k for k, _ in self._runs], minlength=len(named))
        out["runs"] = runs[out["key"].to_numpy()]
        out["jobs"] = self._distinct_jobs(len(named))[out["key"].to_numpy()]
        return out

    def _distinct_jobs(self, keys: int) -> np.ndarray:
        """Per key: its distinct job ids over every file."""
        key = np.concatenate([k for k, _ in self._jobs])
        job = np.concatenate([j for _, j in self._jobs])
        order = np.lexsort((job, key))
        key, job = key[order], job[order]
        first = np.ones(len(key), dtype=bool)
        first[1:] = (key[1:] != key[:-1]) | (job[1:] != job[:-1])
        counts: np.ndarray = np.bincount(key[first], minlength=keys).astype(np.int64)
        return counts

    def _numbered(self, names: pa.ChunkedArray, asid: int) -> np.ndarray:
        """Each row's (rollout, ``asid``) as its number (a file names a few rollouts)."""
        encoded = names.combine_chunks()
        if not pa.types.is_dictionary(encoded.type):
            encoded = pc.dictionary_encode(encoded)
        keys = self._keys
        known = [keys.setdefault((v, asid), len(keys)) for v in encoded.dictionary.to_pylist()]
        numbers: np.ndarray = np.asarray(known, np.int64)
        indices: np.ndarray = encoded.indices.to_numpy(zero_copy_only=False)
        found: np.ndarray = numbers[indices]
        return found


def _catalog_of(file: _File) -> pa.Table:
    """One file's rows (one run's, on one ASID) reduced to one row per (rollout, job)."""
    partial = _CatalogPartial(["rollout", "jobid"])
    try:
        # the rollout as a dictionary: a run's rows name a few, grouped on their codes
        with pq.ParquetFile(file.path, read_dictionary=["rollout"]) as reader:
            batches = reader.iter_batches(_CatalogPartial.BATCH_ROWS, columns=_CATALOG_READ)
            for batch in batches:
                partial.add(batch.filter(pc.is_valid(batch["rollout"])))
    except (OSError, pa.ArrowException) as exc:
        raise HistoryError(f"cannot read the history store file {file.path}: {exc}") from exc
    return partial.table()


def _reduce(
    rows: pa.Table | pa.RecordBatch, keys: list[str], aggregates: list[tuple[str, str, str]]
) -> pa.Table:
    """``rows`` grouped by ``keys``: (column, how, name) gives each aggregate."""
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_batches([rows])
    found = table.group_by(keys, use_threads=False).aggregate(
        [(column, how) for column, how, _ in aggregates]
    )
    names = {f"{column}_{how}": name for column, how, name in aggregates}
    found = found.rename_columns([names.get(name, name) for name in found.column_names])
    return found.select([*keys, *(name for _, _, name in aggregates)])


@dataclass(frozen=True, slots=True)
class _File:
    """A Parquet file of the store, its footer read and checked."""

    path: Path
    run_id: str
    start: pd.Timestamp  # the run's first observed_at (NaT: none)
    rollouts: tuple[str, str] | None = None  # the least and greatest rollout (None: unknown)

    def may_hold(self, rollout: str) -> bool:
        """Whether the file may hold rows of ``rollout``, by its footer's statistics."""
        return self.rollouts is None or self.rollouts[0] <= rollout <= self.rollouts[1]


@dataclass(frozen=True, slots=True)
class _Staging:
    """A run being staged (``task``; None: nothing new), and how many rows it adds."""

    run: str
    task: Future[tuple[list[tuple[str, str]], list[str]]] | None
    rows: int

    def ready(self) -> bool:
        return self.task is None or self.task.done()


def _in_flight(queue: deque[_Staging]) -> int:
    return sum(staging.rows for staging in queue)


class _Transaction:
    """One add, inside the store's exclusive lock: stage, commit, apply."""

    def __init__(
        self, store: HistoryStore, on_progress: Callable[[HistoryProgress], object] | None
    ) -> None:
        self.store = store
        self.tx = store.path / _STAGING / uuid.uuid4().hex
        self.report = on_progress or (lambda progress: None)
        self.moves: list[tuple[str, str]] = []  # (staged file, its place in the store)
        self.removes: list[str] = []
        self.written: list[str] = []  # the runs staged
        self.counts = (0, 0)  # responses added, present
        self.done = 0  # runs staged or found with nothing new

    def run(self, runs: dict[str, list[_Piece]]) -> HistoryAdded:
        """Stage every run that gets new responses, then commit and apply them."""
        self.report(HistoryProgress("locked", 0, len(runs)))
        try:
            self._stage_all(runs)
            if self.moves:
                write_atomically(
                    self.tx / _MANIFEST, self._manifest(), what="the manifest", error=HistoryError
                )
        finally:
            if not (self.tx / _MANIFEST).exists():
                shutil.rmtree(self.tx, ignore_errors=True)  # nothing happened
                _remove_empty(self.store.path / _STAGING)
        if self.moves:
            self.report(HistoryProgress("committed", 0, len(self.moves)))
            try:
                _apply(self.store.path, self.tx, json.loads(self._manifest()), self.report)
            except OSError as exc:
                raise HistoryError(
                    f"cannot finish adding to {self.store.path} ({exc}); the add is committed "
                    "and the next use of the store finishes it"
                ) from exc
        _remove_empty(self.store.path / _STAGING)
        return HistoryAdded(tuple(sorted(self.written)), *self.counts)

    def _stage_all(self, runs: dict[str, list[_Piece]]) -> None:
        """Tell each run's new responses (reading only the stored ``seq``), and stage the
        runs that have some, several at once (Arrow and Parquet work without the GIL), with
        at most :data:`_IN_FLIGHT` rows in flight (or one bigger run), so memory is bounded
        by that, not by the sources."""
        stored = self.store._by_name()  # one walk of the store for every run
        queue: deque[_Staging] = deque()
        with ThreadPoolExecutor(min(_MAX_WORKERS, os.cpu_count() or 1)) as pool:
            try:
                for number, (run, pieces) in enumerate(runs.items()):
                    files = self.store._run_files(run, stored.get(_file_name(run), []))
                    fresh, (added, present) = _fresh(pieces, self.store._stored_seqs(files))
                    self.counts = (self.counts[0] + added, self.counts[1] + present)
                    rows = sum(map(len, fresh))
                    while queue and (queue[0].ready() or _in_flight(queue) + rows > _IN_FLIGHT):
                        self._staged(queue.popleft(), len(runs))
                    task = pool.submit(self._stage_run, number, run, files, fresh) if rows else None
                    queue.append(_Staging(run, task, rows))
                while queue:
                    self._staged(queue.popleft(), len(runs))
            except BaseException:
                pool.shutdown(cancel_futures=True)  # the running ones finish, then all is undone
                raise

    def _staged(self, staging: _Staging, total: int) -> None:
        """Take in a run's staged files (waiting for them), and say so."""
        if staging.task is not None:
            moves, removes = staging.task.result()
            self.moves += moves
            self.removes += removes
            self.written.append(staging.run)
        self.done += 1
        self.report(HistoryProgress("staged", self.done, total))

    def _stage_run(
        self, number: int, run: str, files: list[_File], fresh: list[pd.DataFrame]
    ) -> tuple[list[tuple[str, str]], list[str]]:
        """Write the union of a run's stored and ``fresh`` rows aside, a file per partition:
        (staged file, its place) for each, and the run's files that then go."""
        rows = _RunRows(run, *self.store._stored_rows(files), fresh)
        moves = [
            self._stage(f"{number}-{k}.tmp", where, rows, order, run)
            for k, (where, order) in enumerate(rows.partitions())
        ]
        kept = {final for _, final in moves}
        mine = [f.path.relative_to(self.store.path).as_posix() for f in files]
        return moves, [path for path in mine if path not in kept]

    def _stage(
        self, staged: str, where: str, rows: _RunRows, order: np.ndarray, run: str
    ) -> tuple[str, str]:
        """Write one partition's file (``rows`` in ``order``) under the transaction's folder
        as ``staged``; (``staged``, its place in the store)."""
        try:
            self.tx.mkdir(parents=True, exist_ok=True)
            with open(self.tx / staged, "wb") as handle:
                rows.write(handle, order)
                handle.flush()
                os.fsync(handle.fileno())  # on disk before the manifest says it is there
        except (OSError, pa.ArrowException) as exc:
            raise HistoryError(f"cannot add to {self.store.path}: {exc}") from exc
        return staged, f"{where}/{_file_name(run)}.parquet"

    def _manifest(self) -> str:
        return json.dumps({"moves": self.moves, "removes": self.removes})


def _apply(
    root: Path,
    tx: Path,
    manifest: dict[str, Any],
    report: Callable[[HistoryProgress], object] = lambda progress: None,
) -> None:
    """Move a committed add's files into place (again, if a kill cut it short)."""
    moves = manifest["moves"]
    for done, (staged, final) in enumerate(moves, 1):
        source, target = tx / staged, root / final
        if source.exists():  # else moved before a kill
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        report(HistoryProgress("applied", done, len(moves)))
    for gone in manifest["removes"]:
        (root / gone).unlink(missing_ok=True)
    shutil.rmtree(tx)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HistoryError(f"cannot read {path}, an interrupted add's manifest: {exc}") from exc
    return manifest


def _remove_empty(folder: Path) -> None:
    with suppress(OSError):  # absent, or not empty: an add to finish is there
        folder.rmdir()


def _check_store(path: Path) -> None:
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


def _events_of(source: Source) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        try:
            return validate(source)  # conformed already: no copy
        except SchemaError:
            return conform(source)
    # Imported here: load_source reads stores through this module.
    from ._sources import load_source

    return load_source(source)


@dataclass(frozen=True, slots=True)
class _Piece:
    """The rows of one run in one source: ``rows`` of ``frame``, their ``seq``."""

    frame: pd.DataFrame
    rows: slice | np.ndarray
    seq: np.ndarray

    def select(self, keep: np.ndarray | None = None) -> pd.DataFrame:
        """The piece's rows (those ``keep`` says, if given)."""
        if keep is None:
            return self.frame.iloc[self.rows]
        return self.frame.take(np.arange(len(self.frame))[self.rows][keep])


def _runs_of(frames: list[pd.DataFrame]) -> dict[str, list[_Piece]]:
    """The rows of ``frames`` by run (runs in order of appearance), a piece per frame."""
    unnamed = sum(int((f["run_id"].isna() | f["seq"].isna()).sum()) for f in frames)
    if unnamed:
        raise HistoryError(
            f"{unnamed} rows have no run_id or seq: a response is identified by "
            "(run_id, seq), so they cannot be stored"
        )
    if any((f["asid"] == _NO_ASID).any() for f in frames):
        raise HistoryError(f"asid {_NO_ASID} cannot be stored: it marks rows without an ASID")
    runs: dict[str, list[_Piece]] = {}
    for frame in frames:
        codes, names = pd.factorize(frame["run_id"])
        seq = frame["seq"].to_numpy(dtype=np.int64)
        for code, rows in _together(codes):
            runs.setdefault(str(names[code]), []).append(_Piece(frame, rows, seq[rows]))
    return runs


def _together(codes: np.ndarray) -> Iterator[tuple[int, slice | np.ndarray]]:
    """Each code's rows (codes numbered by first appearance): a slice when they are
    adjacent, as in a recording, else their positions."""
    if not len(codes):
        return
    if (codes[1:] >= codes[:-1]).all():
        starts = np.flatnonzero(np.diff(codes, prepend=-1))
        for start, stop in zip(starts, [*starts[1:], len(codes)], strict=True):
            yield int(codes[start]), slice(int(start), int(stop))
        return
    order = np.argsort(codes, kind="stable")
    yield from enumerate(np.split(order, np.cumsum(np.bincount(codes))[:-1]))


def _fresh(pieces: list[_Piece], stored: np.ndarray) -> tuple[list[pd.DataFrame], tuple[int, int]]:
    """The rows of a run's ``pieces`` to add: each response (``seq``) from the first piece
    that has it, unless ``stored`` (sorted seqs) holds it; and (added, present) responses."""
    rows, added, present = [], 0, 0
    earlier = np.empty(0, np.int64)
    for n, piece in enumerate(pieces):
        seqs = _distinct(piece.seq)
        first = np.setdiff1d(seqs, earlier, assume_unique=True) if n else seqs
        new = np.setdiff1d(first, stored, assume_unique=True) if len(stored) else first
        added, present = added + len(new), present + len(first) - len(new)
        if len(new) == len(seqs):
            rows.append(piece.select())
        elif len(new):
            rows.append(piece.select(np.isin(piece.seq, new)))
        if n + 1 < len(pieces):
            earlier = np.union1d(earlier, seqs)
    return rows, (added, present)


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct ``values``, sorted (in one pass when they are sorted already)."""
    if len(values) and (values[1:] >= values[:-1]).all():
        return values[np.flatnonzero(np.diff(values, prepend=values[0] - 1))]
    return np.unique(values)


class _RunRows:
    """One run's rows to write: those stored (Arrow) and the fresh ones (events frames),
    with what the files add: each row's place in recording order (``row``: by ``seq``,
    stored rows first) and its rollout (:func:`~cfanalytics.events.rollout_of` over them).

    Columns are made Arrow one at a time, when a file takes them (:meth:`column`), so
    memory holds the rows being written and one column more."""

    def __init__(
        self, run: str, stored: pa.Table, stored_row: np.ndarray, fresh: list[pd.DataFrame]
    ) -> None:
        self.stored, self.fresh = stored, fresh
        # Recording order: by seq, stored rows first (in their order), then fresh ones.
        after = np.concatenate([stored_row, len(stored_row) + np.arange(sum(map(len, fresh)))])
        recorded = _recording_order(_values(self.column("seq"))[0], after)
        self.row = after if recorded is None else _inverse(recorded)
        ids = rollout_of(self._recorded(recorded))
        codes = np.asarray(ids.codes, dtype=np.int64)
        self.rollout = codes if recorded is None else codes[self.row]  # -1: none
        self.names = [str(name) for name in ids.categories]
        self.at, self.no_time = _values(self.column("observed_at").cast(pa.int64()))
        times = self.at[~self.no_time]
        start = pd.Timestamp(times.min(), unit="us", tz="UTC") if len(times) else pd.NaT
        self.schema = _file_schema().with_metadata(_pandas_metadata() | _metadata(run, start))

    def column(self, name: str) -> pa.ChunkedArray:
        """One events column of every row, stored then fresh, in Arrow."""
        kind = _events_schema().field(name).type
        chunks = list(self.stored[name].chunks)
        for frame in self.fresh:
            fresh = pa.array(frame[name], type=kind, from_pandas=True)  # Arrow-backed: chunked
            chunks += fresh.chunks if isinstance(fresh, pa.ChunkedArray) else [fresh]
        return pa.chunked_array(chunks, type=kind)

    def _recorded(self, order: np.ndarray | None) -> pd.DataFrame:
        """:func:`~cfanalytics.events.rollout_of`'s columns of the rows in recording order."""
        if order is None and len(self.fresh) == 1 and not len(self.stored):
            return self.fresh[0][_ROLLOUT_INPUT]  # the usual new run: as it came
        table = pa.table({name: self.column(name) for name in _ROLLOUT_INPUT})
        frame = (table if order is None else table.take(order)).to_pandas(types_mapper=_pandas_type)
        return frame.astype({name: SCHEMA[name] for name in _ROLLOUT_INPUT})

    def partitions(self) -> Iterator[tuple[str, np.ndarray]]:
        """Each partition's folder and its rows in file order: by rollout, jobid and time
        (NA last), then as recorded."""
        asid = _values(self.column("asid"), _NO_ASID)[0]
        month = self.at.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
        month[self.no_time] = _NO_TIME
        jobid, no_job = _values(self.column("jobid"))
        rank = _ranks(self.names)[self.rollout]
        keys = [asid, month, rank, no_job, jobid, self.no_time, self.at, self.row]
        order = _lexsorted(keys)
        cuts = np.flatnonzero((np.diff(asid[order]) != 0) | (np.diff(month[order]) != 0)) + 1
        for rows in np.split(order, cuts):
            first = rows[0]
            yield f"asid={asid[first]}/month={_month_name(int(month[first]))}", rows

    def write(self, handle: BinaryIO, order: np.ndarray) -> None:
        """A partition's file: the rows ``order`` says, a row group at a time."""
        with pq.ParquetWriter(handle, self.schema, compression="zstd") as writer:
            for start in range(0, len(order), _ROW_GROUP):
                writer.write_table(self._file_table(order[start : start + _ROW_GROUP]))

    def _file_table(self, rows: np.ndarray) -> pa.Table:
        columns = [self.column(name).take(rows) for name in _FILE_COLUMNS[: -len(_EXTRA)]]
        codes = self.rollout[rows]
        rollout = pa.array(self.names, pa.large_string()).take(pa.array(codes, mask=codes < 0))
        arrays = [*columns, rollout, pa.array(self.row[rows])]
        return pa.Table.from_arrays(arrays, schema=self.schema)


def _values(column: pa.ChunkedArray, fill: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An int64 column as numpy: its values (``fill`` where null), and where it is null."""
    missing = np.asarray(column.is_null().to_numpy(), dtype=bool)
    return pc.fill_null(column, fill).to_numpy(), missing


def _recording_order(seq: np.ndarray, after: np.ndarray) -> np.ndarray | None:
    """The rows by ``seq``, then ``after``; None when they are in that order already."""
    ahead, tied = seq[1:] > seq[:-1], seq[1:] == seq[:-1]
    if (ahead | (tied & (after[1:] > after[:-1]))).all():
        return None
    return np.lexsort((after, seq))


def _inverse(order: np.ndarray) -> np.ndarray:
    """Each row's position in ``order``."""
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return inverse


def _lexsorted(keys: list[np.ndarray]) -> np.ndarray:
    """The rows' order by ``keys``, the first the most significant, ties kept in order (a
    key equal in every row is left out)."""
    varied = [key for key in keys if len(key) and (key != key[0]).any()]
    return np.lexsort(varied[::-1]) if varied else np.arange(len(keys[0]))


def _ranks(names: list[str]) -> np.ndarray:
    """Each name's rank in text order, and one more at the end (for code -1: none, last)."""
    ranks = np.empty(len(names) + 1, np.int64)
    ranks[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
    ranks[-1] = len(names)
    return ranks


def _month_name(month: int) -> str:
    """A partition's month (months since 1970, or :data:`_NO_TIME`) as its folder says it."""
    return _NO_MONTH if month == _NO_TIME else str(np.datetime64(month, "M"))


def _events_only(frame: pd.DataFrame) -> pd.DataFrame:
    """The events table of rows read from the store (its own columns dropped)."""
    return conform(frame.drop(columns=[*_EXTRA, "month"], errors="ignore"))


def _metadata(run: str, start: object) -> dict[bytes, bytes]:
    return {
        _SCHEMA_KEY: str(SCHEMA_VERSION).encode(),
        _VERSION_KEY: __version__.encode(),
        _RUN_KEY: run.encode(),
        _START_KEY: b"" if pd.isna(start) else pd.Timestamp(start).isoformat().encode(),
    }


def _inspect(path: Path) -> _File:
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
    if schema.names != _FILE_COLUMNS:
        raise HistoryError(f"{path} does not hold the store's columns")
    start = meta.get(_START_KEY, b"").decode()
    return _File(
        path,
        meta[_RUN_KEY].decode(),
        pd.Timestamp(start) if start else pd.NaT,
        _rollout_range(footer, _FILE_COLUMNS.index("rollout")),
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


def _flock(fd: int, operation: int, path: Path) -> None:
    try:
        fcntl.flock(fd, operation)
    except OSError as exc:
        raise HistoryError(f"cannot lock the history store {path}: {exc}") from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _ordered(frame: pd.DataFrame, files: list[_File]) -> pd.DataFrame:
    """Rows in recording order: runs by first observed_at, then run id; rows as recorded."""
    starts = {f.run_id: f.start for f in files}
    codes, runs = pd.factorize(frame["run_id"])  # a few runs: ranked here, rows by numpy
    ranked = sorted(range(len(runs)), key=lambda i: _run_key(starts.get(runs[i]), runs[i]))
    rank = np.empty(len(runs) + 1, np.int64)
    rank[ranked], rank[-1] = np.arange(len(runs)), len(runs)  # no run_id: last
    order = np.lexsort((frame["row"].to_numpy(np.int64), rank[codes]))
    if np.array_equal(order, np.arange(len(frame))):  # read in order already: the usual case
        return frame.reset_index(drop=True)
    return frame.take(order).reset_index(drop=True)


def _run_key(start: pd.Timestamp | None, run: str) -> tuple[bool, pd.Timestamp, str]:
    """A run's place in recording order: by first observed_at (none: last), then id."""
    if start is None or pd.isna(start):
        return True, pd.Timestamp(0, tz="UTC"), run
    at = pd.Timestamp(start)
    return False, at.tz_localize("UTC") if at.tzinfo is None else at, run


def _within(
    frame: pd.DataFrame, asid: int | None, since: pd.Timestamp | None, until: pd.Timestamp | None
) -> pd.DataFrame:
    """``frame``'s rows that pass the filters, as ``events`` applies them."""
    keep = pd.Series(True, index=frame.index)
    if asid is not None:
        keep &= (frame["asid"] == asid).fillna(False)
    if since is not None:
        keep &= frame["observed_at"] >= since
    if until is not None:
        keep &= frame["observed_at"] < until
    return frame if keep.all() else frame.loc[keep.to_numpy()].reset_index(drop=True)


def _time_filter(since: pd.Timestamp | None, until: pd.Timestamp | None) -> Any:
    """The time bounds as a pyarrow filter (row groups outside them are skipped)."""
    at = ds.field("observed_at")
    tests = []
    if since is not None:
        tests.append(at >= _microseconds(since))
    if until is not None:
        tests.append(at < _microseconds(until))
    return tests[0] & tests[1] if len(tests) == 2 else tests[0] if tests else None


def _microseconds(bound: pd.Timestamp) -> pa.Scalar:
    # Times are stored to the microsecond: rounding a bound up keeps ">=" and "<" exact.
    return pa.scalar(bound.ceil("us").to_pydatetime(), type=pa.timestamp("us", tz="UTC"))


def _month_needed(month: str, since: pd.Timestamp | None, until: pd.Timestamp | None) -> bool:
    if since is None and until is None:
        return True
    if month == _NO_MONTH:
        return False  # rows without a time pass no time filter
    after = since is None or month >= since.strftime("%Y-%m")
    last = None if until is None else until - pd.Timedelta(1, "us")  # until is excluded
    return after and (last is None or month <= last.strftime("%Y-%m"))


def _utc(value: datetime | str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    at = pd.Timestamp(value)
    return at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")


def _column_names(columns: Sequence[str] | None) -> list[str] | None:
    if columns is None:
        return None
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"not events columns: {unknown}")
    return list(columns)


def _asid_of(rollout: str) -> int:
    """The ASID a rollout id names (``?``: rows without one)."""
    where = rollout.partition("/")[0]
    if where == "?":
        return _NO_ASID
    if not where.isdigit():
        raise RolloutError(f"{rollout!r} is not a rollout id ('<asid>/<imageversionid>')")
    return int(where)


def _file_name(run: str) -> str:
    """A run's file name: its id where that is a safe name, else a safe one with a hash."""
    if _SAFE_NAME.fullmatch(run):
        return run
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", run).strip("._-")[:60]
    return f"{cleaned or 'run'}-{sha256(run.encode()).hexdigest()[:12]}"


def _pandas_type(arrow: pa.DataType) -> object:
    """Nullable pandas dtypes for Arrow's, so no integer column turns into floats."""
    return {pa.int64(): INT, pa.large_string(): TEXT, pa.string(): TEXT}.get(arrow)


#: The columns of every file: the events' but ``asid`` (the folder's), then ours.
_FILE_COLUMNS = [c for c in COLUMNS if c != "asid"] + list(_EXTRA)


@cache
def _events_schema() -> pa.Schema:
    """The events dtypes as pyarrow maps them."""
    return pa.Schema.from_pandas(empty_events(), preserve_index=False).remove_metadata()


@cache
def _file_schema() -> pa.Schema:
    """The Arrow schema of every file: the events dtypes as pyarrow maps them, then ours."""
    fields = [_events_schema().field(c) for c in _FILE_COLUMNS if c in COLUMNS]
    return pa.schema([*fields, pa.field("rollout", pa.large_string()), pa.field("row", pa.int64())])


@cache
def _pandas_metadata() -> dict[bytes, bytes]:
    """The ``pandas`` metadata of every file, as ``Table.from_pandas`` writes it for the
    events dtypes (pandas and Dask read the columns back with them: nullable, categorical)."""
    frame = empty_events().drop(columns="asid")
    frame = frame.assign(rollout=pd.Series(dtype=TEXT), row=pd.Series(dtype=np.int64))
    table = pa.Table.from_pandas(frame, schema=_file_schema(), preserve_index=False)
    return dict(table.schema.metadata or {})


@cache
def _partitioning() -> ds.Partitioning:
    keys = pa.schema([("asid", pa.int64()), ("month", pa.string())])
    return ds.partitioning(keys, flavor="hive")


@cache
def _dataset_schema() -> pa.Schema:
    return pa.schema([*_file_schema(), *_partitioning().schema])
