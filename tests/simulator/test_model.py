"""Tests of the simulator's state model, scenarios and clocks (no HTTP beyond ``handle``).

Time only moves through a ManualClock: nothing here sleeps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from cfanalytics.simulator import (
    ApplicationError,
    DiffLock,
    Hotspot,
    Job,
    ManualClock,
    Model,
    ScaledClock,
    Scenario,
    SimResponse,
    Simulator,
    State,
    default_scenario,
)
from cfanalytics.simulator._physics import FAILURE_MESSAGES

AUTH = {"Authorization": "Basic dGVzdC1hY2Nlc3M6dGVzdC1zZWNyZXQ="}  # test-access:test-secret
DOCUMENTED_PREFIXES = (
    "not enough disk space",
    "image does not exist",
    "wrong permissions",
    "network disruption",
    "machine unreachable",
    "image locked by diffid",
    "failing drive",
)
Observation = dict[str, Any]


def make_model(scenario: Scenario | None = None, seed: int = 0) -> Model:
    return Model(scenario or default_scenario(), seed=seed)


def ts(value: str | None) -> float:
    assert value is not None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def queue_all(model: Model) -> None:
    for job in model.listed():
        if job.state in (State.CREATED, State.PENDING):
            model.queue(job.jobid, mirroring=job.is_mirror)


def observe(model: Model) -> list[Observation]:
    rows = []
    for job in model.listed():
        snap = model.snapshot(job)
        rows.append(
            {
                "jobid": job.jobid,
                "attempt": job.attempt,
                "state": snap.state,
                "progress": snap.progress,
                "eta": snap.eta,
                "updated": snap.updated,
                "start": snap.start,
            }
        )
    return rows


def run_rollout(
    model: Model, *, step: float = 15.0, limit_s: float = 4 * 3600, requeue_mirrors: bool = True
) -> list[Observation]:
    """Queue everything, then step time until no job is in flight; return every observation.

    Failed mirror jobs are queued again (else their location's machines would wait forever).
    """
    queue_all(model)
    observations: list[Observation] = []
    t = model.now
    end = t + limit_s
    while any(j.state in (1, 2, 3, 4) for j in model.jobs.values()):
        assert t < end, "the rollout did not finish"
        t += step
        model.advance(t)
        observations += observe(model)
        if requeue_mirrors:
            for job in model.listed():
                if job.state is State.FAILED and job.is_mirror:
                    model.queue(job.jobid, mirroring=True)
    return observations


@pytest.fixture(scope="module")
def finished() -> tuple[Model, list[Observation]]:
    """The default rollout (seed 1), run to the end once for the read-only tests below."""
    model = make_model(seed=1)
    return model, run_rollout(model)


# --- scenario ---------------------------------------------------------------------------------


def test_default_scenario_has_a_waiting_rollout_and_variety() -> None:
    """>= 3 locations with 8-15 machines, >= 40 Pending jobs at start, two images."""
    scenario = default_scenario()
    assert len(scenario.locations) >= 3
    assert all(8 <= loc.machines <= 15 for loc in scenario.locations)
    assert len({loc.mirror for loc in scenario.locations}) == len(scenario.locations)
    assert len(scenario.images) >= 2
    listed = make_model().listed()
    assert len(listed) >= 40
    assert {job.state for job in listed} == {State.PENDING}
    assert sum(job.is_mirror for job in listed) == len(scenario.locations)
    assert scenario.start == dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC).timestamp()


def test_scenario_from_json_applies_values_over_defaults(tmp_path: Path) -> None:
    """Top-level and nested values load; the rest keeps its defaults."""
    path = tmp_path / "s.json"
    data = {
        "asid": 7,
        "start": "2027-01-01T00:00:00Z",
        "hotspots": [{"location": "London", "cause": "network", "probability": 0.5}],
        "rate_limit": {"requests": 10, "window_s": 30},
        "fault_weights": {"drop": 1},
        "mirroring_as": "string",
    }
    path.write_text(json.dumps(data))
    scenario = Scenario.from_file(path)
    assert scenario.asid == 7
    assert scenario.start == dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()
    assert scenario.hotspots == (Hotspot("London", "network", 0.5),)
    assert scenario.rate_limit is not None and scenario.rate_limit.requests == 10
    assert scenario.fault_weights == (("drop", 1.0),)
    assert scenario.locations == default_scenario().locations


def test_scenario_from_toml(tmp_path: Path) -> None:
    """A .toml file is read with tomllib."""
    path = tmp_path / "s.toml"
    path.write_text(
        'asid = 3\nstatus_order = "shuffled"\n[[diff_locks]]\n'
        "imageid = 4101\ndiffid = 9\nuntil_s = 60\n"
    )
    scenario = Scenario.from_file(path)
    assert scenario.asid == 3
    assert scenario.status_order == "shuffled"
    assert scenario.diff_locks == (DiffLock(4101, 9, 60),)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"asid": 1, "bogus": 2}, "bogus"),
        ({"locations": [{"name": "X", "colour": "red"}]}, "colour"),
        ({"mirroring_as": "yes"}, "mirroring_as"),
        ({"rollouts": [{"restart": True}]}, "imageid"),
        ({"hotspots": [{"location": "Mars", "cause": "network", "probability": 1}]}, "Mars"),
    ],
)
def test_scenario_rejects_unknown_keys_and_values(data: dict[str, Any], named: str) -> None:
    """A typo fails loudly, naming the offending key or value."""
    with pytest.raises(ValueError, match=named):
        Scenario.from_dict(data)


def test_scaled_scenario_grows_the_rollout() -> None:
    """scaled(n) gives about n install jobs."""
    model = make_model(default_scenario().scaled(1000))
    assert 950 <= len(model.listed()) <= 1050


# --- clocks -----------------------------------------------------------------------------------


def test_scaled_clock_runs_faster_than_its_source() -> None:
    """now = start + elapsed * speed, on an injected monotonic source."""
    ticks = iter([100.0, 103.0])
    clock = ScaledClock(1000.0, speed=60.0, monotonic=lambda: next(ticks))
    assert clock.now() == 1000.0 + 3.0 * 60.0


def test_manual_clock_moves_only_when_told() -> None:
    """advance and sleep move it; it never moves back."""
    clock = ManualClock(50.0)
    clock.advance(10)
    clock.sleep(5)
    assert clock.now() == 65.0
    with pytest.raises(ValueError):
        clock.advance(-1)


# --- the rollout --------------------------------------------------------------------------------


def test_rollout_ends_with_every_job_terminal(finished: tuple[Model, list[Observation]]) -> None:
    """After the rollout every job is Complete, Failed or Squashed, and only Failed are listed."""
    model, _ = finished
    assert {job.state for job in model.jobs.values()} <= {State.COMPLETE, State.FAILED}
    assert all(job.state is State.FAILED for job in model.listed())
    duration = model.now - model.scenario.start
    assert 8 * 60 <= duration <= 30 * 60


def test_machine_jobs_wait_for_their_location_mirror(
    finished: tuple[Model, list[Observation]],
) -> None:
    """No machine install starts before its location's mirror job completed."""
    model, _ = finished
    truth = model.truth()
    mirror_done = {
        (r["location"], r["imageversionid"]): ts(r["completed_at"])
        for r in truth
        if r["kind"] == "mirror"
    }
    machines = [r for r in truth if r["kind"] == "machine" and r["first_started_at"]]
    assert machines
    for row in machines:
        assert ts(row["first_started_at"]) >= mirror_done[(row["location"], row["imageversionid"])]


def test_parallel_installs_respect_the_location_limit(
    finished: tuple[Model, list[Observation]],
) -> None:
    """At no observation do more machines run in a location than max_parallel."""
    model, observations = finished
    running: dict[tuple[int, str], int] = defaultdict(int)
    for obs in observations:
        job = model.jobs[obs["jobid"]]
        if obs["state"] is State.RUNNING and not job.is_mirror:
            running[(obs["updated"], job.location.name)] += 1
    limits = {loc.name: loc.max_parallel for loc in model.scenario.locations}
    assert running
    assert all(count <= limits[loc] for (_, loc), count in running.items())


def test_progress_is_monotone_and_front_loaded(finished: tuple[Model, list[Observation]]) -> None:
    """Progress never goes back within an attempt, and runs ahead of elapsed time."""
    model, observations = finished
    by_attempt: dict[tuple[int, int], list[Observation]] = defaultdict(list)
    for obs in observations:
        if obs["state"] is State.RUNNING:
            by_attempt[(obs["jobid"], obs["attempt"])].append(obs)
    for series in by_attempt.values():
        progress = [o["progress"] for o in series]
        assert progress == sorted(progress)
    ahead = []
    for obs in observations:
        job = model.jobs[obs["jobid"]]
        if obs["state"] is State.RUNNING and job.completed_at and not job.is_mirror:
            elapsed = (obs["updated"] - obs["start"]) / (job.completed_at - obs["start"])
            ahead.append(obs["progress"] / 100 - elapsed)
    assert statistics.mean(ahead) > 0.03  # linear would be ~0 (a little below, from int())


def test_eta_is_null_until_running(finished: tuple[Model, list[Observation]]) -> None:
    """jobeta is None for Created/Pending/Queued/Failed jobs and an int while Running."""
    _, observations = finished
    for obs in observations:
        if obs["state"] is State.RUNNING:
            assert isinstance(obs["eta"], int)
            assert isinstance(obs["start"], int)
        else:
            assert obs["eta"] is None
    assert any(o["state"] is State.QUEUED for o in observations)


def test_early_etas_are_optimistic(finished: tuple[Model, list[Observation]]) -> None:
    """Over the first half of progress, jobs finish later than they said, on average."""
    model, observations = finished
    errors = [
        job.completed_at - obs["eta"]
        for obs in observations
        if obs["state"] is State.RUNNING
        and obs["progress"] < 50
        and (job := model.jobs[obs["jobid"]]).completed_at
        and job.attempt == obs["attempt"]
    ]
    assert len(errors) > 50
    assert statistics.mean(errors) > 0


def test_jobs_report_at_update_ticks(finished: tuple[Model, list[Observation]]) -> None:
    """jobupdated of a Running job is its start or a tick of update_interval_s."""
    model, observations = finished
    interval = model.scenario.update_interval_s
    for obs in observations:
        if obs["state"] is State.RUNNING and obs["updated"] != obs["start"]:
            assert (obs["updated"] - model.scenario.start) % interval == 0


# --- failures -----------------------------------------------------------------------------------


def failed_rows(seeds: range, scenario: Scenario | None = None) -> list[dict[str, Any]]:
    rows = []
    for seed in seeds:
        model = make_model(scenario, seed=seed)
        run_rollout(model, step=60)
        rows += [r for r in model.truth() if r["failures"]]
    return rows


def test_failures_happen_with_documented_messages() -> None:
    """Some installs fail, each joberror naming a documented cause; ~5-10 % of jobs fail."""
    seeds = range(6)
    rows = failed_rows(seeds)
    assert rows
    for row in rows:
        assert row["error"].startswith(DOCUMENTED_PREFIXES), row["error"]
    total = 48 * len(seeds)
    assert 0.02 <= len(rows) / total <= 0.15
    assert set(FAILURE_MESSAGES) == {
        "disk_space",
        "image_missing",
        "permissions",
        "network",
        "unreachable",
        "diff_lock",
        "failing_drive",
    }


def test_hotspot_location_fails_more() -> None:
    """Frankfurt's failing-drive hotspot shows: more failures per machine than elsewhere."""
    scenario = default_scenario()
    rows = failed_rows(range(6))
    per_machine = {
        loc.name: sum(r["location"] == loc.name for r in rows) / loc.machines
        for loc in scenario.locations
    }
    others = [rate for name, rate in per_machine.items() if name != "Frankfurt"]
    assert per_machine["Frankfurt"] > max(others)
    drives = [r for r in rows if r["error"].startswith("failing drive")]
    assert sum(r["location"] == "Frankfurt" for r in drives) > len(drives) / 2


def test_failed_job_stays_listed_and_requeues_as_a_new_attempt() -> None:
    """A Failed job keeps its count after re-queueing; joberror clears; it runs again."""
    scenario = dataclasses.replace(default_scenario(), machine_failure_rate=1.0, hotspots=())
    model = make_model(scenario)
    queue_all(model)
    model.advance(model.now + 3600)
    failed = [j for j in model.listed() if j.state is State.FAILED and not j.is_mirror]
    assert failed
    job = failed[0]
    snap = model.snapshot(job)
    assert (snap.failed, snap.error is not None, snap.eta) == (1, True, None)
    assert 0 <= snap.progress < 100
    model.queue(job.jobid, mirroring=False)
    snap = model.snapshot(job)
    assert (snap.state, snap.failed, snap.error, snap.start) == (State.QUEUED, 1, None, None)
    assert job.attempt == 2
    model.advance(model.now + 3600)
    assert job.failures == 2
    assert model.truth()[job.jobid - model.first_jobid]["attempts"] == 2


def test_failed_jobs_vanish_when_the_setting_says_so() -> None:
    """With list_failed_jobs=False, Failed jobs leave the status list at once."""
    scenario = dataclasses.replace(
        default_scenario(), machine_failure_rate=1.0, hotspots=(), list_failed_jobs=False
    )
    model = make_model(scenario)
    queue_all(model)
    model.advance(model.now + 3600)
    assert model.listed() == []
    assert any(j.state is State.FAILED for j in model.jobs.values())


# --- queue semantics ----------------------------------------------------------------------------


def pending(model: Model, *, mirror: bool) -> Job:
    return next(j for j in model.listed() if j.is_mirror == mirror and j.state is State.PENDING)


def test_queue_errors_for_unknown_wrong_kind_and_completed() -> None:
    """Unknown job, wrong mirroring, completed job: ApplicationError with a clear message."""
    model = make_model()
    mirror = pending(model, mirror=True)
    with pytest.raises(ApplicationError, match="No rows in result set"):
        model.queue(1, mirroring=False)
    with pytest.raises(ApplicationError, match="mirror job"):
        model.queue(mirror.jobid, mirroring=False)
    model.queue(mirror.jobid, mirroring=True)
    model.advance(model.now + 1800)
    assert mirror.state is State.COMPLETE
    assert mirror not in model.listed()
    with pytest.raises(ApplicationError, match="already complete"):
        model.queue(mirror.jobid, mirroring=True)


def test_queueing_a_queued_or_running_job_changes_nothing() -> None:
    """States 3 and 4 return the current snapshot unchanged."""
    model = make_model()
    mirror = pending(model, mirror=True)
    model.queue(mirror.jobid, mirroring=True)
    before = (model.snapshot(mirror), mirror.attempt)
    model.queue(mirror.jobid, mirroring=True)
    assert (model.snapshot(mirror), mirror.attempt) == before
    model.advance(model.now + 20)
    assert mirror.state is State.RUNNING
    before = (model.snapshot(mirror), mirror.attempt)
    assert model.queue(mirror.jobid, mirroring=True) == (mirror, 0)
    assert (model.snapshot(mirror), mirror.attempt) == before


def test_new_version_squashes_older_pending_install() -> None:
    """Queueing a newer version's machine job squashes the machine's older pending one."""
    model = make_model()
    version = model.create_version(218601, restart=False)
    new_jobs = [model.jobs[j] for j in version.jobids]
    assert {j.state for j in new_jobs} == {State.CREATED}
    model.advance(model.now + 600)
    assert {j.state for j in new_jobs} == {State.PENDING}
    newer = next(j for j in new_jobs if not j.is_mirror)
    older = next(j for j in model.jobs.values() if j.machine == newer.machine and j is not newer)
    job, squashed = model.queue(newer.jobid, mirroring=False)
    assert (job, squashed) == (newer, 1)
    assert older.state is State.SQUASHED
    assert older not in model.listed()
    assert model.truth()[older.jobid - model.first_jobid]["outcome"] == "squashed"


def test_unknown_diffid_is_an_application_error() -> None:
    """imageversion/create with a diff of no image: "No rows in result set"."""
    with pytest.raises(ApplicationError, match="No rows in result set"):
        make_model().create_version(1, restart=True)


def test_diff_lock_blocks_queueing_until_it_lifts() -> None:
    """The default lock on image 4102 answers "image locked by diffid: 218599" for 20 min."""
    model = make_model()
    version = model.create_version(218602, restart=True)
    model.advance(model.now + 300)
    job = model.jobs[version.jobids[0]]
    with pytest.raises(ApplicationError, match=r"^image locked by diffid: 218599$"):
        model.queue(job.jobid, mirroring=job.is_mirror)
    model.advance(model.scenario.start + 1200)
    model.queue(job.jobid, mirroring=job.is_mirror)
    assert job.state is State.QUEUED


def test_install_at_delays_the_start() -> None:
    """Jobs of a version with install_at do not start before it."""
    model = make_model()
    install_at = int(model.now + 3000)
    version = model.create_version(218601, restart=True, install_at=install_at)
    model.advance(model.now + 120)
    mirror = next(model.jobs[j] for j in version.jobids if model.jobs[j].is_mirror)
    model.queue(mirror.jobid, mirroring=True)
    model.advance(install_at - 1)
    assert model.snapshot(mirror).state is State.QUEUED
    model.advance(install_at + 1)
    assert model.snapshot(mirror).state is State.RUNNING


def test_v2_image_counts_add_up(finished: tuple[Model, list[Observation]]) -> None:
    """pending + failed + completed = machines, overall and per region."""
    model, _ = finished
    status = model.image_status(4101, detail=True)
    total = sum(loc.machines for loc in model.scenario.locations)
    keys = ("pending_machines", "failed_machines", "completed_machines")
    assert sum(status[k] for k in keys) == total
    assert status["failed_machines"] == sum(
        1 for j in model.listed() if j.state is State.FAILED and not j.is_mirror
    )
    regions = status["fleets"]["3401"]["regions"]
    assert sum(sum(r[k] for k in keys) for r in regions.values()) == total
    assert {r["name"] for r in regions.values()} == {loc.name for loc in model.scenario.locations}


def test_status_list_of_5000_jobs_stays_fast_to_build() -> None:
    """A 5,000-job rollout queues and advances through the heap without quadratic work."""
    model = make_model(default_scenario().scaled(5000))
    queue_all(model)
    model.advance(model.now + 200)
    listed = model.listed()
    assert len(listed) >= 4900
    assert [j.jobid for j in listed] == sorted(j.jobid for j in listed)
    assert any(j.state is State.RUNNING for j in listed)


# --- determinism --------------------------------------------------------------------------------


def replay(seed: int) -> list[SimResponse]:
    """A fixed request sequence at fixed clock times (with faults on); return every response."""
    clock = ManualClock(default_scenario().start)
    sim = Simulator(
        seed=seed, clock=clock, faults=0.2, access_key="test-access", secret_key="test-secret"
    )
    status = ("GET", "/cfp/v1/imageinstall/status", {"accountserviceid": "1"}, AUTH)
    responses = [sim.handle(*status)]
    for row in sim.model.truth():
        query = {"accountserviceid": "1", "mirroring": str(row["kind"] == "mirror").lower()}
        path = f"/cfp/v1/imageinstall/{row['jobid']}/queue"
        responses.append(sim.handle("GET", path, query, AUTH))
    for _ in range(80):
        clock.advance(20)
        responses.append(sim.handle(*status))
    return responses


def test_same_seed_same_requests_same_bytes() -> None:
    """Two simulators, same seed and request sequence at the same times: identical bytes.

    Status, headers, body and fault of every response match; another seed differs.
    """
    first, second = replay(5), replay(5)
    assert first == second
    assert [r.body for r in first] == [r.body for r in second]
    assert {r.fault for r in first} >= {"drop", "latency"}  # faults were part of the replay
    assert [r.body for r in replay(6)] != [r.body for r in first]
