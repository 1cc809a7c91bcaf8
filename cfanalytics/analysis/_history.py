"""Across rollouts: a history store read one rollout at a time, and what compares them.

:class:`History` is the analysis view of a :class:`~cfanalytics.recording.HistoryStore`:
each rollout is read on its own (:meth:`HistoryStore.events` with ``rollout=``) and analysed
by the same functions as a single recording, so every figure of a rollout is the one it gets
alone. Results are kept per rollout while the store's files are unchanged.

Rollouts come in the order they started: by ``first_seen``, then by id (:data:`ORDER`); a
rollout is *before* another in that order. The figures of a rollout, or of a group of its
jobs, are :data:`GROUP_METRICS` (:mod:`cfanalytics.analysis._headline`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..events import INT, TEXT, TIME, rollout_of
from ..exceptions import RolloutError
from ..recording import HistoryStore
from ._common import conform, of_rollout, one_rollout, utc
from ._failures import failures
from ._headline import GROUP_METRICS, group_metrics, severity
from ._summary import SUMMARY_SCHEMA, job_summary
from ._timing import job_eta_metrics

__all__ = [
    "MACHINE_HISTORY_SCHEMA",
    "ORDER",
    "REPEAT_K",
    "REPEAT_N",
    "ROLLOUTS_SCHEMA",
    "Analysed",
    "History",
    "Standing",
    "machine_history",
    "open_history",
    "standing",
    "trend",
]

#: The order of rollouts: when they were first seen, ties by id. "Before" means earlier in it.
ORDER = ("first_seen", "rollout")
#: A repeat offender, by default: failed in at least REPEAT_K of its last REPEAT_N rollouts.
REPEAT_K, REPEAT_N = 2, 3

_CATALOG_COLUMNS: dict[str, object] = {
    "rollout": TEXT,
    "asid": INT,
    "imageversionid": INT,
    "first_seen": TIME,
    "last_seen": TIME,
    "runs": INT,
}
#: :meth:`History.rollouts`: one row per rollout, in the order they started.
ROLLOUTS_SCHEMA: dict[str, object] = {
    **_CATALOG_COLUMNS,
    **GROUP_METRICS,
    "worst_location": TEXT,  # the location with the slowest median install
}
#: :func:`machine_history`: one row per machine (or mirror) and ASID.
MACHINE_HISTORY_SCHEMA: dict[str, object] = {
    "asid": INT,
    "kind": TEXT,
    "location": TEXT,
    "machine": TEXT,  # the machine's name; the mirror's for a mirror job
    "rollouts": INT,  # rollouts it had a job in
    "failed": INT,  # of those, the rollouts where its job failed at least once
    "failed_recent": INT,  # failed among its last ``n`` rollouts, the latest included
    "failure_classes": TEXT,  # error classes of its failures, most frequent first
    "last_failed": TEXT,  # the last rollout it failed in
    "repeat_offender": "boolean",  # failed in at least ``k`` of its last ``n`` rollouts
}


class Analysed:
    """One rollout's analyses, computed once: its :func:`job_summary` and :func:`failures`,
    and its :func:`job_eta_metrics` (``per_job``) once asked for (they cost the most)."""

    def __init__(self, events: pd.DataFrame, rollout: str, *, eta: bool = True) -> None:
        self.rollout = rollout
        self.summary = of_rollout(job_summary(events), rollout)
        self.failures = of_rollout(failures(events, summary=self.summary), rollout)
        self._per_job = job_eta_metrics(events, summary=self.summary) if eta else None

    @property
    def has_per_job(self) -> bool:
        return self._per_job is not None

    @property
    def per_job(self) -> pd.DataFrame:
        """:func:`job_eta_metrics` of the rollout."""
        if self._per_job is None:
            raise RuntimeError("per_job was not computed")  # History asks with eta=True
        return self._per_job

    def with_per_job(self, events: pd.DataFrame) -> Analysed:
        """Compute ``per_job`` from the rollout's ``events`` (kept: the rest is done)."""
        self._per_job = job_eta_metrics(events, summary=self.summary)
        return self

    def metrics(self, *, by: str | None = None) -> pd.DataFrame:
        """:func:`group_metrics` of the rollout."""
        return group_metrics(self.summary, self.per_job, by=by)


#: A rollout to tabulate: its catalog row (rollout, asid, first_seen...) and its analyses.
_Entry = tuple[Any, Analysed]


class History:
    """Every rollout of a history store, analysed one at a time.

    ``History(path)`` (or :func:`open_history`) opens an existing store
    (``cfanalytics history add`` makes one); a :class:`HistoryStore` is taken as it is.
    Analyses are kept per rollout while the store's files stay as they are.
    """

    def __init__(self, store: HistoryStore | str | os.PathLike[str]) -> None:
        self.store = store if isinstance(store, HistoryStore) else HistoryStore(store)
        self._cache: dict[str, Analysed] = {}
        self._signature: tuple[tuple[str, int, int], ...] = ()

    def __repr__(self) -> str:
        return f"History({str(self.store.path)!r})"

    @property
    def path(self) -> Path:
        """The store's folder."""
        return self.store.path

    def catalog(
        self,
        *,
        asid: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> pd.DataFrame:
        """The store's rollouts (:meth:`HistoryStore.catalog`) in :data:`ORDER`, of ``asid``
        only, started at or after ``since`` and before ``until`` (UTC)."""
        start, end = _bound(since, "since"), _bound(until, "until")
        if start is not None and end is not None and start >= end:
            raise ValueError(f"since ({since}) must come before until ({until})")
        found = self.store.catalog()
        keep = pd.Series(True, index=found.index)
        if asid is not None:
            keep &= found["asid"] == asid
        if start is not None:
            keep &= found["first_seen"] >= start
        if end is not None:
            keep &= found["first_seen"] < end
        found = found.loc[keep.to_numpy(dtype=bool, na_value=False)]
        return found.sort_values(list(ORDER), na_position="last", kind="stable", ignore_index=True)

    def events(self, **filters: Any) -> pd.DataFrame:
        """The stored events: :meth:`HistoryStore.events` (``rollout=``, ``asid=``,
        ``since=``, ``until=``, ``columns=``), reading only what the filters need."""
        return self.store.events(**filters)

    def summary(
        self,
        *,
        rollout: str | None = None,
        asid: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> pd.DataFrame:
        """:func:`job_summary` of each rollout (or of ``rollout``), as if analysed alone,
        one after another in :data:`ORDER`."""
        self._fresh()
        names = (
            [rollout] if rollout else self.catalog(asid=asid, since=since, until=until)["rollout"]
        )
        parts = [self._analysed(name, eta=False).summary for name in names]
        return pd.concat(parts, ignore_index=True) if parts else _empty(SUMMARY_SCHEMA)

    def rollouts(
        self,
        *,
        asid: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        on_progress: Callable[[int, int], object] | None = None,
    ) -> pd.DataFrame:
        """One row per rollout, in :data:`ORDER`: the catalog's columns, then
        :data:`GROUP_METRICS` and ``worst_location`` (columns: :data:`ROLLOUTS_SCHEMA`).

        ``on_progress(done, total)`` is called after each rollout is analysed.
        """
        return _rollouts_table(self._entries(asid, since, until, on_progress=on_progress))

    def analysed(self, rollout: str) -> Analysed:
        """``rollout``'s analyses (:class:`Analysed`), kept while the store is unchanged."""
        self._fresh()
        return self._analysed(rollout, eta=True)

    # -- inside ----------------------------------------------------------------------

    def _fresh(self) -> None:
        """Forget every analysis if the store's files changed since they were made."""
        signature = _signature(self.path)
        if signature != self._signature:
            self._cache.clear()
            self._signature = signature

    def _analysed(self, rollout: str, *, eta: bool) -> Analysed:
        found = self._cache.get(rollout)
        if found is None:
            found = Analysed(self.store.events(rollout=rollout), rollout, eta=eta)
            self._cache[rollout] = found
        elif eta and not found.has_per_job:
            found.with_per_job(self.store.events(rollout=rollout))
        return found

    def _entries(
        self,
        asid: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        *,
        eta: bool = True,
        on_progress: Callable[[int, int], object] | None = None,
    ) -> list[_Entry]:
        """The catalog's rollouts, each with its analyses, in :data:`ORDER`."""
        self._fresh()
        catalog = self.catalog(asid=asid, since=since, until=until)
        entries = []
        for done, row in enumerate(catalog.itertuples(index=False), start=1):
            entries.append((row, self._analysed(row.rollout, eta=eta)))
            if on_progress is not None:
                on_progress(done, len(catalog))
        return entries


def open_history(history: History | HistoryStore | str | os.PathLike[str]) -> History:
    """A :class:`History` of ``history``: a store's folder, a :class:`HistoryStore`, or a
    :class:`History` (returned as it is, with what it already analysed)."""
    return history if isinstance(history, History) else History(history)


def trend(
    history: History | HistoryStore | str | os.PathLike[str],
    metric: str,
    *,
    by: str | None = None,
    asid: int | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
) -> pd.DataFrame:
    """``metric`` (one of :data:`GROUP_METRICS`) of each rollout in :data:`ORDER`, or of each
    group ``by`` (a job summary column: ``location``, ``kind``...) of each rollout: columns
    ``rollout``, ``asid``, ``imageversionid``, ``first_seen``, ``by`` if given, ``metric``.
    """
    _check_trend(metric, by)
    return _trend_table(open_history(history)._entries(asid, since, until), metric, by)


def machine_history(
    history: History | HistoryStore | str | os.PathLike[str],
    *,
    k: int = REPEAT_K,
    n: int = REPEAT_N,
    asid: int | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
) -> pd.DataFrame:
    """Per machine (and per mirror) of each ASID: the rollouts it had a job in, those where
    its job failed at least once (a failure that was queued again and then completed
    counts: a failing drive shows so), their error classes, and ``repeat_offender``: failed
    in at least ``k`` of its last ``n`` rollouts. Repeat offenders first, then by failures
    (columns: :data:`MACHINE_HISTORY_SCHEMA`)."""
    _check_offender(k, n)
    entries = open_history(history)._entries(asid, since, until, eta=False)
    return _machines_table(entries, k=k, n=n)


@dataclass(frozen=True)
class Standing:
    """A rollout against the rollouts of its ASID before it in a history (:func:`standing`).

    ``rollouts``: the ``previous`` ones and this one, last (:data:`ROLLOUTS_SCHEMA`);
    ``machines``: :func:`machine_history` of every rollout of the ASID up to this one, so
    its repeat offenders are those :func:`machine_history` of the store would name.
    """

    rollout: str
    rollouts: pd.DataFrame
    machines: pd.DataFrame
    _entries: list[_Entry] = field(repr=False)

    @property
    def previous(self) -> tuple[str, ...]:
        """The earlier rollouts compared with, oldest first."""
        return tuple(self.rollouts["rollout"].iloc[:-1])

    def trend(self, metric: str, *, by: str | None = None) -> pd.DataFrame:
        """:func:`trend` of these rollouts."""
        _check_trend(metric, by)
        return _trend_table(self._entries, metric, by)

    def rank(self, metric: str) -> tuple[int, int]:
        """Where this rollout's ``metric`` stands among these rollouts: 1 for the worst
        (largest; a bias furthest from 0), out of how many have one; (0, n) when this one
        has none."""
        values = severity(metric, self.rollouts[metric].astype("float64"))
        mine, known = values.iloc[-1], values.dropna()
        if pd.isna(mine):
            return 0, len(known)
        return int((known > mine).sum()) + 1, len(known)

    def offenders(self) -> pd.DataFrame:
        """The repeat offenders that failed in this rollout."""
        here = self.machines["last_failed"] == self.rollout
        keep = (here & self.machines["repeat_offender"]).to_numpy(dtype=bool, na_value=False)
        return self.machines.loc[keep].reset_index(drop=True)


def standing(
    events: pd.DataFrame,
    history: History | HistoryStore | str | os.PathLike[str],
    *,
    rollout: str | None = None,
    previous: int | None = 5,
    k: int = REPEAT_K,
    n: int = REPEAT_N,
) -> Standing:
    """``rollout`` of ``events`` (or their only one) against the ``previous`` rollouts of its
    ASID before it in ``history`` (None: all of them). The rollout is analysed from
    ``events``, whether the store holds it or not: its figures are those it gets alone.
    ``k`` and ``n`` say who is a repeat offender (:func:`machine_history`), over every
    earlier rollout whatever ``previous``."""
    if previous is not None and previous < 1:
        raise ValueError(f"previous must be at least 1 (or None: all), not {previous}")
    _check_offender(k, n)
    name, frame = one_rollout(events, rollout)
    if name is None:
        raise RolloutError("the events name no rollout (no ASID and no run), so none to place")
    found = open_history(history)
    found._fresh()
    head = _head(frame, name)
    catalog = found.catalog(asid=None if pd.isna(head.asid) else int(head.asid))
    earlier = catalog.loc[_before(catalog, head) & (catalog["rollout"] != name).to_numpy()]
    mine: _Entry = (head, Analysed(frame, name))
    window = earlier if previous is None else earlier.tail(previous)
    compared = [
        (row, found._analysed(row.rollout, eta=True)) for row in window.itertuples(index=False)
    ]
    everyone = [
        (row, found._analysed(row.rollout, eta=False)) for row in earlier.itertuples(index=False)
    ]
    entries = [*compared, mine]
    machines = _machines_table([*everyone, mine], k=k, n=n)
    return Standing(name, _rollouts_table(entries), machines, entries)


def _before(catalog: pd.DataFrame, head: Any) -> np.ndarray:
    """Which rows of ``catalog`` come before ``head`` in :data:`ORDER` (NaT last)."""
    seen = catalog["first_seen"]
    smaller: np.ndarray = (catalog["rollout"] < head.rollout).to_numpy(dtype=bool, na_value=False)
    if pd.isna(head.first_seen):
        unknown: np.ndarray = seen.isna().to_numpy()
        found: np.ndarray = ~unknown | (unknown & smaller)
        return found
    earlier: np.ndarray = (seen < head.first_seen).to_numpy(dtype=bool, na_value=False)
    tie: np.ndarray = (seen == head.first_seen).to_numpy(dtype=bool, na_value=False)
    found = earlier | (tie & smaller)
    return found


def _head(events: pd.DataFrame, name: str) -> Any:
    """The catalog row of rollout ``name`` from its events, as the store's catalog has it."""
    mine = events.loc[np.asarray(rollout_of(events) == name, dtype=bool)]
    row = {
        "rollout": name,
        "asid": mine["asid"].dropna().min(),
        "imageversionid": mine["target_imageversionid"].dropna().min(),
        "first_seen": mine["observed_at"].min(),
        "last_seen": mine["observed_at"].max(),
        "runs": mine["run_id"].nunique(),
    }
    return next(conform(pd.DataFrame([row]), _CATALOG_COLUMNS).itertuples(index=False))


def _rollouts_table(entries: list[_Entry]) -> pd.DataFrame:
    """:meth:`History.rollouts` of the rollouts of ``entries``."""
    rows = []
    for row, found in entries:
        metrics = found.metrics().iloc[0]
        head = {name: getattr(row, name) for name in _CATALOG_COLUMNS}
        slowest = _slowest(found.metrics(by="location"))
        rows.append({**head, **metrics.to_dict(), "worst_location": slowest})
    return conform(pd.DataFrame(rows, columns=list(ROLLOUTS_SCHEMA)), ROLLOUTS_SCHEMA)


def _trend_table(entries: list[_Entry], metric: str, by: str | None) -> pd.DataFrame:
    """:func:`trend` of the rollouts of ``entries``."""
    head = ["rollout", "asid", "imageversionid", "first_seen"]
    if by is None:
        return _rollouts_table(entries)[[*head, metric]]
    parts = [pd.DataFrame(columns=[*head, by, metric])]
    for row, analysed in entries:
        groups = analysed.metrics(by=by)[[by, metric]]
        parts.append(groups.assign(**{name: getattr(row, name) for name in head}))
    schema = {**{c: _CATALOG_COLUMNS[c] for c in head}, by: TEXT, metric: GROUP_METRICS[metric]}
    return conform(pd.concat(parts, ignore_index=True), schema)


def _machines_table(entries: list[_Entry], *, k: int, n: int) -> pd.DataFrame:
    """:func:`machine_history` of the rollouts of ``entries`` (in :data:`ORDER`)."""
    seen, failed = [], []
    for order, (row, analysed) in enumerate(entries):
        seen.append(_units(analysed.summary, row.asid).assign(order=order, rollout=row.rollout))
        if len(analysed.failures):
            mine = _units(analysed.failures, row.asid)
            failed.append(mine.assign(order=order, rollout=row.rollout))
    if not seen:
        return _empty(MACHINE_HISTORY_SCHEMA)
    jobs = pd.concat(seen, ignore_index=True).drop_duplicates(["unit", "order"], keep="last")
    fails = pd.concat(failed, ignore_index=True) if failed else jobs.iloc[:0]
    machines = [_machine_row(unit, rows, fails, k=k, n=n) for unit, rows in jobs.groupby("unit")]
    out = conform(
        pd.DataFrame(machines, columns=list(MACHINE_HISTORY_SCHEMA)), MACHINE_HISTORY_SCHEMA
    )
    by = ["repeat_offender", "failed_recent", "failed", "asid", "machine"]
    return out.sort_values(
        by, ascending=[False, False, False, True, True], kind="stable", ignore_index=True
    )


def _units(jobs: pd.DataFrame, asid: object) -> pd.DataFrame:
    """The machine (or mirror) each row of a summary or failures table of a rollout of
    ``asid`` is about, as ``unit``: a machine is known by its ASID, kind and name."""
    name = jobs["machine"].where(jobs["kind"] != "mirror", jobs["mirror"])
    unit = f"{asid}|" + jobs["kind"].astype(TEXT) + "|" + name
    out = jobs.assign(machine=name, unit=unit, asid=pd.array([asid] * len(jobs), dtype=INT))
    return out.loc[out["unit"].notna().to_numpy()]


def _machine_row(
    unit: str, rows: pd.DataFrame, fails: pd.DataFrame, *, k: int, n: int
) -> dict[str, object]:
    mine = fails.loc[(fails["unit"] == unit).to_numpy(dtype=bool, na_value=False)]
    failed_in = set(mine["order"])
    recent = sorted(rows["order"])[-n:]
    failed_recent = sum(order in failed_in for order in recent)
    classes = mine["error_class"].astype(TEXT).value_counts() if len(mine) else pd.Series()
    last = rows.iloc[-1]
    return {
        "asid": last["asid"],
        "kind": str(last["kind"]),
        "location": last["location"],
        "machine": last["machine"],
        "rollouts": len(rows),
        "failed": len(failed_in),
        "failed_recent": failed_recent,
        "failure_classes": ", ".join(f"{c} {m}" for c, m in classes.items()) or pd.NA,
        "last_failed": mine.sort_values("order")["rollout"].iloc[-1] if len(mine) else pd.NA,
        "repeat_offender": failed_recent >= k,
    }


def _slowest(by_location: pd.DataFrame) -> object:
    """The known location with the largest median install time (NA when none completed)."""
    known = by_location.dropna(subset=["location", "install_p50_s"])
    if known.empty:
        return pd.NA
    ranked = known.sort_values(["install_p50_s", "location"], ascending=[False, True])
    return ranked.iloc[0]["location"]


def _check_trend(metric: str, by: str | None) -> None:
    if metric not in GROUP_METRICS:
        raise ValueError(f"no metric {metric!r}; choose from {', '.join(GROUP_METRICS)}")
    if by is not None and (by not in SUMMARY_SCHEMA or by == "rollout"):
        raise ValueError(
            f"cannot take a trend by {by!r}: use a job summary column (location, kind...)"
        )


def _check_offender(k: int, n: int) -> None:
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")


def _bound(value: datetime | str | None, what: str) -> pd.Timestamp | None:
    """A ``since`` / ``until`` as a UTC time; a clear error for text that is none."""
    if value is None:
        return None
    try:
        at = utc(value)
    except ValueError:
        at = pd.NaT
    if pd.isna(at):
        raise ValueError(f"{what}: not a date: {value!r} (use ISO 8601, e.g. 2026-11-02)")
    return at


def _empty(schema: Mapping[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in schema.items()})


def _signature(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Every data file of the store with its size and modification time: a changed store
    changes it."""
    files = sorted(path.glob("asid=*/month=*/*.parquet"))
    return tuple((str(f), s.st_size, s.st_mtime_ns) for f in files for s in [f.stat()])
