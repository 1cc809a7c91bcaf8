"""A synthetic rollout's event rows: its jobs' lives turned into the events table, a
column at a time with numpy (the model: :mod:`cfanalytics.recording._synth`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from ..events import (
    BOOL,
    ENDPOINTS,
    KINDS,
    LABEL,
    PROBLEMS,
    SCHEMA,
    TEXT,
    TIME,
    labels,
    validate,
)
from ..simulator import FAILURE_CAUSES, default_scenario
from ._synth_fleet import (
    CAUSES,
    FAILS,
    FIRST_MACHINE,
    ROLLOUT,
    SHOWN_COMPLETE,
    VANISH,
    fleet_of,
    lives_of,
)

_US = 1_000_000
_POLL = 15 * _US  # a status poll every 15 s
_WEEK = 7 * 86_400 * _US
_SUBID_OFFSET = 500_000  # versionmirrorid / machinejobid: the job id plus this
_QUEUED, _RUNNING, _COMPLETE, _FAILED = 3, 4, 5, 6  # jobstateid


# --- one rollout's events --------------------------------------------------------------------


class Rollout:
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
        self.fleet = fleet_of(jobs, seed=seed, asid=self.asid)
        self.rng = rng = np.random.default_rng([seed, ROLLOUT, number])
        self.life = life = lives_of(rng, self.fleet, polls)
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
        ended = (life.outcome == VANISH) & (life.queued + life.listed < life.polls)
        self.end = np.where(ended, gone, planned)
        shown_complete = life.outcome == SHOWN_COMPLETE
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
            "machine": [str(FIRST_MACHINE + n) for n in range(machines)],
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
            template = CAUSES[FAILURE_CAUSES[self.life.cause[job]]][2]
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
            "machine": _where(~fleet.mirror[job], fleet.machine[job] - FIRST_MACHINE),
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
        complete = (life.outcome[job] == SHOWN_COMPLETE) & (k == life.listed[job] - 1)
        state = np.where(complete, _COMPLETE, state)
        failed = (life.outcome[job] == FAILS) & (k >= life.listed[job] - life.failed_rows[job])
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
        if dtype is LABEL:  # texts may repeat: code each distinct text once
            distinct, code_of = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
            codes = np.where(codes < 0, -1, code_of[np.maximum(codes, 0)] if len(texts) else -1)
            return labels(pd.Categorical.from_codes(codes, categories=distinct))
        return pd.Categorical.from_codes(codes, dtype=dtype)
    if dtype == TIME:
        stamps = values.astype(np.int64).astype("datetime64[us]")
        stamps[missing] = np.datetime64("NaT")
        return pd.DatetimeIndex(stamps).tz_localize("UTC").array
    if dtype == BOOL:
        return pd.arrays.BooleanArray(values.astype(bool), missing)
    assert isinstance(dtype, pd.Int64Dtype | pd.Int16Dtype | pd.Int8Dtype), f"{name}: {dtype}?"
    return pd.arrays.IntegerArray(values.astype(dtype.numpy_dtype), missing)


def _text(codes: np.ndarray, texts: Sequence[str]) -> pd.arrays.ArrowStringArray:
    """Nullable strings from codes into ``texts`` (-1: NA), built by Arrow."""
    indices = pa.array(codes, mask=codes < 0, type=pa.int32())
    return pd.arrays.ArrowStringArray(pa.array(list(texts), pa.large_string()).take(indices))
