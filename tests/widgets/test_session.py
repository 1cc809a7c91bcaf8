"""Notebook sessions end to end: a LiveSession driven through the queue panel and the live
monitor, as a user would, records a rollout that replays to the same events.

Each rollout runs in its own event loop, as a Jupyter kernel runs callbacks.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from cfanalytics import HistoryStore, LiveSession, events_from_cassette, replay
from cfanalytics.widgets import LiveMonitor, QueuePanel

from ..conftest import ACCESS_KEY, SECRET_KEY


async def one_location_rollout(live: LiveSession) -> LiveMonitor:
    """As a user would: queue every job of the first location, follow them, close."""
    panel = QueuePanel(live.client, live.asid)
    monitor = LiveMonitor(live.runner(), plot_s=60)
    panel.on_queued(monitor.follow)
    await panel.tasks.idle()
    panel.filters["location"].value = panel.controller.options("location")[0]
    panel.select_all.click()
    panel.queue_button.click()
    panel.confirm_button.click()
    await panel.tasks.idle()
    await monitor.tasks.idle()
    await live.aclose()
    return monitor


def test_live_session_records_a_replayable_rollout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queue from a panel, follow with the monitor: the cassette replays to the same events,
    and neither the cassette nor the event log holds a key."""
    monkeypatch.setattr(
        "cfanalytics.live._session.throwaway_keys", lambda: (ACCESS_KEY, SECRET_KEY)
    )

    store = tmp_path / "store"
    live = LiveSession.open("simulator", speed=2000.0, out_dir=tmp_path / "out", history=store)

    assert str(tmp_path) in repr(live) and "embedded simulator" in repr(live)
    monitor = asyncio.run(one_location_rollout(live))
    assert "every queued job ended" in monitor.status.value
    assert live.cassette is not None and live.cassette.is_file()
    again = replay(live.cassette)
    pd.testing.assert_frame_equal(again.events, events_from_cassette(live.cassette))
    pd.testing.assert_frame_equal(again.events, live.events)
    assert again.progress.stop_reason == "every queued job ended"
    assert live.recording is not None and live.folder is not None
    assert live.recording.writer.metadata["complete"] is True
    # The rollout's end added the run to the history store, as recorded.
    pd.testing.assert_frame_equal(HistoryStore(store).events(), live.events)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 3  # the cassette, the event log and the store
    for path in written:
        data = path.read_bytes()
        assert ACCESS_KEY.encode() not in data and SECRET_KEY.encode() not in data, path
    assert SECRET_KEY not in repr(live) and ACCESS_KEY not in repr(live)


@pytest.mark.slow  # some 20 s
def test_refused_queue_requests_replay_too(tmp_path: Path) -> None:
    """With faults (5xx, 429, dropped connections) some queue requests are refused: the plan
    keeps every job asked for, so the replay asks the same and gets the same events."""
    live = LiveSession.simulator(speed=3000.0, out_dir=tmp_path, seed=5, faults=0.3)

    asyncio.run(one_location_rollout(live))
    assert live.recording is not None
    outcomes = live.recording.writer.metadata
    asked = live.events.loc[live.events["endpoint"] == "queue"]
    assert asked["problem"].notna().any() and asked["problem"].isna().any()
    assert outcomes["complete"] is True and len(outcomes["jobs"]) == asked["seq"].nunique()
    assert outcomes["queue_recovery"] is False  # the panel asks once; so does the replay
    assert live.cassette is not None
    pd.testing.assert_frame_equal(replay(live.cassette).events, live.events)
