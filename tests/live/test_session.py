"""Live sessions without a widget: what ``LiveSession.open`` accepts, and a replay's
read-only client. Sessions driven through the widgets are in ``tests/widgets``."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfanalytics import ConfigurationError, LiveSession
from cfanalytics.live import QueueController

from ..conftest import CASSETTES
from .doubles import run


def test_a_replay_is_read_only() -> None:
    """A client replaying a cassette lists what was recorded and refuses to queue."""

    async def scenario() -> None:
        live = LiveSession.open(CASSETTES / "demo.yaml")
        controller = QueueController(live.client, live.asid)
        assert controller.read_only is not None and "demo.yaml" in controller.read_only
        assert len(await controller.refresh()) > 10
        with pytest.raises(ConfigurationError, match="replay"):
            await controller.queue(controller.jobs["jobid"].tolist()[:1])

    run(scenario)


def test_browsing_a_replay_of_a_concurrent_run_never_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """demo.yaml was recorded with 8 queue requests in flight: its replay as a run serves
    answers in recorded order, but a browsing session asks in its own order (list, list
    again, poll) and is answered at once, never held for queue answers nobody asks for."""
    from cfanalytics.recording import _replay

    monkeypatch.setattr(_replay, "_TURN_TIMEOUT_S", 0.5)  # a hold would fail fast

    async def scenario() -> None:
        live = LiveSession.open(CASSETTES / "demo.yaml")
        controller = QueueController(live.client, live.asid)
        assert len(await controller.refresh()) > 10
        await controller.refresh()  # the next recorded listing: all queued by then
        progress = await live.runner(max_polls=3).run()
        assert progress.stop_reason == "nothing was queued"
        await live.aclose()

    run(scenario)


def test_open_refuses_unknown_sources_and_a_missing_asid() -> None:
    """Mistakes in the parameters cell get one clear error."""
    with pytest.raises(ConfigurationError, match="ASID"):
        LiveSession.open("api")
    with pytest.raises(ConfigurationError, match="unknown source"):
        LiveSession.open("simulater")


def test_a_replay_adds_nothing_to_a_history(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="adds nothing to a history"):
        LiveSession.open(CASSETTES / "demo.yaml", history=tmp_path / "store")
