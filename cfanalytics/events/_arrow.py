"""The fastest reader of status bodies: pyarrow's JSON parser, when the bodies allow it.

It takes a batch only when every value already has a type its rule in the client's
:data:`~cfanalytics.client.STATUS_FIELDS` reads without judgement (ints within the bounds,
for ids, counts and times; digit strings for times; booleans or 0/1 for flags; text or ints
for text) and nothing needs ``extra``: no unknown field, no repeated key (pyarrow refuses
those outright). Otherwise it declines, and the Python readers of :mod:`._fast`, which
handle every quirk, take the batch. Tests hold all readers to the same rows.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ..client import STATUS_FIELDS, FieldRule, FieldType, state_id_of
from ._schema import SCHEMA

__all__ = ["arrow_values", "eligible", "within"]

_PREFIX = '{"installs": ['


def within(numbers: pd.array, bounds: range | None) -> bool:
    """Whether every number of an ``Int64`` array (nulls aside) lies in ``bounds``."""
    if bounds is None:
        return True
    inside = (numbers >= bounds.start) & (numbers < bounds.stop)
    return bool(inside.fillna(True).all())


def _int64(array: pa.Array) -> pd.array | None:
    if pa.types.is_null(array.type):
        return pd.array([None] * len(array), dtype="Int64")
    if not pa.types.is_int64(array.type):
        return None
    return array.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get).array


def _ints(array: pa.Array, rule: FieldRule) -> pd.array | None:
    numbers = _int64(array)
    return numbers if numbers is not None and within(numbers, rule.bounds) else None


def _seconds(array: pa.Array, rule: FieldRule) -> pd.array | None:
    if pa.types.is_string(array.type):
        if pc.all(pc.match_substring_regex(array, "^[0-9]*$")).as_py() not in (True, None):
            return None
        array = pc.cast(
            pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array), pa.int64()
        )
    numbers = _ints(array, rule)
    if numbers is None:
        return None
    return pd.to_datetime(numbers, unit="s", utc=True).astype(SCHEMA[rule.name]).array


def _flags(array: pa.Array, rule: FieldRule) -> pd.array | None:
    if pa.types.is_null(array.type):
        return pd.array([None] * len(array), dtype="boolean")
    if pa.types.is_boolean(array.type):
        return array.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get).array
    if pa.types.is_int64(array.type):
        values = _int64(array)
        if values is not None and bool(values.isin([0, 1]).fillna(True).all()):
            return values.astype("boolean")
    return None


def _texts(array: pa.Array, rule: FieldRule) -> pd.array | None:
    if pa.types.is_int64(array.type):
        array = pc.cast(array, pa.string())
    elif pa.types.is_null(array.type):
        array = pa.array([None] * len(array), pa.string())
    elif not pa.types.is_string(array.type):
        return None
    array = pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)
    return pd.array(array, dtype=pd.StringDtype())


def _state_ids(ids: pa.Array, names: pa.Array) -> pd.array | None:
    numbers = _int64(ids)
    if numbers is None or not (pa.types.is_string(names.type) or pa.types.is_null(names.type)):
        return None
    if numbers.isna().any():
        derived = pd.Series(names.to_pylist(), dtype=object).map(state_id_of)
        numbers = pd.array(
            np.where(numbers.isna(), derived.astype("Int64"), numbers), dtype="Int64"
        )
    return numbers


_BY_TYPE: dict[FieldType, Callable[[pa.Array, FieldRule], pd.array | None]] = {
    "int": _ints,
    "time": _seconds,
    "flag": _flags,
    "text": _texts,
}
#: The columns typed field by field: the state has its own reader, and its name no column.
_COLUMNS = {n: r for n, r in STATUS_FIELDS.items() if r.type != "state" and n in SCHEMA}


def _jobs(texts: Sequence[str]) -> tuple[pa.StructArray, np.ndarray] | None:
    try:
        table = pj.read_json(io.BytesIO("\n".join(texts).encode()))
    except (pa.ArrowInvalid, UnicodeEncodeError):
        return None  # a repeated key, a type that changes between rows, ...
    if table.column_names != ["installs"]:
        return None
    installs = table.column("installs").combine_chunks()
    if not pa.types.is_list(installs.type) or not pa.types.is_struct(installs.type.value_type):
        return None
    lengths = pc.list_value_length(installs).to_numpy(zero_copy_only=False)
    return installs.flatten(), np.repeat(np.arange(len(texts)), lengths)


def eligible(text: str) -> bool:
    """Whether a body may go to pyarrow: one compact line holding a non-empty, flat job list.

    Flat: no array or object below the jobs (a string holding "[" declines too: the Python
    readers take it, which is only slower).
    """
    return (
        text.startswith(_PREFIX)
        and not text.startswith(_PREFIX + "]")
        and "\n" not in text
        and _flat(text)
    )


def _flat(text: str) -> bool:
    """No array below the job list, and no "{" but those opening a job (the first, and each
    after "}," or "}, "): pyarrow's parser recurses without a limit (a 40 kB body nested
    20,000 deep crashes the process), so it never sees a nested body. Counting is C-speed;
    a brace in a string declines too, which only sends that body to the slower readers."""
    start = len(_PREFIX)
    jobs = 1 + text.count("},{", start) + text.count("}, {", start)
    return text.find("[", start) == -1 and text.count("{", start) == jobs


def arrow_values(texts: Sequence[str]) -> tuple[dict[str, Any], np.ndarray] | None:
    """Typed values of every job of ``texts`` by field, and each row's body; or None."""
    try:
        return _values(texts)
    except (pa.ArrowInvalid, OverflowError):
        return None  # e.g. a digit string too long for int64: the exact readers decide


def _values(texts: Sequence[str]) -> tuple[dict[str, Any], np.ndarray] | None:
    parsed = _jobs(texts)
    if parsed is None:
        return None
    jobs, owner = parsed
    fields = {jobs.type.field(i).name for i in range(jobs.type.num_fields)}
    if not fields <= STATUS_FIELDS.keys() or "jobid" not in fields:
        return None  # unknown fields belong in extra: the Python reader keeps them
    null = pa.nulls(len(jobs))
    column = {name: jobs.field(name) if name in fields else null for name in STATUS_FIELDS}
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
    return values, owner
