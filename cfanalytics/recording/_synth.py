"""Synthetic rollout histories: realistic events made with numpy, written straight to a store.

For scale work and benchmarks. :func:`synthetic_events` makes the events table of one
rollout, as a recording of it would give; :func:`synthesize` writes a history of many to a
:class:`~cfanalytics.recording.HistoryStore`, a batch of rollouts at a time (at most
``batch_rows`` rows, or one rollout), so memory is set by the batch, never by the history.
Nothing goes through HTTP or the simulator's event loop: each column is computed for every
row at once.

What it models, the simulator's physics in spirit:

- **History.** Rollout ``i`` of a history over ``asids`` ASIDs is on ASID ``i % asids + 1``
  in week ``i // asids``: a week after the previous rollout of its ASID. Each has its own
  image version id, job ids (never two rollouts' alike) and run id.
- **Fleet.** An ASID has the same install targets in every rollout: ``jobs`` of them, one in
  ten a mirror, in the default scenario's locations (twenty locations past
  :data:`MANY_JOBS` jobs), each location's mirrors then its machines. Machine ids count up
  from 31001 location by location (as the simulator's); machines are named
  ``<code>-gs-NNN`` in error texts, mirrors ``mirror-<code>-NN``.
- **Timing.** A status poll every 15 s. Mirrors are queued first; a location's machines are
  queued in waves once its mirrors are done. A job waits Queued a few polls, then runs; in
  all it is listed about ``polls`` polls (gamma-distributed), longer in a slow location.
- **Progress and ETA.** The download covers 70 % of the percentage (a mirror's copy 95 %) in
  less than that share of the time, then the extract: progress is fast early and slow late.
  The job's ``jobeta`` extrapolates its elapsed time over its progress, times lognormal
  noise, so early ETAs are optimistic by tens of seconds to minutes.
- **Failures, clustered.** The default scenario's base rates and causes; in about one
  rollout in three one location is bad (slower, and about a quarter of its machines fail, of
  one cause); about 2 % of an ASID's machines have a failing drive and fail in most of its
  rollouts. A cause strikes at its own point of the install (a missing image at once, a
  failing drive late). A failed job is listed Failed for a few polls, then leaves the list.
- **What the recording sees.** Most jobs vanish from the list when done (completion
  interval-censored), a quarter show a Complete row first, the last 0.5 % are still running
  when the recording ends; about 0.5 % of polls fail with HTTP 503; each job's queue answer
  is a row.

Seeded: the same arguments give the same events. A rollout draws from its own random stream
(the seed and its number), the fleet of an ASID from another (the seed and the ASID), so a
rollout is the same whatever the batch it was written in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from ..events import BOOL, ENDPOINTS, INT, KINDS, PROBLEMS, SCHEMA, TEXT, TIME, validate
from ..simulator import FAILURE_CAUSES, default_scenario
from ._history import HistoryAdded, HistoryProgress, HistoryStore

__all__ = ["BATCH_ROWS", "MANY_JOBS", "Synthesized", "synthesize", "synthetic_events"]

#: :func:`synthesize` adds rollouts to the store in batches of at most this many rows.
BATCH_ROWS = 1_000_000
#: Past this many jobs a rollout spreads over twenty locations, not the default four.
MANY_JOBS = 500

_US = 1_000_000
_POLL = 15 * _US  # a status poll every 15 s
_WEEK = 7 * 86_400 * _US
_FIRST_MACHINE = 31001  # machine ids count up from here, as the simulator's
_SUBID_OFFSET = 500_000  # versionmirrorid / machinejobid: the job id plus this
_FLEET, _ROLLOUT = 0, 1  # the random streams: (seed, which, ASID or rollout number)
_QUEUED, _RUNNING, _COMPLETE, _FAILED = 3, 4, 5, 6  # jobstateid
_VANISH, _SHOWN_COMPLETE, _FAILS = 0, 1, 2  # how a job leaves the list
_MORE_LOCATIONS = (
    ("Amsterdam", "ams"),
    ("Paris", "par"),
    ("Madrid", "mad"),
    ("Stockholm", "sto"),
    ("Warsaw", "waw"),
    ("Chicago", "chi"),
    ("Dallas", "dal"),
    ("Seattle", "sea"),
    ("Los Angeles", "lax"),
    ("Toronto", "tor"),
    ("Sao Paulo", "sao"),
    ("Tokyo", "tyo"),
    ("Seoul", "sel"),
    ("Mumbai", "bom"),
    ("Sydney", "syd"),
    ("Johannesburg", "jnb"),
)
#: Per documented failure cause: when it strikes (a share of the planned run, low and high)
#: and the ``joberror`` it leaves, starting with the cause as the docs word it.
_CAUSES: Mapping[str, tuple[float, float, str]] = {
    "disk_space": (0.1, 0.6, "not enough disk space on {host} for {imagepath}"),
    "image_missing": (0.0, 0.02, "image does not exist: {imagepath}"),
    "permissions": (0.0, 0.05, "wrong permissions: cannot write {imagepath} on {host}"),
    "network": (0.05, 0.75, "network disruption: transfer from {mirror} interrupted"),
    "unreachable": (0.0, 1.0, "machine unreachable: {host} did not respond"),
    "diff_lock": (0.0, 0.02, "image locked by diffid: {diffid}"),
    "failing_drive": (0.7, 0.98, "failing drive: I/O error on {host} writing {imagepath}"),
}
_HOTSPOT_CAUSES = ("network", "unreachable", "disk_space")


@dataclass(frozen=True, slots=True)
class Synthesized:
    """What :func:`synthesize` did: ``rollouts`` rollouts of ``rows`` event rows in all,
    added in ``adds`` calls that wrote ``files`` Parquet files; ``added`` sums those adds
    (runs written, responses added and responses the store held already)."""

    rollouts: int
    rows: int
    files: int
    adds: int
    added: HistoryAdded


def synthesize(
    store: HistoryStore | str | os.PathLike[str],
    *,
    rollouts: int,
    jobs: int,
    polls: int,
    seed: int = 0,
    asids: int = 1,
    batch_rows: int = BATCH_ROWS,
    on_progress: Callable[[int, int], object] | None = None,
) -> Synthesized:
    """Write a history of ``rollouts`` rollouts of ``jobs`` jobs over ASIDs ``1..asids``,
    each job listed by about ``polls`` polls (module docstring), to ``store``.

    Rollouts are made one at a time and added in batches of at most ``batch_rows`` rows (a
    bigger rollout alone). ``on_progress(done, total)`` follows the rollouts stored. Adding
    is idempotent: the same arguments again add nothing.
    """
    _check(rollouts=rollouts, jobs=jobs, polls=polls, asids=asids, batch_rows=batch_rows)
    _check(seed=seed, low=0)
    target = store if isinstance(store, HistoryStore) else HistoryStore(store)
    report = on_progress or (lambda done, total: None)
    done = _Tally()
    batch: list[pd.DataFrame] = []
    for number in range(rollouts):
        events = synthetic_events(jobs, polls, seed=seed, rollout=number, asids=asids)
        if batch and sum(map(len, batch)) + len(events) > batch_rows:
            done.add(target, batch)
            report(number, rollouts)
            batch = []
        batch.append(events)
    done.add(target, batch)
    report(rollouts, rollouts)
    return done.result(rollouts)


class _Tally:
    """The adds of one :func:`synthesize`, summed."""

    def __init__(self) -> None:
        self.rows = self.files = self.adds = self.added = self.present = 0
        self.runs: list[str] = []

    def add(self, store: HistoryStore, batch: list[pd.DataFrame]) -> None:
        """Add ``batch`` to ``store`` in one transaction, and count what it wrote."""

        def count_files(progress: HistoryProgress) -> None:
            if progress.stage == "committed":
                self.files += progress.total

        added = store.add(*batch, on_progress=count_files)
        self.rows += sum(map(len, batch))
        self.adds += 1
        self.runs += added.runs
        self.added += added.responses_added
        self.present += added.responses_present

    def result(self, rollouts: int) -> Synthesized:
        added = HistoryAdded(tuple(sorted(self.runs)), self.added, self.present)
        return Synthesized(rollouts, self.rows, self.files, self.adds, added)


def synthetic_events(
    jobs: int, polls_per_job: int, *, seed: int = 0, rollout: int = 0, asids: int = 1
) -> pd.DataFrame:
    """The events table of rollout number ``rollout`` (from 0) of a synthetic history over
    ASIDs ``1..asids``: ``jobs`` install jobs, each listed by about ``polls_per_job`` status
    polls (module docstring for what is modelled). Rows in recording order, in the schema."""
    _check(jobs=jobs, polls_per_job=polls_per_job, asids=asids)
    _check(seed=seed, rollout=rollout, low=0)
    return _Rollout(jobs, polls_per_job, seed=seed, number=rollout, asids=asids).events()


def _check(*, low: int = 1, **counts: int) -> None:
    """Raise ``ValueError`` naming the first count that is not a whole number >= ``low``."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be a whole number of at least {low}, not {value!r}")


# --- the fleet of an ASID ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Fleet:
    """An ASID's install targets, one per job of each of its rollouts, in job id order."""

    locations: tuple[str, ...]
    codes: tuple[str, ...]  # each location's code, for machine and mirror names
    pace: np.ndarray  # per location: how long its installs take (1: as long as most)
    mirrors: tuple[str, ...]  # mirror names
    location: np.ndarray  # per job: its location
    mirror: np.ndarray  # per job: a mirror job
    mirror_of: np.ndarray  # per job: its mirror (its own, or its machine's)
    number: np.ndarray  # per job: the mirror's or machine's number in its location
    machine: np.ndarray  # per job: the machine id (-1: a mirror job)
    flaky: np.ndarray  # per job: a machine with a failing drive


def _fleet(jobs: int, *, seed: int, asid: int) -> _Fleet:
    """The fleet of ``asid``: the same in every rollout of the ASID, for ``jobs`` jobs."""
    rng = np.random.default_rng([seed, _FLEET, asid])
    sites = [(loc.name, loc.code, float(loc.machines)) for loc in default_scenario().locations]
    if jobs > MANY_JOBS:
        sites += [(name, code, 10.0) for name, code in _MORE_LOCATIONS]
    mirrors = max(1, jobs // 10)
    sites = sites[: min(len(sites), mirrors)]
    n = len(sites)
    weights = np.array([weight for *_, weight in sites]) * rng.gamma(8.0, 1 / 8, n)
    own_mirrors = np.bincount(np.arange(mirrors) % n, minlength=n)
    counts = own_mirrors + _apportion(jobs - mirrors, weights)
    location = np.repeat(np.arange(n), counts)
    rank = np.arange(jobs) - np.repeat(np.cumsum(counts) - counts, counts)
    at_site = own_mirrors[location]
    mirror = rank < at_site
    number = np.where(mirror, rank, rank - at_site)
    mirror_of = (np.cumsum(own_mirrors) - own_mirrors)[location] + number % at_site
    names = [
        f"mirror-{code}-{k:02d}"
        for (_, code, _), count in zip(sites, own_mirrors, strict=True)
        for k in range(1, count + 1)
    ]
    return _Fleet(
        locations=tuple(name for name, *_ in sites),
        codes=tuple(code for _, code, _ in sites),
        pace=rng.lognormal(0.0, 0.2, n),
        mirrors=tuple(names),
        location=location,
        mirror=mirror,
        mirror_of=mirror_of,
        number=number + 1,
        machine=np.where(mirror, -1, _FIRST_MACHINE + np.cumsum(~mirror) - 1),
        flaky=~mirror & (rng.random(jobs) < 0.02),
    )


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``weights`` (largest remainders get the rest)."""
    share = weights / weights.sum() * total
    counts: np.ndarray = np.floor(share).astype(np.int64)
    counts[np.argsort(counts - share, kind="stable")[: total - int(counts.sum())]] += 1
    return counts


# --- the lives of one rollout's jobs, in polls -----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Lives:
    """Per job, in polls: queued at, waiting Queued, planned running, running before its
    failure, listed; how it leaves the list, its failure cause (an index into
    ``FAILURE_CAUSES``; -1: none) and its Failed rows. ``polls``: polls in the recording."""

    queued: np.ndarray
    wait: np.ndarray
    run: np.ndarray
    ran: np.ndarray
    listed: np.ndarray
    outcome: np.ndarray
    cause: np.ndarray
    failed_rows: np.ndarray
    polls: int


def _lives(rng: np.random.Generator, fleet: _Fleet, polls: int) -> _Lives:
    """How each job of a rollout goes, before the recording's end cuts the last ones short."""
    jobs = len(fleet.location)
    bad, bad_cause = _bad_location(rng, len(fleet.locations))
    slow = fleet.pace * rng.lognormal(0.0, 0.15, len(fleet.locations))
    if bad >= 0:
        slow[bad] *= 1.6
    planned = rng.gamma(4.0, polls / 4, jobs) * np.where(fleet.mirror, 0.5, 1.0)
    planned = np.maximum(6, (planned * slow[fleet.location]).round().astype(np.int64))
    wait = np.minimum(planned - 3, rng.geometric(1 / max(2, polls / 10), jobs))
    run = planned - wait
    cause = _causes(rng, fleet, bad, bad_cause)
    low, high = (np.array([_CAUSES[c][i] for c in FAILURE_CAUSES]) for i in (0, 1))
    strikes = np.maximum(cause, 0)
    share = low[strikes] + (high - low)[strikes] * rng.random(jobs)
    ran = np.clip(np.ceil(share * run).astype(np.int64), 1, run)
    failed_rows = rng.integers(1, 12, jobs)
    fails = cause >= 0
    outcome = np.where(rng.random(jobs) < 0.25, _SHOWN_COMPLETE, _VANISH)
    outcome = np.where(fails, _FAILS, outcome)
    listed = np.where(fails, wait + ran + failed_rows, planned)
    queued = _queue_polls(rng, fleet, planned, polls)
    return _cut(_Lives(queued, wait, run, ran, listed, outcome, cause, failed_rows, 0))


def _bad_location(rng: np.random.Generator, locations: int) -> tuple[int, int]:
    """The location that goes bad in a rollout (-1: none, in two rollouts of three) and the
    cause its failures have."""
    bad = int(rng.integers(locations)) if rng.random() < 0.35 else -1
    cause = _HOTSPOT_CAUSES[int(rng.integers(len(_HOTSPOT_CAUSES)))]
    return bad, FAILURE_CAUSES.index(cause)


def _causes(rng: np.random.Generator, fleet: _Fleet, bad: int, bad_cause: int) -> np.ndarray:
    """Each job's failure cause (an index into ``FAILURE_CAUSES``; -1: it does not fail):
    the default scenario's rates and causes (a mirror has no drive to fail), a quarter of a
    bad location's machines, and most flaky machines, with a failing drive."""
    scenario = default_scenario()
    jobs = len(fleet.mirror)
    weights = dict(scenario.failure_causes)
    drive = FAILURE_CAUSES.index("failing_drive")
    machine_p = np.array([weights.get(cause, 0.0) for cause in FAILURE_CAUSES])
    mirror_p = np.where(np.arange(len(FAILURE_CAUSES)) == drive, 0.0, machine_p)
    base = np.where(
        fleet.mirror,
        rng.choice(len(FAILURE_CAUSES), jobs, p=mirror_p / mirror_p.sum()),
        rng.choice(len(FAILURE_CAUSES), jobs, p=machine_p / machine_p.sum()),
    )
    rate = np.where(fleet.mirror, scenario.mirror_failure_rate, scenario.machine_failure_rate)
    cause = np.where(rng.random(jobs) < rate, base, -1)
    hot = ~fleet.mirror & (fleet.location == bad) & (rng.random(jobs) < 0.25)
    cause = np.where(hot, bad_cause, cause)
    return np.where(fleet.flaky & (rng.random(jobs) < 0.7), drive, cause)


def _queue_polls(
    rng: np.random.Generator, fleet: _Fleet, planned: np.ndarray, polls: int
) -> np.ndarray:
    """When each job is queued: mirrors at once, a location's machines spread over three
    lifetimes from when its last mirror is done."""
    first = rng.integers(0, 3, len(planned))
    done = np.zeros(len(fleet.locations), np.int64)
    np.maximum.at(done, fleet.location[fleet.mirror], (first + planned)[fleet.mirror])
    spread = rng.integers(0, 3 * polls, len(planned))
    return np.where(fleet.mirror, first, done[fleet.location] + spread)


def _cut(life: _Lives) -> _Lives:
    """The lives as recorded: the recording ends once all but the last 0.5 % of the jobs left
    the list (every job queued by then); those are listed until the end, unfinished."""
    ends = np.sort(life.queued + life.listed)
    left = min(max(1, len(ends) // 200), len(ends) - 1)
    polls = max(int(ends[-left - 1]) + 1, int(life.queued.max()) + 1)
    shown = np.minimum(life.listed, polls - life.queued)
    failed_rows = np.where(life.cause >= 0, shown - life.wait - life.ran, 0)
    failed = failed_rows > 0
    return _Lives(
        queued=life.queued,
        wait=np.minimum(life.wait, shown - 1),
        run=life.run,
        ran=life.ran,
        listed=shown,
        outcome=np.where((shown < life.listed) & ~failed, _VANISH, life.outcome),
        cause=np.where(failed, life.cause, -1),
        failed_rows=np.maximum(failed_rows, 0),
        polls=polls,
    )


# --- one rollout's events --------------------------------------------------------------------


class _Rollout:
    """One rollout of a synthetic history: its ids, its ASID's fleet, its jobs' lives and
    times, and the rows a recording of it gives."""

    def __init__(self, jobs: int, polls: int, *, seed: int, number: int, asids: int) -> None:
        scenario = default_scenario()
        self.asid, week = number % asids + 1, number // asids
        first_jobid, first_versionid = scenario.first_ids(seed)
        self.versionid = first_versionid + number
        self.jobid = first_jobid + number * jobs + np.arange(jobs)
        self.run_id = f"synth-{seed}-a{self.asid}-w{week:03d}"
        self.image = scenario.images[0]
        # A week after the ASID's previous rollout; ASIDs half an hour apart in the day.
        start = int(scenario.start) * _US + week * _WEEK + ((self.asid - 1) * 1800 % 86_400) * _US
        self.created = start - 900 * _US  # the version was built a quarter of an hour before
        self.fleet = _fleet(jobs, seed=seed, asid=self.asid)
        self.rng = rng = np.random.default_rng([seed, _ROLLOUT, number])
        self.life = life = _lives(rng, self.fleet, polls)
        self.poll_at = start + np.arange(life.polls) * _POLL + rng.integers(0, 2 * _US, life.polls)
        self.outage = _outages(rng, life.polls)
        self.queue_at = self.poll_at[life.queued] - rng.integers(_US, 14 * _US, jobs)
        responded = np.concatenate([self.poll_at, self.queue_at])
        self.seq = np.empty(len(responded), np.int64)
        self.seq[np.argsort(responded, kind="stable")] = np.arange(len(responded))
        self._timing()

    def _timing(self) -> None:
        """Each job's start, end (or planned end, if it fails or outlasts the recording),
        failure time and progress curve (time share of its download, percent it covers)."""
        life, rng, jobs = self.life, self.rng, len(self.jobid)
        last = self.poll_at[life.queued + life.listed - 1]
        self.start = self.poll_at[life.queued + life.wait] - rng.integers(0, 10 * _US, jobs)
        planned = self.start + life.run * _POLL
        gone = last + rng.integers(1, _POLL, jobs)  # between its last listing and the next poll
        ended = (life.outcome == _VANISH) & (life.queued + life.listed < life.polls)
        self.end = np.where(ended, gone, planned)
        shown_complete = life.outcome == _SHOWN_COMPLETE
        self.end = np.where(shown_complete, last - rng.integers(_US, 10 * _US, jobs), self.end)
        first_failed = np.minimum(life.queued + life.wait + life.ran, life.polls - 1)
        failed_at = self.poll_at[first_failed] - rng.integers(_US, 10 * _US, jobs)
        self.fail_at = np.where(life.cause >= 0, failed_at, np.iinfo(np.int64).max)
        mirror = self.fleet.mirror
        self.download = np.where(mirror, rng.uniform(0.5, 0.7, jobs), rng.uniform(0.5, 0.75, jobs))
        self.share = np.where(mirror, 0.95, 0.7)
        self.bias = rng.lognormal(0.0, 0.3, jobs)  # how a job's ETAs run long or short

    def events(self) -> pd.DataFrame:
        """Every row, in recording order (by ``seq``, a status list's jobs by ``jobid``)."""
        parts = [self._status(), self._bare(), self._queue()]
        merged = {name: _concatenate([_pair(p.get(name), n) for n, p in parts]) for name in SCHEMA}
        order = np.lexsort((merged["jobid"][0], merged["seq"][0]))
        texts = self._texts()
        columns = {
            name: _typed(name, values[order], valid[order], texts.get(name, ()))
            for name, (values, valid) in merged.items()
        }
        return validate(pd.DataFrame(columns, copy=False))

    def _texts(self) -> dict[str, Sequence[str]]:
        """The values of the text columns, which the rows give as codes."""
        machines = int((~self.fleet.mirror).sum())
        return {
            "run_id": [self.run_id],
            "joberror": self._messages(),
            "location": self.fleet.locations,
            "machine": [str(_FIRST_MACHINE + n) for n in range(machines)],
            "mirror": self.fleet.mirrors,
            "imagepath": [self.image.imagepath],
        }

    def _messages(self) -> list[str]:
        """The ``joberror`` of each failing job, in job order."""
        fleet, image = self.fleet, self.image
        texts = []
        for job in np.flatnonzero(self.life.cause >= 0):
            mirror = fleet.mirrors[fleet.mirror_of[job]]
            code = fleet.codes[fleet.location[job]]
            host = mirror if fleet.mirror[job] else f"{code}-gs-{fleet.number[job]:03d}"
            source = "the primary mirror" if fleet.mirror[job] else mirror
            template = _CAUSES[FAILURE_CAUSES[self.life.cause[job]]][2]
            texts.append(
                template.format(
                    host=host, mirror=source, imagepath=image.imagepath, diffid=image.diffids[0]
                )
            )
        return texts

    @property
    def _kind(self) -> np.ndarray:
        return np.where(self.fleet.mirror, KINDS.index("mirror"), KINDS.index("machine"))

    def _status(self) -> tuple[int, _Part]:
        """One row per job and status poll that lists it (a failed poll lists none)."""
        fleet = self.fleet
        job, k, poll = self._listings()
        t = self.poll_at[poll]
        state = self._states(job, k)
        begun = state != _QUEUED
        percent = self._percent(job, t)
        progress = np.where(begun, np.floor(percent), 0).astype(np.int64)
        progress[state == _COMPLETE] = 100
        has_eta = (state == _RUNNING) & (self.rng.random(len(t)) > 0.01)
        ended = [state == _COMPLETE, state == _FAILED]
        updated = np.select(ended, [self.end[job], self.fail_at[job]], t)
        message = np.cumsum(self.life.cause >= 0) - 1  # failing jobs' index in the messages
        return len(t), {
            "run_id": 0,
            "seq": self.seq[poll],
            "observed_at": t,
            "endpoint": ENDPOINTS.index("status"),
            "http_status": 200,
            "asid": self.asid,
            "jobid": self.jobid[job],
            "kind": self._kind[job],
            "jobstateid": state,
            "state": state - 1,
            "jobprogress": progress,
            "jobcreated": self.created,
            "jobstart": _where(begun & (job % 50 != 49), _seconds(self.start[job])),
            "jobupdated": _seconds(updated),
            "jobeta": _where(has_eta, self._eta(job, t, percent)),
            "jobfailed": (state == _FAILED).astype(np.int64),
            "joberror": _where(state == _FAILED, message[job]),
            "mirroring": fleet.mirror[job],
            "restart": True,
            "location": fleet.location[job],
            "machine": _where(~fleet.mirror[job], fleet.machine[job] - _FIRST_MACHINE),
            "mirror": fleet.mirror_of[job],
            "imagepath": 0,
            "target_imageversionid": self.versionid,
        }

    def _listings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row of the status lists: the job, its listing's number and the poll."""
        listed = self.life.listed
        job = np.repeat(np.arange(len(listed)), listed)
        k = np.arange(len(job)) - np.repeat(np.cumsum(listed) - listed, listed)
        poll = self.life.queued[job] + k
        keep = ~self.outage[poll]
        return job[keep], k[keep], poll[keep]

    def _states(self, job: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The ``jobstateid`` of each listing: Queued, Running, then Complete or Failed."""
        life = self.life
        state = np.where(k < life.wait[job], _QUEUED, _RUNNING)
        complete = (life.outcome[job] == _SHOWN_COMPLETE) & (k == life.listed[job] - 1)
        state = np.where(complete, _COMPLETE, state)
        failed = (life.outcome[job] == _FAILS) & (k >= life.listed[job] - life.failed_rows[job])
        return np.where(failed, _FAILED, state)

    def _percent(self, job: np.ndarray, t: np.ndarray) -> np.ndarray:
        """True percent done at ``t``: the download's share fast, then the extract slower."""
        elapsed = np.minimum(t, self.fail_at[job]) - self.start[job]
        x = np.clip(elapsed / (self.end - self.start)[job], 0.0, 0.999)
        download, share = self.download[job], self.share[job]
        done = np.where(
            x < download,
            share * x / download,
            share + (1 - share) * (x - download) / (1 - download),
        )
        return np.asarray(100.0 * done)

    def _eta(self, job: np.ndarray, t: np.ndarray, percent: np.ndarray) -> np.ndarray:
        """The ETA a job reports: its elapsed time extrapolated over its progress, times
        noise (before any progress: the duration it expects uncontended), whole seconds."""
        start = self.start[job]
        elapsed = t - start
        noise = self.bias[job] * self.rng.lognormal(0.0, 0.1, len(t))
        expected = 0.85 * (self.end - self.start)[job]
        moving = (percent > 0) & (elapsed > 0)
        rest = elapsed * (100 - percent) / np.where(moving, percent, 1.0)
        guess = np.where(moving, t + rest * noise, start + expected * noise)
        return _seconds(guess.astype(np.int64))

    def _bare(self) -> tuple[int, _Part]:
        """One row per poll that lists no job: the failed ones (HTTP 503), and empty lists."""
        life = self.life
        cover = np.zeros(life.polls + 1, np.int64)
        np.add.at(cover, life.queued, 1)
        np.add.at(cover, life.queued + life.listed, -1)
        bare = np.flatnonzero(self.outage | (np.cumsum(cover)[:-1] == 0))
        failed = self.outage[bare]
        return len(bare), {
            "run_id": 0,
            "seq": self.seq[bare],
            "observed_at": self.poll_at[bare],
            "endpoint": ENDPOINTS.index("status"),
            "http_status": np.where(failed, 503, 200),
            "problem": _where(failed, PROBLEMS.index("http_status")),
            "asid": self.asid,
        }

    def _queue(self) -> tuple[int, _Part]:
        """One row per queue answer: each job queued once, just before the poll that first
        lists it."""
        mirror = self.fleet.mirror
        subid = self.jobid + _SUBID_OFFSET
        return len(self.jobid), {
            "run_id": 0,
            "seq": self.seq[self.life.polls :],
            "observed_at": self.queue_at,
            "endpoint": ENDPOINTS.index("queue"),
            "http_status": 200,
            "asid": self.asid,
            "jobid": self.jobid,
            "kind": self._kind,
            "jobstateid": _QUEUED,
            "state": _QUEUED - 1,
            "jobprogress": 0,
            "jobcreated": self.created,
            "jobupdated": _seconds(self.queue_at),
            "jobfailed": 0,
            "success": True,
            "mirroring": mirror,
            "versionmirrorid": _where(mirror, subid),
            "machinejobid": _where(~mirror, subid),
            "installs_squashed": _where(~mirror, 0),
        }


def _outages(rng: np.random.Generator, polls: int) -> np.ndarray:
    """Which polls fail (HTTP 503): about 0.5 %, in bursts of one to three polls, never the
    first or the last."""
    failed = np.zeros(polls, bool)
    if polls < 3:
        return failed
    starts = rng.integers(1, polls - 1, max(1, polls // 400))
    lengths = rng.integers(1, 4, len(starts))
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    failed[np.minimum(np.repeat(starts, lengths) + offsets, polls - 2)] = True
    return failed


# --- typed columns from numpy arrays ---------------------------------------------------------


def _seconds(us: np.ndarray) -> np.ndarray:
    """Microseconds cut to whole seconds: the API's timestamps are unix seconds."""
    return us // _US * _US


@dataclass(frozen=True, slots=True)
class _Some:
    """A column of a part with NAs: ``values`` where ``valid``."""

    values: np.ndarray
    valid: np.ndarray


#: A column of a part: the same value in every row, a value per row, or values and NAs.
_Part = dict[str, "int | np.ndarray | _Some"]


def _where(valid: np.ndarray, values: np.ndarray | int) -> _Some:
    """``values`` where ``valid``, NA elsewhere."""
    return _Some(np.where(valid, values, 0), valid)


def _pair(value: int | np.ndarray | _Some | None, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """A part's column of ``rows`` as values and validity: all NA if absent."""
    if value is None:
        return np.zeros(rows, np.int64), np.zeros(rows, bool)
    if isinstance(value, _Some):
        return value.values, value.valid
    return np.broadcast_to(value, rows), np.ones(rows, bool)


def _concatenate(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The parts' values and validity, one after the other."""
    return np.concatenate([v for v, _ in pairs]), np.concatenate([ok for _, ok in pairs])


def _typed(name: str, values: np.ndarray, valid: np.ndarray, texts: Sequence[str]) -> object:
    """A column in its schema dtype, from numbers (codes for categories and text)."""
    dtype = SCHEMA[name]
    missing = ~valid
    if isinstance(dtype, pd.CategoricalDtype) or dtype == TEXT:
        codes = np.where(valid, values, -1).astype(np.int64)
        if dtype == TEXT:
            return _text(codes, texts)
        return pd.Categorical.from_codes(codes, dtype=dtype)
    if dtype == TIME:
        stamps = values.astype(np.int64).astype("datetime64[us]")
        stamps[missing] = np.datetime64("NaT")
        return pd.DatetimeIndex(stamps).tz_localize("UTC").array
    if dtype == BOOL:
        return pd.arrays.BooleanArray(values.astype(bool), missing)
    assert dtype == INT, f"no rule for {name}'s dtype {dtype}"
    return pd.arrays.IntegerArray(values.astype(np.int64), missing)


def _text(codes: np.ndarray, texts: Sequence[str]) -> pd.arrays.ArrowStringArray:
    """Nullable strings from codes into ``texts`` (-1: NA), built by Arrow."""
    indices = pa.array(codes, mask=codes < 0, type=pa.int32())
    return pd.arrays.ArrowStringArray(pa.array(list(texts), pa.large_string()).take(indices))
