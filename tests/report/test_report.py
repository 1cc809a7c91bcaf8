"""The HTML report: self-contained, reproducible to the byte, honest about its source."""

from __future__ import annotations

import hashlib
import re
import shutil
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from cfanalytics import (
    EventLog,
    ReportError,
    RolloutError,
    events_from_cassette,
    job_summary,
    rollout_metrics,
)
from cfanalytics.cli import main
from cfanalytics.events import empty_events, rollout_events, rollouts
from cfanalytics.report import build_report, write_report
from cfanalytics.report._provenance import load_with_provenance

from ..analysis.test_summary import FAILED, Recording, at, job, running

CASSETTES = Path(__file__).parents[2] / "cassettes"
DEMO = CASSETTES / "demo.yaml"


class _Page(HTMLParser):
    """Collects what a browser would fetch, the section ids and the visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched: list[str] = []
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        self.fetched += [v for k, v in found.items() if k in ("src", "href") and v]
        if found.get("id"):
            self.ids.append(str(found["id"]))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Page:
    """The report parsed as a browser would read it."""
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo cassette's report."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    return write_report(DEMO, out).read_text(encoding="utf-8")


def test_same_source_same_bytes(tmp_path: Path) -> None:
    """Two runs, from copies in different folders, write identical files."""
    copy = tmp_path / "elsewhere" / "demo.yaml"
    copy.parent.mkdir()
    shutil.copyfile(DEMO, copy)
    first = write_report(DEMO, tmp_path / "one.html").read_bytes()
    second = write_report(copy, tmp_path / "two.html").read_bytes()
    assert first == second


def test_nothing_is_fetched_to_view_it(demo_report: str) -> None:
    """Every figure is inline SVG; no script, stylesheet link, image or remote address."""
    page = parse(demo_report)
    assert page.fetched, "the report should link its sections"
    for address in page.fetched:
        assert address.startswith("#"), address[:60]
    assert not {"script", "link", "img"} & set(page.tags)
    assert not re.search(r"url\((?!#)|@import|https?://", demo_report)
    assert page.tags.count("svg") == page.tags.count("figure") >= 4


def test_sections_answer_the_questions(demo_report: str) -> None:
    """Headline, fleet, accuracy, where, failures, jobs, method and provenance are all there."""
    ids = parse(demo_report).ids
    sections = ("headline", "refusals", "fleet", "accuracy", "where", "failures", "jobs")
    for section in (*sections, "provenance"):
        assert section in ids


def test_headline_numbers_are_the_metrics(demo_report: str) -> None:
    """The cards show what rollout_metrics computes."""
    m = rollout_metrics(events_from_cassette(DEMO))
    text = " ".join(parse(demo_report).text)
    assert f"{m['completed']} / {m['failed']} / {m['unfinished']}" in text
    assert f"{100 * m['hit_rate']:.0f} %" in text
    assert f"{m['skill']:.2f}" in text


def test_provenance_names_the_source_and_its_hash(demo_report: str) -> None:
    """Version, file name, SHA-256, API host, ASID and time span."""
    text = " ".join(parse(demo_report).text)
    assert hashlib.sha256(DEMO.read_bytes()).hexdigest() in text
    assert "demo.yaml (cassette)" in text and "127.0.0.1:8086" in text
    assert "2026-11-02 09:00:00 UTC" in text
    assert str(CASSETTES) not in demo_report  # no absolute path: same bytes anywhere


def test_queue_refusals_come_first_with_what_to_do(tmp_path: Path) -> None:
    """The troubled cassette's second rollout: every job refused for diff 218599, said in the
    headline and in its own section with the remedy; the demo says none was refused."""
    troubled = write_report(CASSETTES / "troubled.yaml", tmp_path / "t.html")
    text = " ".join(parse(troubled.read_text(encoding="utf-8")).text)
    said = "24 of 24 jobs were refused at queue time (24 image locked by diff 218599)"
    assert text.count(said) == 3  # the headline's answer, its section's lead, the failures'
    assert text.index(said) < text.index("No install failed")
    assert "reject or finish diff 218599, then queue the jobs again" in text
    assert "; 24 refused at queue time" in text
    demo = write_report(DEMO, tmp_path / "d.html").read_text(encoding="utf-8")
    assert "The API queued every job it was asked to" in " ".join(parse(demo).text)


def test_stragglers_come_latest_first_and_jobs_show_machine_and_error() -> None:
    from cfanalytics.report._data import analyse
    from cfanalytics.report._sections import jobs, stragglers

    data = analyse(events_from_cassette(DEMO))
    overdue = data.stragglers.dropna(subset=["late_s"])
    assert overdue["late_s"].nunique() > 2
    body = stragglers(data).body
    assert "<th>late by (" in body and "most overdue" not in body
    keys = ["late_s", "longest_stall_polls"]
    worst = overdue.sort_values(keys, ascending=False, kind="stable")["jobid"]
    at = [body.index(f"<td class=num>{jobid}</td>") for jobid in worst]
    assert at == sorted(at)
    table = jobs(data).body
    assert "<th>machine</th>" in table and "<th>error</th>" in table


def test_failures_are_listed_with_their_error(demo_report: str) -> None:
    """Each failed job appears with its error text."""
    failed = job_summary(events_from_cassette(DEMO)).query("outcome == 'failed'")
    assert len(failed) > 0
    for row in failed.itertuples():
        assert str(row.jobid) in demo_report and str(row.error) in demo_report


def test_an_event_log_folder_is_a_source(tmp_path: Path) -> None:
    """A report from an event log hashes the folder and says the host was not recorded."""
    events = events_from_cassette(DEMO)
    with EventLog(tmp_path / "log", run_id="r1") as log:
        log.append(events.drop(columns="run_id").assign(run_id="r1").to_dict("records"))
    _, provenance = load_with_provenance(tmp_path / "log")
    assert provenance.kind == "event log" and provenance.api_host is None
    assert len(provenance.sha256) == 64
    text = write_report(tmp_path / "log", tmp_path / "r.html").read_text()
    assert "not recorded" in text


def test_hostile_text_is_escaped() -> None:
    """Error text from the API is shown as text, never as markup."""
    rec = Recording()
    rec.poll(0, running(1, jobprogress=10, jobeta=at(5)))
    rec.poll(1, job(1, FAILED, joberror="<script>alert('x')</script> & disk"))
    rec.poll(2)
    _, provenance = load_with_provenance(DEMO)
    html = build_report(rec.events(), provenance)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; disk" in html


def test_no_jobs_is_an_error_not_an_empty_report() -> None:
    """A recording with no install job in it says so, as a ReportError."""
    _, provenance = load_with_provenance(DEMO)
    with pytest.raises(ReportError, match="no install job"):
        build_report(empty_events(), provenance)


def test_the_report_never_overwrites_its_source(tmp_path: Path) -> None:
    """``-o`` naming the cassette itself, or a file inside an event log, is refused."""
    copy = tmp_path / "d.yaml"
    shutil.copyfile(DEMO, copy)
    with pytest.raises(ReportError, match="over its source"):
        write_report(copy, tmp_path / "." / "d.yaml")
    assert copy.read_bytes() == DEMO.read_bytes()
    with pytest.raises(ReportError, match="over its source"):
        write_report(tmp_path, tmp_path / "r.html")


def test_the_same_bytes_whatever_the_users_matplotlib_style(tmp_path: Path) -> None:
    """A matplotlibrc with other fonts or sizes does not change the report."""
    import matplotlib

    first = write_report(DEMO, tmp_path / "one.html").read_bytes()
    with matplotlib.rc_context({"font.size": 20, "lines.linewidth": 5}):
        second = write_report(DEMO, tmp_path / "two.html").read_bytes()
    assert first == second


def test_failures_show_when_each_failed(demo_report: str) -> None:
    """The failure time is ``failed_at``, not the last time the job was listed."""
    summary = job_summary(events_from_cassette(DEMO))
    failed = summary.query("outcome == 'failed'")
    assert failed["failed_at"].notna().all()
    for moment in failed["failed_at"]:
        assert moment.strftime("%Y-%m-%d %H:%M:%S UTC") in demo_report


def test_the_api_host_never_carries_credentials() -> None:
    """A base URL with user:password@ shows only host and port."""
    from cfanalytics.report._provenance import _host

    assert _host("https://user:secret@api.example.com:8443/x") == "api.example.com:8443"
    assert _host("https://api.multiplay.co.uk") == "api.multiplay.co.uk"
    assert _host(None) is None


def test_cli_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``cfanalytics report SOURCE -o FILE`` writes it and prints its path."""
    out = tmp_path / "r.html"
    assert main(["report", str(DEMO), "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_a_report_of_some_jobs_and_its_title(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--location and --kind keep those jobs, each analysed as if watched alone (the same job
    summary rows as the whole recording's), stated under the --title; a location that no job
    has is one line naming those there are."""
    from cfanalytics.analysis import select_jobs

    out = tmp_path / "r.html"
    argv = ["report", str(DEMO), "-o", str(out), "--location", "Frankfurt,London"]
    assert main([*argv, "--kind", "machine", "--title", "Two <cities>"]) == 0
    html = out.read_text(encoding="utf-8")
    whole = job_summary(events_from_cassette(DEMO))
    chosen = whole.query("location in ['Frankfurt', 'London'] and kind == 'machine'")
    assert "<h1>Two &lt;cities&gt;</h1>" in html
    assert f"{len(chosen)} install jobs of rollout" in html
    assert "(only location Frankfurt, London; kind machine)" in html
    alone = job_summary(select_jobs(events_from_cassette(DEMO), location=["Frankfurt", "London"]))
    mine = whole.query("location in ['Frankfurt', 'London']").reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, mine)
    capsys.readouterr()
    assert main(["report", str(DEMO), "-o", str(out), "--location", "Paris"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no job has location Paris; found: Ashburn" in err


def test_a_report_of_the_rollouts_of_some_weeks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since and --until keep the rollouts first seen in the window, the rule `rollouts`
    uses; a window with none names when the source's rollouts started."""
    weeks = CASSETTES / "history"
    out = tmp_path / "weeks.html"
    window = ["--since", "2026-11-09", "--until", "2026-11-23"]
    assert main(["report", str(weeks), "-o", str(out), *window]) == 0
    assert "48 install jobs in 2 rollouts" in out.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["report", str(weeks), "-o", str(out), "--since", "2027-01-01"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no rollout was first seen between 2027-01-01" in err
    assert "2026-11-02 09:00, " in err  # the earliest first


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing source or an unwritable output: exit 2, one readable line, nothing left."""
    assert main(["report", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["report", str(DEMO), "-o", str(blocker / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cfanalytics: error: cannot write report") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_folder_of_two_recordings_reports_each_rollout_apart(tmp_path: Path) -> None:
    """Two runs recorded into one event log folder: an overview, then each rollout on its own
    with the numbers it has alone; nothing of one is counted in the other."""
    folder = tmp_path / "log"
    for name in ("demo", "troubled"):
        events = events_from_cassette(CASSETTES / f"{name}.yaml")
        with EventLog(folder, run_id=name) as log:
            log.append(events.drop(columns="run_id").assign(run_id=name).to_dict("records"))
    page = parse(write_report(folder, tmp_path / "r.html").read_text(encoding="utf-8"))
    text = " ".join(page.text)
    demo = events_from_cassette(DEMO)
    (rollout,) = rollouts(demo)
    slug = rollout.replace("/", "-")
    assert "rollouts" in page.ids and f"{slug}-headline" in page.ids
    assert len([i for i in page.ids if i.endswith("-headline")]) == 3
    total = sum(
        len(job_summary(events_from_cassette(CASSETTES / f"{n}.yaml")))
        for n in ("demo", "troubled")
    )
    assert f"{total} install jobs in 3 rollouts" in text
    alone = parse(write_report(DEMO, tmp_path / "demo.html").read_text(encoding="utf-8"))
    assert "rollouts" not in alone.ids and f"of rollout {rollout}" in " ".join(alone.text)
    one = write_report(folder, tmp_path / "one.html", rollout=rollout).read_text(encoding="utf-8")
    assert f"of rollout {rollout}" in one and "rollouts" not in parse(one).ids
    with pytest.raises(RolloutError, match=rollout):
        write_report(folder, tmp_path / "none.html", rollout="9/9")


_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z]{3,4}")


def test_tz_shows_every_time_in_that_zone_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--tz ZONE: every time shown is the UTC report's time in that zone, the zone is stated
    under the title, and an unknown zone is one line naming how to write one."""
    utc, berlin = tmp_path / "utc.html", tmp_path / "berlin.html"
    assert main(["report", str(DEMO), "-o", str(utc)]) == 0
    assert main(["report", str(DEMO), "-o", str(berlin), "--tz", "Europe/Berlin"]) == 0
    shown = {name: _STAMP.findall(path.read_text()) for name, path in [("utc", utc), ("b", berlin)]}
    assert len(shown["utc"]) > 10 and all(s.endswith(" UTC") for s in shown["utc"])
    moved = [
        f"{pd.Timestamp(s[:-4], tz='UTC').tz_convert('Europe/Berlin'):%Y-%m-%d %H:%M:%S %Z}"
        for s in shown["utc"]
    ]
    assert shown["b"] == moved and "Times in Europe/Berlin." in berlin.read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:  # a usage error, as argparse reports them
        main(["report", str(DEMO), "-o", str(utc), "--tz", "Mars/Base"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown time zone 'Mars/Base'" in err
    with pytest.raises(ReportError, match="unknown time zone"):
        build_report(events_from_cassette(DEMO), load_with_provenance(DEMO)[1], tz="CEST+1")


def test_the_readme_and_the_method_section_use_the_words_the_code_defines() -> None:
    """Every state and outcome, and the constants of lateness and stalls, appear in the
    README's Words with the numbers the code has, and in the report's Method section."""
    from cfanalytics.analysis import LATE_GRACE_S, OUTCOME_MEANINGS, STALLED_POLLS, STATE_MEANINGS
    from cfanalytics.report._data import analyse
    from cfanalytics.report._sections import method

    readme = (CASSETTES.parent / "README.md").read_text(encoding="utf-8")
    words = readme[readme.index("**Words**") : readme.index("**The notebook**")]
    for name in [*STATE_MEANINGS, *OUTCOME_MEANINGS]:
        assert re.search(rf"\b{name}\b", words), name
    assert f"`LATE_GRACE_S` ({LATE_GRACE_S:.0f} s)" in words
    assert f"`STALLED_POLLS` ({STALLED_POLLS})" in words
    body = method(analyse(events_from_cassette(DEMO))).body
    for name, meaning in {**STATE_MEANINGS, **OUTCOME_MEANINGS}.items():
        assert f"<dt>{name} (" in body and escape(meaning) in body


def test_a_rollout_refused_whole_reads_plainly() -> None:
    """Every job refused at queue time: the headline says none was queued and none completed
    (no "50 % of the 0 jobs"), and the reasons table names each column once."""
    from cfanalytics.report._data import analyse
    from cfanalytics.report._sections import headline, refusals

    events = rollout_events(events_from_cassette(CASSETTES / "troubled.yaml"), "1/845606")
    data = analyse(events)
    assert data.metrics["n_queued"] == 0 and len(data.refusals) == len(data.summary)
    top = " ".join(parse(headline(data).html()).text)
    assert "no job was queued" in top and "of the 0 jobs" not in top
    assert f"None of the {len(data.summary)} jobs completed" in top
    heads = re.findall(r"<th>([^<]*)</th>", refusals(data).body)
    assert heads.count("reason") == 1


def test_the_forecast_section_scores_the_three_predictors() -> None:
    """The report's Forecast section: the backtest at up to BACKTEST_POLLS polls, the three
    predictors' errors as the backtest gives them, and the rollout's time to 90 %."""
    from cfanalytics import backtest
    from cfanalytics.report._data import BACKTEST_POLLS, analyse
    from cfanalytics.report._sections import forecast

    events = events_from_cassette(DEMO)
    body = forecast(analyse(events)).body
    scores = backtest(events, at_most=BACKTEST_POLLS).scores().iloc[0]
    text = " ".join(parse(body).text)
    assert "Clanforge's ETA (jobeta)" in text and "linear rule" in text and "<svg" in body
    for name in ("forecast", "jobeta", "linear"):
        assert f"<td class=num>{scores[f'{name}_mae_s']:.0f}</td>" in body
    assert "90 % of the jobs completed: never reached" in text
