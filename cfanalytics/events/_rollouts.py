"""Which rollout each row belongs to: the rule, defined once for every layer above.

A *rollout* is the install jobs of one image version on one ASID, keyed by
``(asid, target_imageversionid)`` and named ``"<asid>/<target_imageversionid>"``. Clanforge's
ids are global, so two recordings of the same rollout (a resumed run, two people recording at
once) name the same rollout, and a job is identified within its rollout by its ``jobid``.

Row by row (:func:`rollout_of`):

1. a row naming a job (status or queue) with a ``target_imageversionid`` belongs to that
   version's rollout;
2. a job row without one (queue answers never carry it) takes the version of the same job
   (``asid``, ``jobid``) in its own run, else in any run;
3. still unknown: the rollout of its run and ASID if that run saw exactly one, else the run's
   own rollout ``"<asid>/run:<run_id>"`` (for recordings that never say the version);
4. a row naming no job (an empty list, a failed or error response) belongs to the one rollout
   its run saw on its ASID, and to none (NA) when the run saw several or none: such rows are
   shared context, kept by :func:`rollout_events` for each rollout of the run.

A missing ``asid`` or ``run_id`` is written ``?``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

import numpy as np
import pandas as pd

from ..exceptions import RolloutError
from ._schema import COLUMNS

__all__ = [
    "choose_rollout",
    "job_events",
    "rollout_events",
    "rollout_of",
    "rollouts",
    "single_rollout",
    "split_rollouts",
]

#: The columns that describe the response, not a job: an empty answer keeps only these.
_RESPONSE_COLUMNS = ("run_id", "seq", "observed_at", "endpoint", "http_status", "problem", "asid")
_RUN = "run:"


_NONE = np.iinfo(np.int64).max  # no version: sorts after every version id


def rollout_of(events: pd.DataFrame) -> pd.Categorical:
    """Each row's rollout id (module docstring), as a categorical, NA for shared rows.

    Categories are ordered by ASID, then version, then the runs' own rollouts.
    """
    run, runs = pd.factorize(events["run_id"], use_na_sentinel=False)
    asid = events["asid"].to_numpy(dtype=np.int64, na_value=-1)
    version = events["target_imageversionid"].to_numpy(dtype=np.int64, na_value=_NONE)
    endpoint = events["endpoint"]
    named = np.isin(endpoint.cat.codes, endpoint.cat.categories.get_indexer(["status", "queue"]))
    job = named & events["jobid"].notna().to_numpy()
    versioned = job & (version != _NONE)
    if _one_rollout(run, len(runs), asid, version, versioned):
        name = _name(int(asid[0]), int(version[versioned][0]), None)
        return pd.Categorical.from_codes(np.zeros(len(events), np.int8), categories=[name])
    jobid = events["jobid"].to_numpy(dtype=np.int64, na_value=0)
    version = version.copy()
    version[job] = _job_versions(run[job], asid[job], jobid[job], version[job])
    own = np.full(len(events), -1, dtype=np.int64)  # the run whose own rollout a row is in
    _fill_from_run(run, asid, version, own, job)
    return _labelled(asid, version, own, ["?" if pd.isna(name) else str(name) for name in runs])


def _one_rollout(
    run: np.ndarray, runs: int, asid: np.ndarray, version: np.ndarray, versioned: np.ndarray
) -> bool:
    """The usual case, told cheaply: every row is of one ASID, every job row that names a
    version names the same, and every run saw it."""
    if not versioned.any():
        return False
    first = np.flatnonzero(versioned)[0]
    same = (asid == asid[first]).all() and (version[versioned] == version[first]).all()
    return bool(same) and len(np.unique(run[versioned])) == runs


def _job_versions(
    run: np.ndarray, asid: np.ndarray, jobid: np.ndarray, version: np.ndarray
) -> np.ndarray:
    """Rules 1 and 2 over job rows: the row's version, else its job's first in the run,
    else its job's first in any run."""
    missing = version == _NONE
    if not missing.any():
        return version
    given = pd.Series(pd.arrays.IntegerArray(version, missing))
    in_run = given.groupby([run, asid, jobid], sort=False).transform("first")
    anywhere = given.groupby([asid, jobid], sort=False).transform("first")
    found: np.ndarray = (
        given.fillna(in_run).fillna(anywhere).to_numpy(dtype=np.int64, na_value=_NONE)
    )
    return found


def _fill_from_run(
    run: np.ndarray, asid: np.ndarray, version: np.ndarray, own: np.ndarray, job: np.ndarray
) -> None:
    """Rules 3 and 4, in place: rows without a version take their run's one rollout, job
    rows of a run without one the run's own."""
    orphan = job & (version == _NONE)
    if orphan.any():  # rule 3
        version[orphan] = _sole(run, asid, version, own, source=job & ~orphan, target=orphan)[0]
        alone = orphan & (version == _NONE)
        own[alone] = run[alone]
    rest = ~job
    if rest.any():  # rule 4
        version[rest], own[rest] = _sole(run, asid, version, own, source=job, target=rest)


def _sole(
    run: np.ndarray,
    asid: np.ndarray,
    version: np.ndarray,
    own: np.ndarray,
    *,
    source: np.ndarray,
    target: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For each ``target`` row: the rollout key (version, own run) of its run and ASID when
    the ``source`` rows of that run and ASID name exactly one; else none (``_NONE``, -1)."""
    keys = {"run": run[source], "asid": asid[source], "v": version[source], "own": own[source]}
    seen = pd.DataFrame(keys).drop_duplicates().astype({"v": "Int64", "own": "Int64"})
    sole = seen.loc[seen.groupby(["run", "asid"], sort=False)["v"].transform("size") == 1]
    left = pd.DataFrame({"run": run[target], "asid": asid[target]})
    found = left.merge(sole, on=["run", "asid"], how="left", sort=False)
    return (
        found["v"].to_numpy(dtype=np.int64, na_value=_NONE),
        found["own"].to_numpy(dtype=np.int64, na_value=-1),
    )


def _labelled(
    asid: np.ndarray, version: np.ndarray, own: np.ndarray, runs: list[str]
) -> pd.Categorical:
    """The ids of the ``(asid, version, own run)`` keys, ordered by ASID, version, run name."""
    known = (version != _NONE) | (own >= 0)
    if not known.any():
        return pd.Categorical.from_codes(np.full(len(asid), -1), categories=[])
    rank = np.argsort(np.argsort(np.array(runs, dtype=object), kind="stable"))
    keys = pd.DataFrame(
        {"a": asid[known], "v": version[known], "r": np.where(own >= 0, rank[own], -1)[known]}
    )
    groups = keys.groupby(["a", "v", "r"], sort=True)  # the categories' order
    inverse = groups.ngroup().to_numpy()
    by_rank = np.argsort(rank)
    names = [
        _name(int(a), None if v == _NONE else int(v), runs[by_rank[r]] if r >= 0 else None)
        for a, v, r in groups.size().index
    ]
    codes = np.full(len(asid), -1, dtype=np.int64)
    codes[known] = inverse
    return pd.Categorical.from_codes(codes, categories=names)


def _name(asid: int, version: int | None, run: str | None) -> str:
    """The id of one rollout key."""
    where = "?" if asid < 0 else str(asid)
    return f"{where}/{version}" if version is not None else f"{where}/{_RUN}{run}"


def rollouts(events: pd.DataFrame) -> list[str]:
    """The ids of the rollouts in ``events``, in :func:`rollout_of`'s order."""
    ids = rollout_of(events)
    present = np.unique(ids.codes[ids.codes >= 0])
    return [str(ids.categories[code]) for code in present]


def single_rollout(events: pd.DataFrame, rollout: str | None = None) -> str | None:
    """The one rollout to analyse: ``rollout`` if given (checked), else the only one there is.

    Raises :class:`~cfanalytics.exceptions.RolloutError` naming the rollouts found when
    ``rollout`` is not among them, or when it is None and there are several. None when
    ``events`` name no rollout at all.
    """
    return choose_rollout(rollouts(events), rollout)


def choose_rollout(found: Sequence[str], rollout: str | None = None) -> str | None:
    """``rollout`` if it is one of ``found``, else the only one found (None if none).

    Raises :class:`~cfanalytics.exceptions.RolloutError` naming the rollouts found when
    ``rollout`` is not among them, or when it is None and there are several.
    """
    if rollout is not None:
        if rollout not in found:
            raise RolloutError(f"no rollout {rollout!r}; found: {_listed(found)}")
        return rollout
    if len(found) > 1:
        raise RolloutError(
            f"{len(found)} rollouts found ({_listed(found)}); pick one with rollout="
        )
    return found[0] if found else None


def _listed(found: Sequence[str]) -> str:
    return ", ".join(found) if found else "none"


def rollout_events(events: pd.DataFrame, rollout: str) -> pd.DataFrame:
    """The events of one rollout, as if recorded by runs that watched it alone.

    The rows of the runs that saw ``rollout``, on its ASID: its own rows and the shared ones
    (NA in :func:`rollout_of`). A successful status response of those runs that lists none
    of its jobs is kept as an empty list: its first row with only the response columns, so
    that it still tells the rollout's jobs were gone. Rows keep their order and dtypes.
    Raises :class:`~cfanalytics.exceptions.RolloutError` if there is no such rollout.
    """
    for name, frame in split_rollouts(events):
        if name == rollout:
            return frame
    raise RolloutError(f"no rollout {rollout!r}; found: {_listed(rollouts(events))}")


def job_events(events: pd.DataFrame, jobids: Collection[int]) -> pd.DataFrame:
    """The events of the jobs ``jobids``, as if recorded watching them alone: their rows and
    every row naming no job. A successful status response listing none of them is kept as
    an empty list (as :func:`rollout_events` keeps one), so it still tells they were gone.
    Rows keep their order and dtypes."""
    named = events["jobid"].notna().to_numpy()
    keep = ~named | events["jobid"].isin(list(jobids)).to_numpy(dtype=bool)
    scope = _Scope(events, ~named)
    return _kept(events, keep, scope.emptied(np.ones(len(events), dtype=bool), keep))


def split_rollouts(events: pd.DataFrame) -> Iterator[tuple[str | None, pd.DataFrame]]:
    """Each rollout's events (:func:`rollout_events`), in :func:`rollouts`' order.

    Then, as rollout None, the rows of the runs that saw no rollout at all on their ASID (only
    errors, or empty lists), if there are any: they are nobody's, and still worth a look.
    """
    ids = rollout_of(events)
    codes = ids.codes
    if len(ids.categories) == 1 and (codes == 0).all():
        yield str(ids.categories[0]), events  # the usual case: nothing to take apart
        return
    scope = _Scope(events, np.asarray(ids.isna(), dtype=bool))
    covered = np.zeros(len(events), dtype=bool)
    for code in np.unique(codes[codes >= 0]):
        mine = codes == code
        rows = scope.of(mine)
        keep = rows & (mine | scope.shared)
        covered |= keep
        yield str(ids.categories[code]), _kept(events, keep, scope.emptied(rows, keep))
    if not covered.all():
        yield None, events.loc[~covered].reset_index(drop=True)


class _Scope:
    """The runs and ASIDs of the rows of ``events``, to find a rollout's rows."""

    def __init__(self, events: pd.DataFrame, shared: np.ndarray) -> None:
        self.events, self.shared = events, shared
        self.run = pd.factorize(events["run_id"], use_na_sentinel=False)[0]
        self.asid = events["asid"].to_numpy(dtype=np.int64, na_value=-1)
        endpoint = events["endpoint"]
        status = endpoint.cat.codes.to_numpy() == endpoint.cat.categories.get_loc("status")
        self.status = status & events["problem"].isna().to_numpy()

    def of(self, mine: np.ndarray) -> np.ndarray:
        """The rows of the runs of rows ``mine``, on their ASID."""
        runs, asids = np.unique(self.run[mine]), np.unique(self.asid[mine])
        out: np.ndarray = np.isin(self.run, runs) & np.isin(self.asid, asids)
        return out

    def emptied(self, scope: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """The first row of each successful status response in ``scope`` that lists none of
        the rows ``keep``."""
        rows = np.flatnonzero(scope & self.status)
        if not len(rows):
            return rows
        seq = self.events["seq"].to_numpy(dtype=np.int64, na_value=-1)[rows]
        response = pd.DataFrame({"run": self.run[rows], "seq": seq, "kept": keep[rows]})
        grouped = response.groupby(["run", "seq"], sort=False)["kept"]
        dropped = ~grouped.transform("any").to_numpy(dtype=bool)
        first = ~response.duplicated(["run", "seq"]).to_numpy()
        out: np.ndarray = rows[dropped & first & ~keep[rows]]
        return out


def _kept(events: pd.DataFrame, keep: np.ndarray, emptied: np.ndarray) -> pd.DataFrame:
    """Rows ``keep`` of ``events``, and rows ``emptied`` as empty answers, in order."""
    keep = keep.copy()
    keep[emptied] = True
    out = events.loc[keep].reset_index(drop=True)
    at = np.searchsorted(np.flatnonzero(keep), emptied)
    if len(at):
        for name in (c for c in COLUMNS if c not in _RESPONSE_COLUMNS and c in out.columns):
            column = out[name].array.copy()
            column[at] = None  # NA in any of the schema's dtypes
            out[name] = column
    return out
