"""Across rollouts: a history store read one rollout at a time, and what compares them.

:class:`History` is the analysis view of a :class:`~cfanalytics.recording.HistoryStore`:
each rollout is read on its own (:meth:`HistoryStore.events` with ``rollout=``) and analysed
by the same functions as a single recording, so every figure of a rollout is the one it gets
alone. Results are kept per rollout while the store's files are unchanged.

Headline figures of a rollout, or of a group of its jobs (a location, a kind), are
:data:`GROUP_METRICS`: the counts and ``failure_rate`` of :func:`failure_rates`, the
``time_to_*`` of :func:`rollout_metrics` (from the rollout's start), install times
(:func:`install_seconds`) and per-job ETA errors averaged across jobs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..events import FLOAT, INT, TEXT, TIME, rollout_of
from ..exceptions import RolloutError
from ..recording import HistoryStore
from ._common import conform, of_rollout, one_rollout, utc
from ._failures import classify_error, failure_rates, failures
from ._rollout import rollout_start, time_to_share
from ._summary import SUMMARY_SCHEMA, install_seconds, job_summary
from ._timing import job_eta_metrics

__all__ = [
    "GROUP_METRICS",
    "MACHINE_HISTORY_SCHEMA",
    "ROLLOUTS_SCHEMA",
    "Analysed",
    "History",
    "Standing",
    "group_metrics",
    "machine_history",
    "open_history",
    "standing",
    "trend",
]

#: Headline figures of a rollout or a group of its jobs, and their dtypes.
GROUP_METRICS: dict[str, object] = {
    "jobs": INT,
    "completed": INT,
    "failed": INT,
    "unfinished": INT,  # unfinished or unknown, as rollout_metrics counts them
    "failure_rate": FLOAT,  # failed / ended (completed, failed or squashed)
    "time_to_50_s": FLOAT,  # from the rollout's start until 50 % of the jobs completed
    "time_to_90_s": FLOAT,
    "install_p50_s": FLOAT,  # install time (started to completed) of completed jobs
    "install_p90_s": FLOAT,
    "eta_mae_s": FLOAT,  # per job first, then the mean across jobs
    "eta_bias_s": FLOAT,
}
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
    "failed_recent": INT,  # failed among its last ``n`` rollouts
    "failure_classes": TEXT,  # error classes of its failures, most frequent first
    "last_failed": TEXT,  # the last rollout it failed in
    "repeat_offender": "boolean",  # failed in at least ``k`` of its last ``n`` rollouts
}


@dataclass(frozen=True, slots=True)
class Analysed:
    """One rollout's analyses, computed once: its :func:`job_summary`, :func:`job_eta_metrics`
    and :func:`failures`."""

    summary: pd.DataFrame
    per_job: pd.DataFrame
    failures: pd.DataFrame

    @classmethod
    def of(cls, events: pd.DataFrame, rollout: str) -> Analysed:
        """The analyses of ``rollout`` in ``events`` (the events of one rollout)."""
        summary = of_rollout(job_summary(events), rollout)
        per_job = job_eta_metrics(events, summary=summary)
        return cls(summary, per_job, of_rollout(failures(events, summary=summary), rollout))


#: A rollout to tabulate: its catalog row (rollout, asid, first_seen...) and its analyses.
_Entry = tuple[Any, Analysed]


class History:
    """Every rollout of a history store, analysed one at a time.

    ``History(path)`` (or :func:`open_history`) opens an existing store
    (``cfanalytics history add`` makes one); a :class:`HistoryStore` is taken as it is.
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
        """The store's rollouts (:meth:`HistoryStore.catalog`) in the order they started,
        of ``asid`` only, started at or after ``since`` and before ``until`` (UTC)."""
        found = self.store.catalog()
        keep = pd.Series(True, index=found.index)
        if asid is not None:
            keep &= found["asid"] == asid
        if since is not None:
            keep &= found["first_seen"] >= utc(since)
        if until is not None:
            keep &= found["first_seen"] < utc(until)
        found = found.loc[keep.to_numpy(dtype=bool, na_value=False)]
        order = ["first_seen", "rollout"]
        return found.sort_values(order, na_position="last", kind="stable", ignore_index=True)

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
        one after another in the order they started."""
        names = [rollout] if rollout else self.catalog(asid=asid, since=since, until=until)
        parts = [self.analysed(name).summary for name in _names(names)]
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype=d) for c, d in SUMMARY_SCHEMA.items()})
        return pd.concat(parts, ignore_index=True)

    def rollouts(
        self,
        *,
        asid: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        on_progress: Callable[[int, int], object] | None = None,
    ) -> pd.DataFrame:
        """One row per rollout, in the order they started: the catalog's columns, then
        :data:`GROUP_METRICS` and ``worst_location`` (columns: :data:`ROLLOUTS_SCHEMA`).

        ``on_progress(done, total)`` is called after each rollout is analysed.
        """
        return _rollouts_table(self._entries(asid, since, until, on_progress))

    def _entries(
        self,
        asid: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        on_progress: Callable[[int, int], object] | None = None,
    ) -> list[_Entry]:
        """The catalog's rollouts, each with its analyses, in the order they started."""
        catalog = self.catalog(asid=asid, since=since, until=until)
        entries = []
        for done, row in enumerate(catalog.itertuples(index=False), start=1):
            entries.append((row, self.analysed(row.rollout)))
            if on_progress is not None:
                on_progress(done, len(catalog))
        return entries

    def analysed(self, rollout: str) -> Analysed:
        """``rollout``'s summary, per-job ETA metrics and failures, computed once while the
        store's files stay as they are."""
        signature = _signature(self.path)
        if signature != self._signature:
            self._cache.clear()
            self._signature = signature
        if rollout not in self._cache:
            self._cache[rollout] = Analysed.of(self.store.events(rollout=rollout), rollout)
        return self._cache[rollout]


def open_history(path: HistoryStore | str | os.PathLike[str]) -> History:
    """Open the history store at ``path``: ``History(path)``."""
    return History(path)


def group_metrics(
    summary: pd.DataFrame, per_job: pd.DataFrame, *, by: str | None = None
) -> pd.DataFrame:
    """:data:`GROUP_METRICS` of one rollout's jobs, whole (one row) or per value of ``by``
    (a column of the summary: ``location``, ``kind``...), from its :func:`job_summary` and
    :func:`job_eta_metrics`. Times count from the whole rollout's start."""
    start = rollout_start(summary)
    key = by or "_all"
    etas = per_job.set_index("jobid")[["eta_mae_s", "eta_bias_s"]]  # as rollout_metrics
    jobs = summary.drop(columns=list(etas.columns)).join(etas, on="jobid")
    jobs = jobs.assign(_all="all", install_s=install_seconds(summary))
    rates = failure_rates(jobs, key).set_index(key)["failure_rate"]
    rows = []
    for value, group in jobs.groupby(key, observed=True, dropna=False, sort=True):
        outcome = group["outcome"]
        installs = group["install_s"].dropna()
        rows.append(
            {
                key: value,
                "jobs": len(group),
                "completed": int((outcome == "completed").sum()),
                "failed": int((outcome == "failed").sum()),
                "unfinished": int(outcome.isin(["unfinished", "unknown"]).sum()),
                "failure_rate": rates.get(value, pd.NA),
                "time_to_50_s": time_to_share(group["completed_at"], 50, start),
                "time_to_90_s": time_to_share(group["completed_at"], 90, start),
                "install_p50_s": installs.quantile(0.5) if len(installs) else pd.NA,
                "install_p90_s": installs.quantile(0.9) if len(installs) else pd.NA,
                "eta_mae_s": group["eta_mae_s"].mean(),
                "eta_bias_s": group["eta_bias_s"].mean(),
            }
        )
    out = pd.DataFrame(rows, columns=[key, *GROUP_METRICS])
    return conform(out, GROUP_METRICS if by is None else {by: TEXT, **GROUP_METRICS})


def trend(
    history: History | HistoryStore | str | os.PathLike[str],
    metric: str,
    *,
    by: str | None = None,
    asid: int | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
) -> pd.DataFrame:
    """``metric`` (one of :data:`GROUP_METRICS`) of each rollout in the order they started,
    or of each group ``by`` (``location``, ``kind``...) of each rollout: columns
    ``rollout``, ``asid``, ``imageversionid``, ``first_seen``, ``by`` if given, ``metric``.
    """
    return _trend_table(_as_history(history)._entries(asid, since, until), metric, by)


def _trend_table(entries: list[_Entry], metric: str, by: str | None) -> pd.DataFrame:
    """:func:`trend` of the rollouts of ``entries``."""
    if metric not in GROUP_METRICS:
        raise ValueError(f"no metric {metric!r}; choose from {', '.join(GROUP_METRICS)}")
    if by is None:
        table = _rollouts_table(entries)
        return table[["rollout", "asid", "imageversionid", "first_seen", metric]]
    parts = []
    for row, analysed in entries:
        groups = group_metrics(analysed.summary, analysed.per_job, by=by)[[by, metric]]
        head = {n: getattr(row, n) for n in ("rollout", "asid", "imageversionid", "first_seen")}
        parts.append(groups.assign(**head))
    columns = ["rollout", "asid", "imageversionid", "first_seen", by, metric]
    if not parts:
        parts = [pd.DataFrame(columns=columns)]
    schema = {
        **{c: _CATALOG_COLUMNS[c] for c in columns[:4]},
        by: TEXT,
        metric: GROUP_METRICS[metric],
    }
    return conform(pd.concat(parts, ignore_index=True), schema)


def machine_history(
    history: History | HistoryStore | str | os.PathLike[str],
    *,
    k: int = 2,
    n: int = 3,
    asid: int | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
) -> pd.DataFrame:
    """Per machine (and per mirror) of each ASID: the rollouts it had a job in, those where
    its job failed at least once (a failure that was queued again and then completed
    counts: a failing drive shows so), their error classes, and ``repeat_offender``: failed
    in at least ``k`` of its last ``n`` rollouts. Repeat offenders first, then by failures
    (columns: :data:`MACHINE_HISTORY_SCHEMA`)."""
    return _machines_table(_as_history(history)._entries(asid, since, until), k=k, n=n)


def _machines_table(entries: list[_Entry], *, k: int, n: int) -> pd.DataFrame:
    """:func:`machine_history` of the rollouts of ``entries``."""
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    seen, failed = [], []
    for order, (row, analysed) in enumerate(entries):
        seen.append(_units(analysed.summary, row.asid).assign(order=order))
        failed.append(_units(analysed.failures, row.asid).assign(order=order))
    columns = list(MACHINE_HISTORY_SCHEMA)
    if not seen:
        return conform(pd.DataFrame(columns=columns), MACHINE_HISTORY_SCHEMA)
    jobs = pd.concat(seen, ignore_index=True).drop_duplicates(["unit", "order"], keep="last")
    fails = pd.concat(failed, ignore_index=True)
    machines = [_machine_row(unit, rows, fails, k=k, n=n) for unit, rows in jobs.groupby("unit")]
    out = conform(pd.DataFrame(machines, columns=columns), MACHINE_HISTORY_SCHEMA)
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
    classes = mine["error"].map(classify_error).value_counts()
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


@dataclass(frozen=True)
class Standing:
    """A rollout against the rollouts of its ASID before it in a history (:func:`standing`).

    ``rollouts``: the previous ones and this one, last (:data:`ROLLOUTS_SCHEMA`);
    ``machines``: :func:`machine_history` over them, so a repeat offender of this rollout is
    one that failed in at least ``k`` of its last ``n`` rollouts up to this one.
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
        return _trend_table(self._entries, metric, by)

    def rank(self, metric: str) -> tuple[int, int]:
        """Where this rollout's ``metric`` stands: (1 for the largest, out of how many rollouts
        have one); (0, n) when this rollout has none."""
        values = self.rollouts[metric].astype(FLOAT)
        mine = values.iloc[-1]
        known = values.dropna()
        if pd.isna(mine):
            return 0, len(known)
        return int((known > mine).sum()) + 1, len(known)

    def offenders(self) -> pd.DataFrame:
        """The repeat offenders among this rollout's machines that failed in it."""
        here = self.machines["last_failed"] == self.rollout
        keep = (here & self.machines["repeat_offender"]).to_numpy(dtype=bool, na_value=False)
        return self.machines.loc[keep].reset_index(drop=True)


def standing(
    events: pd.DataFrame,
    history: History | HistoryStore | str | os.PathLike[str],
    *,
    rollout: str | None = None,
    previous: int | None = 5,
    k: int = 2,
    n: int = 3,
) -> Standing:
    """``rollout`` of ``events`` (or their only one) against the ``previous`` rollouts of its
    ASID that started before it in ``history`` (None: all of them). The rollout is analysed
    from ``events``, whether the store holds it or not; its figures are those it gets alone.
    ``k`` and ``n`` say who is a repeat offender (:func:`machine_history`)."""
    name, frame = one_rollout(events, rollout)
    if name is None:
        raise RolloutError("the events name no rollout (no ASID and no run), so none to place")
    found = _as_history(history)
    head = _head(frame, name)
    before = found.catalog(asid=head.asid)
    keep = (before["first_seen"] < head.first_seen) & (before["rollout"] != name)
    earlier = before.loc[keep.to_numpy(dtype=bool, na_value=False)]
    earlier = earlier if previous is None else earlier.tail(previous)
    entries = [(row, found.analysed(row.rollout)) for row in earlier.itertuples(index=False)]
    entries.append((head, Analysed.of(frame, name)))
    return Standing(name, _rollouts_table(entries), _machines_table(entries, k=k, n=n), entries)


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
        metrics = group_metrics(found.summary, found.per_job).iloc[0]
        by_location = group_metrics(found.summary, found.per_job, by="location")
        head = {name: getattr(row, name) for name in _CATALOG_COLUMNS}
        rows.append({**head, **metrics.to_dict(), "worst_location": _slowest(by_location)})
    return conform(pd.DataFrame(rows, columns=list(ROLLOUTS_SCHEMA)), ROLLOUTS_SCHEMA)


def _slowest(by_location: pd.DataFrame) -> object:
    """The location with the largest median install time (NA when none completed)."""
    known = by_location.dropna(subset=["install_p50_s"])
    if known.empty:
        return pd.NA
    return known.sort_values(["install_p50_s", "location"], ascending=[False, True]).iloc[0][
        "location"
    ]


def _as_history(history: History | HistoryStore | str | os.PathLike[str]) -> History:
    return history if isinstance(history, History) else History(history)


def _names(catalog: pd.DataFrame | list[str]) -> Iterator[str]:
    names = catalog if isinstance(catalog, list) else catalog["rollout"].tolist()
    return iter(names)


def _signature(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Every data file of the store with its size and modification time: a changed store
    changes it."""
    files = sorted(path.glob("asid=*/month=*/*.parquet"))
    return tuple((str(f), s.st_size, s.st_mtime_ns) for f in files for s in [f.stat()])
