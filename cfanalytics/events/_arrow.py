"""The fastest reader of status bodies: pyarrow's JSON parser, a chunk of bodies at a time.

A chunk is taken only when every value already has a type its rule in the client's
:data:`~cfanalytics.client.STATUS_FIELDS` reads without judgement (:mod:`._arrowtypes`) and
nothing needs ``extra`` but repeated keys: no unknown field. A key sent twice in one job (the
documented ``restart``), which pyarrow refuses, is learned from pyarrow's error and the chunk
rewritten so that every occurrence is kept (:mod:`._dupkeys`). A chunk this reader declines, and
a body it cannot vouch for, go to the Python readers of :mod:`._fast`, which handle every
quirk. Tests hold all readers to the same rows.

Chunks of a few MB parse faster than one buffer of everything (less memory to map, and a
pyarrow error costs one chunk) and let one odd body send only its chunk to the slower readers.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pj

from ..client import STATUS_FIELDS
from ._arrowtypes import typed_values
from ._dupkeys import Rewriter, index_name, merge, repeated_key, value_name
from ._schema import TEXT

__all__ = ["ArrowRead", "arrow_values", "eligible", "read_bodies"]

_PREFIX = '{"installs": ['
#: Characters of bodies parsed at once.
_CHUNK = 4 << 20
#: Bodies with at most this many "{" (and no "[" below the job list) nest no deeper, which
#: matters because pyarrow's parser recurses without a limit (measured with pyarrow 26: 10,000
#: levels parse and 20,000 crash the process with an 8 MB stack; 2,000 and 4,000 with 1 MB).
#: A nested value it parses is of a type no rule takes: the chunk is declined.
_SHALLOW = 1000
#: pyarrow reports one repeated key at a time (a chunk is parsed again for each), and slots
#: double at most three times.
_TRIES = len(STATUS_FIELDS) + 4


@dataclass(frozen=True, slots=True)
class ArrowRead:
    """What pyarrow read of some bodies: typed columns, each row's body, and the rest."""

    values: dict[str, Any]  #: typed columns by name, ``extra`` included
    owner: np.ndarray  #: each row's body, as an index into the texts read
    declined: list[int]  #: the texts left to the exact readers


@dataclass(slots=True)
class _Chunk:
    """The parsed jobs of some bodies, field by field."""

    fields: dict[str, Any]
    owner: np.ndarray
    keys: int  #: how many of the rewriter's keys were rewritten in it
    bodies: list[int] = field(default_factory=list)


def eligible(text: str) -> bool:
    """Whether a body may go to pyarrow: one line holding a non-empty, shallow job list.

    Shallow: no array below the job list, and few "{" or none but those opening a job (a "["
    or "{" in a string counts too: that body only goes to the slower readers).
    """
    return (
        text.startswith(_PREFIX)
        and not text.startswith(_PREFIX + "]")
        and "\n" not in text
        and text.find("[", len(_PREFIX)) == -1
        and (text.count("{") <= _SHALLOW or _flat(text))
    )


def _flat(text: str) -> bool:
    """No "{" but those opening a job (the first, and each after "}," or "}, "): counting is
    C-speed; a brace in a string declines too, which only sends that body to the slower readers."""
    start = len(_PREFIX)
    jobs = 1 + text.count("},{", start) + text.count("}, {", start)
    return text.count("{", start) == jobs


def arrow_values(texts: Sequence[str]) -> tuple[dict[str, Any], np.ndarray] | None:
    """Typed values of every job of ``texts`` by field, and each row's body; None unless
    pyarrow read every one of them."""
    read = read_bodies(texts)
    return None if read.declined else (read.values, read.owner)


def read_bodies(texts: Sequence[str]) -> ArrowRead:
    """Read ``texts`` (each :func:`eligible`) chunk by chunk; see the module docstring."""
    rewriter = Rewriter()
    chunks: list[_Chunk] = []
    declined: list[int] = []
    for indices in _chunks(texts):
        chunk, refused = _parse(texts, indices, rewriter)
        declined += refused
        if chunk is not None:
            chunks.append(chunk)
    for chunk in chunks:
        _rename_plain(chunk, rewriter)
    values, owner, refused = _typed_chunks(chunks, rewriter)
    return ArrowRead(values, owner, sorted({*declined, *refused}))


def _chunks(texts: Sequence[str]) -> Iterator[list[int]]:
    indices: list[int] = []
    size = 0
    for i, text in enumerate(texts):
        indices.append(i)
        size += len(text)
        if size >= _CHUNK:
            yield indices
            indices, size = [], 0
    if indices:
        yield indices


def _parse(
    texts: Sequence[str], indices: list[int], rewriter: Rewriter
) -> tuple[_Chunk | None, list[int]]:
    """The chunk of bodies ``indices``, and the bodies declined."""
    for _ in range(_TRIES):
        kept = indices
        text = "\n".join(texts[i] for i in kept)
        if rewriter.keys:
            if not rewriter.fits(text):
                kept = [i for i in indices if rewriter.fits(texts[i])]
                text = "\n".join(texts[i] for i in kept)
            text = rewriter.rewrite(text)
        refused = sorted(set(indices) - set(kept))
        if not kept:
            return None, refused
        try:
            table = pj.read_json(io.BytesIO(text.encode()))
        except UnicodeEncodeError:  # a lone surrogate: the exact readers decide
            return None, indices
        except pa.ArrowException as exc:  # pyarrow refuses: learn the key, or decline
            key = repeated_key(str(exc))
            if key is None or not rewriter.learn(key):
                return None, indices
            continue  # rewrite the chunk with the key learned
        jobs = _jobs(table, len(kept))
        if jobs is None:
            return None, indices
        fields, lengths = jobs
        # "[ ]" is still an observation, one row without a job: the exact readers write it.
        refused += [i for i, n in zip(kept, lengths, strict=True) if n == 0]
        owner = np.repeat(np.asarray(kept, dtype=np.int64), lengths)
        listed = [i for i, n in zip(kept, lengths, strict=True) if n]
        return _Chunk(fields, owner, len(rewriter.keys), listed), refused
    return None, indices


def _jobs(table: pa.Table, lines: int) -> tuple[dict[str, Any], np.ndarray] | None:
    """The jobs' fields and each body's number of jobs; None unless one list per line."""
    if table.column_names != ["installs"] or table.num_rows != lines:
        return None  # a line pyarrow read as two objects ("{...} {...}", or a "\r" between)
    installs = table.column("installs")
    if not pa.types.is_list(installs.type) or not pa.types.is_struct(installs.type.value_type):
        return None
    if installs.null_count:
        return None
    jobs = [chunk.flatten() for chunk in installs.chunks]
    if any(job.null_count for job in jobs):
        return None  # a null in the list: not a job object
    kind = installs.type.value_type
    fields = {
        kind.field(i).name: pa.chunked_array([job.field(i) for job in jobs], kind.field(i).type)
        for i in range(kind.num_fields)
    }
    lengths = np.concatenate(
        [chunk.value_lengths().to_numpy(zero_copy_only=False) for chunk in installs.chunks]
    )
    return fields, lengths


def _rename_plain(chunk: _Chunk, rewriter: Rewriter) -> None:
    """A key learned after the chunk was read (so sent at most once per job in it) becomes
    its first slot, as if rewritten."""
    for k in range(chunk.keys, len(rewriter.keys)):
        value = chunk.fields.pop(rewriter.keys[k], None)
        if value is not None:
            chunk.fields[value_name(k, 0)] = value
            chunk.fields[index_name(k, 0)] = pa.chunked_array(
                [pa.array(np.zeros(len(value), np.int64))]
            )


def _typed_chunks(
    chunks: list[_Chunk], rewriter: Rewriter
) -> tuple[dict[str, Any], np.ndarray, list[int]]:
    """Typed values of all chunks at once; chunk by chunk when they disagree on a type or one
    needs judgement (its bodies are then declined)."""
    if not chunks:
        return {}, np.zeros(0, dtype=np.int64), []
    combined = _combined(chunks)
    rows = sum(len(c.owner) for c in chunks)
    values = None if combined is None else _typed(combined, rewriter, rows)
    if values is not None or len(chunks) == 1:
        if values is None:
            return {}, np.zeros(0, dtype=np.int64), chunks[0].bodies
        return values, np.concatenate([c.owner for c in chunks]), []
    parts: list[tuple[dict[str, Any], np.ndarray]] = []
    declined: list[int] = []
    for chunk in chunks:
        typed = _typed(chunk.fields, rewriter, len(chunk.owner))
        if typed is None:
            declined += chunk.bodies
        else:
            parts.append((typed, chunk.owner))
    if not parts:
        return {}, np.zeros(0, dtype=np.int64), declined
    values = {name: _concat([typed[name] for typed, _ in parts]) for name in parts[0][0]}
    return values, np.concatenate([owner for _, owner in parts]), declined


def _combined(chunks: list[_Chunk]) -> dict[str, pa.ChunkedArray] | None:
    """Every field over all chunks; None when chunks read a field as different types."""
    names = dict.fromkeys(name for chunk in chunks for name in chunk.fields)
    combined = {}
    for name in names:
        kinds = {c.fields[name].type for c in chunks if name in c.fields} - {pa.null()}
        if len(kinds) > 1:
            return None
        kind = kinds.pop() if kinds else pa.null()
        parts = [c.fields.get(name, pa.nulls(len(c.owner), kind)) for c in chunks]
        parts = [part if part.type == kind else part.cast(kind) for part in parts]
        combined[name] = pa.chunked_array(
            [piece for part in parts for piece in getattr(part, "chunks", [part])], kind
        )
    return combined


def _typed(fields: dict[str, Any], rewriter: Rewriter, rows: int) -> dict[str, Any] | None:
    """Typed values of the ``rows`` jobs of ``fields``, repeated keys merged back; None to
    decline."""
    try:
        return _typed_or_raise(dict(fields), rewriter, rows)
    except (pa.ArrowException, OverflowError):
        return None  # e.g. a digit string too long for int64: the exact readers decide


def _typed_or_raise(fields: dict[str, Any], rewriter: Rewriter, rows: int) -> dict[str, Any] | None:
    extra = None
    if rewriter.keys:
        extra = merge(fields, rewriter.keys, rewriter.slots, rows)
        if extra is None:
            return None
    if not fields.keys() <= STATUS_FIELDS.keys() or "jobid" not in fields:
        return None  # unknown fields belong in extra: the Python reader keeps them
    values = typed_values(fields, rows)
    if values is not None:
        values["extra"] = pd.array(
            pa.nulls(rows, pa.string()) if extra is None else extra, dtype=TEXT
        )
    return values


def _concat(arrays: list[Any]) -> Any:
    return pd.concat([pd.Series(a, copy=False) for a in arrays], ignore_index=True).array
