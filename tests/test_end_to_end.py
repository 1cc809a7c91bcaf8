"""The client against the simulator over real HTTP on loopback: the two meet only here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from cfanalytics import (
    APIError,
    AuthenticationError,
    Client,
    JobState,
    RetryPolicy,
)
from cfanalytics.simulator import ManualClock, Simulator

from .conftest import ACCESS_KEY, SECRET_KEY, SimRig


@dataclass
class Live:
    sim: Simulator
    clock: ManualClock
    url: str
    client: Client


@pytest.fixture
def live(sim_rig: Callable[..., SimRig]) -> Iterator[Live]:
    """The default scenario served on loopback with a manual clock, and a client for it."""
    rig = sim_rig(seed=7)
    with (
        rig.serve() as url,
        Client(base_url=url, access_key=ACCESS_KEY, secret_key=SECRET_KEY) as client,
    ):
        yield Live(rig.sim, rig.clock, url, client)


def test_default_rollout_is_ready_to_queue(live: Live) -> None:
    """At start: >= 40 Created/Pending jobs, mirror and machine, in >= 3 locations."""
    status = live.client.install_status(live.sim.asid)
    assert len(status) >= 40
    assert {job.state for job in status} <= {JobState.CREATED, JobState.PENDING}
    assert {job.kind for job in status} == {"mirror", "machine"}
    assert len({job.location for job in status}) >= 3
    assert status.observed_at is not None
    assert status.observed_at.timestamp() == pytest.approx(live.clock.now(), abs=1)


def test_queue_both_kinds(live: Live) -> None:
    """Queueing a mirror job and a machine job gives each its documented shape."""
    status = live.client.install_status(live.sim.asid)
    mirror = next(job for job in status if job.kind == "mirror")
    machine = next(job for job in status if job.kind == "machine")
    m = live.client.queue_install(mirror.jobid, asid=live.sim.asid, mirroring=True)
    assert m.jobid == mirror.jobid and m.versionmirrorid is not None and m.machinejobid is None
    assert m.state is JobState.QUEUED and m.extra == {} and m.invalid == {}
    n = live.client.queue_install(machine.jobid, asid=live.sim.asid, mirroring=False)
    assert n.machinejobid is not None and n.installs_squashed is not None
    assert n.state is JobState.QUEUED


def test_wrong_credentials_are_refused(live: Live) -> None:
    """Wrong keys give 403 Forbidden as AuthenticationError, with advice."""
    with (
        Client(base_url=live.url, access_key=ACCESS_KEY, secret_key="wrong") as client,
        pytest.raises(AuthenticationError, match=r"HTTP 403.*Forbidden") as info,
    ):
        client.install_status(live.sim.asid)
    assert info.value.error_message == "Forbidden"


def test_foreign_asid_is_refused(live: Live) -> None:
    """Keys without access to an ASID are refused like wrong keys."""
    with pytest.raises(AuthenticationError):
        live.client.install_status(live.sim.asid + 1)


def test_wrong_mirroring_and_unknown_job_are_envelopes(live: Live) -> None:
    """Application errors come as HTTP 200 error envelopes and raise APIError."""
    job = next(j for j in live.client.install_status(live.sim.asid) if j.kind == "mirror")
    with pytest.raises(APIError) as info:
        live.client.queue_install(job.jobid, asid=live.sim.asid, mirroring=False)
    assert info.value.status_code == 200 and info.value.error_message
    with pytest.raises(APIError) as info:
        live.client.queue_install(999_999_999, asid=live.sim.asid, mirroring=True)
    assert info.value.status_code == 200


def test_faults_are_absorbed_by_retries_for_reads(sim_rig: Callable[..., SimRig]) -> None:
    """With a quarter of responses faulted, status reads still succeed thanks to retries."""
    rig = sim_rig(seed=3, faults=0.25)
    waits: list[float] = []
    retry = RetryPolicy(attempts=10, max_retry_after=600)
    with rig.client(retry=retry, sleep=waits.append, timeout=5.0) as client:
        for _ in range(40):
            assert len(client.install_status(rig.sim.asid)) >= 40
    assert waits, "some faults must have been retried"


def test_async_client_against_the_simulator(sim_rig: Callable[..., SimRig]) -> None:
    """The async client works against the in-process simulator transport."""
    rig = sim_rig()

    async def run() -> int:
        async with rig.async_client() as client:
            return len(await client.install_status(rig.sim.asid))

    assert asyncio.run(run()) >= 40
