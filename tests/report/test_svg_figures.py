"""The report's figures: inline SVG, marks titled with their hover texts, no script, same bytes.

The shipped cassettes' reports are checked whole; hand-made figures check that each hover text
lands on its own mark (points at NaN are not drawn, points out of the axes are, but clipped).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes

from cfanalytics.plots import set_tooltips
from cfanalytics.report import write_report
from cfanalytics.report._html import Section, figure, page

from ..conftest import CASSETTES

SHIPPED = ("demo", "troubled")
MARKUP = "<b onmouseover=alert(1)>Frankfurt</b> & co"
_REF = re.compile(r"url\(#([^)]+)\)")
_SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)


class _Elements(HTMLParser):
    """Every start tag with its attributes (names in lower case, as HTML has them), and the
    text of the ``<title>`` elements inside ``<svg>``."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.titles: list[str] = []
        self._in_svg = self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_svg |= tag == "svg"
        self._in_title = self._in_svg and tag == "title"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self._in_svg &= tag != "svg"
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.titles.append(data)


def elements(html: str) -> _Elements:
    """``html`` read as a browser's parser reads it."""
    found = _Elements()
    found.feed(html)
    found.close()
    return found


def ids_and_references(html: str) -> tuple[list[str], set[str]]:
    """Every id, and every id referred to (``href="#a"``, ``url(#a)``)."""
    ids, refs = [], set()
    for _, attrs in elements(html).tags:
        for key, value in attrs.items():
            if key == "id" and value:
                ids.append(value)
            elif key in ("href", "xlink:href") and value and value.startswith("#"):
                refs.add(value[1:])
            elif value:
                refs.update(_REF.findall(value))
    return ids, refs


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The shipped cassettes' reports, as written."""
    folder = tmp_path_factory.mktemp("reports")
    return {
        name: write_report(CASSETTES / f"{name}.yaml", folder / f"{name}.html").read_bytes()
        for name in SHIPPED
    }


@pytest.mark.parametrize("name", SHIPPED)
def test_every_figure_is_an_inline_svg_with_no_script(reports: dict[str, bytes], name: str) -> None:
    """Each <figure> holds an <svg> (scaled by CSS, named for assistive technology); there is
    no <script>, no <img> and no on* attribute anywhere, SVG included."""
    html = reports[name].decode()
    tags = elements(html).tags
    names = [tag for tag, _ in tags]
    assert names.count("figure") == names.count("svg") >= 10
    assert re.findall(r"<figure>(<\w+)", html) == ["<svg"] * names.count("figure")
    assert not {"script", "img", "image", "foreignobject", "iframe", "object"} & set(names)
    assert [k for _, attrs in tags for k in attrs if k.startswith("on")] == []
    for tag, attrs in tags:
        if tag == "svg":
            assert attrs["role"] == "img" and attrs["aria-label"] and attrs["viewbox"]
            assert "width" not in attrs and "height" not in attrs
    assert "<?xml" not in html and "DOCTYPE svg" not in html and "<metadata" not in html
    assert "<style" not in html.split("</head>", 1)[1]  # matplotlib's global rule is gone


@pytest.mark.parametrize("name", SHIPPED)
def test_ids_are_unique_in_the_page_and_every_reference_resolves(
    reports: dict[str, bytes], name: str
) -> None:
    """Several figures share one document: no id twice, and each figure refers only to its own
    definitions (a clip path of another figure would clip the wrong picture)."""
    html = reports[name].decode()
    ids, refs = ids_and_references(html)
    assert len(ids) == len(set(ids)) and refs <= set(ids)
    for svg in _SVG.findall(html):
        own, used = ids_and_references(svg)
        assert used and used <= set(own)


def test_same_source_same_bytes_in_another_zone_and_matplotlibrc(
    reports: dict[str, bytes], tmp_path: Path
) -> None:
    """The CLI in a fresh process, with another time zone and a matplotlibrc that changes the
    SVG writer's settings and the style, writes the very bytes of the in-process report."""
    rc = tmp_path / "matplotlibrc"
    rc.write_text(
        "svg.fonttype: none\nsvg.hashsalt: other\nsvg.id: mine\nfont.size: 20\n"
        "lines.linewidth: 5\nsavefig.facecolor: red\nsavefig.bbox: tight\n"
    )
    env = dict(os.environ, TZ="Pacific/Chatham", MATPLOTLIBRC=str(rc), SOURCE_DATE_EPOCH="0")
    out = tmp_path / "demo.html"
    command = [sys.executable, "-m", "cfanalytics", "report", str(CASSETTES / "demo.yaml")]
    subprocess.run([*command, "-o", str(out)], env=env, check=True, capture_output=True)
    assert out.read_bytes() == reports["demo"]


def _marks(ax: Axes) -> None:
    """A scatter with a NaN point (not drawn) and two far out of the axes (drawn, clipped: for
    matplotlib's one-path shortcut they would be two other marks at the edge of its clip box),
    one with a colour per point, a line, broken bars, bars, and a hexbin with no hover texts."""
    scatter = ax.scatter([1, np.nan, 3, -1e7, 1e7], [1, 2, 3, 4, 5])
    set_tooltips(scatter, ["a", "nan", "c", "far", MARKUP])
    set_tooltips(ax.scatter([1, 2], [1, 2], c=[1, 2]), ["e", "f"])
    set_tooltips(ax.plot([1, 2], [2, 1], marker="o")[0], ["line"])
    set_tooltips(ax.broken_barh([(1, 1), (2.5, 0.5)], (0, 1)), ["bb1", "bb2"])
    for bar, text in zip(ax.barh([1, 2], [2, 3]), ["bar1", "bar2"], strict=True):
        set_tooltips(bar, [text])
    ax.hexbin([1, 2, 3], [1, 2, 3], gridsize=3)
    set_tooltips(ax.scatter([], []), [])  # an empty selection: no mark, no text
    ax.set_xlim(0, 5)


def _svg_of(html: str) -> ET.Element:
    svg = _SVG.search(html)
    assert svg is not None
    return ET.fromstring(svg[0])


def _titled(root: ET.Element) -> Iterator[tuple[ET.Element, str]]:
    """Each element that has a title, with the title's text, in document order."""
    for element in root.iter():
        title = element.find("title")
        if title is not None:
            yield element, str(title.text)


def test_each_hover_text_is_the_title_of_its_own_mark() -> None:
    """One title per drawn mark, in drawing order; the NaN point has none, the point out of
    the axes keeps its own; single-mark artists (line, bar) titled on their group."""
    html = page("t", "lede", [Section("s", "S", [figure(_marks, caption="marks")])])
    titled = dict((text, element) for element, text in _titled(_svg_of(html)))
    expected = ["a", "c", "far", MARKUP, "e", "f", "bb1", "bb2", "bar1", "bar2", "line"]
    assert list(titled) == expected
    assert elements(html).titles == expected
    assert [titled[t].tag for t in ("a", "c", "far", MARKUP, "e", "f")] == ["use"] * 6
    assert [titled[t].tag for t in ("bb1", "bb2")] == ["path"] * 2
    assert titled["line"].tag == "g" and titled["bar1"].tag == "g"
    xs = [float(titled[t].attrib["x"]) for t in ("far", "a", "c", MARKUP)]
    width = float(_svg_of(html).attrib["viewBox"].split()[2])
    assert xs[0] < 0 < xs[1] < xs[2] < width * 1000 < xs[3]  # at -10 and +10 million


def test_a_point_a_log_scale_cannot_show_has_no_title() -> None:
    """On a log axis a point at y <= 0 is not drawn: the next point keeps its own text."""

    def draw(ax: Axes) -> None:
        set_tooltips(ax.scatter([1, 2, 3], [-1, 2, 3]), ["negative", "two", "three"])
        ax.set_yscale("log")

    titled = [text for _, text in _titled(_svg_of(figure(draw, caption="log")))]
    assert titled == ["two", "three"]


def test_markup_in_a_hover_text_or_caption_stays_text() -> None:
    """A location like ``<b onmouseover=...>`` is escaped: no <b> element, no on* attribute."""
    caption = f'"{MARKUP}" <script>'
    html = page("t", "lede", [Section("s", "S", [figure(_marks, caption=caption)])])
    found = elements(html)
    assert "b" not in [tag for tag, _ in found.tags] and "<script" not in html
    assert [k for _, attrs in found.tags for k in attrs if k.startswith("on")] == []
    assert MARKUP in found.titles
    assert [a["aria-label"] for t, a in found.tags if t == "svg"] == [caption]


@pytest.mark.parametrize(
    ("texts", "message"),
    [(["one", "two"], "but has 2 texts"), (["a", "b", "c", "d", "e"], "but has 5 texts")],
)
def test_hover_texts_that_do_not_match_the_marks_fail_loudly(
    texts: list[str], message: str
) -> None:
    """A collection of 4 points given 2 or 5 texts is an error, never a mislabelled figure."""
    with pytest.raises(ValueError, match=message):
        figure(
            lambda ax: set_tooltips(ax.scatter([1, 2, np.nan, 4], [1, 2, 3, 4]), texts), caption="x"
        )


def test_a_single_mark_with_several_texts_fails_loudly() -> None:
    """A line is one mark: two texts for it cannot both be its title."""
    with pytest.raises(ValueError, match="one mark but has 2"):
        figure(lambda ax: set_tooltips(ax.plot([1, 2])[0], ["a", "b"]), caption="x")


def test_the_same_figure_twice_in_a_page_keeps_its_ids_apart() -> None:
    """Two identical figures (two rollouts with nothing failed draw the same picture) get
    different ids, and each refers to its own."""
    shown = figure(_marks, caption="same")
    html = page("t", "lede", [Section("a", "A", [shown]), Section("b", "B", [shown])])
    ids, refs = ids_and_references(html)
    assert len(ids) == len(set(ids)) and refs <= set(ids)
    first, second = _SVG.findall(html)
    assert ids_and_references(first)[1].isdisjoint(ids_and_references(second)[1])
    assert first != second and first.replace('"f0-', '"f1-').replace("#f0-", "#f1-") == second


def test_a_figure_does_not_depend_on_the_time_or_the_callers_style() -> None:
    """Drawn twice, under another style and another SVG salt, the same text."""
    import matplotlib

    first = figure(_marks, caption="x")
    with matplotlib.rc_context({"svg.hashsalt": "other", "font.size": 30, "svg.fonttype": "none"}):
        second = figure(_marks, caption="x")
    assert first == second and "<text" not in first  # text as paths
