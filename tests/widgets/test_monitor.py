"""The live monitor, headless: built against the simulator in-process (or a scripted
client), fed by a queue panel or controller, watched as a user would.

The asserts read both the plain controller underneath (``monitor.monitor``) and what the
view shows. Every test runs inside an event loop, as a Jupyter kernel does, so the
widgets' tasks really run. The controller alone is tested in ``tests/live/test_monitor.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

import numpy as np
import pandas as pd

from cfanalytics.live import QueueController
from cfanalytics.recording import RolloutRunner
from cfanalytics.simulator import ManualClock, default_scenario
from cfanalytics.widgets import LiveMonitor, QueuePanel

from ..live.doubles import PNG, RecordingRig, created, run, scripted


def test_monitor_follows_queued_jobs_to_the_end() -> None:
    """Panel to monitor on the simulator: every followed job ends, the view shows it all."""
    rig = RecordingRig()
    finished: list[str | None] = []

    async def scenario() -> None:
        async with rig.async_client() as client:
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
            states = monitor.monitor.fleet()["state"]
            completed, failed = (states == "completed").sum(), (states == "failed").sum()
            assert failed > 0, "seed 3 fails a London job: 100 % is never reached"
            for share in (50, 90, 100):
                reached = completed >= np.ceil(len(states) * share / 100)
                said = "done at" if reached else f"not reached: {failed} failed"
                assert f"{share} % {said}" in monitor.forecast.value
            assert 'class="cfa-job-forecast">\u2013<' in monitor.table.value  # ended: none
            assert monitor.table.value.count('class="cfa-job-progress"') == len(chosen)
            assert bytes(monitor.plot.value).startswith(PNG)
            assert finished == ["every queued job ended"]
            assert not (monitor.tasks.errors or panel.tasks.errors)

    run(scenario)


def test_monitor_rows_show_progress_eta_and_slip() -> None:
    """Mid-rollout the table shows running jobs with a bar, an ETA and a slip."""
    rig = RecordingRig()

    async def scenario() -> None:
        async with rig.async_client() as client:
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


def hms(moment: Any) -> str:
    """A time as the monitor shows it: ``HH:MM:SS``, UTC."""
    return pd.Timestamp(moment).strftime("%H:%M:%S")


def band(median: Any, lower: Any, upper: Any) -> str:
    """A forecast and its 80 % band as the monitor writes it."""
    last = "never" if pd.isna(upper) else hms(upper)
    return f"{hms(median)} ({hms(lower)}\u2013{last}"


def test_the_forecast_finish_is_shown_at_each_poll_and_each_job_has_its_band() -> None:
    """Redrawn after each of 12 polls (a clock that stands still makes every table redraw
    due, and the plot's never after the first): too early at first, then the forecast of
    each share as of that very poll; at the end the line and every open job's row show the
    monitor's forecast, the band next to the ETA."""
    rig = RecordingRig()
    shown: list[tuple[str, str]] = []

    async def scenario() -> None:
        async with rig.async_client() as client:
            controller = QueueController(client, rig.sim.asid)
            await controller.refresh()
            runner = rig.runner(client, max_polls=12)
            monitor = LiveMonitor(runner, redraw_s=0, plot_s=3600, clock=ManualClock(0).now)
            chained = runner.on_progress

            def on_progress(progress: Any) -> None:
                chained(progress)
                monitor.refresh()
                shown.append((hms(progress.last_seen), monitor.forecast.value))

            runner.on_progress = on_progress
            controller.on_queued(monitor.follow)
            await controller.queue(controller.choices(location="London")["jobid"].tolist())
            await monitor.tasks.idle()
            assert not monitor.tasks.errors

            assert "too early to say" in shown[0][1]
            for polled, line in shown:
                assert f"as of {polled}" in line
            assert len({line for _, line in shown}) > 5, "the forecast moves as polls come"
            (found,) = monitor.monitor.forecasts()
            line = monitor.forecast.value
            assert line == shown[-1][1] and "Forecast finish" in line
            for row in found.rollout.itertuples():
                if row.done:
                    assert f"{row.share} % done at {hms(row.forecast_at)}" in line
                else:
                    expected = band(row.forecast_at, row.lower_at, row.upper_at)
                    assert f"{row.share} % {expected}" in line

            table = monitor.table.value
            fleet = monitor.monitor.fleet_forecast()
            running = fleet.loc[fleet["state"] == "running"]
            assert len(running) > 0
            for job in running.itertuples():
                found_row = re.search(f'<tr data-jobid="{job.jobid}">(.*?)</tr>', table)
                assert found_row is not None
                eta = f"<td>{hms(job.jobeta)}</td>"
                forecast = band(job.forecast_at, job.lower_at, job.upper_at)
                assert f'{eta}<td class="cfa-job-forecast">{forecast}' in found_row.group(1)

    run(scenario)


def test_the_monitor_names_jobs_that_wait_on_a_failed_mirror() -> None:
    """Every mirror job fails: the status says which machine jobs wait on which mirror job,
    and the command that queues it again."""
    scenario = dataclasses.replace(default_scenario(), mirror_failure_rate=1.0)
    rig = RecordingRig(scenario=scenario)

    async def scenario_() -> None:
        async with rig.async_client() as client:
            panel = QueuePanel(client, rig.sim.asid)
            monitor = LiveMonitor(rig.runner(client, max_polls=40), redraw_s=0, plot_s=0)
            panel.on_queued(monitor.follow)
            await panel.tasks.idle()
            panel.select_all.click()
            panel._on_confirm(None)
            await panel.tasks.idle()
            await monitor.tasks.idle()
            stranded = monitor.monitor.progress.stranded
            assert stranded, "machine jobs wait on the failed mirror jobs"
            # Machines wait on failed mirrors: no share of them will complete.
            failed = len(monitor.monitor.fleet().query("state == 'failed'"))
            assert f"90 % may never: {failed} failed" in monitor.forecast.value
            for strand in stranded:
                assert f"wait on mirror job {strand.mirror}, which failed" in monitor.status.value
                assert (
                    f"cfanalytics queue {strand.mirror} --asid 1 --mirror" in monitor.status.value
                )
            assert not monitor.tasks.errors

    run(scenario_)


def test_stop_ends_polling_at_once() -> None:
    """Stop cuts the wait between polls short, even with an hour-long interval."""
    rig = RecordingRig()

    async def scenario() -> None:
        async with rig.async_client() as client:
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
        assert monitor.forecast.value == ""  # nothing recorded: nothing to forecast from
        assert not monitor.tasks.errors

    run(scenario)
