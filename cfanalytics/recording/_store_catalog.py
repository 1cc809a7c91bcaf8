"""The history store's catalog: one row per rollout, in memory that follows the jobs.

Each file is reduced to one row per (rollout, job) a batch at a time (:func:`catalog_of`,
:class:`_CatalogPartial`), then folded into :class:`Catalog`, which keeps rollouts and
jobs as numbers; :meth:`HistoryStore.catalog <._history.HistoryStore.catalog>` drives it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..events import INT, TEXT, TIME
from ..exceptions import HistoryError
from ._store_files import NO_ASID, StoredFile, dataset_schema, pandas_type

#: The catalog's columns and dtypes.
CATALOG_COLUMNS = {"rollout": TEXT, "asid": INT, "imageversionid": INT}
CATALOG_COLUMNS |= {"first_seen": TIME, "last_seen": TIME, "runs": INT, "jobs": INT}

_CATALOG_KEYS = ["rollout", "jobid"]  # of a file's reduction
_CATALOG_READ = ["rollout", "jobid", "target_imageversionid", "observed_at"]  # of a file
_CATALOG_AGGREGATES = [
    ("target_imageversionid", "min", "imageversionid"),
    ("observed_at", "min", "first_seen"),
    ("observed_at", "max", "last_seen"),
]
# The aggregates of reductions, reduced again.
_AGAIN = [(name, how, name) for _, how, name in _CATALOG_AGGREGATES]


class _CatalogPartial:
    """One file's rows reduced to one row per (rollout, job), with the smallest image version
    and the first and last time seen, reduced again as it grows."""

    BATCH_ROWS = 1 << 16  # rows read at once
    FOLD_ROWS = 1 << 20  # reduced rows kept before they are reduced again

    def __init__(self) -> None:
        self._parts: list[pa.Table] = []
        self._rows = 0

    def add(self, rows: pa.Table | pa.RecordBatch) -> None:
        """Fold in stored rows (:data:`_CATALOG_READ`)."""
        part = _reduce(rows, _CATALOG_AGGREGATES)
        self._parts.append(part)
        self._rows += part.num_rows
        if self._rows > self.FOLD_ROWS:
            self._parts = [self.table()]
            self._rows = self._parts[0].num_rows

    def table(self) -> pa.Table:
        """The reduction so far: :data:`_CATALOG_KEYS`, then the aggregates' names."""
        if not self._parts:
            return _reduce(dataset_schema().empty_table(), _CATALOG_AGGREGATES)
        return _reduce(pa.concat_tables(self._parts), _AGAIN)


class Catalog:
    """The catalog being read, file by file (:func:`catalog_of` of each): per rollout and
    ASID, the least image version, the first and last time, the runs, and the distinct jobs,
    kept as numbers (12 bytes per job and file), so a year of jobs stays small."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, int], int] = {}  # (rollout, asid): its number
        self._heads: list[pd.DataFrame] = []  # per file: "key" and the aggregates
        self._runs: set[tuple[int, str]] = set()
        self._jobs: list[tuple[np.ndarray, np.ndarray]] = []  # per file: keys, jobids

    def add(self, file: StoredFile, part: pa.Table) -> None:
        """Fold in :func:`catalog_of` of ``file``."""
        key = self._numbered(part["rollout"], file.asid)
        self._runs.update((k, file.run_id) for k in np.unique(key).tolist())
        known = pc.is_valid(part["jobid"]).to_numpy(zero_copy_only=False)
        job = part["jobid"].fill_null(0).to_numpy()  # int64 whole: ids past 2**53 stay exact
        self._jobs.append((key[known], job[known]))
        columns = {name: part[name] for _, _, name in _CATALOG_AGGREGATES}
        head = pa.table({"key": key, **columns}).group_by(["key"], use_threads=False)
        aggregates = [(name, how) for _, how, name in _CATALOG_AGGREGATES]
        self._heads.append(head.aggregate(aggregates).to_pandas(types_mapper=pandas_type))

    def frame(self) -> pd.DataFrame:
        """One row per (rollout, ASID): the catalog's columns, in no order."""
        if not self._keys:
            return pd.DataFrame(
                {name: pd.Series(dtype=kind) for name, kind in CATALOG_COLUMNS.items()}
            )
        heads = pd.concat(self._heads, ignore_index=True).groupby("key", sort=True)
        out = heads.agg(
            **{name: (f"{name}_{how}", how) for _, how, name in _CATALOG_AGGREGATES}
        ).reset_index()
        named = list(self._keys)
        out["rollout"] = pd.array([named[k][0] for k in out["key"]], dtype=TEXT)
        out["asid"] = pd.Series([named[k][1] for k in out["key"]], dtype=INT, index=out.index)
        out["asid"] = out["asid"].mask(out["asid"] == NO_ASID)
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


def catalog_of(file: StoredFile) -> pa.Table:
    """One file's rows (one run's, on one ASID) reduced to one row per (rollout, job)."""
    partial = _CatalogPartial()
    try:
        # the rollout as a dictionary: a run's rows name a few, grouped on their codes
        with pq.ParquetFile(file.path, read_dictionary=["rollout"]) as reader:
            batches = reader.iter_batches(_CatalogPartial.BATCH_ROWS, columns=_CATALOG_READ)
            for batch in batches:
                partial.add(batch.filter(pc.is_valid(batch["rollout"])))
    except (OSError, pa.ArrowException) as exc:
        raise HistoryError(f"cannot read the history store file {file.path}: {exc}") from exc
    return partial.table()


def _reduce(rows: pa.Table | pa.RecordBatch, aggregates: list[tuple[str, str, str]]) -> pa.Table:
    """``rows`` grouped by :data:`_CATALOG_KEYS`: (column, how, name) gives each aggregate."""
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_batches([rows])
    found = table.group_by(_CATALOG_KEYS, use_threads=False).aggregate(
        [(column, how) for column, how, _ in aggregates]
    )
    names = {f"{column}_{how}": name for column, how, name in aggregates}
    found = found.rename_columns([names.get(name, name) for name in found.column_names])
    return found.select([*_CATALOG_KEYS, *(name for _, _, name in aggregates)])
