"""Test doubles shared by the controller tests (``tests/live``) and the widget tests.

Clients over ``httpx.MockTransport`` that list scripted jobs and answer queue requests, the
job rows and queue answers they send, and :class:`RecordingRig`: the in-process simulator of
:class:`~tests.conftest.SimRig` with a recorder behind its async clients and runners that
follow jobs queued elsewhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from cfanalytics import AsyncClient, Recorder, RetryPolicy
from cfanalytics.recording import RolloutRunner

from ..client.test_client import JOB, status_body
from ..conftest import ACCESS_KEY, SECRET_KEY, SimRig

#: How every PNG starts: a plot widget holds one.
PNG = b"\x89PNG\r\n\x1a\n"


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``scenario`` in a fresh event loop, as a kernel would run callbacks."""
    asyncio.run(scenario())


@dataclass
class RecordingRig(SimRig):
    """The default scenario in-process (seed 3), its clock advanced by the runner's sleeps;
    its async clients record into ``recorder`` and retry as a notebook's would."""

    seed: int = 3
    recorder: Recorder = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.recorder = Recorder(run_id="widgets")

    def async_client(self, **overrides: Any) -> AsyncClient:
        """An async client over the recorder-wrapped simulator, retrying up to 8 times."""
        recorded = {
            "transport": self.recorder.wrap_async(self.transport()),
            "retry": RetryPolicy(attempts=8, max_retry_after=600),
        }
        return super().async_client(**recorded | overrides)

    def runner(self, client: AsyncClient, **options: Any) -> RolloutRunner:
        """A runner that follows jobs queued elsewhere, every 15 simulated seconds."""
        settings: dict[str, Any] = {"interval": 15.0, "sleep": self.sleep} | options
        return RolloutRunner(client, self.sim.asid, queue=False, recorder=self.recorder, **settings)


def mock_client(
    queue_answers: dict[int, Callable[[], httpx.Response]], *jobs: dict[str, Any]
) -> AsyncClient:
    """A client whose API lists ``jobs`` and answers queue requests from ``queue_answers``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return httpx.Response(200, text=status_body(*jobs))
        return queue_answers[int(request.url.path.split("/")[-2])]()

    return AsyncClient(
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=1),
    )


def scripted(
    listing: Callable[[], list[dict[str, Any]]], sent: list[str] | None = None
) -> AsyncClient:
    """A client whose status list is ``listing()`` at each poll; every queue is accepted
    (and its path noted in ``sent``)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return httpx.Response(200, text=status_body(*listing()))
        if sent is not None:
            sent.append(request.url.path)
        return accepted()

    transport = httpx.MockTransport(handler)
    return AsyncClient(access_key=ACCESS_KEY, secret_key=SECRET_KEY, transport=transport)


def created(jobid: int, **fields: Any) -> dict[str, Any]:
    """A job row as the status list shows it: Created, at 0 %, unless ``fields`` say else."""
    base = {**JOB, "jobid": jobid, "jobstateid": 1, "jobstatename": "Created", "jobprogress": 0}
    return base | fields


def accepted() -> httpx.Response:
    """A queue answer: the job is Queued (a new Response each time: streams are read once)."""
    return httpx.Response(200, text=json.dumps({**JOB, "jobstateid": 3, "jobstatename": "Queued"}))


def locked() -> httpx.Response:
    """The error envelope, with HTTP 200, as the docs show it."""
    envelope = {
        "success": False,
        "error": True,
        "error_code": 1,
        "error_message": "image locked by diffid: 218595",
    }
    return httpx.Response(200, text=json.dumps(envelope))
