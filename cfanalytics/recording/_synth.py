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
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from ._history import HistoryAdded, HistoryProgress, HistoryStore
from ._synth_fleet import MANY_JOBS
from ._synth_rows import Rollout

__all__ = ["BATCH_ROWS", "MANY_JOBS", "Synthesized", "synthesize", "synthetic_events"]

#: :func:`synthesize` adds rollouts to the store in batches of at most this many rows.
BATCH_ROWS = 1_000_000


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
    return Rollout(jobs, polls_per_job, seed=seed, number=rollout, asids=asids).events()


def _check(*, low: int = 1, **counts: int) -> None:
    """Raise ``ValueError`` naming the first count that is not a whole number >= ``low``."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be a whole number of at least {low}, not {value!r}")
