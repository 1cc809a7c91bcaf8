"""The queue panel, headless: built against mock clients, driven as a user would.

Buttons are pressed with ``.click()`` and values set with ``.value``; the asserts read both
the controller underneath (``panel.controller``) and what the view shows. Every test but
the last runs inside an event loop, as a Jupyter kernel does, so the panel's tasks run.
"""

from __future__ import annotations

import httpx
import pytest

from cfanalytics import AsyncClient, LiveSession
from cfanalytics.widgets import QueuePanel

from ..conftest import ACCESS_KEY, CASSETTES, SECRET_KEY
from ..live.doubles import accepted, created, locked, mock_client, run, scripted


def test_panel_filters_selects_confirms_and_shows_each_result() -> None:
    """The whole flow through the view: nothing is queued before the confirmation."""
    answers = {1: accepted, 2: locked, 3: accepted}
    jobs = [created(1, location="London"), created(2, location="London"), created(3)]
    jobs[2]["location"] = "Frankfurt"
    followed: list[int] = []

    async def scenario() -> None:
        panel = QueuePanel(mock_client(answers, *jobs), 7)
        panel.on_queued(lambda results: followed.extend(r.jobid for r in results))
        await panel.tasks.idle()
        assert "3 queueable jobs listed" in panel.status.value
        assert [j for _, j in panel.select.options] == [1, 2, 3]
        panel.filters["location"].value = "London"
        assert [j for _, j in panel.select.options] == [1, 2]
        assert panel.queue_button.disabled and panel.queue_button.description == "Queue 0 jobs"
        panel.select_all.click()
        assert panel.select.value == (1, 2) and not panel.queue_button.disabled
        panel.queue_button.click()
        assert panel.confirm.layout.display == "flex"
        assert "Queue 2 install jobs on ASID 7: 1, 2?" in panel.question.value
        panel.cancel_button.click()
        assert panel.confirm.layout.display == "none" and not panel.controller.outcomes
        panel.queue_button.click()
        panel.confirm_button.click()
        await panel.tasks.idle()
        assert followed == [1]
        assert "1 of 2 queued on ASID 7" in panel.results.value
        assert "queued: Queued" in panel.results.value
        assert "image locked by diffid: 218595" in panel.results.value
        assert [j for _, j in panel.select.options] == [2]  # 1 is queued now
        assert not panel.tasks.errors

    run(scenario)


def test_a_replayed_panel_selects_but_queues_nothing() -> None:
    """On a replay the panel lists and selects the recorded jobs, never offers to queue
    them, and says why."""

    async def scenario() -> None:
        live = LiveSession.open(CASSETTES / "demo.yaml")
        panel = QueuePanel(live.client, live.asid)
        await panel.tasks.idle()
        panel.select_all.click()
        assert panel.select.value and panel.queue_button.disabled
        assert "queues nothing" in panel.status.value

    run(scenario)


def test_an_error_in_a_callback_is_shown_not_lost() -> None:
    """Wrong keys: the listing fails, and the panel says so in one readable line."""

    async def scenario() -> None:
        forbidden = httpx.MockTransport(lambda r: httpx.Response(403, text='{"error": true}'))
        client = AsyncClient(access_key=ACCESS_KEY, secret_key=SECRET_KEY, transport=forbidden)
        panel = QueuePanel(client, 7)
        await panel.tasks.idle()
        assert len(panel.tasks.errors) == 1
        assert "listing the jobs failed" in panel.tasks.pane.value
        assert "CLANFORGE_ACCESS_KEY" in panel.tasks.pane.value
        assert SECRET_KEY not in panel.tasks.pane.value

        panel.tasks.clear()
        assert panel.tasks.pane.value == ""

    run(scenario)


def test_a_failing_listener_is_shown_and_the_batch_still_counts() -> None:
    """A callback that raises after queueing: shown in the pane; the job stays queued."""

    def broken(results: object) -> None:
        raise RuntimeError("boom")

    async def scenario() -> None:
        panel = QueuePanel(mock_client({1: accepted}, created(1)), 7)
        panel.on_queued(broken)
        await panel.tasks.idle()
        panel.select_all.click()
        panel.queue_button.click()
        panel.confirm_button.click()
        await panel.tasks.idle()
        assert "handing on the queued jobs failed: RuntimeError: boom" in panel.tasks.pane.value
        assert "1 of 1 queued" in panel.results.value and panel.queued[0].jobid == 1

    run(scenario)


def test_a_double_click_on_confirm_queues_each_job_once() -> None:
    """Queueing is not idempotent: two clicks in a row send each job once."""
    sent: list[str] = []

    async def scenario() -> None:
        panel = QueuePanel(scripted(lambda: [created(1), created(2)], sent), 7)
        await panel.tasks.idle()
        panel.select_all.click()
        panel.queue_button.click()
        panel.confirm_button.click()
        panel.confirm_button.click()
        await panel.tasks.idle()
        assert len(sent) == 2 and len(set(sent)) == 2
        with pytest.raises(ValueError, match="not a queueable job"):
            await panel.controller.queue([1])  # and the controller refuses a resend itself

    run(scenario)


def test_without_an_event_loop_the_widget_says_so() -> None:
    """Outside Jupyter (no running loop) the panel tells why nothing happens."""
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    client = AsyncClient(access_key=ACCESS_KEY, secret_key=SECRET_KEY, transport=transport)
    panel = QueuePanel(client, 7)
    assert "needs a running event loop" in panel.tasks.pane.value
