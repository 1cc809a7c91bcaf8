"""The history store's add: one transaction that stages, commits and applies.

What an add did (:class:`HistoryAdded`) and where it is (:class:`HistoryProgress`); the
sources' rows by run and what of them is new (:func:`runs_of`, :func:`_fresh`); a run's
rows as its files hold them (:class:`_RunRows`); and :class:`Transaction`, which writes
them aside, commits the manifest and moves them into place (:func:`apply_transaction`, which also
finishes an add a kill interrupted). The format is :mod:`._history`'s docstring.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._files import write_atomically
from ..events import SCHEMA, rollout_of
from ..exceptions import HistoryError
from ._store_files import (
    EXTRA_COLUMNS,
    FILE_COLUMNS,
    MANIFEST,
    NO_ASID,
    NO_TIME,
    STAGING,
    StoredFile,
    events_schema,
    file_metadata,
    file_name,
    file_schema,
    month_name,
    pandas_metadata,
    pandas_type,
)

if TYPE_CHECKING:
    from ._history import HistoryStore

Stage: TypeAlias = Literal["locked", "staged", "committed", "applied"]

_ROLLOUT_INPUT = ["run_id", "asid", "target_imageversionid", "endpoint", "jobid"]  # rollout_of's
_ROW_GROUP = 1024 * 1024  # rows per row group, pyarrow's default
MAX_WORKERS = 4  # runs staged at once, at most
_IN_FLIGHT = _ROW_GROUP // 2  # rows staged at once, at most (unless one run has more)


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


class Transaction:
    """One add, inside the store's exclusive lock: stage, commit, apply."""

    def __init__(
        self, store: HistoryStore, on_progress: Callable[[HistoryProgress], object] | None
    ) -> None:
        self.store = store
        self.tx = store.path / STAGING / uuid.uuid4().hex
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
                    self.tx / MANIFEST, self._manifest(), what="the manifest", error=HistoryError
                )
        finally:
            if not (self.tx / MANIFEST).exists():
                shutil.rmtree(self.tx, ignore_errors=True)  # nothing happened
                _remove_empty(self.store.path / STAGING)
        if self.moves:
            self.report(HistoryProgress("committed", 0, len(self.moves)))
            try:
                apply_transaction(
                    self.store.path, self.tx, json.loads(self._manifest()), self.report
                )
            except OSError as exc:
                raise HistoryError(
                    f"cannot finish adding to {self.store.path} ({exc}); the add is committed "
                    "and the next use of the store finishes it"
                ) from exc
        _remove_empty(self.store.path / STAGING)
        return HistoryAdded(tuple(sorted(self.written)), *self.counts)

    def _stage_all(self, runs: dict[str, list[_Piece]]) -> None:
        """Tell each run's new responses (reading only the stored ``seq``), and stage the
        runs that have some, several at once (Arrow and Parquet work without the GIL), with
        at most :data:`_IN_FLIGHT` rows in flight (or one bigger run), so memory is bounded
        by that, not by the sources."""
        stored = self.store._by_name()  # one walk of the store for every run
        queue: deque[_Staging] = deque()
        with ThreadPoolExecutor(min(MAX_WORKERS, os.cpu_count() or 1)) as pool:
            try:
                for number, (run, pieces) in enumerate(runs.items()):
                    files = self.store._run_files(run, stored.get(file_name(run), []))
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
        self, number: int, run: str, files: list[StoredFile], fresh: list[pd.DataFrame]
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
        return staged, f"{where}/{file_name(run)}.parquet"

    def _manifest(self) -> str:
        return json.dumps({"moves": self.moves, "removes": self.removes})


def apply_transaction(
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


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HistoryError(f"cannot read {path}, an interrupted add's manifest: {exc}") from exc
    return manifest


def _remove_empty(folder: Path) -> None:
    with suppress(OSError):  # absent, or not empty: an add to finish is there
        folder.rmdir()


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


def runs_of(frames: list[pd.DataFrame]) -> dict[str, list[_Piece]]:
    """The rows of ``frames`` by run (runs in order of appearance), a piece per frame."""
    unnamed = sum(int((f["run_id"].isna() | f["seq"].isna()).sum()) for f in frames)
    if unnamed:
        raise HistoryError(
            f"{unnamed} rows have no run_id or seq: a response is identified by "
            "(run_id, seq), so they cannot be stored"
        )
    if any((f["asid"] == NO_ASID).any() for f in frames):
        raise HistoryError(f"asid {NO_ASID} cannot be stored: it marks rows without an ASID")
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
        seqs = distinct_sorted(piece.seq)
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


def distinct_sorted(values: np.ndarray) -> np.ndarray:
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
        self.schema = file_schema().with_metadata(pandas_metadata() | file_metadata(run, start))

    def column(self, name: str) -> pa.ChunkedArray:
        """One events column of every row, stored then fresh, in Arrow."""
        kind = events_schema().field(name).type
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
        frame = (table if order is None else table.take(order)).to_pandas(types_mapper=pandas_type)
        return frame.astype({name: SCHEMA[name] for name in _ROLLOUT_INPUT})

    def partitions(self) -> Iterator[tuple[str, np.ndarray]]:
        """Each partition's folder and its rows in file order: by rollout, jobid and time
        (NA last), then as recorded."""
        asid = _values(self.column("asid"), NO_ASID)[0]
        month = self.at.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
        month[self.no_time] = NO_TIME
        jobid, no_job = _values(self.column("jobid"))
        rank = _ranks(self.names)[self.rollout]
        keys = [asid, month, rank, no_job, jobid, self.no_time, self.at, self.row]
        order = _lexsorted(keys)
        cuts = np.flatnonzero((np.diff(asid[order]) != 0) | (np.diff(month[order]) != 0)) + 1
        for rows in np.split(order, cuts):
            first = rows[0]
            yield f"asid={asid[first]}/month={month_name(int(month[first]))}", rows

    def write(self, handle: BinaryIO, order: np.ndarray) -> None:
        """A partition's file: the rows ``order`` says, a row group at a time."""
        with pq.ParquetWriter(handle, self.schema, compression="zstd") as writer:
            for start in range(0, len(order), _ROW_GROUP):
                writer.write_table(self._file_table(order[start : start + _ROW_GROUP]))

    def _file_table(self, rows: np.ndarray) -> pa.Table:
        columns = [self.column(name).take(rows) for name in FILE_COLUMNS[: -len(EXTRA_COLUMNS)]]
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
