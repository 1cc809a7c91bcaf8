"""The secret scanner: planted leaks are found in every artifact and encoding, redacted;
what the real pipeline writes, and the repository's own data artifacts, are clean."""

from __future__ import annotations

import asyncio
import base64
import gzip
import html
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from cfanalytics.recording import (
    CassetteWriter,
    EventLog,
    Finding,
    Interaction,
    RunPlan,
    arecord,
    scan_paths,
)
from cfanalytics.recording import _scan as scan
from cfanalytics.report import write_report

from ..conftest import ACCESS_KEY, REPO, SECRET_KEY, SimRig

KEYS = (ACCESS_KEY, SECRET_KEY)
TOKEN = base64.b64encode(f"{ACCESS_KEY}:{SECRET_KEY}".encode()).decode()
# A secret with characters that every encoding changes, so each form is a different string.
ODD = 'Sk/+&"<q>=9 zé'
ODD_KEYS = (ACCESS_KEY, ODD)
ODD_TOKEN = base64.b64encode(f"{ACCESS_KEY}:{ODD}".encode()).decode()


def scan_with(*paths: Path, secrets: tuple[str, ...] = KEYS) -> list[Finding]:
    """Scan with known secrets and an empty environment."""
    return scan_paths(paths, secrets=secrets, environ={})


def assert_redacted(findings: list[Finding], *secrets: str) -> None:
    """No finding, however shown, holds a secret, its token or a long piece of either."""
    for finding in findings:
        for shown in (str(finding), repr(finding), finding.excerpt):
            for secret in (*secrets, TOKEN, ODD_TOKEN):
                assert secret[:6] not in shown, shown
                assert quote(secret, safe="")[:6] not in shown, shown


def interaction(body: bytes = b'{"installs": []}', **headers: str) -> Interaction:
    return Interaction(
        method="GET",
        uri="https://api.multiplay.co.uk/cfp/v1/imageinstall/status?accountserviceid=1",
        request_headers=tuple(headers.items()),
        status_code=200,
        reason="OK",
        headers=(("content-type", "application/json"),),
        body=body,
    )


def hand_edited_cassette(path: Path, edit: Callable[[dict[str, object]], None]) -> Path:
    """A cassette CassetteWriter wrote (scrubbed), then edited by hand, bypassing scrubbing."""
    with CassetteWriter(path) as writer:
        writer.append(interaction(accept="*/*"))
        writer.append(interaction())
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))
    return path


# --- leaks of known secrets ------------------------------------------------------------


def test_cassette_edited_by_hand_leaks_are_found_where_they_are(tmp_path: Path) -> None:
    def leak(data: dict[str, object]) -> None:
        interactions = data["interactions"]
        assert isinstance(interactions, list)
        interactions[1]["request"]["headers"]["authorization"] = [f"Basic {TOKEN}"]
        interactions[0]["response"]["body"]["string"] = f'{{"secret": "{SECRET_KEY}"}}'

    findings = scan_with(hand_edited_cassette(tmp_path / "c.yaml", leak))
    found = {(f.location, f.kind) for f in findings}
    assert ("interaction 1 / request.headers.authorization[0]", "known Basic token") in found
    assert ("interaction 0 / response.body.string", "known secret") in found
    assert_redacted(findings, *KEYS)


def test_cassette_as_written_by_the_writer_is_clean(tmp_path: Path) -> None:
    """The writer drops Authorization and filters the keys: nothing for the scanner."""
    path = tmp_path / "c.yaml"
    with CassetteWriter(path, secrets=(*KEYS, TOKEN)) as writer:
        writer.append(interaction(f"key={ACCESS_KEY}".encode(), authorization=f"Basic {TOKEN}"))
    assert scan_with(path) == []
    assert scan_paths([path], environ={}) == []


def test_gzipped_binary_body_and_gzipped_json_cassette(tmp_path: Path) -> None:
    """vcrpy keeps a gzip body as ``!!binary``; a cassette file itself may be gzipped."""
    body = gzip.compress(json.dumps({"installs": [{"joberror": ACCESS_KEY}]}).encode())
    data = {"interactions": [{"response": {"body": {"string": body}}}], "version": 1}
    binary = tmp_path / "binary.yaml"
    binary.write_text(yaml.safe_dump(data))
    assert "!!binary" in binary.read_text() and ACCESS_KEY not in binary.read_text()
    packed = tmp_path / "c.json.gz"
    packed.write_bytes(gzip.compress(json.dumps({"uri": f"/x?secret={SECRET_KEY}"}).encode()))
    findings = scan_with(binary, packed)
    assert [(f.path, f.location) for f in findings] == [
        (str(binary), "interaction 0 / response.body.string"),
        (str(packed), "uri"),
    ]
    assert_redacted(findings, *KEYS)


@pytest.mark.parametrize(
    ("form", "kind"),
    [
        (ODD, "known secret"),
        (quote(ODD, safe=""), "known secret, url-encoded"),
        (quote(ODD, safe="").replace("%2F", "%2f"), "known secret, url-encoded"),
        (quote_plus(ODD), "known secret, form-encoded"),
        (json.dumps(ODD)[1:-1], "known secret, json-escaped"),
        (html.escape(ODD), "known secret, html-escaped"),
        (base64.b64encode(ODD.encode()).decode(), "known secret, base64"),
        (ODD_TOKEN, "known Basic token"),
        (ODD_TOKEN.rstrip("="), "known Basic token"),
        (quote(ODD_TOKEN, safe=""), "known Basic token"),  # found without its padding
    ],
)
def test_every_encoding_of_a_known_secret_is_found(tmp_path: Path, form: str, kind: str) -> None:
    path = tmp_path / "notes.md"
    path.write_text(f"# run notes\n\nthe request was sent with {form} attached\n")
    findings = scan_with(path, secrets=ODD_KEYS)
    assert [(f.location, f.kind) for f in findings] == [("line 3", kind)]
    assert "sent with" in findings[0].excerpt
    assert_redacted(findings, *ODD_KEYS)


def test_jsonl_event_log_line_is_named(tmp_path: Path) -> None:
    with EventLog(tmp_path / "events", run_id="r") as log:  # no secrets given: not scrubbed
        log.append([{"seq": 0, "jobid": 1, "joberror": "ok"}])
        log.append([{"seq": 1, "jobid": 1, "joberror": f"denied for {TOKEN}"}])
        log.close(compact=False)
    findings = scan_with(tmp_path / "events")
    assert [(Path(f.path).name, f.location, f.kind) for f in findings] == [
        ("_r.jsonl", "line 2", "known Basic token")
    ]


def test_parquet_strings_in_every_column_and_metadata(tmp_path: Path) -> None:
    table = pa.table(
        {
            "jobid": [1, 2, 3],
            "joberror": [None, "disk full", f"url {quote(SECRET_KEY)}"],
            "extra": [["a"], [], [f"k {ACCESS_KEY}"]],
        }
    ).replace_schema_metadata({"note": f"Basic {TOKEN}"})
    pq.write_table(table, tmp_path / "e.parquet")
    findings = scan_with(tmp_path)
    assert [(f.location, f.kind) for f in findings] == [
        ("metadata", "known Basic token"),
        ("column joberror row 2", "known secret"),
        ("column extra row 2[0]", "known secret"),
    ]
    assert_redacted(findings, *KEYS)


def test_html_report_and_notebook_output(tmp_path: Path, pipeline: Path) -> None:
    text = (pipeline / "report.html").read_text()
    (tmp_path / "report.html").write_text(
        text.replace("</body>", f"<pre>{html.escape(ODD)}</pre></body>")
    )
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": ["# hi"], "metadata": {}},
            {
                "cell_type": "code",
                "source": ["client.headers"],
                "metadata": {},
                "outputs": [
                    {
                        "output_type": "stream",
                        "text": ["{'Authorization': ", f"'Basic {ODD_TOKEN}'}}"],
                    }
                ],
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "n.ipynb").write_text(json.dumps(notebook, indent=1))
    findings = scan_with(tmp_path, secrets=ODD_KEYS)
    assert [(Path(f.path).name, f.location, f.kind) for f in findings] == [
        ("n.ipynb", "cell 1 / outputs[0].text[1]", "known Basic token"),
        (
            "report.html",
            f"line {text[: text.index('</body>')].count(chr(10)) + 1}",
            "known secret, html-escaped",
        ),
    ]
    assert_redacted(findings, *ODD_KEYS)


def test_raw_lines_catch_what_parsing_drops(tmp_path: Path) -> None:
    """A YAML comment and the first of two duplicate JSON keys are gone once parsed."""
    (tmp_path / "a.yaml").write_text(f"version: 1\n# old key {ACCESS_KEY}\ninteractions: []\n")
    (tmp_path / "b.json").write_text(f'{{"s": "{SECRET_KEY}",\n "s": "ok"}}')
    findings = scan_with(tmp_path)
    assert [(Path(f.path).name, f.location) for f in findings] == [
        ("a.yaml", "line 2"),
        ("b.json", "line 1"),
    ]


def test_parsed_leak_is_not_reported_again_by_line(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps({"a": [SECRET_KEY], "b": SECRET_KEY}, indent=1))
    findings = scan_with(tmp_path)
    assert [f.location for f in findings] == ["a[0]", "b"]


# --- heuristics, with no secret known --------------------------------------------------

LEAKS = [
    ("Authorization: Bearer eyJhbGciOi9xQ", "authorization header"),
    ('{"headers": {"Proxy-Authorization": "Token 8f3a9c2b77"}}', "authorization header"),
    ("curl -H 'X-Auth: Basic dXNlcjpodW50ZXIy'", "Basic token of user:password"),
    ("token dXNlcjpodW50ZXIy in a log", "base64 of user:password"),
    ("CLANFORGE_SECRET_KEY=9fK2mQ7xLp", "key-looking value of SECRET_KEY"),
    ('{"access_key": "AKIA4EXAMPLE77"}', "key-looking value of access_key"),
    ("password: Tr0ub4dor&3", "key-looking value of password"),
]


@pytest.mark.parametrize(("line", "kind"), LEAKS)
def test_heuristics_flag_credentials(tmp_path: Path, line: str, kind: str) -> None:
    (tmp_path / "log.txt").write_text(f"start\n{line}\n")
    findings = scan_paths([tmp_path], environ={})
    assert [(f.location, f.kind) for f in findings] == [("line 2", kind)]
    assert "hunter2" not in str(findings) and "9fK2mQ" not in str(findings)


def test_parsed_header_and_credential_names_are_flagged(tmp_path: Path) -> None:
    def leak(data: dict[str, object]) -> None:
        interactions = data["interactions"]
        assert isinstance(interactions, list)
        interactions[0]["request"]["headers"]["Authorization"] = ["Token 3f9a"]
        data["metadata"] = {"secret_key": "u7Hk2Lq9Wz"}

    findings = scan_paths([hand_edited_cassette(tmp_path / "c.yaml", leak)], environ={})
    assert [(f.location, f.kind) for f in findings] == [
        ("interaction 0 / request.headers.Authorization[0]", "authorization header"),
        ("metadata.secret_key", "key-looking value of secret_key"),
    ]


PROSE = """\
Keys: put them in CLANFORGE_ACCESS_KEY / CLANFORGE_SECRET_KEY, e.g. export CLANFORGE_SECRET_KEY=…
`Authorization: Basic base64(AccessKey:SecretKey)` is what the client sends;
--header 'Authorization: Basic YOUR_AUTH_CREDENTIALS'
authorization: <FILTERED>
access_key = os.environ["KEY"]; secret_key=${SECRET}; password: required; token: none
A basic install takes 5-15 minutes; the secret: keep it safe. /games/arena/server 5820413
"""


def test_placeholders_and_prose_are_not_flagged(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(PROSE)
    (tmp_path / "meta.yaml").write_text("authorization: <FILTERED>\nsecret_key: SECRET_KEY\n")
    assert scan_paths([tmp_path], environ={}) == []


# --- where the known secrets come from -------------------------------------------------


def test_keys_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.md").write_text(f"sent {SECRET_KEY} and {quote(TOKEN)}\n")
    assert [f.kind for f in scan_paths([tmp_path], environ={})] == ["base64 of user:password"]
    env = {"CLANFORGE_ACCESS_KEY": ACCESS_KEY, "CLANFORGE_SECRET_KEY": SECRET_KEY}
    expected = ["known secret", "known Basic token"]
    assert [f.kind for f in scan_paths([tmp_path], environ=env)] == expected
    monkeypatch.setenv("CLANFORGE_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("CLANFORGE_SECRET_KEY", SECRET_KEY)
    assert [f.kind for f in scan_paths([tmp_path])] == expected


def test_short_keys_are_refused_or_ignored(tmp_path: Path) -> None:
    """A 1-character simulator key would match everywhere."""
    (tmp_path / "a.md").write_text("a s as sa\n")
    assert scan_paths([tmp_path], environ={"CLANFORGE_ACCESS_KEY": "a"}) == []
    with pytest.raises(ValueError, match="6"):
        scan_paths([tmp_path], secrets=["a"], environ={})
    with pytest.raises(TypeError):
        scan_paths([tmp_path], secrets=SECRET_KEY, environ={})
    with pytest.raises(TypeError):
        scan_paths(str(tmp_path), environ={})  # type: ignore[arg-type]


# --- files and folders -----------------------------------------------------------------


def test_walk_skips_tools_folders_and_code_but_reads_named_files(tmp_path: Path) -> None:
    for folder in (".git", ".venv", "node_modules", ".mypy_cache", "x.egg-info", "data", "env2"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "leak.json").write_text(json.dumps([SECRET_KEY]))
    (tmp_path / "env2" / "pyvenv.cfg").write_text("home = /usr/bin\n")  # a venv by any name
    (tmp_path / "conftest.py").write_text(f"SECRET_KEY = {SECRET_KEY!r}\n")
    (tmp_path / "run.log.gz").write_bytes(gzip.compress(SECRET_KEY.encode()))
    names = [Path(f.path).relative_to(tmp_path).as_posix() for f in scan_with(tmp_path)]
    assert names == ["run.log.gz", "data/leak.json"]
    assert len(scan_with(tmp_path / "conftest.py", tmp_path / "conftest.py")) == 1


def test_a_leak_everywhere_is_listed_then_counted(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(f"key {ACCESS_KEY}\n" * 80)
    findings = scan_with(tmp_path)
    assert len(findings) == scan.MAX_PER_FILE + 1
    assert (
        findings[-1].excerpt
        == f"{80 - scan.MAX_PER_FILE} more findings in this file are not listed"
    )


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    (tmp_path / "broken.json.gz").write_bytes(b"not gzip")
    findings = scan_with(tmp_path)
    assert [(Path(f.path).name, f.kind) for f in findings] == [
        ("broken.json.gz", "unreadable"),
        ("broken.parquet", "unreadable"),
    ]
    with pytest.raises(FileNotFoundError, match="nope"):
        scan_with(tmp_path, tmp_path / "nope")


def test_big_files_are_streamed_not_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"a": "x", "b": f"k {ACCESS_KEY}"}))
    monkeypatch.setattr(scan, "PARSE_LIMIT", 0)
    assert [f.location for f in scan_with(path)] == ["line 2"]


def test_excerpt_shows_context_and_two_characters(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(f"x\tx {'p' * 40} Authorization: Basic {TOKEN}\n")
    (finding,) = scan_with(tmp_path)
    assert finding.excerpt == f"…pppppppp Authorization: Basic {TOKEN[:2]}…[{len(TOKEN)} chars]"


# --- what the project writes, and the repository itself --------------------------------


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rollout recorded from the simulator with the fake keys: cassette, events, report."""
    folder = tmp_path_factory.mktemp("pipeline")
    plan = RunPlan(asid=1, interval=60.0, max_duration=900.0)
    options = SimRig(seed=3).record_options(run_id="run", events_dir=folder / "events")
    asyncio.run(arecord(plan, cassette=folder / "run.yaml", **options))
    write_report(folder / "run.yaml", folder / "report.html")
    return folder


def test_what_the_pipeline_writes_is_clean(pipeline: Path) -> None:
    names = sorted(p.name for p in pipeline.rglob("*") if p.is_file())
    assert names == ["report.html", "run.parquet", "run.yaml"]
    assert scan_with(pipeline) == []
    assert scan_paths([pipeline], environ={}) == []
    control = scan_with(pipeline, secrets=("London",))  # proof that every file was read
    assert sorted({Path(f.path).name for f in control}) == names


def test_shipped_sample_is_clean_of_the_keys_that_recorded_it(tmp_path: Path) -> None:
    from cfanalytics.recording import make_cassette
    from cfanalytics.recording._samples import _KEYS

    make_cassette("demo", tmp_path / "demo.yaml")
    assert scan_with(tmp_path, secrets=_KEYS) == []


def test_repository_data_artifacts_hold_no_key(tmp_path: Path) -> None:
    """What CI runs: the repository, with the tests' fake keys known. The walk must reach the
    shipped cassettes and notebooks (and not the test code, where the fake keys live)."""
    walked = {p.relative_to(REPO).as_posix() for p in scan._files([REPO])}
    assert {"cassettes/demo.yaml", "cassettes/troubled.yaml", "README.md"} <= walked
    assert {p.relative_to(REPO).as_posix() for p in REPO.glob("notebooks/*.ipynb")} <= walked
    assert not any(name.endswith(".py") for name in walked)
    findings = scan_with(REPO)
    assert findings == [], "\n".join(map(str, findings))
    assert scan_paths([REPO], environ={}) == []


def test_the_cli_exits_1_on_a_leak_and_0_when_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cfanalytics scan-secrets`: findings on stdout, redacted; exit 1; clean is exit 0."""
    from cfanalytics.cli import main

    monkeypatch.setenv("CLANFORGE_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("CLANFORGE_SECRET_KEY", SECRET_KEY)
    leaky = tmp_path / "leaky" / "events.jsonl"
    leaky.parent.mkdir()
    leaky.write_text(json.dumps({"joberror": f"denied for {SECRET_KEY}"}) + "\n")
    assert main(["scan-secrets", str(leaky.parent)]) == 1
    out, err = capsys.readouterr()
    assert "events.jsonl" in out and SECRET_KEY not in out + err
    assert "1 possible credential leak(s) found" in err
    clean = tmp_path / "clean.jsonl"
    clean.write_text(json.dumps({"joberror": "disk full"}) + "\n")
    assert main(["scan-secrets", str(clean)]) == 0
    assert "no credentials found" in capsys.readouterr().err
