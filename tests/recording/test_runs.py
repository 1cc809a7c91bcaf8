"""Record a rollout from the simulator, replay it offline, and get identical events."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections import Counter
from pathlib import Path

import httpx
import pandas as pd
import pytest
import vcr
import yaml

from cfanalytics.events import STAMP_HEADER, validate
from cfanalytics.exceptions import CassetteError, ReplayExhaustedError
from cfanalytics.recording import (
    RecordedRun,
    RunPlan,
    events_from_cassette,
    load_cassette,
    load_events,
    record,
    replay,
)
from cfanalytics.simulator import default_scenario

from ..conftest import ACCESS_KEY, SECRET_KEY, SimRig

SECRETS = (
    ACCESS_KEY,
    SECRET_KEY,
    base64.b64encode(f"{ACCESS_KEY}:{SECRET_KEY}".encode()).decode(),
)


def record_sim(
    tmp_path: Path,
    *,
    seed: int = 5,
    name: str = "run",
    faults: float = 0.0,
    plan: RunPlan | None = None,
) -> RecordedRun:
    """Record the default rollout from an in-process simulator on a manual clock."""
    return record(
        plan or RunPlan(asid=1, interval=15, max_polls=300),
        cassette=tmp_path / f"{name}.yaml",
        events_dir=tmp_path / f"{name}-events",
        **SimRig(seed=seed, faults=faults).record_options(run_id=f"{name}-{seed}"),
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> RecordedRun:
    """One recorded rollout shared by the read-only tests here."""
    return record_sim(tmp_path_factory.mktemp("rec"))


def test_recording_captures_the_whole_rollout(recorded: RecordedRun) -> None:
    """Every response is an event; the run ended because every queued job ended."""
    events = validate(recorded.events)
    assert recorded.progress.stop_reason == "every queued job ended"
    assert set(events["endpoint"].dropna()) == {"status", "queue"}
    assert events["seq"].max() + 1 == len(load_cassette(recorded.cassette))
    assert events["observed_at"].is_monotonic_increasing
    # Every response carries its receive stamp, and observed_at is read from it.
    stamps = [i.header(STAMP_HEADER) for i in load_cassette(recorded.cassette)]
    assert all(stamps)
    first = events[events["seq"] == 0]["observed_at"].iloc[0]
    assert first == pd.Timestamp(stamps[0])


def test_replay_gives_identical_events_twice(recorded: RecordedRun) -> None:
    """Replaying the cassette (offline, no sleep) twice gives the recorded frame exactly."""
    first = replay(recorded.cassette)
    second = replay(recorded.cassette)
    pd.testing.assert_frame_equal(first.events, recorded.events)
    pd.testing.assert_frame_equal(second.events, recorded.events)
    assert first.progress.ended == recorded.progress.ended


def test_cassette_and_event_log_read_back_identically(recorded: RecordedRun) -> None:
    """events_from_cassette and the event log both give the live frame."""
    pd.testing.assert_frame_equal(events_from_cassette(recorded.cassette), recorded.events)
    assert recorded.event_log is not None
    pd.testing.assert_frame_equal(load_events(recorded.event_log), recorded.events)


def test_no_secret_lands_on_disk(recorded: RecordedRun) -> None:
    """Neither key nor their Basic token appears in any file the recording wrote."""
    assert recorded.cassette is not None and recorded.event_log is not None
    files = [recorded.cassette, *recorded.event_log.iterdir()]
    for path in files:
        data = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in data, (path, secret[:4])
    assert b"authorization" not in recorded.cassette.read_bytes().lower()


def test_vcrpy_replays_our_cassette(recorded: RecordedRun) -> None:
    """vcrpy itself serves our cassette, with no network, in recorded order."""
    cassette = load_cassette(recorded.cassette)
    first = cassette.interactions[0]

    def forbidden(request: httpx.Request) -> httpx.Response:
        raise AssertionError("vcrpy went to the network")

    with (
        vcr.use_cassette(str(recorded.cassette), record_mode="none"),
        httpx.Client(transport=httpx.MockTransport(forbidden)) as client,
    ):
        answer = client.get(first.uri)
    assert answer.content == first.body


def test_recording_is_deterministic(tmp_path: Path) -> None:
    """Same seed, same plan, same run id: byte-identical cassettes."""
    plan = RunPlan(asid=1, interval=20, max_polls=30)
    a = record_sim(tmp_path, name="a", plan=plan)
    (tmp_path / "other").mkdir()
    b = record_sim(tmp_path / "other", name="a", plan=plan)
    assert a.cassette is not None and b.cassette is not None
    assert a.cassette.read_bytes() == b.cassette.read_bytes()


def test_record_mode_once_refuses_to_overwrite(recorded: RecordedRun, tmp_path: Path) -> None:
    """Recording into an existing cassette is refused before anything is sent."""
    assert recorded.cassette is not None
    with pytest.raises(CassetteError, match="already exists"):
        record(
            RunPlan(asid=1),
            cassette=recorded.cassette,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            base_url="http://127.0.0.1:9",
        )


def test_a_cassette_is_recorded_by_one_run_at_a_time(tmp_path: Path) -> None:
    """A second recording opened on the same path is refused, naming the first, even with
    overwrite; the first's lock goes with its close (and its file with it)."""
    from cfanalytics.recording import Recording
    from cfanalytics.recording._lock import lock_path

    cassette = tmp_path / "run.yaml"
    keys = {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "base_url": "http://127.0.0.1:9"}
    first = Recording.open(cassette=cassette, events_dir=None, metadata={}, run_id="r1", **keys)
    with pytest.raises(CassetteError, match=r"being recorded now by run r1 \(process \d+\)"):
        Recording.open(cassette=cassette, events_dir=None, metadata={}, overwrite=True, **keys)
    assert lock_path(cassette).exists()
    first.close()
    assert not lock_path(cassette).exists()
    again = Recording.open(
        cassette=cassette, events_dir=None, metadata={}, run_id="r2", overwrite=True, **keys
    )
    again.close()


def test_replay_with_faults_is_identical(tmp_path: Path) -> None:
    """5xx, 429, garbage and dropped connections all replay: the frames are identical."""
    run = record_sim(tmp_path, name="faulty", faults=0.2, plan=RunPlan(asid=1, max_polls=60))
    problems = set(run.events["problem"].dropna())
    assert {"http_status", "transport"} <= problems
    assert run.cassette is not None
    assert load_cassette(run.cassette).metadata["transport_failures"]
    pd.testing.assert_frame_equal(replay(run.cassette).events, run.events)
    pd.testing.assert_frame_equal(events_from_cassette(run.cassette), run.events)


def test_queue_faults_are_recovered_and_replayed_the_same(tmp_path: Path) -> None:
    """Refused queue requests are resent and unclear ones settled from the status list; the
    replay makes the same decisions from the cassette (identical events)."""
    run = record_sim(tmp_path, name="faulty", faults=0.3, plan=RunPlan(asid=1, max_polls=60))
    assert run.progress.queue_errors == {}
    assert run.progress.watched == {job for job in run.progress.latest} | run.progress.ended.keys()
    assert run.cassette is not None
    assert load_cassette(run.cassette).metadata["queue_recovery"] is True
    again = replay(run.cassette)
    pd.testing.assert_frame_equal(again.events, run.events)
    assert again.progress.settled == run.progress.settled


def test_a_replay_retries_as_the_recording_did(tmp_path: Path) -> None:
    """A client that gave up after 2 tries: the replay gives up where it did, not after the
    default 5 (it would ask for answers never recorded)."""
    from cfanalytics import RetryPolicy

    rig = SimRig(seed=5, faults=0.3)
    options = rig.record_options(run_id="brief", retry=RetryPolicy(attempts=2))
    run = record(RunPlan(asid=1, max_polls=40), cassette=tmp_path / "brief.yaml", **options)
    assert run.progress.failed_polls, "some polls gave up after two tries"
    kept = load_cassette(tmp_path / "brief.yaml").metadata["retry"]
    assert kept == {"attempts": 2, "max_retry_after": 120.0, "queue_recovery": True}
    pd.testing.assert_frame_equal(replay(tmp_path / "brief.yaml").events, run.events)


def test_a_replay_leaves_the_word_replay_in_its_messages(tmp_path: Path) -> None:
    """The replay client's stand-in keys are scrubbed from its messages: they must not be
    words that messages hold (they were "replay": a path with it came out <FILTERED>)."""
    folder = tmp_path / "replay-here"
    folder.mkdir()
    run = record_sim(folder, name="cut", plan=RunPlan(asid=1, max_polls=3))
    assert run.cassette is not None
    cassette = load_cassette(run.cassette)
    cut = dataclasses.replace(cassette, interactions=cassette.interactions[:-1])
    with pytest.raises(ReplayExhaustedError) as raised:
        replay(cut)
    assert "<FILTERED>" not in str(raised.value) and "replay" in str(raised.value)


def test_recordings_from_before_queue_recovery_replay_as_they_were_made(tmp_path: Path) -> None:
    """A cassette without ``queue_recovery`` in its plan was made without it (no resent or
    settled queue requests): its replay runs without it, and gives its events exactly."""
    new = {"queue_recovery": False, "stop_stranded": False, "max_stall": None}
    plan = RunPlan(asid=1, max_polls=60, **new)
    run = record_sim(tmp_path, name="old", faults=0.3, plan=plan)
    assert run.progress.queue_errors and not run.progress.settled  # the faults were met
    assert run.cassette is not None
    data = yaml.safe_load(run.cassette.read_text())
    assert {key: data["metadata"].pop(key) for key in new} == new
    run.cassette.write_text(yaml.safe_dump(data))  # as made before
    assert not new.keys() & load_cassette(run.cassette).metadata.keys()
    pd.testing.assert_frame_equal(replay(run.cassette).events, run.events)


def failed_mirrors(tmp_path: Path, plan: RunPlan, name: str = "stuck") -> RecordedRun:
    """A rollout whose every mirror job fails: every machine job waits for ever."""
    scenario = dataclasses.replace(default_scenario(), mirror_failure_rate=1.0)
    return record(
        plan,
        cassette=tmp_path / f"{name}.yaml",
        **SimRig(scenario=scenario, seed=1).record_options(run_id=name),
    )


def test_a_run_whose_jobs_wait_on_failed_mirrors_stops_and_names_them(tmp_path: Path) -> None:
    """Once every job left waits on a mirror job that failed, the run stops and says which
    machine jobs wait on which mirror job, with the command that queues it again."""
    run = failed_mirrors(tmp_path, RunPlan(asid=1, max_polls=400))
    progress = run.progress
    assert progress.polls < 20 and progress.counts()["failed"] == len(progress.stranded) > 1
    reason = progress.stop_reason or ""
    assert reason.startswith("every job left is stranded: ")
    for strand in progress.stranded:
        assert progress.ended[strand.mirror] == "failed"
        waiting = f"{len(strand.jobs)} machine jobs in {strand.location} wait on mirror job"
        assert f"{waiting} {strand.mirror}, which failed" in reason
        assert f"`cfanalytics queue {strand.mirror} --asid 1 --mirror`" in reason
    left = progress.watched - progress.ended.keys()
    assert left == {job for strand in progress.stranded for job in strand.jobs}
    assert run.cassette is not None
    again = replay(run.cassette)
    assert again.progress.stop_reason == reason
    pd.testing.assert_frame_equal(again.events, run.events)


def test_failed_jobs_are_queued_again_up_to_n_times(tmp_path: Path) -> None:
    """--requeue-failed 2: a job that fails is queued again, twice at most; the simulator's
    truth counts the attempts; the replay repeats every decision."""
    scenario = dataclasses.replace(default_scenario(), machine_failure_rate=0.3)
    rig = SimRig(scenario=scenario, seed=3)
    plan = RunPlan(asid=1, requeue_failed=2)
    run = record(plan, cassette=tmp_path / "again.yaml", **rig.record_options(run_id="again"))
    progress, truth = run.progress, rig.truth()
    assert progress.stop_reason == "every queued job ended"
    assert progress.requeued and max(progress.requeued.values()) == 2
    for jobid in progress.watched:
        job = truth[jobid]
        assert job["attempts"] == 1 + progress.requeued[jobid], jobid
        assert progress.requeued[jobid] == min(job["failures"], 2), jobid
        if progress.ended[jobid] == "failed":
            assert job["failures"] == 3 and job["outcome"] == "failed", jobid
    assert load_cassette(tmp_path / "again.yaml").metadata["requeue_failed"] == 2
    again = replay(tmp_path / "again.yaml")
    pd.testing.assert_frame_equal(again.events, run.events)
    assert again.progress.requeued == progress.requeued


class Lagging(httpx.AsyncBaseTransport):
    """The status list lags one poll behind each queue request (it shows the old list)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.last: bytes | None = None
        self.lag = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        if request.url.path.endswith("/queue"):
            self.lag = True
        elif self.lag and self.last is not None:
            self.lag = False
            return httpx.Response(200, headers=response.headers, content=self.last)
        else:
            self.last = body
        return response


def test_a_failure_listed_again_after_its_requeue_is_not_a_new_one(tmp_path: Path) -> None:
    """The list still shows the failure a job was queued again from: that is no second
    failure, so the job is not queued once more for it."""
    scenario = dataclasses.replace(default_scenario(), machine_failure_rate=0.3)
    rig = SimRig(scenario=scenario, seed=3)
    options = rig.record_options(run_id="lag", transport=Lagging(rig.transport()))
    run = record(RunPlan(asid=1, requeue_failed=2), cassette=tmp_path / "lag.yaml", **options)
    truth = rig.truth()
    assert run.progress.requeued
    for jobid in run.progress.watched:
        assert truth[jobid]["attempts"] == 1 + min(truth[jobid]["failures"], 2), jobid


def test_an_unclear_requeue_under_a_lagging_list_is_not_sent_twice(tmp_path: Path) -> None:
    """A re-queue the API acted on but whose answer was lost (a 500), then a list that still
    shows the old failure: the settling read takes that for lag, not for a refusal, and sends
    nothing more. One re-queue, one request."""

    class LoseFirstRequeueAnswer(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner, self.sent, self.lost = inner, Counter(), set()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            if request.url.path.endswith("/queue"):
                jobid = int(request.url.path.split("/")[-2])
                self.sent[jobid] += 1
                if self.sent[jobid] == 2:  # the simulator acted; the answer is lost
                    self.lost.add(jobid)
                    await response.aread()
                    return httpx.Response(500, json={"error": "internal"})
            return response

    scenario = dataclasses.replace(default_scenario(), machine_failure_rate=0.3)
    rig = SimRig(scenario=scenario, seed=3)
    lose = LoseFirstRequeueAnswer(rig.transport())
    options = rig.record_options(run_id="lag", transport=Lagging(lose))
    plan = RunPlan(asid=1, requeue_failed=2, concurrency=1)
    run = record(plan, cassette=tmp_path / "lag.yaml", **options)
    truth = rig.truth()
    assert lose.lost
    for jobid in lose.lost:
        assert lose.sent[jobid] == truth[jobid]["attempts"] == 1 + run.progress.requeued[jobid]


def test_a_resume_that_cannot_carry_on_lets_go_of_the_cassette(tmp_path: Path) -> None:
    """An interrupted cassette without a readable plan: the resume fails the same way twice
    (never "being recorded now" by its own process), and leaves the cassette as it was."""
    from cfanalytics.recording import aresume
    from cfanalytics.recording._cassette import CassetteWriter

    run = record_sim(tmp_path, name="planless", plan=RunPlan(asid=1, max_polls=2))
    assert run.cassette is not None
    loaded = load_cassette(run.cassette)
    meta = {k: v for k, v in loaded.metadata.items() if k != "asid"} | {"complete": False}
    writer = CassetteWriter(run.cassette, metadata=meta, overwrite=True)
    for interaction in loaded.interactions:
        writer.append(interaction)
    writer.close()
    before = run.cassette.read_bytes()
    keys = {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}
    for _ in range(2):
        with pytest.raises(CassetteError, match="no cfanalytics run plan"):
            asyncio.run(aresume(run.cassette, **keys))
    assert run.cassette.read_bytes() == before
    assert not list(tmp_path.glob("planless.yaml.*")), "no journal, no lock left"


def test_a_mirror_that_fails_every_time_strands_its_jobs_once_requeues_are_spent(
    tmp_path: Path,
) -> None:
    run = failed_mirrors(tmp_path, RunPlan(asid=1, max_polls=400, requeue_failed=2))
    progress = run.progress
    reason = progress.stop_reason or ""
    assert reason.startswith("every job left is stranded: ") and "--requeue-failed" not in reason
    assert {progress.requeued[strand.mirror] for strand in progress.stranded} == {2}
    plain = failed_mirrors(tmp_path, RunPlan(asid=1, max_polls=400), name="plain")
    assert "or record with --requeue-failed" in (plain.progress.stop_reason or "")


def test_machine_jobs_queued_without_their_mirror_job_are_stranded(tmp_path: Path) -> None:
    """Only a location's machine jobs are queued: their mirror job was never queued, so the
    run stops at once and says which one to queue."""
    rig = SimRig(seed=2)
    listing = asyncio.run(rig.async_client().install_status(1))
    location = next(job.location for job in listing if job.mirroring)
    machines = tuple(j.jobid for j in listing if j.location == location and not j.mirroring)
    mirror = next(j.jobid for j in listing if j.location == location and j.mirroring)
    plan = RunPlan(asid=1, jobs=machines, max_polls=400)
    run = record(plan, cassette=tmp_path / "alone.yaml", **rig.record_options(run_id="alone"))
    reason = run.progress.stop_reason or ""
    assert run.progress.polls <= 2
    waiting = f"{len(machines)} machine jobs in {location} wait on mirror job {mirror}"
    assert f"{waiting}, which was never queued: queue it with" in reason
    assert "--requeue-failed" not in reason  # that frees failed mirror jobs only


def test_a_run_in_which_nothing_changes_stops_at_the_stall_limit(tmp_path: Path) -> None:
    """Without the stranded stop, the stall limit ends the run: responses spanning
    ``max_stall`` seconds in which no followed job changed."""
    plan = RunPlan(asid=1, interval=60, max_polls=400, stop_stranded=False, max_stall=900)
    run = failed_mirrors(tmp_path, plan, name="stalled")
    assert run.progress.stop_reason == "no followed job changed for 900 s"
    assert 900 <= run.progress.stalled_s < 900 + 2 * 60
    assert run.cassette is not None
    pd.testing.assert_frame_equal(replay(run.cassette).events, run.events)


def test_a_cassette_that_runs_out_raises_at_once(recorded: RecordedRun) -> None:
    """Replay past the recording raises ReplayExhaustedError; it never spins on failed polls."""
    cassette = load_cassette(recorded.cassette)
    cut = dataclasses.replace(cassette, interactions=cassette.interactions[:-5])
    with pytest.raises(ReplayExhaustedError, match="no more recorded answers"):
        replay(cut)
    interrupted = dataclasses.replace(cut, metadata=cut.metadata | {"complete": False})
    with pytest.raises(CassetteError, match="interrupted recording"):
        replay(interrupted)


def test_echoed_secrets_are_scrubbed_everywhere(tmp_path: Path) -> None:
    """A server echoing the keys leaks them into no file, frame or error message."""
    token = SECRETS[2]

    def echo(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/queue"):
            return httpx.Response(
                403, json={"error": True, "error_message": f"bad key {ACCESS_KEY}"}
            )
        job = {"jobid": 1, "jobstateid": 1, "mirroring": True, "joberror": f"{SECRET_KEY} {token}"}
        return httpx.Response(200, json={"installs": [job]})

    run = record(
        RunPlan(asid=1, interval=0, max_polls=2),
        cassette=tmp_path / "echo.yaml",
        events_dir=tmp_path / "events",
        base_url="http://127.0.0.1:8086",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        transport=httpx.MockTransport(echo),
    )
    assert run.progress.queue_errors, "the queue call should have failed"
    shown = [str(e) for e in run.progress.queue_errors.values()]
    shown += [str(e.error_message) for e in run.progress.queue_errors.values()]  # type: ignore[attr-defined]
    shown += [run.events.to_csv(), load_events(tmp_path / "events").to_csv()]
    shown += [(tmp_path / "echo.yaml").read_text()]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text
