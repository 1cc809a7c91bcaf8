"""The command line: subcommands, output formats, and one-line errors with exit code 2."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cfanalytics.analysis import failures, job_summary
from cfanalytics.cli import main
from cfanalytics.events import conform, rollouts
from cfanalytics.recording import events_from_cassette, load_events

from ..conftest import ACCESS_KEY, CASSETTES, SECRET_KEY


def test_help_lists_every_subcommand() -> None:
    """The installed console script lists exactly its subcommands, in order."""
    out = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "cfanalytics"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = out.split("\n  COMMAND\n", 1)[1].split("\n\noptions:")[0].splitlines()
    names = [line.split()[0] for line in listed if line[4] != " "]  # summaries indent more
    assert names == [
        "demo",
        "simulate",
        "status",
        "queue",
        "image-status",
        "record",
        "replay",
        "make-cassette",
        "summary",
        "events",
        "report",
        "postmortem",
        "compare",
        "backtest",
        "history",
        "rollouts",
        "scan-secrets",
    ]


def test_status_json(sim_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``status --format json`` prints an array of job objects with ISO timestamps."""
    assert main(["status", "--asid", "1", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 40
    assert {"jobid", "kind", "state", "jobprogress", "location"} <= rows[0].keys()
    assert rows[0]["state"] in ("Created", "Pending")


def test_status_table_and_csv(sim_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The table ends with a count line; CSV has a header and one line per job."""
    assert main(["status", "--asid", "1"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["jobid", "kind", "state"]
    assert table[-1].endswith("incomplete install job(s) in ASID 1")
    assert main(["status", "--asid", "1", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("jobid,kind,state") and len(lines) == len(table) - 1


def test_queue_and_image_status(sim_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``queue`` reports the new state; ``image-status`` the fleet counts."""
    assert main(["status", "--asid", "1", "--format", "json"]) == 0
    mirror = next(r for r in json.loads(capsys.readouterr().out) if r["kind"] == "mirror")
    assert main(["queue", str(mirror["jobid"]), "--asid", "1", "--mirror"]) == 0
    assert f"queued mirror job {mirror['jobid']}: Queued" in capsys.readouterr().out
    assert main(["image-status", "4101", "--asid", "1"]) == 0
    assert "completed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("env", "argv", "message"),
    [
        ({"CLANFORGE_SECRET_KEY": "wrong"}, ["status", "--asid", "1"], "HTTP 403"),
        ({"CLANFORGE_SECRET_KEY": ""}, ["status", "--asid", "1"], "CLANFORGE_SECRET_KEY"),
        ({}, ["queue", "12", "--asid", "1", "--mirror"], "error envelope|reported an error"),
        ({"CLANFORGE_BASE_URL": "http://127.0.0.1:9"}, ["status", "--asid", "1"], "connect"),
        ({"CLANFORGE_BASE_URL": "http://example.com"}, ["status", "--asid", "1"], "plain HTTP"),
    ],
)
@pytest.mark.usefixtures("fast_retries")
def test_errors_are_one_line_exit_2(
    sim_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    argv: list[str],
    message: str,
) -> None:
    """Every failure is one readable line on stderr and exit code 2, without secrets (after a
    line per retry, if the request was retried)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    captured = capsys.readouterr()
    *retries, err = captured.err.strip().splitlines()
    assert all(line.startswith("cfanalytics: retrying GET ") for line in retries)
    assert err.startswith("cfanalytics: error: ")
    assert "Traceback" not in captured.err
    assert re.search(message, err, re.IGNORECASE)
    assert SECRET_KEY not in captured.err + captured.out


def test_usage_error_exits_2() -> None:
    """A missing required option is a usage error (argparse's exit code 2)."""
    with pytest.raises(SystemExit) as info:
        main(["status"])
    assert info.value.code == 2


def test_simulate_serves_until_stopped() -> None:
    """``cfanalytics simulate`` prints its URL and keys, answers Basic auth, refuses bad keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLANFORGE_")}
    with subprocess.Popen(  # leaving closes its stdout
        [sys.executable, "-m", "cfanalytics", "simulate", "--port", "0", "--speed", "5"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(5)]
            url = lines[0].split("serving ")[1].split()[0]
            values = dict(line.strip().removeprefix("export ").split("=", 1) for line in lines[2:5])
            assert values["CLANFORGE_BASE_URL"] == url
            auth = (values["CLANFORGE_ACCESS_KEY"], values["CLANFORGE_SECRET_KEY"])
            params = {"accountserviceid": "1"}
            good = httpx.get(f"{url}/cfp/v1/imageinstall/status", params=params, auth=auth)
            assert good.status_code == 200 and len(good.json()["installs"]) >= 40
            bad = httpx.get(f"{url}/cfp/v1/imageinstall/status", params=params, auth=("x", "y"))
            assert bad.status_code == 403 and bad.json()["error_message"] == "Forbidden"
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_demo_records_a_rollout_to_the_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo records the default rollout: cassette, event log, summary, and last the report."""
    assert main(["demo", "--speed", "3000", "--max-polls", "300", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "stopped: every queued job ended" in out
    (folder,) = tmp_path.iterdir()
    summary = pd.read_csv(folder / "summary.csv")
    # At 3000x a job may finish between two polls before one saw it run: "unknown".
    outcomes = set(summary["outcome"])
    assert len(summary) >= 40 and "completed" in outcomes
    assert outcomes <= {"completed", "failed", "unknown"}
    assert {"London", "Frankfurt", "Ashburn", "Singapore"} <= set(summary["location"])
    for name in ("rollout.yaml", "events", "summary.csv"):
        assert str(folder / name) in out
    report = folder / "report.html"
    assert out.rstrip().splitlines()[-1].startswith(f"report:    {report}")  # ends with it
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    pd.testing.assert_frame_equal(
        events_from_cassette(folder / "rollout.yaml"), load_events(folder / "events")
    )


def test_record_replay_summary(
    sim_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """record writes a cassette and a log; replay and summary read them back."""
    cassette, events = tmp_path / "run.yaml", tmp_path / "events"
    argv = ["record", "--asid", "1", "--interval", "0", "--max-polls", "3"]
    assert main([*argv, "--cassette", str(cassette), "--events", str(events)]) == 0
    out = capsys.readouterr().out
    assert "stopped: reached 3 polls" in out and str(cassette) in out
    assert main(["replay", str(cassette), "--events-out", str(tmp_path / "e.parquet")]) == 0
    assert "reached 3 polls" in capsys.readouterr().out
    # The export keeps text and Int64, as the event log's files do: it reads back the same.
    exported = pd.read_parquet(tmp_path / "e.parquet")
    assert pq.read_schema(tmp_path / "e.parquet").field("location").type == pa.large_string()
    pd.testing.assert_frame_equal(conform(exported), load_events(events))
    pd.testing.assert_frame_equal(load_events(tmp_path / "e.parquet"), load_events(events))
    assert main(["summary", str(tmp_path / "e.parquet"), "--format", "csv"]) == 0  # reads back
    assert capsys.readouterr().out.startswith("rollout,jobid,kind,location")
    assert main(["summary", str(cassette), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 40 and {r["outcome"] for r in rows} == {"unfinished"}
    assert rows[0]["first_seen"].endswith("Z")
    assert main(["summary", str(events), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("rollout,jobid,kind,location")


def test_record_refuses_an_existing_cassette(
    sim_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Recording over an existing cassette is one clear line and exit 2."""
    cassette = tmp_path / "run.yaml"
    cassette.write_text("interactions: []\nversion: 1\n")
    assert main(["record", "--asid", "1", "--cassette", str(cassette)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["", "interactions: [\n", "just: text\n", "\x00\x01"])
def test_bad_cassettes_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    """Empty, truncated, foreign or binary files give exit 2 and one line."""
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cfanalytics: error: ") and "\n" not in err


def test_summary_of_a_folder_without_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder holding no event files is an error, not an empty table."""
    assert main(["summary", str(tmp_path)]) == 2
    assert "holds no event files" in capsys.readouterr().err


def test_record_overwrite_flag(
    sim_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--overwrite replaces a cassette that a failed attempt left behind."""
    cassette = tmp_path / "run.yaml"
    cassette.write_text("interactions: []\nversion: 1\n")
    argv = [
        "record",
        "--asid",
        "1",
        "--interval",
        "0",
        "--max-polls",
        "1",
        "--cassette",
        str(cassette),
    ]
    assert main([*argv, "--overwrite"]) == 0
    assert "stopped: reached 1 polls" in capsys.readouterr().out
    assert len(events_from_cassette(cassette)) >= 40


def test_record_takes_its_queueing_options_into_the_plan(
    sim_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--concurrency and --requeue-failed reach the recorded plan; bad counts are one line."""
    from cfanalytics.recording import load_cassette

    cassette = tmp_path / "run.yaml"
    argv = ["record", "--asid", "1", "--interval", "0", "--max-polls", "1"]
    argv += ["--cassette", str(cassette)]
    assert main([*argv, "--concurrency", "3", "--requeue-failed", "2"]) == 0
    meta = load_cassette(cassette).metadata
    assert (meta["concurrency"], meta["requeue_failed"]) == (3, 2)
    capsys.readouterr()
    for bad in (["--concurrency", "0"], ["--requeue-failed", "-1"], ["--concurrency", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--overwrite", *bad])
        assert exit_info.value.code == 2
        assert f"{bad[0]}: not a whole number of at least" in capsys.readouterr().err


def test_cli_postmortem_json(capsys: pytest.CaptureFixture[str]) -> None:
    """JSON has ``failures`` and ``api_errors`` with the documented keys."""
    assert main(["postmortem", str(CASSETTES / "troubled.yaml"), "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    keys = {"failures", "api_errors", "other_endings", "by_location", "by_mirror", "polling_gaps"}
    assert set(body) == keys | {"refusal_reasons", "queue_refusals", "api_error_stretches"}
    (reason,) = body["refusal_reasons"]
    assert (reason["reason"], reason["diffid"], reason["jobs"]) == ("diff_lock", 218599, 24)
    assert len(body["polling_gaps"]) == 4  # 2 gaps, seen by both rollouts
    assert len({gap["rollout"] for gap in body["polling_gaps"]}) == 2
    assert body["by_mirror"][0]["mirror"] == "mirror-fra-01"  # the bad mirror, first
    first = body["failures"][0]
    assert {"jobid", "error", "error_class", "failed_at", "progress_at_failure"} <= set(first)
    assert first["failed_at"].endswith("Z") and first["error_class"] == "failing_drive"
    keys = {"observed_at", "endpoint", "http_status", "error_message", "jobid"}
    assert all(keys <= set(error) for error in body["api_errors"])
    assert any(e["jobid"] and "diffid" in (e["error_message"] or "") for e in body["api_errors"])


def test_cli_postmortem_markdown_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Markdown is a draft for a ticket: headed sections and pipe tables; table is aligned."""
    assert main(["postmortem", str(CASSETTES / "troubled.yaml"), "--format", "md"]) == 0
    text = capsys.readouterr().out
    first, idle = rollouts(events_from_cassette(CASSETTES / "troubled.yaml"))
    assert text.startswith(f"# Postmortem draft: troubled.yaml, rollouts {first}, {idle}")
    failed = failures(events_from_cassette(CASSETTES / "troubled.yaml")).iloc[0]
    assert f"{first}: The first failure was job {failed['jobid']} (machine, Frankfurt)" in text
    assert f"{idle}: 24 of 24 jobs were refused at queue time (24 image locked by diff" in text
    assert "## Refused at queue time, by reason (1)" in text
    assert "## Failed installs (7)" in text and "| rollout | jobid | kind |" in text
    assert main(["postmortem", str(CASSETTES / "demo.yaml")]) == 0
    text = capsys.readouterr().out
    assert "Failed installs (5)" in text and "API errors by kind and stretch of time (0)" in text
    assert "Failure rate by location, worst first (4)" in text


def test_cli_postmortem_bad_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing source: exit 2 and one line."""
    assert main(["postmortem", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_every_source_command_takes_a_rollout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--rollout picks one rollout of a source; an unknown one is a one-line error naming them."""
    troubled = str(CASSETTES / "troubled.yaml")
    first, idle = rollouts(events_from_cassette(troubled))
    assert main(["summary", troubled, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["rollout"] for row in rows} == {first, idle}
    assert main(["summary", troubled, "--format", "json", "--rollout", idle]) == 0
    rows = json.loads(capsys.readouterr().out)
    alone = job_summary(events_from_cassette(troubled)).query("rollout == @idle")
    assert [row["jobid"] for row in rows] == alone["jobid"].tolist()
    assert main(["postmortem", troubled, "--rollout", first, "--format", "md"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"# Postmortem draft: troubled.yaml, rollout {first}\n")
    out = tmp_path / "idle.parquet"
    assert main(["events", troubled, "--rollout", idle, "-o", str(out)]) == 0
    assert f"{out} (" in capsys.readouterr().out
    assert rollouts(pd.read_parquet(out)) == [idle]
    assert main(["summary", troubled, "--rollout", "1/1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and first in err and idle in err


def test_history_add_list_and_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """history add twice keeps each response once; list shows one row per rollout; a store is a
    SOURCE like any other."""
    store = str(tmp_path / "history")
    sources = [str(CASSETTES / "demo.yaml"), str(CASSETTES / "troubled.yaml")]
    assert main(["history", "add", *sources, "--to", store]) == 0
    assert "0 already there" in capsys.readouterr().out
    assert main(["history", "add", sources[0], "--to", store]) == 0
    assert "0 response(s) added" in capsys.readouterr().out
    assert main(["history", "list", store, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    found = rollouts(pd.concat([events_from_cassette(s) for s in sources], ignore_index=True))
    assert [row["rollout"] for row in listed] == found
    assert main(["summary", store, "--rollout", found[0], "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["rollout"] for row in rows} == {found[0]}
    assert main(["history", "list", str(CASSETTES)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


class _Counting(http.server.BaseHTTPRequestHandler):
    """Answers every request 500 and counts it: a record run must send nothing here."""

    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_error(500)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("access", "secret", "says"),
    [
        ("a", SECRET_KEY, "the access key (CLANFORGE_ACCESS_KEY) is 1 character long"),
        (ACCESS_KEY, "b", "the secret key (CLANFORGE_SECRET_KEY) is 1 character long"),
        ("installs", SECRET_KEY, "CLANFORGE_ACCESS_KEY) occurs in the API's own field"),
    ],
)
def test_record_refuses_keys_it_cannot_scrub_before_sending_anything(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    access: str,
    secret: str,
    says: str,
) -> None:
    """Keys that would blank ordinary text out of the cassette: one line, exit 2, no
    request sent, no file written."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Counting.hits = []
    try:
        monkeypatch.setenv("CLANFORGE_ACCESS_KEY", access)
        monkeypatch.setenv("CLANFORGE_SECRET_KEY", secret)
        monkeypatch.setenv("CLANFORGE_BASE_URL", f"http://127.0.0.1:{server.server_port}")
        cassette, events = tmp_path / "run.yaml", tmp_path / "events"
        argv = ["record", "--asid", "1", "--max-polls", "1", "--interval", "0"]
        assert main([*argv, "--cassette", str(cassette), "--events", str(events)]) == 2
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err.strip()
    assert err.startswith("cfanalytics: error: ") and "\n" not in err
    assert says in err
    assert _Counting.hits == [] and not cassette.exists() and not events.exists()
