"""A column-wise reader for successful status responses: the bulk of every recording.

:func:`status_frame` builds the rows of many status bodies at once, column by column. pyarrow
reads what it can (:mod:`._arrow`, repeated keys included); the Python readers here take the
rest, converting each column in one vectorised step when its values already have the
documented type, and value by value (with the client's own readers) only where they do not.
It gives exactly the rows :func:`~cfanalytics.events.exchange_rows` gives (tests hold every
reader to that); a body it cannot take (an envelope, an odd shape) is left to that reader.
Its fields and their rules are the client's :data:`~cfanalytics.client.STATUS_FIELDS`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from ..client import STATUS_FIELDS, FieldRule, FieldType, state_id_of
from ._arrow import eligible, read_bodies
from ._arrowtypes import within
from ._schema import ENDPOINTS, SCHEMA, STATES, TEXT, labels

__all__ = ["StatusBody", "status_frame"]

_FIELDS = tuple(STATUS_FIELDS)
_KNOWN = frozenset(_FIELDS)
_JOBID = STATUS_FIELDS["jobid"]
_BOOL_OF: dict[object, bool] = {True: True, False: False, "true": True, "false": False}

Row = tuple[dict[str, Any], dict[str, Any]]  # a job's values, and what goes to ``extra``


@dataclass(frozen=True, slots=True)
class StatusBody:
    """One successful status response, with the values every one of its rows shares."""

    seq: int
    observed_at: datetime | None
    http_status: int
    asid: int | None
    text: str


def _plain(value: Any) -> Any:
    """JSON parsed with ``object_pairs_hook=tuple`` back to dicts (last duplicate wins)."""
    if isinstance(value, tuple):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _plain_jobs(text: str) -> list[dict[str, Any]] | None:
    """The job objects of a plain status body; None for anything else."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # nested too deeply: the general reader says so
        return None
    if not (type(data) is dict and len(data) == 1 and type(data.get("installs")) is list):
        return None  # an envelope, extra top-level keys, or another shape
    jobs: list[dict[str, Any]] = data["installs"]
    return jobs if all(type(job) is dict for job in jobs) else None


def _surely_unique(text: str, jobs: list[dict[str, Any]]) -> bool:
    """Whether no object of the body repeats a key (as the documented ``restart`` does).

    Every key is followed by a colon; counting colons in the text gives at least the number
    of keys sent (a string value may add more, never fewer). Equal to the keys parsed,
    nothing was repeated; otherwise the exact path decides.
    """
    return text.count(":") == 1 + sum(map(len, jobs))


def _exact_rows(text: str, jobs: list[dict[str, Any]]) -> list[Row]:
    """Rows that also keep every value of a repeated key: a second, exact parse."""
    # The last "installs" is the list read (json keeps the last of a repeated key).
    pairs_of = [v for k, v in json.loads(text, object_pairs_hook=tuple) if k == "installs"][-1]
    rows = []
    for job, pairs in zip(jobs, pairs_of, strict=True):
        extra = _unknown(job)
        if len(pairs) != len(job):
            counts = Counter(map(itemgetter(0), pairs))
            extra["__duplicates__"] = {
                key: [_plain(v) for k, v in pairs if k == key] for key, n in counts.items() if n > 1
            }
        rows.append((job, extra))
    return rows


def _unknown(job: dict[str, Any]) -> dict[str, Any]:
    """The fields the schema has no column for."""
    return {} if job.keys() <= _KNOWN else {k: v for k, v in job.items() if k not in _KNOWN}


def _readable_ids(jobs: list[dict[str, Any]]) -> bool:
    """Whether every ``jobid`` is an int its rule reads (a job without one makes the general
    reader refuse the whole body). Bounds are ranges: the smallest and largest id decide."""
    ids: list[Any] = [job.get("jobid") for job in jobs]
    if not all(type(jobid) is int for jobid in ids):
        return False
    try:
        _JOBID.read(min(ids))
        _JOBID.read(max(ids))
    except ValueError:
        return False
    return True


def _parse(text: str) -> list[Row] | None:
    """A body's rows (values and extras), or None when the general reader must take it."""
    jobs = _plain_jobs(text)
    if not jobs or not _readable_ids(jobs):
        return None  # empty lists, odd shapes and unreadable ids: the general reader
    if _surely_unique(text, jobs):
        return [(job, _unknown(job)) for job in jobs]
    return _exact_rows(text, jobs)


def _convert(values: list[Any], rule: FieldRule, invalid: dict[int, dict[str, Any]]) -> list[Any]:
    """Value by value, as the client reads them; unreadable values are collected."""
    out: list[Any] = []
    for index, value in enumerate(values):
        if value is None or value == "":
            out.append(None)
            continue
        try:
            out.append(rule.read(value))
        except (ValueError, OverflowError):
            invalid.setdefault(index, {})[rule.name] = value
            out.append(None)
    return out


def _types(values: list[Any]) -> set[type]:
    return set(map(type, values))


def _int_array(values: list[Any], bounds: range | None) -> pd.array | None:
    """The values as ``Int64`` when all are ints or null, within int64 and ``bounds``."""
    if not _types(values) <= {int, type(None)}:
        return None
    try:
        with np.errstate(invalid="ignore"):  # a value beyond Int64 raises here (no warning)
            numbers = pd.array(values, dtype="Int64")
    except (TypeError, ValueError, OverflowError):
        return None
    return numbers if within(numbers, bounds) else None


def _ints(values: list[Any], invalid: dict[int, dict[str, Any]], rule: FieldRule) -> pd.array:
    numbers = _int_array(values, rule.bounds)
    if numbers is not None:
        return numbers
    # The client's reader refuses, and flags, what is not an int or lies out of bounds.
    return pd.array(_convert(values, rule, invalid), dtype="Int64")


def _seconds(values: list[Any], bounds: range | None) -> pd.array | list[int | None] | None:
    """Unix seconds when every value is null, "", an int or a digit string in ``bounds``."""
    numbers = _int_array(values, bounds)
    if numbers is not None:
        return numbers
    out: list[int | None] = []
    for v in values:
        if v is None or v == "":
            out.append(None)
        elif type(v) is int or (type(v) is str and v.isascii() and v.isdigit()):
            seconds = int(v)
            if bounds is not None and seconds not in bounds:
                return None
            out.append(seconds)
        else:
            return None
    return out


def _times(values: list[Any], invalid: dict[int, dict[str, Any]], rule: FieldRule) -> pd.Series:
    seconds = _seconds(values, rule.bounds)
    if seconds is not None:
        stamps = pd.to_datetime(pd.array(seconds, dtype="Int64"), unit="s", utc=True)
    else:
        stamps = pd.to_datetime(_convert(values, rule, invalid), utc=True)
    return pd.Series(stamps).astype(SCHEMA[rule.name]).array


def _bools(values: list[Any], invalid: dict[int, dict[str, Any]], rule: FieldRule) -> pd.array:
    # Floats would hash like 0/1 (and lists not at all): only bools, ints and strings are
    # looked up; the client's reader refuses the rest.
    fast = [_BOOL_OF.get(v, v) if type(v) in (bool, int, str) else v for v in values]
    if all(v is None or v is True or v is False for v in fast):
        return pd.array(fast, dtype="boolean")
    return pd.array(_convert(values, rule, invalid), dtype="boolean")


def _texts(values: list[Any], invalid: dict[int, dict[str, Any]], rule: FieldRule) -> pd.array:
    kinds = _types(values)
    if kinds <= {str, int, type(None)}:
        # Numbers (a machine id, say) are kept as their text, as the client reads them.
        plain = (
            values if kinds <= {str, type(None)} else [v if v is None else str(v) for v in values]
        )
        return pd.array([v if v != "" else None for v in plain], dtype=TEXT)
    return pd.array(_convert(values, rule, invalid), dtype=TEXT)


def _state_ids(values: dict[str, list[Any]], invalid: dict[int, dict[str, Any]]) -> pd.array:
    """``jobstateid``, derived from ``jobstatename`` where missing or unreadable."""
    numbers = _ints(values["jobstateid"], invalid, STATUS_FIELDS["jobstateid"])
    if not numbers.isna().any():
        return numbers
    derived = pd.array(list(map(state_id_of, values["jobstatename"])), dtype="Int64")
    return pd.array(np.where(numbers.isna(), derived, numbers), dtype="Int64")


def _state_names(ids: pd.array) -> pd.Categorical:
    """The state names of state ids; ids outside 1..7 have none."""
    codes = ids.fillna(0).to_numpy(dtype="int64") - 1
    codes[(codes < 0) | (codes >= len(STATES))] = -1
    return pd.Categorical.from_codes(codes, dtype=SCHEMA["state"])


def _extras(extras: list[dict[str, Any]], invalid: dict[int, dict[str, Any]]) -> pd.array:
    """``extra`` as JSON text; rows alike share one rendering."""
    cache: dict[str, str] = {}
    out: list[str | None] = []
    for index, extra in enumerate(extras):
        if index in invalid:
            extra = extra | {"__invalid__": invalid[index]}
        if not extra:
            out.append(None)
            continue
        key = repr(extra)  # cheaper than dumping; rows alike share one rendering
        if key not in cache:
            cache[key] = json.dumps(extra, sort_keys=True, default=str)
        out.append(cache[key])
    return pd.array(out, dtype=TEXT)


Reader = Callable[[list[Any], dict[int, dict[str, Any]], FieldRule], Any]
_BY_TYPE: dict[FieldType, Reader] = {"int": _ints, "time": _times, "flag": _bools, "text": _texts}


def _collect(bodies: Sequence[StatusBody]) -> tuple[list[int], list[Any], list[int]]:
    """Parse the bodies; returns body index per row, the rows, and bodies left over."""
    owners: list[int] = []
    rows: list[Any] = []
    leftovers: list[int] = []
    for number, body in enumerate(bodies):
        parsed = _parse(body.text)
        if parsed is None:
            leftovers.append(number)
            continue
        owners.extend([number] * len(parsed))
        rows.extend(parsed)
    return owners, rows, leftovers


def status_frame(bodies: Sequence[StatusBody], *, run_id: str) -> tuple[dict[str, Any], list[int]]:
    """Columns of the rows of ``bodies``, and the indices of bodies it left to the general reader.

    pyarrow reads the bodies it can (:mod:`._arrow`); the Python readers here the rest. Rows
    come in body order; columns with their final dtypes, plus ``_pos``: the row's place within
    its response.
    """
    taken = [i for i, body in enumerate(bodies) if eligible(body.text)]
    read = read_bodies([bodies[i].text for i in taken])
    owner = np.asarray(taken, dtype=np.int64)[read.owner]
    rest = sorted({*range(len(bodies))} - {*taken} | {taken[i] for i in read.declined})
    slow, slow_owner, slow_leftovers = _python_columns([bodies[i] for i in rest])
    leftovers = [rest[i] for i in slow_leftovers]
    slow_owner = np.asarray(rest, dtype=np.int64)[slow_owner]
    columns, owner = _merged((read.values, owner), (slow, slow_owner))
    columns["state"] = _state_names(columns["jobstateid"])
    columns |= _shared(bodies, owner, run_id)
    mirroring = columns["mirroring"]
    kind_codes = np.where(mirroring.isna(), -1, np.where(mirroring.fillna(False), 0, 1))
    columns["kind"] = pd.Categorical.from_codes(kind_codes, dtype=SCHEMA["kind"])
    columns["_pos"] = _positions(owner)
    return columns, leftovers


def _merged(
    *parts: tuple[dict[str, Any], np.ndarray],
) -> tuple[dict[str, Any], np.ndarray]:
    """The rows of both readers in body order (a body's rows stay together, in order)."""
    parts = tuple(part for part in parts if len(part[1]))
    if len(parts) < 2:
        return parts[0] if parts else _python_columns([])[:2]
    owner = np.concatenate([o for _, o in parts])
    order = np.argsort(owner, kind="stable")
    columns = {
        name: pd.concat(
            [pd.Series(c[name], copy=False) for c, _ in parts], ignore_index=True
        ).array.take(order)
        for name in parts[0][0]
    }
    return columns, owner[order]


def _python_columns(bodies: Sequence[StatusBody]) -> tuple[dict[str, Any], np.ndarray, list[int]]:
    """Every quirk handled, column by column: the values, each row's body, leftovers."""
    owners, rows, leftovers = _collect(bodies)
    invalid: dict[int, dict[str, Any]] = {}
    # One C-level pass per row, then a transpose: faster than a Python loop per field.
    table = [tuple(map(job.get, _FIELDS)) for job, _ in rows]
    columns_of = zip(*table, strict=True) if table else ([] for _ in _FIELDS)
    values = dict(zip(_FIELDS, map(list, columns_of), strict=True))
    columns: dict[str, Any] = {
        name: _BY_TYPE[rule.type](values[name], invalid, rule)
        for name, rule in STATUS_FIELDS.items()
        if rule.type != "state"
    }
    del columns["jobstatename"]  # read for its flags: the schema keeps the state by id
    columns["jobstateid"] = _state_ids(values, invalid)
    columns["extra"] = _extras([extra for _, extra in rows], invalid)
    return columns, np.asarray(owners, dtype="int64"), leftovers


def _shared(bodies: Sequence[StatusBody], owner: np.ndarray, run_id: str) -> dict[str, Any]:
    """The columns every row of a response shares, repeated per row."""

    def per_row(values: list[Any], dtype: object) -> Any:
        return (
            pd.Series(values, dtype=object).astype(dtype).array.take(owner)
            if len(owner)
            else pd.array([], dtype=dtype)
        )

    return {
        "run_id": labels(pd.Categorical.from_codes(np.zeros(len(owner), np.int8), [run_id])),
        "seq": per_row([b.seq for b in bodies], "Int64"),
        "observed_at": pd.Series(pd.to_datetime([b.observed_at for b in bodies], utc=True))
        .astype(SCHEMA["observed_at"])
        .array.take(owner),
        "endpoint": pd.Categorical.from_codes(
            np.full(len(owner), ENDPOINTS.index("status"), dtype=np.int8), dtype=SCHEMA["endpoint"]
        ),
        "http_status": per_row([b.http_status for b in bodies], "Int64"),
        "asid": per_row([b.asid for b in bodies], "Int64"),
    }


def _positions(owner: np.ndarray) -> np.ndarray:
    """Each row's index within its response (0, 1, 2, ... restarting per response)."""
    if not len(owner):
        return owner
    starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
    first_of_row = np.repeat(starts, np.diff(np.r_[starts, len(owner)]))
    positions: np.ndarray = np.arange(len(owner)) - first_of_row
    return positions
