"""Across rollouts: a history store read one rollout at a time, and what compares them.

:class:`History` is the analysis view of a :class:`~cfanalytics.recording.HistoryStore`:
each rollout is read on its own (:meth:`HistoryStore.events` with ``rollout=``) and analysed
by the same functions as a single recording, so every figure of a rollout is the one it gets
alone. What is kept of each is its digest (:mod:`._digest`), small whatever its size, while
the store's files are unchanged; the rollouts are digested by an engine (:mod:`._engines`):
worker processes here, or a Dask cluster.

Rollouts come in the order they started: by ``first_seen``, then by id (:data:`ORDER`); a
rollout is *before* another in that order. The figures of a rollout, or of a group of its
jobs, are :data:`GROUP_METRICS` (:mod:`cfanalytics.analysis._headline`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..events import INT, TEXT, Schema, rollout_of
from ..events import SCHEMA as EVENTS
from ..exceptions import RolloutError
from ..recording import CATALOG_COLUMNS, HistoryStore
from ._columns import returns
from ._common import ROLLOUT, conform, one_rollout, utc
from ._digest import (
    DIGEST_GROUPS,
    Digest,
    digest,
    digest_in_store,
    groups_in_store,
    summary_in_store,
)
from ._engines import Embedded, Engine, engine_of
from ._headline import GROUP_METRICS, severity
from ._summary import SUMMARY_SCHEMA

__all__ = [
    "MACHINE_HISTORY_SCHEMA",
    "ORDER",
    "REPEAT_K",
    "REPEAT_N",
    "ROLLOUTS_SCHEMA",
    "History",
    "Standing",
    "earlier_rollouts",
    "machine_history",
    "open_history",
    "standing",
    "started_between",
    "trend",
]

#: The order of rollouts: when they were first seen, ties by id. "Before" means earlier in it.
ORDER = ("first_seen", "rollout")
#: A repeat offender, by default: failed in at least REPEAT_K of its last REPEAT_N rollouts.
REPEAT_K, REPEAT_N = 2, 3
# Fewer jobs than this in all are digested in this process: workers take a second to start.
_FEW_JOBS = 20_000

# The store's catalog (its dtypes: CATALOG_COLUMNS): one row per rollout.
_CATALOG_MEANINGS = {
    "rollout": ROLLOUT["rollout"][1],
    "asid": "the rollout's ASID",
    "imageversionid": "the rollout's image version",
    "first_seen": "the rollout's first observation: rollouts start in this order",
    "last_seen": "the rollout's last observation",
    "runs": "recording runs that saw it",
    "jobs": "jobs of the rollout",
}
_CATALOG = Schema({name: (t, _CATALOG_MEANINGS[name]) for name, t in CATALOG_COLUMNS.items()})
# The catalog's columns every table of rollouts starts with.
_CATALOG_COLUMNS = Schema(_CATALOG.entries(*(name for name in _CATALOG if name != "jobs")))
#: :meth:`History.rollouts`: one row per rollout, in the order they started.
ROLLOUTS_SCHEMA = Schema(
    {
        **_CATALOG_COLUMNS.entries(),
        **GROUP_METRICS.entries(),
        "worst_location": (TEXT, "the location with the slowest median install"),
    }
)
#: :func:`machine_history`: one row per machine (or mirror) and ASID.
MACHINE_HISTORY_SCHEMA = Schema(
    {
        "asid": (INT, "the ASID its jobs were of"),
        "kind": (TEXT, "machine, or mirror for a mirror's jobs"),
        "location": (TEXT, "its location (its last job's)"),
        "machine": (TEXT, "the machine's name; the mirror's for a mirror job"),
        "rollouts": (INT, "rollouts it had a job in"),
        "failed": (INT, "of those, the rollouts where its job failed at least once"),
        "failed_recent": (INT, "failed among its last n rollouts, the latest included"),
        "failure_classes": (TEXT, "error classes of its failures, most frequent first"),
        "last_failed": (TEXT, "the last rollout it failed in"),
        "repeat_offender": ("boolean", "failed in at least k of its last n rollouts"),
    }
)
# trend: a figure of each rollout, or of each group of ``by`` of each rollout.
_TREND_HEAD = ("rollout", "asid", "imageversionid", "first_seen")
_TREND = Schema(
    {
        **_CATALOG_COLUMNS.entries(*_TREND_HEAD),
        "<by>": (TEXT, "the group's value of the summary column ``by`` names (none without)"),
        "<metric>": ("as GROUP_METRICS", "the figure ``metric`` names (GROUP_METRICS)"),
    }
)


class History:
    """Every rollout of a history store, analysed one at a time.

    ``History(path)`` (or :func:`open_history`) opens an existing store
    (``cfanalytics history add`` makes one); a :class:`HistoryStore` is taken as it is.
    ``engine`` digests the rollouts: ``"embedded"`` (worker processes here, ``workers`` of
    them: default the cores), ``"dask"`` (a LocalCluster of ``workers`` processes, or the
    cluster at ``scheduler``) or an :class:`~cfanalytics.analysis.Engine`. Close the history
    (or use it in a ``with``) to stop a Dask engine's cluster.
    """

    def __init__(
        self,
        store: HistoryStore | str | os.PathLike[str],
        *,
        engine: str | Engine | None = None,
        workers: int | None = None,
        scheduler: str | None = None,
    ) -> None:
        self.store = store if isinstance(store, HistoryStore) else HistoryStore(store)
        self.engine = engine_of(engine, workers=workers, scheduler=scheduler)
        self._digests: dict[str, Digest] = {}
        self._catalogs: dict[int | None, pd.DataFrame] = {}  # by ASID (None: all)
        self._signature: tuple[tuple[str, int, int], ...] = ()

    def __repr__(self) -> str:
        return f"History({str(self.store.path)!r})"

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the engine's workers (a later call starts them again)."""
        self.engine.close()

    @property
    def path(self) -> Path:
        """The store's folder."""
        return self.store.path

    @returns(_CATALOG)
    def catalog(
        self,
        *,
        asid: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        on_progress: Callable[[int, int], object] | None = None,
    ) -> pd.DataFrame:
        """The store's rollouts (:meth:`HistoryStore.catalog`) in :data:`ORDER`, of ``asid``
        only, started at or after ``since`` and before ``until`` (UTC). Kept while the store
        is unchanged; ``on_progress(done, total)`` is called as its files are read."""
        _window(since, until)  # bad bounds fail before the work
        self._forget_if_changed()
        if asid not in self._catalogs:
            self._catalogs[asid] = self.store.catalog(asid=asid, on_progress=on_progress)
        found = self._catalogs[asid]
        found = found.loc[started_between(found["first_seen"], since=since, until=until)]
        return found.sort_values(list(ORDER), na_position="last", kind="stable", ignore_index=True)

    @returns(EVENTS, note="Every column, unless ``columns=`` picks some.")
    def events(self, **filters: Any) -> pd.DataFrame:
        """The stored events: :meth:`HistoryStore.events` (``rollout=``, ``asid=``,
        ``since=``, ``until=``, ``columns=``), reading only what the filters need."""
        return self.store.events(**filters)

    @returns(SUMMARY_SCHEMA)
    def summary(
        self,
        *,
        rollout: str | None = None,
        asid: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> pd.DataFrame:
        """:func:`job_summary` of each rollout (or of ``rollout``), as if analysed alone,
        one after another in :data:`ORDER` (kept by nobody: it is as big as the jobs)."""
        names = (
            [rollout] if rollout else self.catalog(asid=asid, since=since, until=until)["rollout"]
        )
        parts = list(self.engine.map(summary_in_store, [(str(self.path), n) for n in names]))
        return pd.concat(parts, ignore_index=True) if parts else _empty(SUMMARY_SCHEMA)

    @returns(ROLLOUTS_SCHEMA)
    def rollouts(
        self,
        *,
        asid: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        on_progress: Callable[[int, int], object] | None = None,
    ) -> pd.DataFrame:
        """One row per rollout, in :data:`ORDER`: the catalog's columns, then
        :data:`GROUP_METRICS` and ``worst_location`` (columns below: :data:`ROLLOUTS_SCHEMA`).

        ``on_progress(done, total)`` is called as rollouts are digested.
        """
        return _rollouts_table(self._entries(asid, since, until, on_progress=on_progress))

    def digest(self, rollout: str) -> Digest:
        """``rollout``'s :class:`Digest`, kept while the store is unchanged."""
        return self._digested([rollout], jobs=0)[0]

    # -- inside ----------------------------------------------------------------------

    def _digested(
        self,
        names: Sequence[str],
        on_progress: Callable[[int, int], object] | None = None,
        *,
        jobs: int,
    ) -> list[Digest]:
        """The digests of ``names`` (of ``jobs`` jobs in all), those not kept made by the
        engine; a few small rollouts are digested here, where starting workers would cost
        more than the work."""
        self._forget_if_changed()
        missing = [name for name in dict.fromkeys(names) if name not in self._digests]
        total = len(set(names))
        tasks = [(str(self.path), name) for name in missing]
        few = isinstance(self.engine, Embedded) and jobs < _FEW_JOBS
        engine = Embedded(workers=1) if few else self.engine
        found = zip(missing, engine.map(digest_in_store, tasks), strict=True)
        for done, (name, digested) in enumerate(found, start=total - len(missing) + 1):
            self._digests[name] = digested
            if on_progress is not None:
                on_progress(done, total)
        return [self._digests[name] for name in names]

    def _forget_if_changed(self) -> None:
        """Drop what is kept (catalogs, digests) if the store's files changed since."""
        signature = _signature(self.path)
        if signature != self._signature:
            self._digests.clear()
            self._catalogs.clear()
            self._signature = signature

    def _entries(
        self,
        asid: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        *,
        on_progress: Callable[[int, int], object] | None = None,
    ) -> list[_Entry]:
        """The catalog's rollouts, each with its digest, in :data:`ORDER`."""
        catalog = self.catalog(asid=asid, since=since, until=until)
        rows = list(catalog.itertuples(index=False))
        jobs = int(catalog["jobs"].sum())
        digests = self._digested([row.rollout for row in rows], on_progress, jobs=jobs)
        return list(zip(rows, digests, strict=True))

    def _groups(self, entries: list[_Entry], by: str) -> list[pd.DataFrame]:
        """:func:`group_metrics` per ``by`` of each entry's rollout."""
        if by in DIGEST_GROUPS:
            return [found.groups[by] for _, found in entries]
        tasks = [(str(self.path), row.rollout, by) for row, _ in entries]
        return list(self.engine.map(groups_in_store, tasks))


#: A rollout to tabulate: its catalog row (rollout, asid, first_seen...) and its digest.
_Entry = tuple[Any, Digest]


def open_history(history: History | HistoryStore | str | os.PathLike[str]) -> History:
    """A :class:`History` of ``history``: a store's folder, a :class:`HistoryStore`, or a
    :class:`History` (returned as it is, with what it already digested)."""
    return history if isinstance(history, History) else History(history)


@returns(_TREND)
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
    group ``by`` (a job summary column: ``location``, ``kind``...) of each rollout.
    """
    _check_trend(metric, by)
    found = open_history(history)
    entries = found._entries(asid, since, until)
    groups = None if by is None else found._groups(entries, by)
    return _trend_table(entries, metric, by, groups)


@returns(MACHINE_HISTORY_SCHEMA)
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
    (columns below: :data:`MACHINE_HISTORY_SCHEMA`)."""
    _check_offender(k, n)
    return _machines_table(open_history(history)._entries(asid, since, until), k=k, n=n)


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

    @returns(_TREND)
    def trend(self, metric: str, *, by: str | None = None) -> pd.DataFrame:
        """:func:`trend` of these rollouts, whole or ``by`` one of :data:`DIGEST_GROUPS`."""
        _check_trend(metric, by)
        if by is not None and by not in DIGEST_GROUPS:
            raise ValueError(f"a standing's trend is by {' or '.join(DIGEST_GROUPS)}, not {by!r}")
        groups = None if by is None else [found.groups[by] for _, found in self._entries]
        return _trend_table(self._entries, metric, by, groups)

    def rank(self, metric: str) -> tuple[int, int]:
        """Where this rollout's ``metric`` stands among these rollouts: 1 for the worst
        (largest; a bias furthest from 0), out of how many have one; (0, n) when this one
        has none."""
        values = severity(metric, self.rollouts[metric].astype("float64"))
        mine, known = values.iloc[-1], values.dropna()
        if pd.isna(mine):
            return 0, len(known)
        return int((known > mine).sum()) + 1, len(known)

    @returns(MACHINE_HISTORY_SCHEMA)
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
    head = _head(frame, name)
    catalog = found.catalog(asid=None if pd.isna(head.asid) else int(head.asid))
    earlier = catalog.loc[_before(catalog, head) & (catalog["rollout"] != name).to_numpy()]
    rows = list(earlier.itertuples(index=False))
    jobs = int(earlier["jobs"].sum())
    everyone = list(zip(rows, found._digested([r.rollout for r in rows], jobs=jobs), strict=True))
    mine: _Entry = (head, digest(frame, name))
    compared = [*(everyone if previous is None else everyone[-previous:]), mine]
    machines = _machines_table([*everyone, mine], k=k, n=n)
    return Standing(name, _rollouts_table(compared), machines, compared)


def earlier_rollouts(
    events: pd.DataFrame, history: History, *, rollout: str, previous: int | None = 5
) -> list[str]:
    """The rollouts of ``rollout``'s ASID in ``history`` before it (in :data:`ORDER`), the
    last ``previous`` of them (None: all): those :func:`standing` compares it with."""
    head = _head(events, rollout)
    catalog = history.catalog(asid=None if pd.isna(head.asid) else int(head.asid))
    earlier = catalog.loc[_before(catalog, head) & (catalog["rollout"] != rollout).to_numpy()]
    names = list(earlier["rollout"])
    return names if previous is None else names[-previous:]


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
        head = {name: getattr(row, name) for name in _CATALOG_COLUMNS}
        metrics = found.metrics.iloc[0].to_dict()
        rows.append({**head, **metrics, "worst_location": _slowest(found.groups["location"])})
    return conform(pd.DataFrame(rows, columns=list(ROLLOUTS_SCHEMA)), ROLLOUTS_SCHEMA)


def _trend_table(
    entries: list[_Entry], metric: str, by: str | None, groups: list[pd.DataFrame] | None
) -> pd.DataFrame:
    """:func:`trend` of the rollouts of ``entries`` (``groups``: each one's figures ``by``)."""
    head = list(_TREND_HEAD)
    if by is None or groups is None:
        return _rollouts_table(entries)[[*head, metric]]
    parts = [
        frame[[by, metric]].assign(**{name: getattr(row, name) for name in head})
        for (row, _), frame in zip(entries, groups, strict=True)
    ]
    schema = {**{c: _CATALOG_COLUMNS[c] for c in head}, by: TEXT, metric: GROUP_METRICS[metric]}
    # The empty frame only when there is nothing else: pandas 2 and 3 type a concat with one
    # differently (conform makes either the same, but pandas 2 warns).
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(schema))
    return conform(table, schema)


def _machines_table(entries: list[_Entry], *, k: int, n: int) -> pd.DataFrame:
    """:func:`machine_history` of the rollouts of ``entries`` (in :data:`ORDER`)."""
    parts = [
        found.units.assign(order=order, rollout=row.rollout, asid=row.asid)
        for order, (row, found) in enumerate(entries)
    ]
    if not parts:
        return _empty(MACHINE_HISTORY_SCHEMA)
    jobs = pd.concat(parts, ignore_index=True)
    jobs = jobs.loc[jobs["machine"].notna().to_numpy()]
    jobs["unit"] = jobs["asid"].astype(TEXT) + "|" + jobs["kind"] + "|" + jobs["machine"]
    jobs = jobs.loc[jobs["unit"].notna().to_numpy()]
    machines = [_machine_row(rows, k=k, n=n) for _, rows in jobs.groupby("unit", sort=True)]
    out = conform(
        pd.DataFrame(machines, columns=list(MACHINE_HISTORY_SCHEMA)), MACHINE_HISTORY_SCHEMA
    )
    by = ["repeat_offender", "failed_recent", "failed", "asid", "machine"]
    return out.sort_values(
        by, ascending=[False, False, False, True, True], kind="stable", ignore_index=True
    )


def _machine_row(rows: pd.DataFrame, *, k: int, n: int) -> dict[str, object]:
    """One machine's row, from its jobs (one or more per rollout) in order."""
    failed = rows.loc[rows["failed"].to_numpy(dtype=bool, na_value=False)]
    failed_in = set(failed["order"])
    seen_in = sorted(set(rows["order"]))
    failed_recent = sum(order in failed_in for order in seen_in[-n:])
    classes = failed["error_class"].value_counts()
    last = rows.iloc[-1]
    return {
        "asid": last["asid"],
        "kind": last["kind"],
        "location": last["location"],
        "machine": last["machine"],
        "rollouts": len(seen_in),
        "failed": len(failed_in),
        "failed_recent": failed_recent,
        "failure_classes": ", ".join(f"{c} {m}" for c, m in classes.items()) or pd.NA,
        "last_failed": failed["rollout"].iloc[-1] if len(failed) else pd.NA,
        "repeat_offender": failed_recent >= k,
    }


def _slowest(by_location: pd.DataFrame) -> object:
    """The known location with the largest median install time (NA when none completed)."""
    median = by_location["install_p50_s"].to_numpy(np.float64, na_value=np.nan)
    known = by_location["location"].notna().to_numpy() & ~np.isnan(median)
    if not known.any():
        return pd.NA
    slowest = known & (median == median[known].max())
    return min(by_location["location"][slowest])  # ties: the first by name


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


def started_between(
    first_seen: pd.Series,
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
) -> np.ndarray:
    """The one rule of which rollouts a ``since`` / ``until`` window holds: per rollout's
    first observation (``first_seen``), whether it is at or after ``since`` and before
    ``until`` (UTC; naive times are UTC; NaT: in no window). Raises ``ValueError`` for text
    that is no date, or a window ending first."""
    start, end = _window(since, until)
    keep = pd.Series(True, index=first_seen.index)
    if start is not None:
        keep &= first_seen >= start
    if end is not None:
        keep &= first_seen < end
    found: np.ndarray = keep.to_numpy(dtype=bool, na_value=False)
    return found


def _window(
    since: datetime | str | None, until: datetime | str | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    start, end = _bound(since, "since"), _bound(until, "until")
    if start is not None and end is not None and start >= end:
        raise ValueError(f"since ({since}) must come before until ({until})")
    return start, end


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
