"""HTML building blocks of the report: escaped text, tables, inline figures, the page.

Everything is inline (CSS, figures as SVG), so the file opens anywhere, with no network and no
script. Output depends only on its input: no timestamps, random ids or names.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib.style
import pandas as pd
from matplotlib.figure import Figure

from ..analysis import clock
from ._svg import number_figures, svg_figure

__all__ = [
    "MINUS",
    "NA",
    "SECONDS",
    "SIGNED_SECONDS",
    "Seconds",
    "Section",
    "duration",
    "figure",
    "page",
    "paragraph",
    "percent",
    "png",
    "table",
    "when",
    "when_in",
]

Formatter = Callable[[Any], str]
_LONG_TEXT = 40  # characters: a cell this long gets a column of some width

#: Shown for a missing value (an en dash), and the typographic minus sign.
NA, MINUS = "\u2013", "\u2212"

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;
margin:0 auto;max-width:1100px;padding:0 1.2em 3em}
h1{font-size:1.7em;margin:1em 0 .2em}h2{border-bottom:2px solid #0072B2;padding-bottom:.2em;
margin-top:2em}h3{margin-top:1.4em}
nav a{margin-right:1em}.lede{color:#555;margin-top:0}
.wide{overflow-x:auto;margin:.6em 0}table{border-collapse:collapse;font-size:.9em}
th,td{border-bottom:1px solid #ddd;padding:.25em .55em;text-align:left;vertical-align:top}
td.long{min-width:13em}
th{background:#f3f6f9}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.card{border:1px solid #d6dde4;border-radius:6px;padding:.6em .9em;min-width:11em;flex:1}
.card b{display:block;font-size:1.45em}.card span{color:#555;font-size:.85em}
figure{margin:1em 0}svg.plot{display:block;width:100%;height:auto}
svg.plot *{stroke-linejoin:round;stroke-linecap:butt}
figcaption{color:#555;font-size:.9em}details{margin:1em 0}summary{cursor:pointer}
code{background:#f3f3f3;padding:0 .25em;border-radius:3px;word-break:break-all}
.note{color:#555;font-size:.9em}
dl.terms{display:grid;grid-template-columns:max-content 1fr;gap:.25em 1.2em}
dl.terms dt{font-weight:600}dl.terms dd{margin:0}
@media print{nav{display:none}details{display:block}}
"""


def escape(value: object) -> str:
    """Text made safe for HTML."""
    return html.escape(str(value), quote=True)


def missing(value: Any) -> bool:
    """True for None, NA, NaT and NaN."""
    return value is None or bool(pd.isna(value)) if not isinstance(value, str) else False


def duration(seconds: Any, *, signed: bool = False) -> str:
    """Seconds as a short duration: ``45 s``, ``12.5 min``, ``3.2 h``; :data:`NA` if missing.

    Negative values get a minus sign; ``signed`` adds ``+`` to positive ones.
    """
    if missing(seconds):
        return NA
    value = float(seconds)
    sign = MINUS if value < 0 else "+" if signed and value > 0 else ""
    size = abs(value)
    if size < 90:
        return f"{sign}{size:.0f} s"
    if size < 5400:
        return f"{sign}{size / 60:.1f} min"
    return f"{sign}{size / 3600:.1f} h"


@dataclass(frozen=True)
class Seconds:
    """A table column of seconds, written in one unit for the whole column and named in its
    header ("run time (min)"): s, min or h, by the column's typical (median) size, as
    :func:`duration` picks one for a single value. Whole seconds; minutes and hours to one
    decimal. ``signed`` adds ``+`` to positive values."""

    signed: bool = False

    def unit(self, values: pd.Series) -> tuple[str, float]:
        """The unit of a column of ``values``, and seconds per unit."""
        sizes = pd.to_numeric(values, errors="coerce").abs().dropna()
        typical = float(sizes.median()) if len(sizes) else 0.0
        if typical < 90:
            return "s", 1.0
        return ("min", 60.0) if typical < 5400 else ("h", 3600.0)

    def cell(self, seconds: Any, per_unit: float) -> str:
        """One value in the column's unit, without the unit (the header has it)."""
        if missing(seconds):
            return NA
        value = float(seconds) / per_unit
        sign = MINUS if value < 0 else "+" if self.signed and value > 0 else ""
        return f"{sign}{abs(value):,.{0 if per_unit == 1 else 1}f}"


#: The column formats of durations, and of signed ones (an ETA's error).
SECONDS, SIGNED_SECONDS = Seconds(), Seconds(signed=True)


def percent(share: Any) -> str:
    """A share (0-1) as a percentage with no decimals."""
    return NA if missing(share) else f"{100 * float(share):.0f} %"


def when(moment: Any, tz: str = "UTC") -> str:
    """A timestamp to the second in the zone ``tz``, as :func:`~cfanalytics.analysis.clock`
    writes every time; :data:`NA` if missing."""
    return NA if missing(moment) else clock(moment, tz=tz)


def when_in(tz: str) -> Formatter:
    """:func:`when` in the zone ``tz``: a table column's format."""
    return lambda moment: when(moment, tz)


def _cell(value: Any, fmt: Formatter | Seconds | None) -> tuple[str, bool]:
    if isinstance(fmt, Seconds):  # table() gives these in their unit: never here
        raise TypeError("a Seconds column format needs its column's unit")
    if fmt is not None:
        return fmt(value), True
    if missing(value):
        return NA, False
    if isinstance(value, float):
        return f"{value:,.2f}", True
    return str(value), isinstance(value, int)


def table(
    frame: pd.DataFrame,
    formats: Mapping[str, Formatter | Seconds] | None = None,
    *,
    empty: str = "None.",
) -> str:
    """A frame as an HTML table; ``formats`` maps columns to formatters, or to
    :class:`Seconds` for a column of durations in one unit (numbers align right)."""
    if frame.empty:
        return paragraph(empty)
    given = formats or {}
    units = {c: f.unit(frame[c]) for c, f in given.items() if isinstance(f, Seconds) and c in frame}
    cellwise = {c: _in_unit(f, units[c][1]) if c in units else f for c, f in given.items()}
    head = "".join(
        f"<th>{escape(f'{c} ({units[c][0]})' if c in units else c)}</th>" for c in frame.columns
    )
    rows = []
    for record in frame.astype(object).itertuples(index=False):
        cells = (_cell(v, cellwise.get(c)) for c, v in zip(frame.columns, record, strict=True))
        rows.append("<tr>" + "".join(_td(text, numeric) for text, numeric in cells) + "</tr>")
    # In a box of its own that scrolls sideways: a wide table never widens the page.
    return (
        f"<div class=wide><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _td(text: str, numeric: bool) -> str:
    """One cell: numbers (and times) on one line, aligned right; a long text in a column wide
    enough to read it (else an error message wraps a word a line beside the timestamps)."""
    css = " class=num" if numeric else " class=long" if len(text) > _LONG_TEXT else ""
    return f"<td{css}>{escape(text)}</td>"


def _in_unit(column: Formatter | Seconds, per_unit: float) -> Formatter:
    if isinstance(column, Seconds):
        return lambda seconds: column.cell(seconds, per_unit)
    return column


def png(
    draw: Callable[..., object],
    *,
    size: tuple[float, float] = (9.0, 4.8),
    dpi: int = 110,
    ncols: int = 1,
) -> bytes:
    """Draw on a fresh Figure (never pyplot's global state) and return it as PNG bytes.

    ``draw`` gets ``ncols`` Axes side by side, as positional arguments.
    """
    # matplotlib's default style, whatever the user's matplotlibrc: the same source must give
    # the same bytes on every machine.
    with matplotlib.style.context("default"):
        fig = Figure(figsize=size, layout="constrained")
        draw(*[fig.add_subplot(1, ncols, i + 1) for i in range(ncols)])
    buffer = io.BytesIO()
    # No "Software" entry: the bytes then depend on the picture, not on the library version.
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def figure(
    draw: Callable[..., object],
    *,
    caption: str,
    size: tuple[float, float] = (9.0, 4.8),
    ncols: int = 1,
) -> str:
    """Draw on a fresh Figure (``ncols`` Axes side by side, given to ``draw``) and inline it
    as SVG with a caption; marks given hover texts (:func:`~cfanalytics.plots.set_tooltips`)
    show them. :func:`page` makes its ids unique in the page."""
    return (
        f"<figure>{svg_figure(draw, label=caption, size=size, ncols=ncols)}"
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def paragraph(text: str, *, css: str = "") -> str:
    """One escaped paragraph."""
    attribute = f' class="{css}"' if css else ""
    return f"<p{attribute}>{escape(text)}</p>"


def cards(items: Iterable[tuple[str, str, str]]) -> str:
    """Headline numbers: (value, label, explanation) each."""
    parts = (
        f"<div class='card'><b>{escape(v)}</b>{escape(label)}<br><span>{escape(why)}</span></div>"
        for v, label, why in items
    )
    return f"<div class='cards'>{''.join(parts)}</div>"


class Section:
    """One titled part of the report, with an anchor for the navigation bar."""

    def __init__(self, anchor: str, title: str, body: Iterable[str]):
        self.anchor, self.title, self.body = anchor, title, "\n".join(body)

    def html(self) -> str:
        """The section's HTML."""
        return f'<section id="{self.anchor}"><h2>{escape(self.title)}</h2>\n{self.body}</section>'


def page(title: str, lede: str, sections: Iterable[Section]) -> str:
    """The whole self-contained HTML document."""
    sections = list(sections)
    nav = " ".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in sections)
    body = number_figures("\n".join(s.html() for s in sections))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{escape(title)}</h1><p class='lede'>{escape(lede)}</p><nav>{nav}</nav>\n"
        f"{body}\n</body></html>\n"
    )
