"""The rollout runner against the in-process simulator, driven by its manual clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cfanalytics import AsyncClient, RetryPolicy
from cfanalytics.recording import RolloutProgress, RolloutRunner
from cfanalytics.simulator import ManualClock, SimTransport, Simulator, default_scenario

from ..conftest import ACCESS_KEY, SECRET_KEY


@dataclass
class Rig:
    sim: Simulator
    clock: ManualClock

    def client(self) -> AsyncClient:
        return AsyncClient(
            base_url="http://sim.localhost",
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            transport=SimTransport(self.sim, sleep=self.clock.sleep, async_sleep=self.sleep),
            retry=RetryPolicy(attempts=8, max_retry_after=600),
            sleep=self.sleep,
        )

    async def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def run(self, **options: object) -> RolloutProgress:
        async def go() -> RolloutProgress:
            async with self.client() as client:
                runner = RolloutRunner(client, self.sim.asid, sleep=self.sleep, **options)  # type: ignore[arg-type]
                return await runner.run()

        return asyncio.run(go())

    def truth(self) -> dict[int, str]:
        response = self.sim.handle("GET", "/_sim/truth", {}, {})
        return {job["jobid"]: job["outcome"] for job in json.loads(response.body)["jobs"]}


def rig(faults: float = 0.0, seed: int = 7) -> Rig:
    scenario = default_scenario()
    clock = ManualClock(scenario.start)
    sim = Simulator(
        scenario,
        seed=seed,
        clock=clock,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        faults=faults,
    )
    return Rig(sim, clock)


@pytest.fixture
def sim_rig() -> Iterator[Rig]:
    """The default scenario in-process, with a manual clock."""
    yield rig()


def test_runs_every_queueable_job_to_the_end(sim_rig: Rig) -> None:
    """All queueable jobs are queued and followed until each ended, as the truth says."""
    progress = sim_rig.run(interval=15)
    assert progress.stop_reason == "every queued job ended"
    assert len(progress.watched) >= 40 and progress.done and not progress.queue_errors
    truth = sim_rig.truth()
    for jobid, outcome in progress.ended.items():
        assert truth[jobid] == outcome, jobid
    assert progress.elapsed_s > 300  # a real rollout takes minutes of simulated time


def test_only_given_jobs_are_queued(sim_rig: Rig) -> None:
    """Given job ids, only those are queued; ids not listed are skipped."""
    listed = sorted(sim_rig.truth())[:3]
    progress = sim_rig.run(jobs=[*listed, 1], interval=30)
    assert sorted(q.jobid for q in progress.queued) == listed
    assert progress.watched == frozenset(listed)


def test_limits_stop_the_run(sim_rig: Rig) -> None:
    """max_polls and max_duration stop the loop, read from responses."""
    progress = sim_rig.run(interval=15, max_polls=4)
    assert progress.stop_reason == "reached 4 polls" and progress.polls == 4
    other = rig()
    progress = other.run(interval=15, max_duration=120)
    assert progress.stop_reason == "responses span 120 s"
    assert 120 <= progress.elapsed_s < 150


def test_stop_from_a_callback() -> None:
    """stop() ends the loop after the current poll; callbacks see every poll."""
    seen: list[int] = []
    runner_box: list[RolloutRunner] = []
    the_rig = rig()

    def on_progress(progress: RolloutProgress) -> None:
        seen.append(progress.polls)
        if progress.polls == 3:
            runner_box[0].stop()

    async def go() -> RolloutProgress:
        async with the_rig.client() as client:
            runner = RolloutRunner(client, 1, sleep=the_rig.sleep, on_progress=on_progress)
            runner_box.append(runner)
            return await runner.run()

    progress = asyncio.run(go())
    assert progress.stop_reason == "stopped" and seen == [1, 2, 3]


def test_faulty_api_does_not_invent_completions() -> None:
    """With faults, failed polls never count as absence: outcomes still match the truth."""
    faulty = rig(faults=0.15, seed=11)
    progress = faulty.run(interval=15, max_polls=400)
    truth = faulty.truth()
    assert progress.ended, "the rollout should make progress despite faults"
    for jobid, outcome in progress.ended.items():
        assert truth[jobid] == outcome, jobid


def test_negative_interval_is_a_programmer_error(sim_rig: Rig) -> None:
    """A negative interval is refused at construction."""
    with pytest.raises(ValueError):
        RolloutRunner(sim_rig.client(), 1, interval=-1)


def test_a_stop_before_the_run_sends_nothing(sim_rig: Rig) -> None:
    """stop() before run() starts (a Stop pressed at once) is not lost."""
    sent: list[str] = []

    async def go() -> RolloutProgress:
        async with sim_rig.client() as client:
            runner = RolloutRunner(client, 1, sleep=sim_rig.sleep)
            runner.on_progress = lambda progress: sent.append("poll")
            runner.stop()
            return await runner.run()

    progress = asyncio.run(go())
    assert progress.stop_reason == "stopped" and progress.polls == 0 and not sent


def test_running_again_never_queues_twice(sim_rig: Rig) -> None:
    """A second run() carries on polling; it neither lists-and-queues again nor polls an
    ended rollout."""

    async def go() -> tuple[RolloutProgress, int, int]:
        async with sim_rig.client() as client:
            runner = RolloutRunner(client, 1, sleep=sim_rig.sleep, max_polls=3)
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


def test_a_sleep_that_raises_is_not_swallowed(sim_rig: Rig) -> None:
    """An injected sleep that fails ends the run with its error, never a flat-out loop."""

    async def broken_sleep(seconds: float) -> None:
        raise OSError("clock gone")

    async def go() -> RolloutProgress:
        async with sim_rig.client() as client:
            return await RolloutRunner(client, 1, sleep=broken_sleep, max_polls=50).run()

    with pytest.raises(OSError, match="clock gone"):
        asyncio.run(go())
