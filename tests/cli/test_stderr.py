"""What the command line says on stderr: a line per retried request, and errors that name
its options and environment variables, not the library's keyword arguments."""

from __future__ import annotations

import http.server
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import pytest

from cfanalytics.cli import main
from cfanalytics.cli._stderr import cli_terms

from ..conftest import ACCESS_KEY, CASSETTES, SECRET_KEY
from ..recording.test_foreign_cassette import record_with_vcrpy

# A Python keyword argument (``timeout=``) or function call (``events_from_cassette()``).
PYTHON_TERMS = re.compile(r"\b[a-z_]+=|\b[a-z_]+\(\)")


class _FlakyStatus(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first two requests, then an empty status list."""

    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        if len(self.hits) <= 2:
            self.send_error(503)
            return
        body = b'{"installs": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake keys in the environment, as a user exports them."""
    monkeypatch.setenv("CLANFORGE_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("CLANFORGE_SECRET_KEY", SECRET_KEY)


@pytest.mark.usefixtures("fast_retries", "keys_in_env")
def test_each_retry_is_a_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """A server that fails twice, then answers: two lines saying what is retried, when, which
    attempt of how many and why; then the result, exit 0."""
    _FlakyStatus.hits = []
    with _serving(_FlakyStatus) as url:
        assert main(["status", "--asid", "1", "--base-url", url]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"cfanalytics: retrying GET /cfp/v1/imageinstall/status in 0.0 s (attempt {n} of 5): "
        "HTTP 503"
        for n in (2, 3)
    ]
    assert captured.out.splitlines()[-1] == "0 incomplete install job(s) in ASID 1"
    assert len(_FlakyStatus.hits) == 3


def _dead_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.usefixtures("fast_retries", "keys_in_env")
@pytest.mark.parametrize("flag", [True, False])
def test_a_dead_port_says_what_to_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], flag: bool
) -> None:
    """Nothing listening: a line per retry, then one line naming the URL and what to check
    (the option and the environment variable), exit 2, no traceback."""
    url = f"http://127.0.0.1:{_dead_port()}"
    argv = ["status", "--asid", "1"]
    if flag:
        argv += ["--base-url", url]
    else:
        monkeypatch.setenv("CLANFORGE_BASE_URL", url)
    assert main(argv) == 2
    captured = capsys.readouterr()
    *retries, error = captured.err.splitlines()
    assert len(retries) == 4 and all(line.endswith("): connection refused") for line in retries)
    assert error.startswith(f"cfanalytics: error: Could not connect to {url} (GET ")
    assert "running there?" in error and "(--base-url, else CLANFORGE_BASE_URL)" in error
    assert "Traceback" not in captured.err and not PYTHON_TERMS.search(error)


@pytest.mark.usefixtures("fast_retries", "keys_in_env")
def test_a_record_that_never_reached_the_api_leaves_nothing_to_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong URL: the run ends with the connect error, and leaves no journal (nothing was
    asked of the API), so the same command with the right URL starts without --overwrite."""
    cassette = tmp_path / "run.yaml"
    argv = ["record", "--asid", "1", "--cassette", str(cassette)]
    assert main([*argv, "--base-url", f"http://127.0.0.1:{_dead_port()}"]) == 2
    assert "Could not connect" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.usefixtures("fast_retries", "keys_in_env")
def test_a_server_that_never_answers_names_the_timeout_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A connection that opens but gets no answer: retried, then --timeout is named."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes connections; nobody ever answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        assert main(["status", "--asid", "1", "--base-url", url, "--timeout", "0.05"]) == 2
    *retries, error = capsys.readouterr().err.splitlines()
    assert len(retries) == 4 and retries[0].endswith("): no answer in time")
    assert "raise --timeout or try later" in error and not PYTHON_TERMS.search(error)


def _existing(tmp_path: Path) -> list[str]:
    cassette = tmp_path / "run.yaml"
    cassette.write_text("interactions: []\nversion: 1\n")
    return ["record", "--asid", "1", "--cassette", str(cassette)]


def _foreign(tmp_path: Path) -> list[str]:
    record_with_vcrpy(tmp_path / "theirs.yaml")
    return ["replay", str(tmp_path / "theirs.yaml")]


def _scheduler_without_dask(tmp_path: Path) -> list[str]:
    store = str(tmp_path / "store")
    assert main(["history", "add", str(CASSETTES / "demo.yaml"), "--to", store]) == 0
    return ["rollouts", store, "--scheduler", "tcp://127.0.0.1:1"]


@pytest.mark.usefixtures("keys_in_env")
@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (lambda _: ["simulate", "--host", "0.0.0.0"], "serves it on loopback only"),
        (_existing, "already exists; replay it, or choose a new file (--overwrite replaces it)"),
        (_foreign, "read it with `cfanalytics summary` or `cfanalytics events` instead"),
        (
            lambda _: ["compare", str(CASSETTES / "troubled.yaml"), str(CASSETTES / "demo.yaml")],
            "pick one with --rollout-a",
        ),
        (_scheduler_without_dask, "a scheduler address is for --engine dask"),
        (
            lambda tmp: [*_scheduler_without_dask(tmp)[:2], "--since", "soon"],
            "--since: not a date: 'soon'",
        ),
    ],
)
def test_errors_name_options_not_keyword_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: object, says: str
) -> None:
    """What the library says in Python terms reaches the command line in its own."""
    assert callable(argv)
    assert main(argv(tmp_path)) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("cfanalytics: error: ") and says in error
    assert not PYTHON_TERMS.search(error), error


def test_missing_keys_name_the_environment_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command line reads keys from the environment only, so it names nothing else."""
    monkeypatch.setenv("CLANFORGE_ACCESS_KEY", ACCESS_KEY)
    assert main(["status", "--asid", "1"]) == 2
    assert capsys.readouterr().err == (
        "cfanalytics: error: No Clanforge credentials: set CLANFORGE_SECRET_KEY "
        "(Clanforge > Auth Keys)\n"
    )


def test_cli_terms_of_the_rollout_keywords() -> None:
    """rollout= and its per-side forms become the options that pick a rollout."""
    said = "2 rollouts found (1/1, 1/2); pick one with rollout="
    assert cli_terms(said) == "2 rollouts found (1/1, 1/2); pick one with --rollout"
    assert cli_terms("b: pick one with rollout_b=") == "b: pick one with --rollout-b"
