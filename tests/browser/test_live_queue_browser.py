"""``notebooks/live_queue.ipynb`` end to end, as a person uses it: Voila serves it, Chromium clicks.

The notebook runs the embedded simulator fast (``speed`` in its parameters cell), so a whole
rollout is queued, watched to its end and scrubbed through in about a minute. Every step waits
on what the page shows (Playwright's waits), never on the clock.

Why ``speed = 60`` and not faster: each poll of the live monitor costs about 2 s of real time
on a small machine (mostly redrawing the ETA plot, on the kernel's event loop), so at 600x
whole installs start and end between two polls and no progress bar can be seen moving. At 60x
polls come every couple of simulated minutes and the default scenario ends in about 25 s.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from tests.test_notebooks import parameters_cell, read

from .helpers import PageLog, screenshot, unavailable

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import Page, expect
except ImportError:
    unavailable("playwright is not installed: pip install -e '.[test]'")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "live_queue.ipynb"
#: Simulated seconds per real second (see the module's docstring for why not faster).
PARAMETERS: dict[str, object] = {"speed": 60.0}

FIRST_RENDER = 90_000  # ms: Voila starts a kernel and runs every cell before widgets show
STEP = 30_000  # ms: one click's answer from the simulator, through the kernel, to the page
ROLLOUT = 180_000  # ms: the whole rollout at PARAMETERS' speed, with room for a slow machine

# The job table's progress bars as {job id: value} (rows carry ``data-jobid``; their order changes).
PROGRESS_JS = """() => Object.fromEntries(
    Array.from(document.querySelectorAll('.cfa-job-table tr[data-jobid]')).map((row) => [
        row.dataset.jobid, row.querySelector('progress.cfa-job-progress')?.value ?? null]))"""
# Whether some job's bar is further along than in the sample ``before``.
MOVED_JS = f"""(before) => Object.entries(({PROGRESS_JS})()).some(
    ([job, value]) => value !== null && job in before && value > before[job])"""
FINISHED_JS = """() => /Finished/.test(
    document.querySelector('.cfa-monitor-status')?.textContent ?? '')"""
# Keeps every picture the ETA plot's <img> shows in window.cfaPlots: each redraw is a new src.
WATCH_PLOT_JS = """() => {
    window.cfaPlots = new Set();
    const note = () => {
        const src = document.querySelector('img.cfa-eta-plot')?.getAttribute('src');
        if (src) window.cfaPlots.add(src);
    };
    note();
    new MutationObserver(note).observe(document.body,
        {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}"""
# Whether the ETA plot shows a picture that loaded.
PLOT_LOADED_JS = """() => {
    const img = document.querySelector('img.cfa-eta-plot');
    return Boolean(img?.getAttribute('src')) && img.complete && img.naturalWidth > 0; }"""

# A forecast with its 80 % band, as the monitor writes it: "09:12:00 (09:10:30\u201309:15:00"
# (an en dash; "never" for no upper bound).
BAND = r"\d\d:\d\d:\d\d \(\d\d:\d\d:\d\d\u2013(?:\d\d:\d\d:\d\d|never)"
# Keeps every text the forecast line shows in window.cfaForecasts, and every job's band seen
# in the table in window.cfaJobBands: each redraw replaces the widget's HTML.
WATCH_FORECAST_JS = f"""() => {{
    window.cfaForecasts = [];
    window.cfaJobBands = new Set();
    const band = /^{BAND}/;
    const note = () => {{
        const text = document.querySelector('.cfa-forecast')?.textContent ?? '';
        if (text && window.cfaForecasts.at(-1) !== text) window.cfaForecasts.push(text);
        for (const cell of document.querySelectorAll('.cfa-job-table td.cfa-job-forecast')) {{
            if (band.test(cell.textContent)) window.cfaJobBands.add(cell.textContent);
        }}
    }};
    note();
    new MutationObserver(note).observe(document.body, {{subtree: true, childList: true}});
}}"""
# Whether the forecast line shows some share's band, or the rollout ended.
BAND_OR_FINISHED_JS = f"""() => /\\d+ % {BAND}/.test(
    document.querySelector('.cfa-forecast')?.textContent ?? '') || ({FINISHED_JS})()"""

# Whether the scrubber shows its last poll of more than the one listing made before queueing.
RELOADED_JS = """() => {
    const m = /Poll (\\d+) of (\\d+)/.exec(
        document.querySelector('.cfa-scrub-summary')?.textContent ?? '');
    return m !== null && m[1] === m[2] && Number(m[2]) > 2; }"""

# Console errors that are no fault of the widgets, or known and harmless: anything else fails.
KNOWN_CONSOLE = (
    # Voila's template links a font CDN; the page fixture blocks every host but loopback.
    "net::ERR_BLOCKED_BY_CLIENT",
)


def with_parameters(source: Path, folder: Path, parameters: dict[str, object]) -> Path:
    """A copy of ``source`` in ``folder``, parameters injected after its parameters cell.

    The same convention as papermill and ``tests/test_notebooks.py``: a new cell, tagged
    ``injected``, right after the one tagged ``parameters``, so it overrides the defaults.
    """
    notebook = read(source)
    lines = [f"{name} = {value!r}" for name, value in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["injected"]})
    notebook.cells.insert(parameters_cell(notebook) + 1, cell)
    target = folder / source.name
    nbformat.write(notebook, target)
    return target


def completed(summary: str) -> int:
    """Completed jobs in the scrubber's summary ("Poll 3 of 40: 12 completed, 3 running ...").

    States with no job are left out of the summary, so no "completed" means none.
    """
    assert re.match(r"Poll \d+ of \d+", summary), summary
    found = re.search(r"(\d+) completed", summary)
    return int(found.group(1)) if found else 0


@pytest.mark.timeout(300)
def test_queue_watch_and_scrub_a_rollout(
    voila: Callable[[Path], str],
    page: Page,
    page_log: PageLog,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    """Queue every job, watch them move to the end under a forecast finish with its band,
    scrub the replay: all from the browser."""
    url = voila(with_parameters(NOTEBOOK, tmp_path, PARAMETERS))
    page.goto(url)

    # 1. The queue panel renders, and lists the queueable jobs.
    panel = page.locator(".cfa-queue-panel")
    panel.wait_for(timeout=FIRST_RENDER)
    select_all = page.locator(".cfa-select-all")
    expect(select_all).to_be_enabled(timeout=STEP)
    jobs = [
        text.split("·")[0].strip()
        for text in page.locator(".cfa-job-select option").all_inner_texts()
    ]
    assert jobs and all(job.isdigit() for job in jobs), jobs
    found = re.search(r"ASID (\d+)", panel.inner_text())
    assert found, panel.inner_text()
    asid = found.group(1)

    page.evaluate(WATCH_PLOT_JS)
    page.evaluate(WATCH_FORECAST_JS)

    # 2. Select all, queue, and confirm a question that names the ASID and every job.
    select_all.click()
    queue = page.locator(".cfa-queue-button")
    expect(queue).to_have_text(f"Queue {len(jobs)} jobs", timeout=STEP)
    queue.click()
    confirm = page.locator(".cfa-confirm")
    expect(confirm).to_be_visible(timeout=STEP)
    expect(confirm).to_contain_text(f"on ASID {asid}")
    question = confirm.inner_text()
    assert [job for job in jobs if not re.search(rf"\b{job}\b", question)] == [], question
    page.locator(".cfa-confirm-button").click()
    expect(confirm).to_be_hidden(timeout=STEP)

    # 3. Each job's answer: queued, or the API's error for it.
    results = page.locator(".cfa-queue-results")
    expect(results).to_contain_text(f"of {len(jobs)} queued on ASID {asid}", timeout=STEP)
    rows = results.locator("tbody tr")
    expect(rows).to_have_count(len(jobs))
    answers = dict(
        zip(
            rows.locator("td:first-child").all_inner_texts(),
            rows.locator("td:last-child").all_inner_texts(),
            strict=True,
        )
    )
    assert sorted(answers) == sorted(jobs)
    assert all(a.startswith(("queued", "error")) for a in answers.values()), answers
    queued = sorted(job for job, answer in answers.items() if answer.startswith("queued"))
    assert queued, answers

    # 4. The live monitor: fleet counts, and one progress bar per queued job, moving.
    page.locator(".cfa-live-monitor").wait_for(timeout=STEP)
    expect(page.locator(".cfa-fleet-header")).to_contain_text(
        re.compile(rf"{len(queued)} jobs: \d+ \w+"), timeout=STEP
    )
    bars = page.locator(".cfa-job-table progress.cfa-job-progress")
    expect(bars).to_have_count(len(queued), timeout=STEP)
    assert {bar.get_attribute("max") for bar in bars.all()} == {"100"}
    samples = [page.evaluate(PROGRESS_JS)]
    assert sorted(samples[0]) == queued, samples[0]
    assert moved_or_ended(page, samples[-1]), f"no progress bar moved from {samples[-1]}"
    samples.append(page.evaluate(PROGRESS_JS))
    moved_or_ended(page, samples[-1])  # once more, unless the rollout ended first
    samples.append(page.evaluate(PROGRESS_JS))
    values = [v for sample in samples for v in sample.values() if v is not None]
    assert any(0 < v < 100 for v in values), samples  # seen part way, not only before and after

    # 5. The ETA plot: a picture that loaded.
    page.wait_for_function(PLOT_LOADED_JS, timeout=STEP)

    # 5b. The forecast finish with its band, mid-rollout: the picture people look at.
    page.wait_for_function(BAND_OR_FINISHED_JS, timeout=ROLLOUT)
    forecast = page.locator(".cfa-forecast").inner_text()
    assert re.search(rf"\d+ % {BAND}", forecast), f"rollout over before a band showed: {forecast}"
    assert "Forecast finish" in forecast
    window = page.viewport_size
    shot = screenshot(page, artifacts / "live_forecast_browser.png")
    if window is not None:  # the picture stretched the window to the page: as it was again
        page.set_viewport_size(window)
    print(f"forecast screenshot: {shot}")

    # 6. The rollout ends, every queued job with it; the plot was redrawn as the polls came in.
    status = page.locator(".cfa-monitor-status")
    expect(status).to_contain_text("every queued job ended", timeout=ROLLOUT)
    page.wait_for_function(PLOT_LOADED_JS, timeout=STEP)
    assert page.evaluate("() => window.cfaPlots.size") >= 2
    header = page.locator(".cfa-fleet-header").inner_text()
    assert "100 % done" in header, header
    assert_forecast_was_shown_and_updated(page)

    # 7. The replay scrubber reloads at the end; fewer jobs completed at the first poll.
    summary = page.locator(".cfa-scrub-summary")
    page.wait_for_function(RELOADED_JS, timeout=STEP)
    polls = int(re.findall(r"of (\d+)", summary.inner_text())[0])
    # The slider by keyboard, the way a person would (a reload makes a new slider: the old
    # one's End key would keep its first maximum), then the First and Last buttons.
    handle = page.locator(".cfa-time-slider .noUi-handle")
    handle.press("Home")
    expect(summary).to_contain_text(f"Poll 1 of {polls}", timeout=STEP)
    # The summary line and the snapshot table redraw one after the other: wait for the table.
    page.wait_for_function(TABLE_COMPLETED_JS, arg=completed(summary.inner_text()), timeout=STEP)
    at_first = completed(summary.inner_text()), snapshot_states(page)
    handle.press("ArrowRight")
    expect(summary).to_contain_text(f"Poll 2 of {polls}", timeout=STEP)
    handle.press("End")
    expect(summary).to_contain_text(f"Poll {polls} of {polls}", timeout=STEP)
    page.locator(".cfa-scrub-first").click()
    expect(summary).to_contain_text(f"Poll 1 of {polls}", timeout=STEP)
    page.locator(".cfa-scrub-last").click()
    expect(summary).to_contain_text(f"Poll {polls} of {polls}", timeout=STEP)
    at_last = completed(summary.inner_text()), snapshot_states(page)
    assert at_first[0] < at_last[0], (at_first, at_last)
    assert at_first[1].count("completed") < at_last[1].count("completed"), (at_first, at_last)
    assert len(at_last[1]) == len(queued), at_last

    # 8. Nothing went wrong along the way, and the page looks right.
    errors = [text for text in page.locator(".cfa-error").all_inner_texts() if text.strip()]
    assert errors == []
    text = page.locator("body").inner_text()
    assert "Traceback (most recent call last)" not in text
    assert "Loading widget" not in text
    assert page_log.page_errors == []
    unexpected = [e for e in page_log.console_errors if not any(k in e for k in KNOWN_CONSOLE)]
    assert unexpected == []
    path = screenshot(page, artifacts / "live_queue_browser.png")
    print(f"screenshot: {path}; requests blocked (not loopback): {page_log.blocked}")


def assert_forecast_was_shown_and_updated(page: Page) -> None:
    """The forecast line showed bands as of at least two polls, in time order; some running
    job's row showed its band; at the end, 50 % of the jobs are done."""
    shown: list[str] = page.evaluate("() => window.cfaForecasts")
    banded = [text for text in shown if re.search(rf"\d+ % {BAND}", text)]
    assert banded, shown
    polls = [re.findall(r"as of (\d\d:\d\d:\d\d)", text) for text in banded]
    times = [found[0] for found in polls if found]
    assert len(times) == len(banded) and len(set(times)) >= 2, banded
    assert times == sorted(times), times
    assert page.evaluate("() => window.cfaJobBands.size") > 0
    assert "50 % done at" in shown[-1], shown[-1]


def moved_or_ended(page: Page, before: dict[str, int | None]) -> bool:
    """Wait until a progress bar is further along than in ``before``, or the rollout ended.

    Returns whether one moved: a test of "it moves" that fails as soon as the rollout is over,
    not after the whole timeout.
    """
    page.wait_for_function(
        f"(before) => ({MOVED_JS})(before) || ({FINISHED_JS})()", arg=before, timeout=ROLLOUT
    )
    moved: bool = page.evaluate(MOVED_JS, before)
    return moved


#: Whether the scrubber's snapshot table lists as many jobs completed as the argument.
TABLE_COMPLETED_JS = """(expected) => [...document.querySelectorAll(
    '.cfa-snapshot tr[data-jobid] td:nth-child(4)')].filter(
    (td) => td.textContent.trim() === 'completed').length === expected"""


def snapshot_states(page: Page) -> list[str]:
    """The "state then" column of the scrubber's snapshot table, one entry per job."""
    return page.locator(".cfa-snapshot tr[data-jobid] td:nth-child(4)").all_inner_texts()
