"""The rollout runner against the in-process simulator, driven by its manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from cfanalytics import RetryPolicy
from cfanalytics.recording import RolloutProgress, RolloutRunner

from ..conftest import SimRig

#: How every client here retries: patiently, the waits cost no real time.
RETRY = RetryPolicy(attempts=8, max_retry_after=600)


def run(rig: SimRig, **options: Any) -> RolloutProgress:
    """Run a :class:`RolloutRunner` with ``options`` over ``rig`` until it stops."""

    async def go() -> RolloutProgress:
        async with rig.async_client(retry=RETRY) as client:
            return await RolloutRunner(client, rig.sim.asid, sleep=rig.sleep, **options).run()

    return asyncio.run(go())


def outcomes(rig: SimRig) -> dict[int, str]:
    """Each job's true outcome, by job id."""
    return {jobid: job["outcome"] for jobid, job in rig.truth().items()}


@pytest.fixture
def rig(sim_rig: Callable[..., SimRig]) -> SimRig:
    """The default scenario in-process, with a manual clock."""
    return sim_rig(seed=7)


def test_runs_every_queueable_job_to_the_end(rig: SimRig) -> None:
    """All queueable jobs are queued and followed until each ended, as the truth says."""
    progress = run(rig, interval=15)
    assert progress.stop_reason == "every queued job ended"
    assert len(progress.watched) >= 40 and progress.done and not progress.queue_errors
    truth = outcomes(rig)
    for jobid, outcome in progress.ended.items():
        assert truth[jobid] == outcome, jobid
    assert progress.elapsed_s > 300  # a real rollout takes minutes of simulated time


def test_only_given_jobs_are_queued(rig: SimRig) -> None:
    """Given job ids, only those are queued; ids not listed are skipped."""
    listed = sorted(outcomes(rig))[:3]
    progress = run(rig, jobs=[*listed, 1], interval=30)
    assert sorted(q.jobid for q in progress.queued) == listed
    assert progress.watched == frozenset(listed)


def test_limits_stop_the_run(rig: SimRig, sim_rig: Callable[..., SimRig]) -> None:
    """max_polls and max_duration stop the loop, read from responses."""
    progress = run(rig, interval=15, max_polls=4)
    assert progress.stop_reason == "reached 4 polls" and progress.polls == 4
    progress = run(sim_rig(seed=7), interval=15, max_duration=120)
    assert progress.stop_reason == "responses span 120 s"
    assert 120 <= progress.elapsed_s < 150


def test_stop_from_a_callback(rig: SimRig) -> None:
    """stop() ends the loop after the current poll; callbacks see every poll."""
    seen: list[int] = []
    runner_box: list[RolloutRunner] = []

    def on_progress(progress: RolloutProgress) -> None:
        seen.append(progress.polls)
        if progress.polls == 3:
            runner_box[0].stop()

    async def go() -> RolloutProgress:
        async with rig.async_client(retry=RETRY) as client:
            runner = RolloutRunner(client, 1, sleep=rig.sleep, on_progress=on_progress)
            runner_box.append(runner)
            return await runner.run()

    progress = asyncio.run(go())
    assert progress.stop_reason == "stopped" and seen == [1, 2, 3]


def test_faulty_api_does_not_invent_completions(sim_rig: Callable[..., SimRig]) -> None:
    """With faults, failed polls never count as absence: outcomes still match the truth."""
    faulty = sim_rig(faults=0.15, seed=11)
    progress = run(faulty, interval=15, max_polls=400)
    truth = outcomes(faulty)
    assert progress.ended, "the rollout should make progress despite faults"
    for jobid, outcome in progress.ended.items():
        assert truth[jobid] == outcome, jobid


def test_negative_interval_is_a_programmer_error(rig: SimRig) -> None:
    """A negative interval is refused at construction."""
    with pytest.raises(ValueError):
        RolloutRunner(rig.async_client(retry=RETRY), 1, interval=-1)


def test_a_stop_before_the_run_sends_nothing(rig: SimRig) -> None:
    """stop() before run() starts (a Stop pressed at once) is not lost."""
    sent: list[str] = []

    async def go() -> RolloutProgress:
        async with rig.async_client(retry=RETRY) as client:
            runner = RolloutRunner(client, 1, sleep=rig.sleep)
            runner.on_progress = lambda progress: sent.append("poll")
            runner.stop()
            return await runner.run()

    progress = asyncio.run(go())
    assert progress.stop_reason == "stopped" and progress.polls == 0 and not sent


def test_running_again_never_queues_twice(rig: SimRig) -> None:
    """A second run() carries on polling; it neither lists-and-queues again nor polls an
    ended rollout."""

    async def go() -> tuple[RolloutProgress, int, int]:
        async with rig.async_client(retry=RETRY) as client:
            runner = RolloutRunner(client, 1, sleep=rig.sleep, max_polls=3)
            await runner.run()
            queued = len(runner.progress.queued)
            runner.max_polls = None
            await runner.run()
            polls = runner.progress.polls
            await runner.run()  # everything has ended: no request at all
            assert runner.progress.polls == polls
            return runner.progress, queued, len(runner.progress.queued)

    progress, first, after = asyncio.run(go())
    assert first == after > 0
    assert progress.stop_reason == "every queued job ended"


def test_a_sleep_that_raises_is_not_swallowed(rig: SimRig) -> None:
    """An injected sleep that fails ends the run with its error, never a flat-out loop."""

    async def broken_sleep(seconds: float) -> None:
        raise OSError("clock gone")

    async def go() -> RolloutProgress:
        async with rig.async_client(retry=RETRY) as client:
            return await RolloutRunner(client, 1, sleep=broken_sleep, max_polls=50).run()

    with pytest.raises(OSError, match="clock gone"):
        asyncio.run(go())
