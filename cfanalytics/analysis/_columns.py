"""What the columns of every table mean, shown where analysts look: ``help()`` and
:func:`describe`.

Each table's columns are declared once, as a :class:`~cfanalytics.events.Schema` of
``{name: (dtype, meaning)}``. A function returning the table says so with :func:`returns`,
which renders the columns into its docstring from that one declaration. A name in angle
brackets (``<by>``) stands for the columns an argument names: none, one or several.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from itertools import zip_longest
from typing import Any, TypeVar, cast

import pandas as pd

from ..events import LABEL, TEXT, Schema

__all__ = ["describe", "dtype_name", "returns"]

_Function = TypeVar("_Function", bound=Callable[..., Any])

#: Said under a table with columns named by arguments.
_ARGUMENTS = "A name in angle brackets stands for the columns the argument of that name gives"
#: The widest a docstring's line gets, and at most its table's dtype column.
_WIDTH, _DTYPE_WIDTH = 92, 22


def dtype_name(dtype: object) -> str:
    """``dtype`` as people read it: ``Int64``, ``datetime64[us, UTC]``, a fixed vocabulary's
    categories (``<`` between them when ordered); a label as ``category (text)``."""
    if dtype is LABEL:
        return "category (text)"
    if isinstance(dtype, pd.CategoricalDtype):
        between = " < " if dtype.ordered else ", "
        return f"category ({between.join(map(str, dtype.categories))})"
    return str(dtype)


def returns(schema: Schema, *, note: str = "") -> Callable[[_Function], _Function]:
    """Document that the decorated function returns a table of ``schema``: its docstring
    ends with the columns (name, dtype, meaning) and ``note`` (which columns come from the
    arguments, say), and ``function.schema`` is ``schema``, what :func:`describe` shows."""

    def decorate(function: _Function) -> _Function:
        said = inspect.cleandoc(function.__doc__ or "")
        function.__doc__ = f"{said}\n\n{_columns_block(schema, note)}".lstrip()
        cast(Any, function).schema = schema
        return function

    return decorate


def _columns_block(schema: Schema, note: str) -> str:
    """The "Columns" section of a docstring: ``note``, then an rST simple table."""
    name_width = max(len(name) for name in schema)
    dtype_width = min(max(len(dtype_name(dtype)) for dtype in schema.values()), _DTYPE_WIDTH)
    meaning_width = _WIDTH - name_width - dtype_width - 4
    widths = (name_width, dtype_width)
    rule = "  ".join("=" * width for width in (*widths, meaning_width))
    arguments = ", ".join(f"``{name}``" for name in schema if name.startswith("<"))
    if arguments:
        note = f"{note} {_ARGUMENTS}: {arguments}.".strip()
    lines = ["Columns", "-------", *textwrap.wrap(note, _WIDTH), *([""] if note else [])]
    lines += [rule, _row(("name", "dtype", "meaning"), widths), rule]
    for name, dtype in schema.items():
        dtypes = _wrap(dtype_name(dtype), dtype_width)
        meanings = _wrap(schema.meanings[name], meaning_width)
        lines += [_row(cells, widths) for cells in zip_longest([name], dtypes, meanings)]
    return "\n".join([*lines, rule])


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False)


def _row(cells: tuple[str | None, ...], widths: tuple[int, int]) -> str:
    """One line of the table: a row, or its continuation (no name)."""
    name, dtype, meaning = (cell or "" for cell in cells)
    return f"{name:<{widths[0]}}  {dtype:<{widths[1]}}  {meaning}".rstrip()


# What describe returns: a table of columns, itself documented so.
_DESCRIPTION = Schema(
    {
        "name": (TEXT, "the column's name"),
        "dtype": (TEXT, "its dtype, as dtype_name writes it"),
        "meaning": (TEXT, "what it holds"),
    }
)


@returns(_DESCRIPTION)
def describe(table: Schema | Callable[..., Any]) -> pd.DataFrame:
    """The columns of ``table`` (a schema, or a function returning a table: ``eta_errors``),
    one row each, in order: ``name``, ``dtype`` (:func:`dtype_name`) and ``meaning``.

    ``describe(cf.eta_errors)`` in a notebook; ``help(cf.eta_errors)`` shows the same.
    """
    schema = table if isinstance(table, Schema) else getattr(table, "schema", None)
    if not isinstance(schema, Schema):
        raise TypeError(f"{table!r} is neither a Schema nor a function documenting its columns")
    values = (list(schema), map(dtype_name, schema.values()), schema.meanings.values())
    columns = zip(_DESCRIPTION.items(), values, strict=True)
    return pd.DataFrame({name: pd.array(list(v), dtype=dtype) for (name, dtype), v in columns})
