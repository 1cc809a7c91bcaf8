"""Typing the fields pyarrow parsed, by the client's rules, only where no judgement is needed.

Every value must already have a type its rule in :data:`~cfanalytics.client.STATUS_FIELDS`
reads as it is: ints within the bounds, for ids, counts and times; digit strings for times;
booleans or 0/1 for flags; text or ints for text. Anything else declines (None), and the
Python readers, which flag what they cannot read, take the bodies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..client import STATUS_FIELDS, FieldRule, FieldType, state_id_of
from ._schema import SCHEMA, TEXT

__all__ = ["typed_values", "within"]

#: A pyarrow array, whole or in chunks.
Arrow: TypeAlias = pa.Array | pa.ChunkedArray


def within(numbers: pd.array, bounds: range | None) -> bool:
    """Whether every number of an ``Int64`` array (nulls aside) lies in ``bounds``."""
    if bounds is None:
        return True
    inside = (numbers >= bounds.start) & (numbers < bounds.stop)
    return bool(inside.fillna(True).all())


def _inside(array: Arrow, bounds: range | None) -> bool:
    """Whether every number of an int64 array (nulls aside) lies in ``bounds``."""
    if bounds is None:
        return True
    low, high = pc.min_max(array).values()
    return low.as_py() is None or (low.as_py() >= bounds.start and high.as_py() < bounds.stop)


def _numbers(array: Arrow) -> tuple[np.ndarray, np.ndarray]:
    """An int64 or bool array's values (nulls as 0) and null mask, as writable numpy arrays."""
    zero = pa.scalar(False if pa.types.is_boolean(array.type) else 0, array.type)
    values = np.array(pc.fill_null(array, zero).to_numpy(zero_copy_only=False))
    return values, np.array(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _int64(array: Arrow) -> pd.array | None:
    if pa.types.is_null(array.type):
        return pd.arrays.IntegerArray(np.zeros(len(array), np.int64), np.ones(len(array), bool))
    if not pa.types.is_int64(array.type):
        return None
    return pd.arrays.IntegerArray(*_numbers(array))


def _ints(array: Arrow, rule: FieldRule) -> pd.array | None:
    if pa.types.is_int64(array.type) and not _inside(array, rule.bounds):
        return None
    return _int64(array)


def _seconds(array: Arrow, rule: FieldRule) -> pd.array | None:
    if pa.types.is_string(array.type):
        empty = pc.equal(array, "")
        if pc.all(pc.or_(pc.ascii_is_decimal(array), empty)).as_py() not in (True, None):
            return None
        array = pc.cast(pc.if_else(empty, pa.scalar(None, pa.string()), array), pa.int64())
    numbers = _ints(array, rule)
    if numbers is None:
        return None
    micros = numbers.to_numpy(dtype=np.int64, na_value=0) * 1_000_000  # bounds: no overflow
    micros[numbers.isna()] = np.iinfo(np.int64).min  # NaT
    return pd.array(micros.view("M8[us]")).tz_localize("UTC")


def _flags(array: Arrow, rule: FieldRule) -> pd.array | None:
    if pa.types.is_null(array.type):
        return pd.arrays.BooleanArray(np.zeros(len(array), bool), np.ones(len(array), bool))
    if pa.types.is_boolean(array.type):
        return pd.arrays.BooleanArray(*_numbers(array))
    if pa.types.is_int64(array.type) and _inside(array, range(2)):
        values, mask = _numbers(array)
        return pd.arrays.BooleanArray(values.astype(bool), mask)
    return None


def _texts(array: Arrow, rule: FieldRule) -> pd.array | None:
    if pa.types.is_int64(array.type):
        array = pc.cast(array, pa.string())
    elif pa.types.is_null(array.type):
        array = pa.nulls(len(array), pa.string())
    elif not pa.types.is_string(array.type):
        return None
    array = pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)
    return pd.array(array, dtype=TEXT)


def _state_ids(ids: Arrow, names: Arrow) -> pd.array | None:
    numbers = _int64(ids)
    if numbers is None or not (pa.types.is_string(names.type) or pa.types.is_null(names.type)):
        return None
    if numbers.isna().any():
        derived = pd.Series(names.to_pylist(), dtype=object).map(state_id_of)
        numbers = pd.array(
            np.where(numbers.isna(), derived.astype("Int64"), numbers), dtype="Int64"
        )
    return numbers


_BY_TYPE: dict[FieldType, Callable[[Arrow, FieldRule], pd.array | None]] = {
    "int": _ints,
    "time": _seconds,
    "flag": _flags,
    "text": _texts,
}
#: The columns typed field by field: the state has its own reader, and its name no column.
_COLUMNS = {n: r for n, r in STATUS_FIELDS.items() if r.type != "state" and n in SCHEMA}


def typed_values(fields: dict[str, Arrow], rows: int) -> dict[str, Any] | None:
    """The typed columns of the jobs' ``fields`` (each of ``rows`` values); None to decline."""
    null = pa.nulls(rows)
    column = {name: fields.get(name, null) for name in STATUS_FIELDS}
    if column["jobid"].null_count:
        return None
    values: dict[str, Any] = {}
    for name, rule in _COLUMNS.items():
        typed = _BY_TYPE[rule.type](column[name], rule)
        if typed is None:
            return None
        values[name] = typed
    ids = _state_ids(column["jobstateid"], column["jobstatename"])
    if ids is None:
        return None
    values["jobstateid"] = ids
    return values
