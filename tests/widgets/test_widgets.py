"""The widgets, headless: built against the simulator in-process, driven as a user would.

Buttons are pressed with ``.click()`` and values set with ``.value``; the asserts read both
the plain controller underneath and what the view shows. Every test runs inside an event
loop, as a Jupyter kernel does, so the widgets' tasks really run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from cfanalytics import (
    AsyncClient,
    Client,
    ConfigurationError,
    FleetTimeline,
    LiveSession,
    Recorder,
    RetryPolicy,
    events_from_cassette,
    replay,
)
from cfanalytics.live._queueing import JOB_COLUMNS, QueueController
from cfanalytics.recording._runner import RolloutRunner
from cfanalytics.simulator import ManualClock, SimTransport, Simulator, default_scenario
from cfanalytics.widgets import LiveMonitor, QueuePanel, ReplayScrubber

from ..client.test_client import JOB, status_body
from ..conftest import ACCESS_KEY, SECRET_KEY

CASSETTES = Path(__file__).parents[2] / "cassettes"
PNG = b"\x89PNG\r\n\x1a\n"


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``scenario`` in a fresh event loop, as a kernel would run callbacks."""
    asyncio.run(scenario())


class Rig:
    """The default scenario in-process, its clock advanced by the runner's sleeps."""

    def __init__(self) -> None:
        scenario = default_scenario()
        self.clock = ManualClock(scenario.start)
        self.sim = Simulator(
            scenario, seed=3, clock=self.clock, access_key=ACCESS_KEY, secret_key=SECRET_KEY
        )
        self.recorder = Recorder(run_id="widgets")

    async def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def client(self) -> AsyncClient:
        transport = SimTransport(self.sim, sleep=self.clock.sleep, async_sleep=self.sleep)
        return AsyncClient(
            base_url="http://sim.localhost", access_key=ACCESS_KEY, secret_key=SECRET_KEY,
            transport=self.recorder.wrap_async(transport), sleep=self.sleep,
            retry=RetryPolicy(attempts=8, max_retry_after=600),
        )  # fmt: skip

    def runner(self, client: AsyncClient, **options: Any) -> RolloutRunner:
        options = {"interval": 15.0, "sleep": self.sleep} | options
        return RolloutRunner(client, self.sim.asid, queue=False, recorder=self.recorder, **options)


def mock_client(
    queue_answers: dict[int, Callable[[], httpx.Response]], *jobs: dict[str, Any]
) -> AsyncClient:
    """A client whose API lists ``jobs`` and answers queue requests from ``queue_answers``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return httpx.Response(200, text=status_body(*jobs))
        return queue_answers[int(request.url.path.split("/")[-2])]()

    return AsyncClient(
        access_key=ACCESS_KEY, secret_key=SECRET_KEY, transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=1),
    )  # fmt: skip


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

    return AsyncClient(access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                       transport=httpx.MockTransport(handler))  # fmt: skip


def created(jobid: int, **fields: Any) -> dict[str, Any]:
    base = {**JOB, "jobid": jobid, "jobstateid": 1, "jobstatename": "Created", "jobprogress": 0}
    return base | fields


def accepted() -> httpx.Response:
    """A queue answer: the job is Queued (a new Response each time: streams are read once)."""
    return httpx.Response(200, text=json.dumps({**JOB, "jobstateid": 3, "jobstatename": "Queued"}))


def locked() -> httpx.Response:
    """The error envelope, with HTTP 200, as the docs show it."""
    envelope = {"success": False, "error": True, "error_code": 1,
                "error_message": "image locked by diffid: 218595"}  # fmt: skip
    return httpx.Response(200, text=json.dumps(envelope))


# --- the queue controller ------------------------------------------------------------------


def test_controller_lists_only_queueable_jobs_and_filters_them() -> None:
    """Created, Pending and Failed jobs are listed; Running is not; filters narrow the list."""
    jobs = [
        created(1, location="London"),
        created(2, location="Frankfurt", mirroring=True),
        created(3, jobstateid=6, jobstatename="Failed", location="London"),
        created(4, jobstateid=4, jobstatename="Running"),
    ]

    async def scenario() -> None:
        controller = QueueController(mock_client({}, *jobs), 7)
        listed = await controller.refresh()
        assert listed["jobid"].tolist() == [1, 2, 3]
        assert dict(listed.dtypes) == {
            k: pd.api.types.pandas_dtype(v) for k, v in JOB_COLUMNS.items()
        }  # type: ignore[arg-type]
        assert controller.options("location") == ["Frankfurt", "London"]
        assert controller.choices(location="London")["jobid"].tolist() == [1, 3]
        assert controller.choices(location="London", state="Failed")["jobid"].tolist() == [3]
        assert controller.choices(kind="mirror")["jobid"].tolist() == [2]
        with pytest.raises(ValueError, match="can filter on"):
            controller.choices(machine="x")

    run(scenario)


def test_controller_keeps_every_answer_and_hands_on_only_the_accepted() -> None:
    """One job accepted, one refused by an envelope, one refused by a 500: each kept."""
    answers = {1: accepted, 2: locked, 3: lambda: httpx.Response(500, text="oops")}
    handed: list[list[int]] = []

    async def scenario() -> None:
        controller = QueueController(mock_client(answers, created(1), created(2), created(3)), 7)
        controller.on_queued(lambda results: handed.append([r.jobid for r in results]))
        await controller.refresh()
        assert controller.confirmation([1, 2, 3]) == "Queue 3 install jobs on ASID 7: 1, 2, 3?"
        outcomes = await controller.queue([1, 2, 3])
        assert [o.ok for o in outcomes] == [True, False, False]
        assert outcomes[0].describe() == "queued: Queued"
        assert "image locked by diffid: 218595" in outcomes[1].describe()
        assert "500" in outcomes[2].describe()
        assert handed == [[1]]
        assert controller.jobs["jobid"].tolist() == [2, 3]  # 1 is queued now
        table = controller.outcome_table()
        assert table["ok"].tolist() == [True, False, False]
        with pytest.raises(ValueError, match="not a queueable job"):
            await controller.queue([1])

    run(scenario)


def test_controller_works_with_the_sync_client_too() -> None:
    """The same controller drives a blocking Client (one code path)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return httpx.Response(200, text=status_body(created(5)))
        return accepted()

    client = Client(access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                    transport=httpx.MockTransport(handler))  # fmt: skip

    async def scenario() -> None:
        controller = QueueController(client, 7)
        await controller.refresh()
        outcomes = await controller.queue([5])
        assert outcomes[0].ok and controller.queued[0].jobid == 5

    run(scenario)


def test_a_replay_is_read_only() -> None:
    """A client replaying a cassette lists what was recorded and refuses to queue."""

    async def scenario() -> None:
        live = LiveSession.open(CASSETTES / "demo.yaml")
        controller = QueueController(live.client, live.asid)
        assert controller.read_only is not None and "demo.yaml" in controller.read_only
        assert len(await controller.refresh()) > 10
        with pytest.raises(ConfigurationError, match="replay"):
            await controller.queue(controller.jobs["jobid"].tolist()[:1])
        fresh = LiveSession.open(CASSETTES / "demo.yaml")  # the first listing again
        panel = QueuePanel(fresh.client, fresh.asid)
        await panel.tasks.idle()
        panel.select_all.click()
        assert panel.select.value and panel.queue_button.disabled
        assert "queues nothing" in panel.status.value

    run(scenario)


# --- the queue panel -----------------------------------------------------------------------


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
    client = AsyncClient(access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                         transport=httpx.MockTransport(lambda r: httpx.Response(200)))  # fmt: skip
    panel = QueuePanel(client, 7)
    assert "needs a running event loop" in panel.tasks.pane.value


# --- the live monitor ----------------------------------------------------------------------


def test_monitor_follows_queued_jobs_to_the_end() -> None:
    """Panel to monitor on the simulator: every followed job ends, the view shows it all."""
    rig = Rig()
    finished: list[str | None] = []

    async def scenario() -> None:
        async with rig.client() as client:
            panel = QueuePanel(client, rig.sim.asid)
            monitor = LiveMonitor(rig.runner(client))
            monitor.on_finished(lambda progress: finished.append(progress.stop_reason))
            panel.on_queued(monitor.follow)
            assert "Nothing to follow yet" in monitor.status.value
            assert monitor.start_button.disabled
            await panel.tasks.idle()
            panel.filters["location"].value = "London"
            panel.select_all.click()
            chosen = set(panel.select.value)
            panel.queue_button.click()
            panel.confirm_button.click()
            await panel.tasks.idle()
            assert monitor.running and not monitor.stop_button.disabled
            await monitor.tasks.idle()
            assert monitor.monitor.following == chosen
            assert "Finished: every queued job ended" in monitor.status.value
            assert "100 % done" in monitor.header.value
            assert monitor.table.value.count('class="cfa-job-progress"') == len(chosen)
            assert bytes(monitor.plot.value).startswith(PNG)
            assert finished == ["every queued job ended"]
            assert not (monitor.tasks.errors or panel.tasks.errors)

    run(scenario)


def test_monitor_rows_show_progress_eta_and_slip() -> None:
    """Mid-rollout the table shows running jobs with a bar, an ETA and a slip."""
    rig = Rig()

    async def scenario() -> None:
        async with rig.client() as client:
            panel = QueuePanel(client, rig.sim.asid)
            runner = rig.runner(client, max_polls=12)
            monitor = LiveMonitor(runner, redraw_s=0, plot_s=0)
            panel.on_queued(monitor.follow)
            await panel.tasks.idle()
            panel.select_all.click()
            panel._on_confirm(None)  # the confirm button's handler
            await panel.tasks.idle()
            await monitor.tasks.idle()
            fleet = monitor.monitor.fleet()
            running = fleet.loc[fleet["state"] == "running"]
            assert len(running) > 0, "12 polls in, some jobs should be running"
            assert "reached 12 polls" in monitor.status.value
            row = running.iloc[0]
            html = monitor.table.value
            assert f'data-jobid="{row.jobid}"' in html
            assert f'value="{int(row.jobprogress)}"' in html
            assert "running" in monitor.header.value and "median in" in monitor.header.value
            assert not monitor.tasks.errors

    run(scenario)


def test_stop_ends_polling_at_once() -> None:
    """Stop cuts the wait between polls short, even with an hour-long interval."""
    rig = Rig()

    async def scenario() -> None:
        async with rig.client() as client:
            runner = rig.runner(client, interval=3600.0, sleep=asyncio.sleep)
            controller = QueueController(client, rig.sim.asid)
            await controller.refresh()
            results = await controller.queue(controller.jobs["jobid"].tolist()[:2])
            monitor = LiveMonitor(runner)
            monitor.follow([r.result for r in results if r.result is not None])
            for _ in range(1000):  # yield until the first poll is in; then it waits an hour
                if runner.progress.polls:
                    break
                await asyncio.sleep(0)
            assert runner.progress.polls == 1
            assert monitor.running
            monitor.stop_button.click()
            await asyncio.wait_for(monitor.tasks.idle(), timeout=10)
            assert not monitor.running
            assert "Finished: stopped" in monitor.status.value

    run(scenario)


def test_an_error_while_polling_is_shown() -> None:
    """An unexpected error inside the polling task: shown in the monitor, polling stops."""
    listings = iter([[created(1)]])

    def listing() -> list[dict[str, Any]]:
        for jobs in listings:
            return jobs
        raise RuntimeError("the network card caught fire")

    async def scenario() -> None:
        client = scripted(listing)
        controller = QueueController(client, 7)
        await controller.refresh()
        monitor = LiveMonitor(RolloutRunner(client, 7, queue=False, interval=0))
        controller.on_queued(monitor.follow)
        await controller.queue([1])
        await monitor.tasks.idle()
        assert [type(e) for e in monitor.tasks.errors] == [RuntimeError]
        assert "polling failed: RuntimeError: the network card caught fire" in (
            monitor.tasks.pane.value
        )
        assert not monitor.running and not monitor.start_button.disabled

    run(scenario)


def test_monitor_without_a_recorder_shows_what_the_runner_saw() -> None:
    """Any runner will do: without a recorder the rows come from the runner's progress."""
    listings = iter(
        [[created(1)], [created(1, jobstateid=4, jobstatename="Running", jobprogress=42)], []]
    )
    seen: list[str] = []

    async def scenario() -> None:
        client = scripted(lambda: next(listings))
        controller = QueueController(client, 7)
        await controller.refresh()
        runner = RolloutRunner(client, 7, queue=False, interval=0)
        monitor = LiveMonitor(runner, redraw_s=0)
        runner_progress = runner.on_progress
        runner.on_progress = lambda p: (runner_progress(p), seen.append(monitor.table.value))
        controller.on_queued(monitor.follow)
        await controller.queue([1])
        await monitor.tasks.idle()
        # The view redraws in its own task after each poll: a later poll sees it.
        assert any('value="42"' in html and "running" in html for html in seen)
        assert "completed" in monitor.table.value and "100 % done" in monitor.header.value
        assert not monitor.tasks.errors

    run(scenario)


# --- the replay scrubber -------------------------------------------------------------------


def test_scrubber_shows_the_fleet_at_each_poll_and_what_happened_later() -> None:
    """Slider stops at every poll; at() is the timeline's snapshot; the view shows it."""
    events = events_from_cassette(CASSETTES / "demo.yaml")
    timeline = FleetTimeline(events)

    async def scenario() -> None:
        scrubber = ReplayScrubber(CASSETTES / "demo.yaml")
        assert scrubber.slider.max == len(timeline) - 1 and scrubber.slider.value == 0
        first = scrubber.at()
        pd.testing.assert_frame_equal(first, timeline.at(timeline.times[0]))
        assert f"Poll 1 of {len(timeline)}" in scrubber.summary.value
        scrubber.show(-1)
        assert scrubber.time == timeline.times[-1]
        assert f"Poll {len(timeline)} of {len(timeline)}" in scrubber.summary.value
        end = scrubber.at()
        assert (end["state"] == "completed").sum() > (first["state"] == "completed").sum()
        assert scrubber.table.value.count("<tr data-jobid=") == len(end)
        assert "completed" in scrubber.table.value
        scrubber.play.value = 3  # Play drives the slider
        assert scrubber.slider.value == 3 and scrubber.time == timeline.times[3]
        assert bytes(scrubber.plot.value).startswith(PNG)
        assert not scrubber.tasks.errors

    run(scenario)


def test_scrubber_reloads_from_a_live_source() -> None:
    """A source with .events is read again on reload, which goes to the newest poll."""

    class Growing:
        def __init__(self) -> None:
            self.all = events_from_cassette(CASSETTES / "demo.yaml")
            self.events = self.all.iloc[:0]

    source = Growing()
    scrubber = ReplayScrubber(source)
    assert "Nothing recorded yet" in scrubber.summary.value and scrubber.slider.disabled
    source.events = source.all
    scrubber.reload(object())  # as LiveMonitor.on_finished calls it
    assert not scrubber.slider.disabled and scrubber.slider.value == scrubber.slider.max > 0
    with pytest.raises(TypeError, match="events table"):
        ReplayScrubber(42)


# --- the live session ----------------------------------------------------------------------


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

    live = LiveSession.open("simulator", speed=2000.0, out_dir=tmp_path)

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
    written = [p for p in live.folder.rglob("*") if p.is_file()]
    assert len(written) >= 2  # the cassette and the event log
    for path in written:
        data = path.read_bytes()
        assert ACCESS_KEY.encode() not in data and SECRET_KEY.encode() not in data, path
    assert SECRET_KEY not in repr(live) and ACCESS_KEY not in repr(live)


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
    assert live.cassette is not None
    pd.testing.assert_frame_equal(replay(live.cassette).events, live.events)


def test_open_refuses_unknown_sources_and_a_missing_asid() -> None:
    """Mistakes in the parameters cell get one clear error."""
    with pytest.raises(ConfigurationError, match="ASID"):
        LiveSession.open("api")
    with pytest.raises(ConfigurationError, match="unknown source"):
        LiveSession.open("simulater")
