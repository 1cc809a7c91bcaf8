"""Reductions over groups whose rows are stored contiguously, one *segment* per group.

Once rows are sorted by group, a per-group quantity is one sequential pass over a boolean
``mask`` of the rows: no Python loop over groups, no hashing. :class:`Segments` returns row
*positions* (``-1``: no row of the group is in the mask) rather than values, so that a
caller fetches the few values it needs from a wide column instead of reordering the whole
column first. :func:`order` sorts rows into segments; :func:`factorize` and
:func:`group_numbers` number groups without hashing every row; :func:`mean_by` averages
per group with pandas' own sums.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

__all__ = [
    "LAST",
    "Segments",
    "changes",
    "factorize",
    "firsts",
    "group_numbers",
    "mean_by",
    "next_after",
    "numbers",
    "order",
    "pick",
    "sort_key",
]

#: The sort key of a missing value: after every other.
LAST = np.iinfo(np.int64).max
ArrayLike: TypeAlias = np.ndarray | ExtensionArray | pd.Series


@dataclass(frozen=True, slots=True)
class Segments:
    """Rows sorted by a group key: segment ``g`` owns the rows from ``lo[g]`` to the next.

    Every segment has a row: ``np.ufunc.reduceat`` would read an empty one as its first row.
    """

    lo: np.ndarray  # each segment's first row
    of_row: np.ndarray  # each row's segment number
    keys: np.ndarray  # each segment's key, ascending

    @classmethod
    def of(cls, keys: np.ndarray) -> Segments:
        """The segments of sorted ``keys``, one per distinct key."""
        new = changes(keys)
        lo = np.flatnonzero(new)
        return cls(lo, np.cumsum(new) - 1, keys[lo])

    def sizes(self) -> np.ndarray:
        """Per segment: how many rows it has."""
        return np.diff(self.lo, append=len(self.of_row))

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Per segment: the sum of its integer ``values``, exactly."""
        if len(self.lo) == 0:
            return np.zeros(0, dtype=values.dtype)
        out: np.ndarray = np.add.reduceat(values, self.lo)
        return out

    def count(self, mask: np.ndarray) -> np.ndarray:
        """Per segment: how many of its rows are in ``mask``."""
        if len(self.lo) == 0:
            return np.zeros(0, dtype=np.int64)
        counts = np.add.reduceat(mask.view(np.uint8), self.lo, dtype=np.int32)  # the fastest
        return counts.astype(np.int64)

    def ends(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per segment: its first and its last row in ``mask``, else -1."""
        n, hits = self.count(mask), np.flatnonzero(mask)
        if len(hits) == 0:
            return np.full(len(self.lo), -1), np.full(len(self.lo), -1)
        through = np.cumsum(n)  # hits up to the end of each segment
        return (
            np.where(n > 0, hits[np.minimum(through - n, len(hits) - 1)], -1),
            np.where(n > 0, hits[through - 1], -1),  # index -1 only where n is 0
        )

    def first(self, mask: np.ndarray) -> np.ndarray:
        """Per segment: its first row in ``mask``, else -1."""
        return self.ends(mask)[0]

    def last(self, mask: np.ndarray) -> np.ndarray:
        """Per segment: its last row in ``mask``, else -1."""
        return self.ends(mask)[1]

    def first_after(self, mask: np.ndarray, after: np.ndarray) -> np.ndarray:
        """Per segment ``g``: its first row in ``mask`` beyond row ``after[g]``, else -1.

        Works on the rows in ``mask`` only: cheap for a sparse mask.
        """
        hits = np.flatnonzero(mask)
        hits = hits[hits > after[self.of_row[hits]]]
        starts = changes(self.of_row[hits])  # hits come in segment order
        out = np.full(len(self.lo), -1)
        out[self.of_row[hits[starts]]] = hits[starts]
        return out


def pick(values: np.ndarray, rows: np.ndarray, missing: object) -> np.ndarray:
    """``values`` at ``rows``, and ``missing`` where the row is -1."""
    if len(values) == 0:  # then every row is -1
        return np.full(len(rows), missing, dtype=values.dtype)
    out: np.ndarray = np.where(rows >= 0, values[rows], missing)  # type: ignore[call-overload]
    return out


def changes(values: pd.api.extensions.ExtensionArray | np.ndarray) -> np.ndarray:
    """Whether each value differs from the one before it; NA differs from anything.

    The first value always differs.
    """
    out = np.ones(len(values), dtype=bool)
    differs = values[1:] != values[:-1]
    if not isinstance(differs, np.ndarray):  # nullable: NA where either is NA
        differs = pd.array(differs).to_numpy(dtype=bool, na_value=True)
    out[1:] = differs
    return out


def numbers(*columns: pd.api.extensions.ExtensionArray | np.ndarray) -> np.ndarray:
    """A number per row, the same for rows equal in every column; NA equals NA."""
    out = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(column, use_na_sentinel=False)
        out, _ = pd.factorize(out * len(uniques) + codes)  # stays below the number of rows
    return out


def firsts(keys: np.ndarray) -> np.ndarray:
    """Where each value of ``keys`` first appears, in order of appearance."""
    starts = np.flatnonzero(changes(keys))  # a repeat of the value before is never first
    codes, _ = pd.factorize(keys[starts])  # numbered in order of first appearance
    new = np.ones(len(codes), dtype=bool)
    new[1:] = codes[1:] > np.maximum.accumulate(codes)[:-1]
    return starts[new]


def next_after(
    groups: np.ndarray, times: np.ndarray, query_groups: np.ndarray, query_times: np.ndarray
) -> np.ndarray:
    """Per query: the first of ``times`` in its group strictly after its time, else -1.

    Times and queries get one key, ordered by group then time, so that one binary search
    serves every group: the next key found must still be of the query's group.
    """
    n = len(times)
    _, group = np.unique(np.append(groups, query_groups), return_inverse=True)
    _, rank = np.unique(np.append(times, query_times), return_inverse=True)  # ties: one rank
    key = group.astype(np.int64) * (len(group) + 1) + rank
    order = np.argsort(key[:n], kind="stable")
    found = np.append(order, -1)[np.searchsorted(key[:n][order], key[n:], side="right")]
    same: np.ndarray = pick(group[:n], found, -1) == group[n:]
    return np.where(same, found, -1)


def sort_key(values: pd.Series | ExtensionArray | np.ndarray) -> np.ndarray:
    """``int64`` keys ordering ``values`` (integers or times; ``datetime64`` arrays too) as a
    stable sort does: NA last."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return np.where(np.isnat(values), LAST, values.view(np.int64))
    column = pd.Series(values, copy=False)
    keys = np.asarray(column.to_numpy(dtype=np.int64, na_value=LAST))
    return np.where(np.asarray(column.isna()), LAST, keys)


def order(keys: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The positions sorting rows by ``keys``, then ``times`` (both ``int64``), stably.

    Two stable sorts, by time then by key: the first is skipped when the rows come in time
    order, as a recording's do, and both together beat ``np.lexsort``, by far on shuffled rows.
    """
    if (times[1:] >= times[:-1]).all():
        by_key: np.ndarray = np.argsort(keys, kind="stable")
        return by_key
    by_time = np.argsort(times, kind="stable")
    return by_time[np.argsort(keys[by_time], kind="stable")]


def factorize(values: pd.Series) -> tuple[np.ndarray, ExtensionArray | np.ndarray]:
    """``pd.factorize(values, sort=True)``: per row the number of its value among the values
    in order (NA: -1), and those values. Only the first value of each run of equal values is
    looked up, so values that come in runs (a job's rows) are numbered cheaply."""
    column = values.array
    starts = np.flatnonzero(changes(column))
    codes, uniques = pd.factorize(column.take(starts), sort=True)
    return np.repeat(codes, np.diff(starts, append=len(column))), uniques


def group_numbers(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the number of its key (``int64`` in ``[0, size)``) among the keys present in
    ascending order; and those keys."""
    if size <= 4 * len(keys) + 1024:  # a table of every possible key is cheap
        present = np.bincount(keys, minlength=size) > 0
        number = np.cumsum(present) - 1
        return number[keys], np.flatnonzero(present)
    numbers, uniques = pd.factorize(keys, sort=True)
    return numbers, np.asarray(uniques)


def mean_by(values: Mapping[str, ArrayLike], groups: np.ndarray, n: int) -> pd.DataFrame:
    """pandas' grouped mean of each column of ``values`` per group ``0..n-1`` of each row
    (``groups``), missing values skipped, NA for a group without values.

    The same numbers as ``table.groupby(key).mean()``, from a key that needs no hashing.
    pandas sums a nullable column with compensation, row by row, but plain floats of sorted
    groups with ``np.add.reduceat``: pass each column in the dtype whose answer is wanted.
    """
    by = pd.Categorical.from_codes(groups, categories=pd.RangeIndex(n))
    return pd.DataFrame(values, copy=False).groupby(by, observed=False).mean()
