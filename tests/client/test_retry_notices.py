"""Retries say what they are doing: one INFO record per retry on ``RETRY_LOGGER``, shown by
whoever sets up logging (the command line does, on stderr), silent for everyone else."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import httpx
import pytest

from cfanalytics import AsyncClient, Client, RetryPolicy
from cfanalytics.client import RETRY_LOGGER

from ..conftest import ACCESS_KEY, SECRET_KEY

STATUS = "/cfp/v1/imageinstall/status"
#: Every retry waits a second, so each line is known in full.
EVEN = RetryPolicy(attempts=6, initial=1.0, multiplier=1.0, jitter=0.0)
SAID = [
    f"retrying GET {STATUS} in 1.0 s (attempt {n} of 6): {why}"
    for n, why in enumerate(
        [
            "HTTP 503",
            "no answer in time",
            "unreadable answer (HTTP 200)",
            "server disconnected without sending a response",
            "connection refused",
        ],
        start=2,
    )
]


def _answers() -> httpx.MockTransport:
    """Five kinds of trouble, then an empty status list."""
    queue: list[httpx.Response | Exception] = [
        httpx.Response(503, text=f"echoing {SECRET_KEY}"),
        httpx.ReadTimeout("timed out"),
        httpx.Response(200, text="<html>"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.Response(200, json={"installs": []}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler)


def test_each_retry_is_one_info_record(caplog: pytest.LogCaptureFixture) -> None:
    """What is retried, after how long, which attempt of how many, and why in a few words;
    never the body (which could echo a key)."""
    keys = {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}
    client = Client(**keys, retry=EVEN, transport=_answers(), sleep=lambda s: None)
    with caplog.at_level("INFO", logger=RETRY_LOGGER):
        assert len(client.install_status(1)) == 0
    assert [r.getMessage() for r in caplog.records] == SAID
    assert {r.levelname for r in caplog.records} == {"INFO"}
    assert SECRET_KEY not in caplog.text


def test_the_async_client_says_the_same(caplog: pytest.LogCaptureFixture) -> None:
    """The rule is the clients' shared core's, so the async client's lines are the same."""

    async def no_wait(seconds: float) -> None:
        pass

    async def status() -> int:
        keys = {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}
        transport = _answers()  # a MockTransport answers async clients too
        async with AsyncClient(**keys, retry=EVEN, transport=transport, sleep=no_wait) as client:
            return len(await client.install_status(1))

    with caplog.at_level("INFO", logger=RETRY_LOGGER):
        assert asyncio.run(status()) == 0
    assert [r.getMessage() for r in caplog.records] == SAID


def _run(setup: str) -> subprocess.CompletedProcess[str]:
    """A script that makes one request, retried once, after ``setup``."""
    script = textwrap.dedent(
        f"""
        import logging
        import httpx
        from cfanalytics import Client
        {setup}
        answers = iter([httpx.Response(503), httpx.Response(200, json={{"installs": []}})])
        client = Client(
            access_key="{ACCESS_KEY}",
            secret_key="{SECRET_KEY}",
            transport=httpx.MockTransport(lambda request: next(answers)),
            sleep=lambda seconds: None,
        )
        print(len(client.install_status(1)))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )


def test_a_library_user_sees_retries_only_when_asking() -> None:
    """A script or notebook that sets up no logging gets no stderr from a retry; one that
    asks for INFO gets the line."""
    quiet = _run("")
    assert (quiet.stdout, quiet.stderr) == ("0\n", "")
    asked = _run(f"logging.basicConfig(); logging.getLogger({RETRY_LOGGER!r}).setLevel('INFO')")
    assert asked.stderr.startswith(f"INFO:{RETRY_LOGGER}:retrying GET {STATUS} in ")
    assert asked.stderr.count("\n") == 1
