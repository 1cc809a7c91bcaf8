"""Fixtures for tests that drive a notebook in a real browser: Voila serves it, Chromium shows it.

Everything stays on loopback: Voila listens on 127.0.0.1, and the page may fetch nothing else
(requests for other hosts, such as the font CDN Voila's template links, are aborted and recorded).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from .helpers import PageLog, screenshot, unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright, Route

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling Google services, and on a closed
# network those refused connections pile up; the rest keeps a headless run lean and deterministic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VOILA_START_TIMEOUT = 60.0
VOILA_STOP_TIMEOUT = 20.0

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so the page fixture knows if the test failed."""
    report: pytest.TestReport = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium (``apt-get install chromium``): Playwright cannot download its own."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} not found: install Debian's chromium package")
    return CHROMIUM


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's sync driver, one per module: while it runs, the main thread counts as
    inside an event loop, so it must stop before any other module's ``asyncio.run``."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright, chromium_path: Path) -> Iterator[Browser]:
    """Headless Chromium with a fresh profile (Playwright makes a temporary one)."""
    launched = playwright_driver.chromium.launch(
        executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


def _is_loopback(url: str) -> bool:
    """Whether a URL points at this machine (or is page-local: data:, blob:, about:)."""
    host = httpx.URL(url).host if url.startswith(("http:", "https:", "ws:", "wss:")) else ""
    return not host or host in {"127.0.0.1", "localhost", "::1"}


@pytest.fixture
def artifacts() -> Path:
    """``test-artifacts/`` at the repository's root (git-ignored): screenshots for people to see."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def page_log() -> PageLog:
    """The current page's log; tests can assert on it or print it."""
    return PageLog()


@pytest.fixture
def page(
    browser: Browser, page_log: PageLog, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A page in a fresh context, loopback only; a screenshot is saved if the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)

    def route(route: Route) -> None:
        if _is_loopback(route.request.url):
            route.continue_()
        else:
            page_log.blocked.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", route)
    new_page = context.new_page()
    new_page.on("pageerror", lambda error: page_log.page_errors.append(str(error)))
    new_page.on(
        "console",
        lambda message: message.type == "error" and page_log.console_errors.append(message.text),
    )
    yield new_page
    reports = request.node.stash.get(_REPORTS, {})
    if any(report.failed for report in reports.values()):
        shot = artifacts / f"{request.node.name}-failure.png"
        try:
            screenshot(new_page, shot)
            print(f"failure screenshot: {shot}")
        except Exception as error:  # the page may be gone; the original failure matters more
            print(f"no failure screenshot: {error}")
    context.close()


def free_port() -> int:
    """A loopback port nobody listens on right now (Voila is told not to try others)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def kernelspec_dir(root: Path) -> Path:
    """A ``python3`` kernelspec that runs this very interpreter, ahead of any user-level one.

    Voila would otherwise take whatever ``python3`` kernelspec comes first on the Jupyter path,
    which on a developer's machine can be another Python without cfanalytics.
    """
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "Python 3 (tests)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return root


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, ...), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` with its start time (Voila's kernels get their own session).

    The start time tells a leftover from a newcomer that was given a recycled pid.
    """
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            started[int(entry.name)] = fields[19]
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found[child] = started[child]
                todo.append(child)
    return found


def _still_running(pid: int, started: str) -> bool:
    """Whether that very process (same start time) exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[19] == started and fields[0] != "Z"


@dataclass
class VoilaServer:
    """One running ``voila NOTEBOOK``; ``url`` serves the notebook, each GET in a new kernel."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def tail(self, lines: int = 40) -> str:
        """The end of Voila's output, for failure messages."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop Voila (it shuts its kernels down on SIGTERM), then kill whatever it left behind."""
        below = _descendants(self.process.pid)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(VOILA_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        for pid, started in below.items():
            if _still_running(pid, started):
                os.kill(pid, signal.SIGKILL)


def _start_voila(notebook: Path, jupyter_dir: Path) -> VoilaServer:
    """Start Voila on a fresh port and wait until it answers, or fail with its output."""
    voila = Path(sys.executable).with_name("voila")
    port = free_port()
    log = jupyter_dir / f"voila-{port}.log"
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLANFORGE_")}
    env.update(
        JUPYTER_PATH=str(kernelspec_dir(jupyter_dir / f"path-{port}")),
        JUPYTER_CONFIG_DIR=str(jupyter_dir / "config"),
        JUPYTER_DATA_DIR=str(jupyter_dir / "data"),
        JUPYTER_RUNTIME_DIR=str(jupyter_dir / "runtime"),
        IPYTHONDIR=str(jupyter_dir / "ipython"),
        PYTHONUNBUFFERED="1",
    )
    command = [
        str(voila),
        notebook.name,
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        f"--port={port}",
        "--Voila.port_retries=0",
        "--show_tracebacks=True",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=notebook.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown can signal all of it
        )
    server = VoilaServer(process, f"http://127.0.0.1:{port}/", log)
    # GET on the notebook's URL would start a kernel and run the notebook: probe a static path.
    probe = f"{server.url}voila/static/"
    deadline = time.monotonic() + VOILA_START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"voila exited with {process.returncode}:\n{server.tail()}")
        try:
            httpx.get(probe, timeout=2.0)
            return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise TimeoutError(f"voila did not answer in {VOILA_START_TIMEOUT} s:\n{server.tail()}")
        time.sleep(0.2)  # polling a server that is starting up; nothing to wait on instead


@pytest.fixture
def voila(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Path], str]]:
    """Serve a notebook with Voila (cwd = its folder) and return its URL; stopped at teardown.

    The kernel is this interpreter (see ``kernelspec_dir``), and Jupyter's config, data and
    runtime folders are fresh, so nothing from the developer's own setup leaks in.
    """
    jupyter_dir = tmp_path_factory.mktemp("jupyter")
    servers: list[VoilaServer] = []

    def serve(notebook: Path) -> str:
        for _attempt in range(3):
            try:
                server = _start_voila(notebook, jupyter_dir)
            except RuntimeError as error:
                if "already in use" in str(error):  # lost a race for the free port: try another
                    continue
                raise
            servers.append(server)
            return server.url
        raise RuntimeError("voila found no free port in 3 attempts")

    yield serve
    for server in servers:
        server.stop()
        print(f"voila log ({server.url}):\n{server.tail(15)}")
