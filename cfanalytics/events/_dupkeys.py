"""Repeated keys for pyarrow: every occurrence renamed into a slot, merged back after parsing.

pyarrow refuses an object that repeats a key, as the documented ``restart`` does. So the bodies
of a chunk are rewritten before parsing: each ``"K":`` of a repeated key K (the k-th learned)
becomes ``"<M>ki<r>": <i>, "<M>kv<r>":`` (``<M>`` the marker character U+007F), an occurrence
*slot*: i counts K's occurrences through the chunk and r = i mod ``slots``. A job's occurrences
are consecutive in the text, so up to ``slots`` of them land in distinct slots; i orders them and
tells that the key was sent (a null value alone could not). After parsing, :func:`merge` turns
the slots back into K's column (the last value, as :func:`json.loads` keeps it) and renders
``{"__duplicates__": {K: [every value, in order]}}`` for the rows that sent K more than once,
as the Python readers do.

Nothing is guessed; what the rewrite cannot vouch for is refused, and the exact readers take it:

- a body holding the marker (raw, or as a ``\\u007f`` escape) is not rewritten: a key of its
  own could pass for a slot;
- a ``"K":`` inside a string (after an escaped quote) becomes part of a key nobody knows, and
  an occurrence spelled otherwise (``"re\\u0073tart"``, a space before the colon) stays K:
  both show as fields that :func:`merge` and the field check refuse;
- slot values must have a type whose Python value pyarrow gives as :mod:`json` does: ints,
  bools, strings or null (never floats: pyarrow turns a column's ints into floats).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..client import STATUS_FIELDS

__all__ = ["MARK", "Rewriter", "index_name", "merge", "repeated_key", "value_name"]

MARK = "\x7f"
#: The most occurrences of one key in one job a rewrite takes (slots double up to this).
MAX_SLOTS = 16
_REPEATED = re.compile(r"Column\(/installs/\[\]/(.*)\) was specified twice", re.DOTALL)
_VALUE_TYPES = (pa.int64(), pa.bool_(), pa.string(), pa.null())


def repeated_key(message: str) -> str | None:
    """The job key a pyarrow error says was sent twice in one object, if that is the error."""
    found = _REPEATED.search(message)
    return found.group(1) if found else None


def index_name(k: int, slot: int) -> str:
    """The field holding the occurrence number of the k-th key's ``slot``."""
    return f"{MARK}{k}i{slot}"


def value_name(k: int, slot: int) -> str:
    """The field holding the value of the k-th key's ``slot``."""
    return f"{MARK}{k}v{slot}"


class Rewriter:
    """Rewrites bodies so that every occurrence of ``keys`` is a slot of its own."""

    def __init__(self, keys: Sequence[str] = (), slots: int = 2) -> None:
        self.keys = list(keys)
        self.slots = slots
        self._separators: dict[int, list[str]] = {}

    def learn(self, key: str) -> bool:
        """Take the key pyarrow found twice; False when no rewrite can help."""
        if key.startswith(MARK):  # a job sent a key more often than there are slots
            if self.slots >= MAX_SLOTS:
                return False
            self.slots *= 2
            self._separators.clear()
            return True
        if key not in STATUS_FIELDS or key in self.keys:  # unknown fields go to the exact readers
            return False
        self.keys.append(key)
        return True

    @staticmethod
    def fits(text: str) -> bool:
        """Whether ``text`` may be rewritten: it holds no marker, raw or escaped."""
        if MARK in text:
            return False
        return "\\" not in text or ("\\u007f" not in text and "\\u007F" not in text)

    def rewrite(self, text: str) -> str:
        """``text`` (bodies that :meth:`fits`, one a line) with every ``"K":`` a slot.

        Occurrences are numbered through the whole text: a job's are still consecutive.
        """
        for k, key in enumerate(self.keys):
            parts = text.split(f'"{key}":')
            if len(parts) > 1:
                pieces = [""] * (2 * len(parts) - 1)
                pieces[0::2] = parts
                pieces[1::2] = self._separators_of(k, len(parts) - 1)[: len(parts) - 1]
                text = "".join(pieces)
        return text

    def _separators_of(self, k: int, count: int) -> list[str]:
        separators = self._separators.setdefault(k, [])
        for i in range(len(separators), count):
            slot = i % self.slots
            separators.append(f'"{index_name(k, slot)}": {i}, "{value_name(k, slot)}":')
        return separators


def merge(fields: dict[str, Any], keys: Sequence[str], slots: int, rows: int) -> pa.Array | None:
    """Put each key's slots back as its column (in place); the rows' ``extra`` JSON text.

    None when the slots cannot be read exactly (see the module docstring).
    """
    found: list[_Key] = []
    for k, key in enumerate(keys):
        if key in fields:  # an occurrence the rewrite did not reach: order unknown
            return None
        occurrences = _occurrences(fields, k, slots, rows)
        if occurrences is None:
            return None
        orders, values = occurrences
        fields[key] = _last(orders, values)
        found.append((key, orders, values))
    if any(name.startswith(MARK) for name in fields):
        return None
    return _extras(found, rows)


#: A repeated key: its name, each slot's occurrence numbers (-1 where none), each slot's values.
_Key = tuple[str, list[np.ndarray], list[pa.Array]]


def _occurrences(
    fields: dict[str, Any], k: int, slots: int, rows: int
) -> tuple[list[np.ndarray], list[pa.Array]] | None:
    """The k-th key's occurrence numbers and values, slot by slot (its fields popped)."""
    orders: list[np.ndarray] = []
    values: list[pa.Array] = []
    for slot in range(slots):
        index = fields.pop(index_name(k, slot), None)
        value = fields.pop(value_name(k, slot), None)
        if (index is None) != (value is None):
            return None
        if index is None:
            orders.append(np.full(rows, -1, dtype=np.int64))
            values.append(pa.nulls(rows))
            continue
        if not pa.types.is_int64(index.type) or value.type not in _VALUE_TYPES:
            return None
        orders.append(pc.fill_null(index, -1).to_numpy(zero_copy_only=False))
        values.append(value.combine_chunks() if isinstance(value, pa.ChunkedArray) else value)
    kinds = {v.type for v in values} - {pa.null()}
    if len(kinds) > 1:
        return None  # e.g. "x" then 1: the exact readers say which one is invalid
    kind = kinds.pop() if kinds else pa.null()
    return orders, [v if v.type == kind else v.cast(kind) for v in values]


def _last(orders: list[np.ndarray], values: list[pa.Array]) -> pa.Array:
    """Each row's value of its last occurrence (null where the key was not sent)."""
    if len(values) == 1 or pa.types.is_null(values[0].type):
        return values[0]
    latest = orders[0].copy()
    which = np.zeros(len(latest), dtype=np.int8)
    for slot, order in enumerate(orders[1:], start=1):
        later = order > latest
        which[later] = slot
        np.maximum(latest, order, out=latest)
    return pc.choose(pa.array(which), *values)


def _extras(found: list[_Key], rows: int) -> pa.Array:
    """``{"__duplicates__": ...}`` for the rows that sent a key twice, else null.

    Rows alike (same keys repeated, same values in the same order) share one rendering: each
    row gets a number built from its slots' ranks and value codes, and one row per number is
    rendered.
    """
    repeated = np.zeros(rows, dtype=bool)
    for _, orders, _ in found:
        repeated |= sum((order >= 0).astype(np.int8) for order in orders) > 1
    where = np.flatnonzero(repeated)
    if not len(where):
        return pa.nulls(rows, pa.string())
    picked = [(key, _subset(orders, where), values) for key, orders, values in found]
    signature = np.zeros(len(where), dtype=np.int64)
    span = 1
    decoded: list[_Decoded] = []
    for key, orders, values in picked:
        for slot, (rank, value) in enumerate(zip(_ranks(orders), values, strict=True)):
            encoded = pc.dictionary_encode(value if len(where) == rows else value.take(where))
            codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
            dictionary = encoded.dictionary.to_pylist()
            for part, size in ((rank, len(orders) + 1), (codes, len(dictionary) + 1)):
                span *= size
                if span >= 2**62:  # too many combinations to number: row by row
                    return _spread(_each(picked, where), where, np.arange(len(where)), rows)
                signature = signature * size + part + 1
            decoded.append((key, slot, rank, codes, dictionary))
    codes, _ = pd.factorize(signature)
    # factorize numbers values as they first appear: a row whose code tops all before it is
    # the first of its kind.
    first = np.flatnonzero(codes > np.maximum.accumulate(np.r_[-1, codes[:-1]]))
    rendered = [_render(decoded, int(row)) for row in first]
    return _spread(rendered, where, codes, rows)


def _subset(orders: list[np.ndarray], where: np.ndarray) -> list[np.ndarray]:
    return orders if len(where) == len(orders[0]) else [order[where] for order in orders]


def _ranks(orders: list[np.ndarray]) -> list[np.ndarray]:
    """Each slot's place among its row's occurrences (0 first), -1 where it holds none."""
    sent = [order >= 0 for order in orders]
    ranks = []
    for slot, order in enumerate(orders):
        rank = np.zeros(len(order), dtype=np.int64)
        for other, (before, was_sent) in enumerate(zip(orders, sent, strict=True)):
            if other != slot:
                rank += was_sent & (before < order)
        ranks.append(np.where(sent[slot], rank, -1))
    return ranks


#: One slot of a repeated key: name, slot, rank and value code per row, the codes' values.
_Decoded = tuple[str, int, np.ndarray, np.ndarray, list[Any]]


def _render(decoded: list[_Decoded], row: int) -> str:
    """The ``extra`` text of one row (an index into the repeated rows)."""
    sent: dict[str, list[tuple[int, Any]]] = {}
    for key, _, ranks, codes, dictionary in decoded:
        if ranks[row] >= 0:
            value = dictionary[codes[row]] if codes[row] >= 0 else None
            sent.setdefault(key, []).append((int(ranks[row]), value))
    duplicates = {
        k: [v for _, v in sorted(pairs, key=lambda pair: pair[0])]
        for k, pairs in sent.items()
        if len(pairs) > 1
    }
    return json.dumps({"__duplicates__": duplicates}, sort_keys=True, default=str)


def _each(picked: list[_Key], where: np.ndarray) -> list[str]:
    """Every repeated row rendered on its own (the slow way, for values too varied)."""
    decoded: list[_Decoded] = []
    rows = np.arange(len(where))
    for key, orders, values in picked:
        for slot, (rank, value) in enumerate(zip(_ranks(orders), values, strict=True)):
            decoded.append((key, slot, rank, rows, value.take(where).to_pylist()))
    return [_render(decoded, row) for row in range(len(where))]


def _spread(rendered: list[str], where: np.ndarray, codes: np.ndarray, rows: int) -> pa.Array:
    """Rendered texts placed on their rows (``codes`` pick one per row of ``where``)."""
    picks = np.full(rows, -1, dtype=np.int64)
    picks[where] = codes
    return pa.array(rendered, pa.string()).take(pa.array(picks, mask=picks < 0))
