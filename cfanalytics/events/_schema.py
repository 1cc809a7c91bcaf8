"""The events table: one schema, declared once, applied and checked in one place.

One row per job object in each install-status response (``endpoint="status"``), one row per
queue response, success or error envelope (``endpoint="queue"``), one row per image-status
response (``endpoint="image_status"``), and one row per failed, non-JSON or error response
with the job columns empty (``problem`` says what went wrong).

Timestamps are tz-aware UTC ``datetime64[us, UTC]``; ids and counts nullable ``Int64``;
flags nullable ``boolean``; fixed vocabularies categorical; repeated text (run ids, places,
machines, image paths, error messages) categorical too, its categories the distinct strings
present in sorted order, so it sorts, groups and prints as text would at a fraction of the
memory (:data:`LABEL`); the rest of the free text nullable ``string``.
``extra`` is a JSON object (as text) of everything the API sent that has no column:
unknown fields, plus ``"__invalid__"`` (values not readable as their documented type) and
``"__duplicates__"`` (every value of a key sent twice) when present.

Every table's columns are a :class:`Schema`: each column's dtype and what it means, declared
together once. Bump :data:`SCHEMA_VERSION` on any change of columns or dtypes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import pandas as pd

from ..client import JobState
from ..exceptions import SchemaError

__all__ = [
    "BOOL",
    "COLUMNS",
    "ENDPOINTS",
    "FLOAT",
    "INT",
    "KINDS",
    "LABEL",
    "PROBLEMS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "STATES",
    "TEXT",
    "TIME",
    "Schema",
    "as_stored",
    "category",
    "concat_events",
    "conform",
    "empty_events",
    "is_label",
    "labels",
    "validate",
]

SCHEMA_VERSION = 1

#: State names by ``jobstateid`` 1..7, the categories of ``state`` in id order: the client's
#: :class:`~cfanalytics.client.JobState` labels.
STATES = tuple(state.label for state in sorted(JobState))
ENDPOINTS = ("status", "queue", "image_status", "other")
KINDS = ("mirror", "machine")
#: What went wrong with a response, if anything.
PROBLEMS = ("http_status", "envelope", "format", "transport")

# The dtypes of every table cfanalytics returns, named once: events, summaries, analyses.
#: Timestamps: tz-aware UTC at microseconds (pandas 3 would otherwise pick the unit).
TIME = pd.DatetimeTZDtype(unit="us", tz="UTC")
#: Ids and counts.
INT = pd.Int64Dtype()
#: Small numbers with documented bounds (percent done, HTTP status codes): files keep them
#: as ``Int64`` like every other number (:func:`as_stored`).
_INT8 = pd.Int8Dtype()
_INT16 = pd.Int16Dtype()
#: Durations (seconds), shares and other measures.
FLOAT = pd.Float64Dtype()
#: Flags.
BOOL = pd.BooleanDtype()
#: Free text: Arrow-backed, pandas 3's default, named so pandas 2 (whose default keeps Python
#: objects) gives the same dtype and writes the same Arrow type.
TEXT = pd.StringDtype("pyarrow")
#: The dtype of a label's categories: the one pandas infers for Python strings (``str`` in
#: pandas 3, ``object`` before), which is also what Arrow dictionaries read back as.
_TEXT_INDEX = pd.Index(["text"]).dtype
#: Repeated text: an open vocabulary, categorical with the strings present as categories,
#: sorted. Its categories differ from frame to frame, so a column matches it by
#: :func:`is_label`, not by equality, and :func:`labels` builds one.
LABEL = pd.CategoricalDtype()
#: What pandas infers for values that are all text (or none at all).
_TEXTUAL = ("string", "empty")


def labels(values: object) -> pd.Categorical:
    """``values`` (strings and missing values, or a categorical of strings) as a :data:`LABEL`.

    Its categories are the strings present, sorted, as :func:`is_label` requires.
    """
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        present = pd.Categorical(values).remove_unused_categories()
        if present.categories.inferred_type in _TEXTUAL:
            ordered = present.categories.sort_values()
            return pd.Categorical.from_codes(
                present.reorder_categories(ordered).codes, dtype=_label_dtype(ordered)
            )
        values = pd.Series(values).astype(TEXT)
    codes, uniques = pd.factorize(pd.array(values, dtype=TEXT), sort=True)
    return pd.Categorical.from_codes(codes, dtype=_label_dtype(uniques), validate=False)


def _label_dtype(categories: Iterable[str]) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(pd.Index(list(categories), dtype=_TEXT_INDEX))


def is_label(dtype: object) -> bool:
    """Whether ``dtype`` is a :data:`LABEL`: unordered, string categories, sorted."""
    if not isinstance(dtype, pd.CategoricalDtype) or dtype.ordered:
        return False
    categories = dtype.categories
    return bool(categories.dtype == _TEXT_INDEX and categories.is_monotonic_increasing)


def as_stored(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its labels as text and its small numbers as ``Int64``: what files keep.

    Files hold labels as plain strings (Parquet dictionary-encodes them on its own) and
    every number as a 64-bit int, so files written before read the same, and every tool
    reads them as text and numbers.
    """
    stored = {
        name: TEXT if dtype is LABEL else INT
        for name, dtype in SCHEMA.items()
        if name in frame and (dtype is LABEL or dtype in (_INT8, _INT16))
    }
    return frame.astype(stored) if stored else frame


def category(values: tuple[str, ...], *, ordered: bool = False) -> pd.CategoricalDtype:
    """A fixed vocabulary as a categorical dtype, categories in the order given."""
    return pd.CategoricalDtype(list(values), ordered=ordered)


class Schema(Mapping[str, object]):
    """A table's columns in order, each with its dtype and its meaning, declared together.

    Built from ``{name: (dtype, meaning)}``. As a mapping it is ``{name: dtype}`` (read-only),
    what :func:`conform` and ``DataFrame.astype`` take; :attr:`meanings` says what each
    column holds, for people: ``help()`` of the functions returning the table and
    :func:`cfanalytics.analysis.describe` show both. Every column has a meaning.
    """

    __slots__ = ("_dtypes", "_meanings")

    def __init__(self, columns: Mapping[str, tuple[object, str]]) -> None:
        unsaid = [name for name, (_, meaning) in columns.items() if not meaning.strip()]
        if unsaid:
            raise ValueError(f"columns without a meaning: {unsaid}")
        self._dtypes = {name: dtype for name, (dtype, _) in columns.items()}
        self._meanings = {name: meaning for name, (_, meaning) in columns.items()}

    def __getitem__(self, name: str) -> object:
        return self._dtypes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dtypes)

    def __len__(self) -> int:
        return len(self._dtypes)

    def __contains__(self, name: object) -> bool:
        return name in self._dtypes

    def __repr__(self) -> str:
        return f"Schema({self._dtypes!r})"

    @property
    def meanings(self) -> Mapping[str, str]:
        """What each column holds, by name, in order."""
        return MappingProxyType(self._meanings)

    def entries(self, *names: str) -> dict[str, tuple[object, str]]:
        """``{name: (dtype, meaning)}`` of ``names`` (default: every column), in that order:
        what another table made of some of these columns is built from."""
        return {name: (self._dtypes[name], self._meanings[name]) for name in names or self}


#: Every column of the events table, its dtype and its meaning, in order.
SCHEMA = Schema(
    {
        "run_id": (LABEL, "the recording run that received the response"),
        "seq": (INT, "order of the response within its run, from 0"),
        "observed_at": (TIME, "when the response was received (as recorded, never replay time)"),
        "endpoint": (category(ENDPOINTS), "the request answered: status list, queue, image, other"),
        "http_status": (_INT16, "the response's HTTP status, three digits (RFC 9110)"),
        "problem": (
            category(PROBLEMS),
            "what went wrong: an HTTP error status, an error envelope, an unreadable body "
            "(format) or no response (transport); NA: nothing",
        ),
        "asid": (INT, "the ASID (the account's service id) the request was about"),
        "jobid": (INT, "the install job the row is about; NA: the row names no job"),
        "kind": (category(KINDS), "a machine job or a mirror job (from ``mirroring``)"),
        "jobstateid": (INT, "the job's state id, 1..7, as the API sent it"),
        "state": (category(STATES, ordered=True), "the name of the state id, in id order"),
        "jobprogress": (_INT8, "percent done, 0..100 (the client flags any other value)"),
        "jobcreated": (TIME, "when the job was created (the API's ``jobcreated``)"),
        "jobstart": (TIME, "when the install started (the API's ``jobstart``)"),
        "jobupdated": (TIME, "when the API last changed the job (its ``jobupdated``)"),
        "jobeta": (TIME, "when the API expected the job to complete, as of this response"),
        "install_at": (TIME, "the install time the status list gave (``install_at``)"),
        "jobfailed": (INT, "how often the job failed, as the API counts (0/1 from some)"),
        "joberror": (LABEL, "the job's error text, as the API wrote it"),
        "success": (BOOL, "the answer's success flag: false for an error envelope"),
        "error_code": (INT, "the error code of an error answer"),
        "error_message": (LABEL, "an error answer's message; for an unreadable body, what failed"),
        "mirroring": (BOOL, "the API's flag for a mirror job (``kind`` in a word)"),
        "restart": (BOOL, "the install's ``restart`` flag, as the API sent it"),
        "location": (LABEL, "the location of the job's machine, as the API names it"),
        "machine": (LABEL, "the machine the job installs on"),
        "mirror": (LABEL, "the mirror the job uses, as the API names it"),
        "imagepath": (LABEL, "the image's path, as the status list gave it"),
        "target_imageversionid": (INT, "the image version installed: with ``asid``, the rollout"),
        "versionmirrorid": (INT, "a queue answer's version mirror id"),
        "machinejobid": (INT, "a queue answer's machine job id"),
        "installs_squashed": (
            INT,
            "how many earlier installs a queue answer superseded (the ids, if listed, in extra)",
        ),
        "extra": (
            TEXT,
            "a JSON object of everything sent without a column, and values that were not "
            "readable (module docstring)",
        ),
    }
)
COLUMNS = tuple(SCHEMA)


def empty_events() -> pd.DataFrame:
    """An events table with no rows and every column typed."""
    return conform(pd.DataFrame({name: [] for name in COLUMNS}))


def _matches(column: pd.Series, dtype: object) -> bool:
    return is_label(column.dtype) if dtype is LABEL else column.dtype == dtype


def _cast(column: pd.Series, dtype: object) -> pd.Series:
    if _matches(column, dtype):
        return column
    if dtype is LABEL:
        return pd.Series(labels(column), index=column.index)
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pd.to_datetime(column, utc=True, format="ISO8601").astype(dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        return column.astype(TEXT).astype(dtype)
    if isinstance(dtype, pd.Int8Dtype | pd.Int16Dtype):  # pandas would wrap, silently
        numbers = column.astype(INT)
        info = np.iinfo(dtype.numpy_dtype)
        if ((numbers < info.min) | (numbers > info.max)).any():
            raise ValueError(f"values outside {info.min}..{info.max}")
        return numbers.astype(dtype)
    return column.astype(dtype)


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the schema: every column, in order, with its dtype; unknown columns are an error."""
    unknown = set(frame.columns) - set(COLUMNS)
    if unknown:
        raise SchemaError(f"columns not in the events schema: {sorted(unknown)}")
    frame = frame.reset_index(drop=True)  # align on position, whatever the index was
    out = {}
    for name, dtype in SCHEMA.items():
        column = frame[name] if name in frame else pd.Series(pd.NA, index=frame.index)
        try:
            out[name] = _cast(column, dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SchemaError(f"column {name!r} cannot be read as {dtype}: {exc}") from exc
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def concat_events(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat`` of event tables (a new index), labels as pandas 3 concatenates them on any
    pandas: one whose categories differ between tables comes out as text, which :func:`conform`
    makes a label again. pandas 2 would instead skip a table where it is all missing (and warn
    that pandas 3 does not)."""
    differ = [name for name, dtype in SCHEMA.items() if dtype is LABEL and _differ(frames, name)]
    if differ:
        frames = [f.astype({name: TEXT for name in differ if name in f}) for f in frames]
    return pd.concat(frames, ignore_index=True)


def _differ(frames: Sequence[pd.DataFrame], name: str) -> bool:
    dtypes = [f[name].dtype for f in frames if name in f]
    return any(dtype != dtypes[0] for dtype in dtypes[1:])


def validate(frame: pd.DataFrame) -> pd.DataFrame:
    """Check ``frame`` follows the schema exactly (columns, order, dtypes); return it.

    Label columns that came back as text or another categorical (``pd.concat`` of two
    event tables with different labels gives text) are made labels again, in a new frame.
    """
    if tuple(frame.columns) != COLUMNS:
        missing = [c for c in COLUMNS if c not in frame.columns]
        extra = [c for c in frame.columns if c not in SCHEMA]
        raise SchemaError(
            f"not an events table: missing {missing}, unexpected {extra}, or columns out of order"
        )
    relabel = [
        name
        for name, dtype in SCHEMA.items()
        if dtype is LABEL and not is_label(frame[name].dtype) and _textual(frame[name])
    ]
    if relabel:
        frame = frame.assign(**{name: labels(frame[name]) for name in relabel})
    wrong = {
        name: str(frame[name].dtype)
        for name, dtype in SCHEMA.items()
        if not _matches(frame[name], dtype)
    }
    if wrong:
        raise SchemaError(f"columns with the wrong dtype: {wrong}")
    return frame


def _textual(column: pd.Series) -> bool:
    """Whether ``column`` holds text (strings and missing values) in any dtype."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return dtype.categories.inferred_type in _TEXTUAL
    if isinstance(dtype, pd.StringDtype):
        return True
    return pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(column) in _TEXTUAL
