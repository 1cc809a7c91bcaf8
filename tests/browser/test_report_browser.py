"""The HTML report of each shipped cassette as a reader sees it: Chromium at 1,400 px.

Nothing may stick out past the page's right edge (wide tables scroll in their own box; folded
tables are opened first), the
figures' marks carry their hover texts, and a full-page screenshot of each report is saved in
``test-artifacts/`` for people to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cfanalytics.report import write_report

from .helpers import PageLog, screenshot, unavailable

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import Page
except ImportError:
    unavailable("playwright is not installed: pip install -e '.[test]'")

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"

# Elements whose right edge is past the window's, unless a box that clips or scrolls them (an
# <svg>, a table's scroller) holds them: that box is then checked instead.
OVERFLOW_JS = """() => {
    const width = window.innerWidth;
    const clips = (e) => getComputedStyle(e).overflowX !== 'visible';
    const held = (e) => {
        for (let a = e.parentElement; a && a !== document.body; a = a.parentElement)
            if (clips(a)) return true;
        return false;
    };
    return Array.from(document.body.querySelectorAll('*'))
        .filter((e) => e.getBoundingClientRect().right > width + 0.5 && !held(e))
        .slice(0, 10)
        .map((e) => `${e.tagName} ${e.className} right=${e.getBoundingClientRect().right} `
            + (e.textContent || '').slice(0, 60));
}"""

# The first mark whose hover text a pointer at its centre would get (no other mark on top),
# scrolled into view: its centre and its text.
TOP_MARK_JS = """() => {
    const titled = (e) => {
        for (; e; e = e.parentElement)
            if (e.querySelector(':scope > title')) return e;
        return null;
    };
    const marks = Array.from(document.querySelectorAll('svg.plot title'), (t) => t.parentElement);
    for (const mark of marks.slice(0, 200)) {
        mark.scrollIntoView({block: 'center', inline: 'center'});
        const box = mark.getBoundingClientRect();
        const x = box.left + box.width / 2, y = box.top + box.height / 2;
        if (box.width > 0 && titled(document.elementFromPoint(x, y)) === mark)
            return {x, y, text: mark.querySelector(':scope > title').textContent};
    }
    return null;
}"""

# The hover text of what the pointer is over: the nearest hovered element with a <title>.
HOVERED_TITLE_JS = """() => {
    const hovered = Array.from(document.querySelectorAll(':hover')).reverse();
    const mark = hovered.find((e) => e.querySelector(':scope > title'));
    return mark ? mark.querySelector(':scope > title').textContent : null;
}"""


@pytest.mark.parametrize("cassette", ["demo", "troubled"])
def test_report_fits_the_page_and_its_marks_have_hover_texts(
    cassette: str, page: Page, page_log: PageLog, artifacts: Path, tmp_path: Path
) -> None:
    """At 1,400 px nothing overflows the page; every figure is an inline SVG whose marks have
    titles, and hovering one reaches its text; a screenshot of the whole report is saved."""
    report = write_report(CASSETTES / f"{cassette}.yaml", tmp_path / f"{cassette}.html")
    page.goto(report.as_uri())
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    shot = screenshot(page, artifacts / f"report_{cassette}.png")
    page.set_viewport_size({"width": 1400, "height": 1000})
    assert shot.stat().st_size > 0
    assert page.evaluate("document.documentElement.scrollWidth") <= page.evaluate("innerWidth")
    assert page.evaluate(OVERFLOW_JS) == []
    figures = page.locator("figure")
    assert figures.count() == page.locator("figure > svg.plot").count() > 4
    assert page.locator("script, img").count() == 0
    assert page.locator("svg.plot title").count() > 0, "no mark has a hover text"
    mark = page.evaluate(TOP_MARK_JS)
    assert mark is not None, "no titled mark can be pointed at"
    page.mouse.move(mark["x"], mark["y"])
    assert page.evaluate(HOVERED_TITLE_JS) == mark["text"] != ""
    assert page_log.page_errors == [] and page_log.console_errors == []
