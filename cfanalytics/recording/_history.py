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
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ..events import COLUMNS, INT, TEXT, conform, empty_events, rollout_events, validate
from ..exceptions import HistoryError, RolloutError, SchemaError
from ._store_add import (
    MAX_WORKERS,
    HistoryAdded,
    HistoryProgress,
    Transaction,
    apply_transaction,
    distinct_sorted,
    read_manifest,
    runs_of,
)
from ._store_catalog import CATALOG_COLUMNS, Catalog, catalog_of
from ._store_files import (
    EXTRA_COLUMNS,
    MANIFEST,
    NO_ASID,
    NO_MONTH,
    STAGING,
    StoredFile,
    asid_of,
    check_store,
    dataset_schema,
    events_schema,
    hive_partitioning,
    inspect_file,
    pandas_type,
)

__all__ = ["HistoryAdded", "HistoryProgress", "HistoryStore", "is_store"]

#: What :meth:`HistoryStore.add` takes: an events table, or anything ``load_source`` reads.
Source: TypeAlias = pd.DataFrame | str | os.PathLike[str]


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
        check_store(self.path)
        # Each file's footer, by its size and time: read once while it is unchanged.
        self._inspected: dict[Path, tuple[tuple[int, int], StoredFile]] = {}

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
        runs = runs_of([_events_of(source) for source in sources])
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"cannot create the history store {self.path}: {exc}") from exc
        with self._locked(exclusive=True):
            return Transaction(self, on_progress).run(runs)

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

    def catalog(
        self,
        *,
        asid: int | None = None,
        on_progress: Callable[[int, int], object] | None = None,
    ) -> pd.DataFrame:
        """One row per rollout (of ``asid`` only, reading only its folder): ``rollout``,
        ``asid``, ``imageversionid``, ``first_seen``, ``last_seen``, ``runs`` and ``jobs``
        (distinct), from a few stored columns only. ``on_progress(done, total)`` is called
        as the files are read."""
        with self._locked(exclusive=False):
            return self._catalog(asid, on_progress)

    # -- inside the lock ---------------------------------------------------------------

    @contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        """Hold the store's lock (``flock`` on the folder); finish or undo a killed add."""
        check_store(self.path)
        if not self.path.exists():
            raise HistoryError(f"no history store at {self.path}: add a recording first")
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise HistoryError(f"cannot open the history store {self.path}: {exc}") from exc
        try:
            _flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, self.path)
            if (self.path / STAGING).exists():
                _flock(fd, fcntl.LOCK_EX, self.path)  # a killed add: finish or undo it first
                self._recover()
            check_store(self.path)  # as it is now that it is ours
            yield
        finally:
            os.close(fd)  # releases the lock

    def _recover(self) -> None:
        """Finish every committed add a kill interrupted; delete every uncommitted one."""
        staging = self.path / STAGING
        if not staging.exists():
            return  # another process finished it while this one waited for the lock
        try:
            for tx in sorted(staging.iterdir()):
                if (tx / MANIFEST).exists():
                    apply_transaction(self.path, tx, read_manifest(tx / MANIFEST))
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
    ) -> list[StoredFile]:
        """The files in the partitions the filters need (partition pruning), inspected."""
        found = []
        for folder in sorted(self.path.glob("asid=*")):
            if asid is not None and folder.name != f"asid={asid}":
                continue
            for month in sorted(folder.glob("month=*")):
                if _month_needed(month.name.removeprefix("month="), since, until):
                    found += sorted(month.glob(f"{name or '*'}.parquet"))
        return [self._inspect(path) for path in found]

    def _inspect(self, path: Path) -> StoredFile:
        """:func:`inspect_file`, once per version of the file (its size and time)."""
        stat = path.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        known = self._inspected.get(path)
        if known is None or known[0] != key:
            known = self._inspected[path] = (key, inspect_file(path))
        return known[1]

    def _read(
        self, files: list[StoredFile], columns: list[str] | None, where: Any = None
    ) -> pd.DataFrame:
        """The rows of ``files`` matching ``where`` (row groups pruned by their statistics)."""
        if not files:
            return empty_events().assign(rollout=pd.Series(dtype=TEXT), row=pd.Series(dtype=INT))
        frame = self._table(files, columns, where).to_pandas(types_mapper=pandas_type)
        if "asid" in frame:  # the folder's -1 is "no ASID"
            frame["asid"] = frame["asid"].mask(frame["asid"] == NO_ASID)
        return frame

    def _table(
        self, files: list[StoredFile], columns: list[str] | None, where: Any = None
    ) -> pa.Table:
        """:meth:`_read`'s rows as Arrow (``asid`` as stored: -1 for none)."""
        try:
            return self._dataset(files).to_table(columns=columns, filter=where)
        except (OSError, pa.ArrowException) as exc:
            raise HistoryError(f"cannot read the history store {self.path}: {exc}") from exc

    def _dataset(self, files: list[StoredFile]) -> ds.Dataset:
        """``files`` as one dataset, ``asid`` and ``month`` from their folders."""
        return ds.dataset(
            [str(f.path) for f in files],
            schema=dataset_schema(),
            format="parquet",
            partitioning=hive_partitioning(),
            partition_base_dir=str(self.path),
        )

    def _rollout(self, rollout: str) -> pd.DataFrame:
        """The rollout's events: every row of the runs that saw it, on its ASID, cut down by
        the one rule (:func:`~cfanalytics.events.rollout_events`)."""
        files = self._files(asid=asid_of(rollout))
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

    def _catalog(
        self,
        asid: int | None = None,
        on_progress: Callable[[int, int], object] | None = None,
    ) -> pd.DataFrame:
        """The catalog, streamed: each file's rows are reduced to one row per (rollout, job)
        a batch at a time, so memory follows the jobs of the history, never its rows."""
        catalog = Catalog()
        files = self._files(asid=asid)
        with ThreadPoolExecutor(min(MAX_WORKERS, os.cpu_count() or 1)) as pool:
            parts = pool.map(catalog_of, files)
            for done, (file, part) in enumerate(zip(files, parts, strict=True), start=1):
                catalog.add(file, part)
                if on_progress is not None:
                    on_progress(done, len(files))
        out = catalog.frame()
        order = ["asid", "imageversionid", "rollout"]
        out = out.astype(CATALOG_COLUMNS)[list(CATALOG_COLUMNS)]
        return out.sort_values(order, na_position="last", kind="stable", ignore_index=True)

    def _by_name(self) -> dict[str, list[Path]]:
        """Every file of the store by its name (a run's files share one), in one walk."""
        found: dict[str, list[Path]] = {}
        for path in sorted(self.path.glob("asid=*/month=*/*.parquet")):
            found.setdefault(path.stem, []).append(path)
        return found

    def _run_files(self, run: str, paths: list[Path]) -> list[StoredFile]:
        """A run's files (``paths``: those of its name), inspected: each must hold it."""
        files = [self._inspect(path) for path in paths]
        strangers = [f.path for f in files if f.run_id != run]
        if strangers:
            raise HistoryError(f"{strangers[0]} holds another run than {run!r}")
        return files

    def _stored_seqs(self, files: list[StoredFile]) -> np.ndarray:
        """The responses (``seq``) a run's files hold, sorted, each once."""
        if not files:
            return np.empty(0, np.int64)
        return distinct_sorted(self._table(files, ["seq"])["seq"].to_numpy())

    def _stored_rows(self, files: list[StoredFile]) -> tuple[pa.Table, np.ndarray]:
        """A run's stored rows (events columns, ``asid`` NA for none) and their ``row``."""
        if not files:
            return events_schema().empty_table(), np.empty(0, np.int64)
        table = self._table(files, [*COLUMNS, "row"])
        asid = table["asid"]
        none = pc.equal(asid, NO_ASID)
        table = table.set_column(
            COLUMNS.index("asid"), "asid", pc.if_else(none, pa.scalar(None, pa.int64()), asid)
        )
        return table.select(list(COLUMNS)), table["row"].to_numpy()


def _events_of(source: Source) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        try:
            return validate(source)  # conformed already: no copy
        except SchemaError:
            return conform(source)
    # Imported here: load_source reads stores through this module.
    from ._sources import load_source

    return load_source(source)


def _events_only(frame: pd.DataFrame) -> pd.DataFrame:
    """The events table of rows read from the store (its own columns dropped)."""
    return conform(frame.drop(columns=[*EXTRA_COLUMNS, "month"], errors="ignore"))


def _flock(fd: int, operation: int, path: Path) -> None:
    try:
        fcntl.flock(fd, operation)
    except OSError as exc:
        raise HistoryError(f"cannot lock the history store {path}: {exc}") from exc


def _ordered(frame: pd.DataFrame, files: list[StoredFile]) -> pd.DataFrame:
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
    if month == NO_MONTH:
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
