"""The simulator's state model: fleet, image versions, install jobs. No HTTP here.

An event-driven simulation advanced lazily: :meth:`Model.advance` pops scheduled events
(version builds, jobs becoming ready, attempts ending) from a heap in time order up to the
requested time. Everything a request sees is then derived from those records at that time,
so the same seed and the same calls at the same times give the same state.

Randomness never comes from a shared generator whose draws depend on call order: each
decision gets its own ``random.Random`` seeded with a string such as ``"0:7340012:2:plan"``
(seed, job key, attempt, purpose). String seeds are hashed deterministically by ``random``.

Job and image version ids come from :meth:`Scenario.first_ids` (derived from the seed and the
scenario unless set). Draws are keyed not by those ids but by each record's *key*, its place
in creation order counted from :data:`JOB_KEY_BASE` (:data:`VERSION_KEY_BASE` for versions):
ids are labels only, so a run is the same whatever ids it is given, and the bases (the ids
every run had before ids were derived) keep the draws of earlier recordings.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from typing import Any

from ._physics import Placement, lognormal_noise, plan_attempt
from ._records import Job, Machine, State, Version, build_machines
from ._reports import image_counts, truth_row
from ._scenario import SUBID_OFFSET, Image, Location, Scenario
from ._snapshot import Snapshot, job_snapshot, last_tick, version_snapshot

__all__ = [
    "JOB_KEY_BASE",
    "VERSION_KEY_BASE",
    "ApplicationError",
    "Job",
    "Model",
    "Snapshot",
    "State",
    "Version",
]

#: Key of a model's first job; each later job's key is one more (keys seed its draws).
JOB_KEY_BASE = 7340001
#: Key of a model's first image version; each later version's key is one more.
VERSION_KEY_BASE = 218700

_QUEUEABLE = frozenset({State.CREATED, State.PENDING, State.FAILED})
_IN_FLIGHT = frozenset({State.CREATED, State.PENDING, State.QUEUED})


class ApplicationError(Exception):
    """A Clanforge application error; the HTTP layer renders it as the error envelope."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Model:
    """Fleet and jobs of one scenario; call :meth:`advance` before reading at a new time."""

    def __init__(self, scenario: Scenario, *, seed: int = 0) -> None:
        self.scenario = scenario
        self.seed = seed
        #: The first job id and image version id handed out (:meth:`Scenario.first_ids`).
        self.first_jobid, self.first_imageversionid = scenario.first_ids(seed)
        self.now = scenario.start
        self.revision = 0  #: bumped on every job state change, to key caches of views
        self.jobs: dict[int, Job] = {}
        self.versions: dict[int, Version] = {}
        self._listed: dict[int, Job] = {}
        self._listed_sorted = True
        self._snapshots: dict[int, tuple[tuple[object, ...], Snapshot]] = {}
        self._listable = frozenset(scenario.listed_states) | (
            {State.FAILED} if scenario.list_failed_jobs else set()
        )
        self._events: list[tuple[float, int, str, int, int]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(self.first_jobid)
        self._subids = itertools.count(self.first_jobid + SUBID_OFFSET)
        self._versionids = itertools.count(self.first_imageversionid)
        self._jobkeys = itertools.count(JOB_KEY_BASE)
        self._versionkeys = itertools.count(VERSION_KEY_BASE)
        self._machines = build_machines(scenario.locations)
        self._running = {loc.name: 0 for loc in scenario.locations}
        self._waiting: dict[str, dict[int, deque[tuple[int, Job]]]] = {
            loc.name: {} for loc in scenario.locations
        }
        self._mirror_done: set[tuple[str, int]] = set()
        self._awaiting_build: dict[int, list[Job]] = {}
        self._installs: dict[tuple[int, int], list[Job]] = {}
        self._latest: dict[int, Version] = {}
        self._diffs = {d: img for img in scenario.images for d in img.diffids}
        for rollout in scenario.rollouts:
            self._initial_rollout(rollout.imageid, rollout.restart, rollout.full, rollout.age_s)

    # --- time ------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Process every event scheduled at or before ``now``; time never goes back."""
        while self._events and self._events[0][0] <= now:
            at, _, kind, key, attempt = heapq.heappop(self._events)
            self.now = max(self.now, at)
            self._dispatch_event(kind, key, attempt)
        self.now = max(self.now, now)

    def _schedule(self, at: float, kind: str, key: int, attempt: int = 0) -> None:
        heapq.heappush(self._events, (at, next(self._seq), kind, key, attempt))

    def _dispatch_event(self, kind: str, key: int, attempt: int) -> None:
        if kind in ("build_start", "build_end"):
            self._on_build(self.versions[key], kind == "build_end")
            return
        job = self.jobs[key]
        if job.attempt != attempt:
            return  # a stale event of an earlier attempt
        if kind == "ready" and job.state is State.QUEUED:
            self._on_ready(job)
        elif kind == "end" and job.state is State.RUNNING:
            self._on_end(job)

    def _rng(self, *parts: object) -> random.Random:
        return random.Random(":".join(str(p) for p in (self.seed, *parts)))

    # --- image versions --------------------------------------------------------------------

    def create_version(
        self, diffid: int, *, restart: bool, full: bool = False, install_at: int | None = None
    ) -> Version:
        """Create an image version from ``diffid`` at the current time (imageversion/create)."""
        image = self._diffs.get(diffid)
        if image is None:
            raise ApplicationError("No rows in result set")
        vid, key = next(self._versionids), next(self._versionkeys)
        nominal = self.scenario.version_build_s
        build = nominal * lognormal_noise(self._rng("version", key, "build"), 0.2)
        t = self.now
        size = image.size_mb * (1.0 if full else self.scenario.diff_size_fraction)
        version = Version(
            vid, key, image, diffid, restart, full, install_at, size, t, t + 2.0, t + build, nominal
        )
        self._add_version(version)
        self._schedule(version.build_start, "build_start", vid)
        self._schedule(version.build_end, "build_end", vid)
        return version

    def _initial_rollout(self, imageid: int, restart: bool, full: bool, age_s: float) -> None:
        image = next(i for i in self.scenario.images if i.imageid == imageid)
        vid = next(self._versionids)
        created = self.scenario.start - age_s
        build = self.scenario.version_build_s
        size = image.size_mb * (1.0 if full else self.scenario.diff_size_fraction)
        version = Version(
            vid,
            next(self._versionkeys),
            image,
            image.diffids[0],
            restart,
            full,
            None,
            size,
            created,
            created + 2.0,
            created + build,
            build,
        )
        self._add_version(version)
        self._on_build(version, done=True)

    def _add_version(self, version: Version) -> None:
        self.versions[version.imageversionid] = version
        self._latest[version.image.imageid] = version
        for loc in self._image_locations(version.image):
            self._new_job(version, loc, None)
            for machine in self._machines[loc.name]:
                self._new_job(version, loc, machine)

    def _new_job(self, version: Version, loc: Location, machine: Machine | None) -> None:
        jobid = next(self._ids)
        job = Job(
            jobid,
            next(self._subids),
            next(self._jobkeys),
            version,
            loc,
            machine,
            version.created_at,
            0.0,
        )
        self.jobs[jobid] = job
        version.jobids.append(jobid)
        self._set_state(job, State.CREATED, version.created_at)
        if machine is not None:
            key = (machine.machineid, version.image.imageid)
            self._installs.setdefault(key, []).append(job)

    def _on_build(self, version: Version, done: bool) -> None:
        if not done:
            version.state = State.RUNNING
            return
        version.state = State.COMPLETE
        for jobid in version.jobids:
            job = self.jobs[jobid]
            if job.state is State.CREATED:
                self._set_state(job, State.PENDING, version.build_end)
        for job in self._awaiting_build.pop(version.imageversionid, []):
            self._start_mirror(job)

    def _image_locations(self, image: Image) -> list[Location]:
        wanted = image.locations
        return [loc for loc in self.scenario.locations if not wanted or loc.name in wanted]

    # --- queueing --------------------------------------------------------------------------

    def queue(self, jobid: int, *, mirroring: bool) -> tuple[Job, int]:
        """Queue install job ``jobid`` now; return it and how many older installs it squashed.

        States 1 and 2 queue, 6 re-queues (a new attempt); 3 and 4 are returned unchanged.
        Anything else is an :class:`ApplicationError`.
        """
        job = self.jobs.get(jobid)
        if job is None:
            raise ApplicationError("No rows in result set")
        if job.is_mirror != mirroring:
            raise ApplicationError(
                f"mirroring={'true' if mirroring else 'false'} does not match install job "
                f"{jobid}: it is a {job.kind} job"
            )
        if job.state is State.COMPLETE:
            raise ApplicationError(f"install job {jobid} is already complete")
        if job.state is State.SQUASHED:
            raise ApplicationError(f"install job {jobid} was squashed by a newer install")
        if job.state not in _QUEUEABLE:
            return job, 0
        self._check_diff_lock(job.version.image)
        squashed = 0 if job.machine is None else self._squash_older(job, job.machine)
        self._enqueue(job)
        return job, squashed

    def _check_diff_lock(self, image: Image) -> None:
        for lock in self.scenario.diff_locks:
            if lock.imageid == image.imageid and self.now < self.scenario.start + lock.until_s:
                raise ApplicationError(f"image locked by diffid: {lock.diffid}")

    def _squash_older(self, job: Job, machine: Machine) -> int:
        older = [
            other
            for other in self._installs[(machine.machineid, job.version.image.imageid)]
            if other.version.imageversionid < job.version.imageversionid
            and other.state in _IN_FLIGHT
        ]
        for other in older:
            other.squashed_at = self.now
            self._set_state(other, State.SQUASHED, self.now)
        return len(older)

    def _enqueue(self, job: Job) -> None:
        job.attempt += 1
        job.error = None
        job.plan = None
        job.queue_seq = next(self._seq)
        job.queued_at = self.now
        if job.first_queued_at is None:
            job.first_queued_at = self.now
        self._set_state(job, State.QUEUED, self.now)
        delay = self._rng(job.key, job.attempt, "delay").uniform(*self.scenario.queue_delay_s)
        ready = max(self.now + delay, float(job.version.install_at or 0))
        self._schedule(ready, "ready", job.jobid, job.attempt)

    def _on_ready(self, job: Job) -> None:
        if job.machine is None:
            if job.version.state is State.COMPLETE:
                self._start_mirror(job)
            else:
                self._awaiting_build.setdefault(job.version.imageversionid, []).append(job)
            return
        waiting = self._waiting[job.location.name]
        waiting.setdefault(job.version.imageversionid, deque()).append((job.attempt, job))
        self._fill_slots(job.location)

    # --- running ---------------------------------------------------------------------------

    def _fill_slots(self, loc: Location) -> None:
        """Start waiting machine jobs whose mirror is ready, oldest first, up to the slots."""
        batch: list[Job] = []
        while self._running[loc.name] + len(batch) < loc.max_parallel:
            job = self._next_waiting(loc)
            if job is None:
                break
            batch.append(job)
        self._running[loc.name] += len(batch)
        # Installs starting together share the link: each sees the full contention.
        for job in batch:
            self._start(job, loc.bandwidth_mbps, self._running[loc.name])

    def _next_waiting(self, loc: Location) -> Job | None:
        best: deque[tuple[int, Job]] | None = None
        for vid, queue in list(self._waiting[loc.name].items()):
            while queue and not _still_waiting(*queue[0]):
                queue.popleft()  # squashed while waiting
            if not queue:
                del self._waiting[loc.name][vid]
            elif (loc.name, vid) in self._mirror_done and (
                best is None or queue[0][1].queue_seq < best[0][1].queue_seq
            ):
                best = queue
        return None if best is None else best.popleft()[1]

    def _start_mirror(self, job: Job) -> None:
        self._start(job, job.location.mirror_mbps, 1)

    def _start(self, job: Job, link_mbps: float, contention: int) -> None:
        where = self._placement(job, link_mbps, contention)
        rng = self._rng(job.key, job.attempt, "plan")
        job.plan = plan_attempt(self.scenario, where, self.now, rng)
        if job.first_started_at is None:
            job.first_started_at = self.now
        self._set_state(job, State.RUNNING, self.now)
        self._schedule(job.plan.end, "end", job.jobid, job.attempt)

    def _placement(self, job: Job, link_mbps: float, contention: int) -> Placement:
        spots = tuple(
            (spot.cause, spot.probability)
            for spot in self.scenario.hotspots
            if spot.location == job.location.name
            and spot.mirror == job.is_mirror
            and (job.machine is None or not spot.machines or job.machine.number in spot.machines)
        )
        scenario = self.scenario
        rate = scenario.mirror_failure_rate if job.is_mirror else scenario.machine_failure_rate
        return Placement(
            mirror_job=job.is_mirror,
            host=job.location.mirror if job.machine is None else job.machine.name,
            mirror=job.location.mirror,
            imagepath=job.version.image.imagepath,
            versionid=job.version.imageversionid,
            diffid=job.version.diffid,
            size_mb=job.version.size_mb,
            link_mbps=link_mbps,
            contention=contention,
            failure_rate=rate,
            hotspot_causes=spots,
        )

    def _on_end(self, job: Job) -> None:
        assert job.plan is not None  # an "end" event is only scheduled with a plan
        if job.plan.cause is None:
            job.completed_at = self.now
            self._set_state(job, State.COMPLETE, self.now)
        else:
            job.failures += 1
            job.error = job.last_error = job.plan.error
            job.failed_at = self.now
            self._set_state(job, State.FAILED, self.now)
        if job.machine is not None:
            self._running[job.location.name] -= 1
        elif job.state is State.COMPLETE:
            self._mirror_done.add((job.location.name, job.version.imageversionid))
        self._fill_slots(job.location)

    def _set_state(self, job: Job, state: State, at: float) -> None:
        self.revision += 1
        job.state = state
        job.updated_at = at
        if state in self._listable:
            if job.jobid not in self._listed:
                if self._listed and job.jobid < next(reversed(self._listed)):
                    self._listed_sorted = False
                self._listed[job.jobid] = job
        else:
            self._listed.pop(job.jobid, None)

    # --- reading ---------------------------------------------------------------------------

    def listed(self) -> list[Job]:
        """Jobs the status list shows now, by job id."""
        if not self._listed_sorted:
            self._listed = dict(sorted(self._listed.items()))
            self._listed_sorted = True
        return list(self._listed.values())

    def tick_index(self) -> int:
        """Index of the current update tick: reported values change only when it does."""
        return math.floor((self.now - self.scenario.start) / self.scenario.update_interval_s)

    def snapshot(self, job: Job) -> Snapshot:
        """The job fields as reported now: progress and ETA as of the last update tick.

        Cached per job until its state or the update tick changes: a status list of
        thousands of jobs is mostly unchanged from one poll to the next.
        """
        tick = -2
        if job.state is State.RUNNING and job.plan is not None:
            tick = last_tick(self.scenario, self.now, job.plan.start)[1]
        key = (job.state, job.attempt, job.failures, job.updated_at, tick)
        cached = self._snapshots.get(job.jobid)
        if cached is not None and cached[0] == key:
            return cached[1]
        snap = job_snapshot(job, self.now, self.scenario, self.seed)
        self._snapshots[job.jobid] = (key, snap)
        return snap

    def version(self, imageversionid: int) -> Version:
        """The image version with this id, or :class:`ApplicationError`."""
        version = self.versions.get(imageversionid)
        if version is None:
            raise ApplicationError("No rows in result set")
        return version

    def version_snapshot(self, version: Version) -> Snapshot:
        """The version job's fields now."""
        return version_snapshot(version, self.now, self.scenario)

    def image_status(self, imageid: int, *, detail: bool = False) -> dict[str, Any]:
        """Machine counts of the image's latest version (the v2 image status)."""
        image = next((i for i in self.scenario.images if i.imageid == imageid), None)
        if image is None:
            raise ApplicationError("No rows in result set")
        version = self._latest.get(imageid)
        jobs = [] if version is None else [self.jobs[j] for j in version.jobids]
        machines = {loc.name: len(self._machines[loc.name]) for loc in self._image_locations(image)}
        return image_counts(self._image_locations(image), machines, jobs, detail=detail)

    def truth(self) -> list[dict[str, Any]]:
        """Ground truth: every job ever created, by job id (not part of the Clanforge API)."""
        return [truth_row(job) for job in sorted(self.jobs.values(), key=lambda j: j.jobid)]


def _still_waiting(attempt: int, job: Job) -> bool:
    return job.state is State.QUEUED and job.attempt == attempt
