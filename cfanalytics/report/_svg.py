"""The report's figures as inline SVG whose marks carry hover texts, with no script.

A plot function gives an artist its hover texts with :func:`~cfanalytics.plots.set_tooltips`;
here each text becomes an SVG ``<title>`` of the mark it describes, which browsers show on
hover. The SVG is trimmed for inlining in HTML: no XML declaration, metadata, comments or
global ``<style>``; only the ids something refers to, numbered in document order, so the same
figure always gives the same text and :func:`number_figures` can make every id of a page
unique.
"""

from __future__ import annotations

import io
import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from typing import cast

import matplotlib
import matplotlib.style
import numpy as np
from matplotlib.artist import Artist
from matplotlib.collections import Collection
from matplotlib.figure import Figure

from ..plots import tooltips

__all__ = ["number_figures", "svg_figure"]

# No date and no library version in the file: the bytes depend on the picture alone.
_METADATA: dict[str, str | None] = {"Date": None, "Creator": None}
_NS = re.compile(r"^\{[^}]*\}")
_URL = re.compile(r"url\(#([^)]+)\)")
_SVG_BLOCK = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
_MARKS = {"path", "use"}  # what matplotlib writes per drawn point or shape of a collection
_GID = "cfanalytics-tip-"


def svg_figure(
    draw: Callable[..., object], *, label: str, size: tuple[float, float], ncols: int = 1
) -> str:
    """Draw on a fresh Figure (``ncols`` Axes side by side, given to ``draw``) and return it as
    an ``<svg>`` element for an HTML page, its marks titled with their hover texts, ``label``
    its accessible name. It scales to its container's width."""
    # matplotlib's default style, whatever the user's matplotlibrc, also while saving. Text as
    # paths looks the same without the fonts; a fixed salt keeps matplotlib's hashed ids (then
    # renumbered) the same on every run.
    with (
        matplotlib.style.context("default"),
        matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "cfanalytics"}),
    ):
        fig = Figure(figsize=size, layout="constrained")
        draw(*[fig.add_subplot(1, ncols, i + 1) for i in range(ncols)])
        tipped = _give_ids(fig)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata=_METADATA)
    root = _local(ET.fromstring(buffer.getvalue()))
    _add_titles(root, tipped)
    _trim(root)
    _scope(root, "f")
    # No width or height: the page's CSS fits it to the column, the viewBox keeps its shape.
    root.attrib = {"viewBox": root.attrib["viewBox"], "class": "plot", "role": "img"}
    root.set("aria-label", label)
    return ET.tostring(root, encoding="unicode")


def number_figures(html: str) -> str:
    """``html`` with the ids of its n-th SVG figure prefixed ``f{n}-``: unique in the page."""
    count = itertools.count()

    def scoped(found: re.Match[str]) -> str:
        root = ET.fromstring(found[0])
        _scope(root, f"f{next(count)}-")
        return ET.tostring(root, encoding="unicode")

    return _SVG_BLOCK.sub(scoped, html)


def _give_ids(fig: Figure) -> dict[str, tuple[Artist, list[str]]]:
    """Every artist with hover texts gets an id, to find its element in the SVG."""
    found: dict[str, tuple[Artist, list[str]]] = {}
    seen: set[int] = set()
    for artist in fig.findobj(lambda a: tooltips(a) is not None):
        texts = tooltips(artist)
        if texts is not None and id(artist) not in seen:
            seen.add(id(artist))
            gid = f"{_GID}{len(found)}"
            artist.set_gid(gid)
            found[gid] = (artist, texts)
            if isinstance(artist, Collection):
                # More than one (empty) url turns off matplotlib's one-path shortcut, which
                # clips far-away points and so can drop or add marks: then each drawn mark is
                # one element, skipped only at a non-finite offset.
                artist.set_urls([None, None])
    return found


def _local(root: ET.Element) -> ET.Element:
    """Names without namespaces (HTML puts ``<svg>`` in its own), ``xlink:href`` as SVG 2's
    ``href``."""
    for element in root.iter():
        element.tag = _NS.sub("", element.tag)
        element.attrib = {_NS.sub("", k): v for k, v in element.attrib.items()}
    return root


def _add_titles(root: ET.Element, tipped: Mapping[str, tuple[Artist, list[str]]]) -> None:
    """A ``<title>`` in each mark of each artist that has hover texts."""
    elements = {e.get("id"): e for e in root.iter() if e.get("id", "").startswith(_GID)}
    for gid, (artist, texts) in tipped.items():
        element = elements.get(gid)
        if element is None:
            if artist.get_visible() and artist.axes is not None and artist.axes.get_visible():
                raise ValueError(f"{artist} has hover texts but is not in the SVG")
            continue
        if isinstance(artist, Collection):
            _title_each(element, artist, texts)
        elif len(texts) == 1:
            element.insert(0, _title(texts[0]))
        else:
            raise ValueError(f"{artist} draws one mark but has {len(texts)} hover texts")


def _title_each(group: ET.Element, collection: Collection, texts: list[str]) -> None:
    """One title per drawn point or shape: matplotlib skips those at non-finite offsets."""
    count, drawn = _drawn(collection)
    if len(texts) != count:
        raise ValueError(f"{collection} draws {count} marks but has {len(texts)} texts")
    if not count:
        return  # nothing to title (matplotlib 3.8 still writes an empty scatter's marker once)
    marks = list(_marks(group))
    if len(marks) != len(drawn):
        raise ValueError(f"{collection}: {len(marks)} marks in the SVG, {len(drawn)} expected")
    for mark, index in zip(marks, drawn, strict=True):
        mark.insert(0, _title(texts[index]))


def _drawn(collection: Collection) -> tuple[int, list[int]]:
    """How many marks ``collection`` has, and the indices of those drawn, in drawing order."""
    offsets = cast(np.ndarray, collection.get_offsets())  # masked, for a scatter
    if not len(offsets) or not collection.get_paths():
        return 0, []  # matplotlib draws nothing (an empty scatter, no polygons)
    count = max(len(collection.get_paths()), len(offsets))
    # As matplotlib does it: the non-affine part (a log scale) masks what a masked array cannot
    # show, masked is NaN, and a mark at a non-finite offset is not drawn.
    transform = collection.get_offset_transform()
    moved: np.ndarray = np.ma.filled(transform.transform_non_affine(offsets), np.nan)
    finite = np.isfinite(transform.get_affine().transform(moved)).all(axis=1)
    return count, [i for i in range(count) if finite[i % len(offsets)]]


def _marks(element: ET.Element) -> Iterator[ET.Element]:
    """The drawn ``<path>`` and ``<use>`` elements under ``element``, not its definitions."""
    for child in element:
        if child.tag in _MARKS:
            yield child
        elif child.tag != "defs":
            yield from _marks(child)


def _title(text: str) -> ET.Element:
    title = ET.Element("title")
    title.text = text  # ElementTree escapes it: markup in a text stays text
    return title


def _trim(root: ET.Element) -> None:
    """No metadata, no ``<style>`` (its ``*`` rule would style the whole page: the report's CSS
    carries it, scoped), no indentation, path data on one line."""
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag in ("metadata", "style"):
                parent.remove(child)
        if parent.tag != "title":
            parent.text = None if parent.text is None or not parent.text.strip() else parent.text
        parent.tail = None
        if "d" in parent.attrib:
            parent.set("d", " ".join(parent.attrib["d"].split()))
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag == "defs" and not len(child):
                parent.remove(child)
        _merge_clips(parent)


def _merge_clips(parent: ET.Element) -> None:
    """Neighbouring groups that only clip, by the same path, as one: matplotlib wraps each mark
    of a collection in a group of its own."""
    last: ET.Element | None = None
    for child in list(parent):
        clips = child.tag == "g" and list(child.attrib) == ["clip-path"]
        if clips and last is not None and last.attrib == child.attrib:
            last.extend(child)
            parent.remove(child)
        else:
            last = child if clips else None


def _scope(root: ET.Element, prefix: str) -> None:
    """Keep only the ids something refers to, renamed ``{prefix}0``, ``{prefix}1``... in
    document order, with every reference; a reference to no id is an error."""
    refers = {name for e in root.iter() for k, v in e.attrib.items() for name in _targets(k, v)}
    names: dict[str, str] = {}
    for element in root.iter():
        name = element.attrib.pop("id", None)
        if name in refers:
            if name in names:
                raise ValueError(f"the id {name!r} is used twice in one figure")
            names[name] = f"{prefix}{len(names)}"
            element.set("id", names[name])
    missing = refers - names.keys()
    if missing:
        raise ValueError(f"the figure refers to ids it does not have: {sorted(missing)}")
    for element in root.iter():
        for key, value in element.attrib.items():
            if key == "href" and value.startswith("#"):
                element.set(key, "#" + names[value[1:]])
            elif "url(#" in value:
                element.set(key, _URL.sub(lambda m: f"url(#{names[m[1]]})", value))


def _targets(key: str, value: str) -> list[str]:
    """The ids an attribute refers to: ``href="#a"``, ``clip-path="url(#a)"``."""
    if key == "href" and value.startswith("#"):
        return [value[1:]]
    return _URL.findall(value)
