"""The rules every analysis shares, each defined here once, and the helpers that apply them.

Words used across :mod:`cfanalytics.analysis`:

- a *snapshot* is a successful row (``problem`` is NA) of the ``status`` or ``queue``
  endpoint that names a job: the API's view of that job at ``observed_at``;
- a *successful poll* is a status response (``run_id``, ``seq``) none of whose rows has a
  ``problem``; an empty list counts (its one row has no ``jobid``). Failed, non-JSON or
  error responses are no poll at all: they never make a job look absent;
- polls of one ASID say nothing about jobs of another, so a job is only compared with the
  polls of its own ``asid`` (a missing ``asid`` is one more ASID, :data:`NO_ASID`);
- a job's *state id* is its ``jobstateid``, else the id of its ``state`` name;
- a job's *vanishing poll* is the first successful poll of its ASID after its last snapshot;
- a *rollout* is the jobs of one image version on one ASID (:mod:`cfanalytics.events`
  says which rows belong to which, :func:`~cfanalytics.events.rollout_of`); every analysis
  runs once per rollout (:func:`per_rollout`) and names it in a ``rollout`` column, so a
  job is a ``(rollout, jobid)`` and nothing of two rollouts is ever merged. Telling the
  rollouts apart reads every row: an analysis that needs another (``eta_errors`` a job
  summary) calls its one-rollout body, ``job_summary_of`` beside ``job_summary``, on the
  rollout's events it holds, so that one call splits the events once;
- the fleet's coarse states are :data:`FLEET_STATES`: ``waiting`` (not listed yet),
  ``pending`` (Created or Pending: listed, not queued), ``queued``, ``running``,
  ``completed``, ``failed`` and ``other`` (Squashed, or no readable state).
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd

from .._zones import time_zone
from ..events import (
    STATES,
    TEXT,
    TIME,
    Schema,
    choose_rollout,
    split_rollouts,
    validate,
)
from ..exceptions import RolloutError
from . import _segments as segments

__all__ = [
    "COMPLETE",
    "CREATED",
    "FAILED",
    "FLEET_CODE",
    "FLEET_STATES",
    "FLEET_STATE_BY_ID",
    "FLEET_STATE_BY_OUTCOME",
    "NAT",
    "NO_ASID",
    "PENDING",
    "QUEUED",
    "ROLLOUT",
    "RUNNING",
    "SQUASHED",
    "STATE_MEANINGS",
    "answers",
    "clock",
    "conform",
    "deprecated_positional",
    "endings",
    "fleet_codes",
    "is_snapshot",
    "job_snapshots",
    "known",
    "labelled",
    "last_of_job",
    "of_rollout",
    "one_rollout",
    "per_rollout",
    "per_rollout_rows",
    "pick_rollout",
    "poll_times",
    "polls",
    "seconds",
    "select",
    "snapshots",
    "state_ids",
    "time_zone",
    "utc",
    "vanishing",
    "with_rollout",
]

#: Job state ids (``jobstateid``), named as :data:`cfanalytics.events.STATES` names them.
CREATED, PENDING, QUEUED, RUNNING, COMPLETE, FAILED, SQUASHED = range(1, len(STATES) + 1)
NO_ASID = -1  # what a missing asid reads as: one more ASID
NAT = np.datetime64("NaT", "us")

#: The fleet's states, bottom of a burn-up last; codes are positions in this tuple.
FLEET_STATES = ("waiting", "pending", "queued", "running", "completed", "failed", "other")
#: What each of :data:`FLEET_STATES` means at a poll: the words the report, CLI and plots use.
STATE_MEANINGS: Mapping[str, str] = MappingProxyType(
    {
        "waiting": "not listed yet: before the job's first appearance in the status list",
        "pending": "listed, never queued (Created or Pending)",
        "queued": "listed Queued: the API took the queue request, the install has not started",
        "running": "listed Running: installing",
        "completed": "its outcome is completed, from the start of its completion window on",
        "failed": "listed Failed; once gone from the list, its outcome is failed",
        "other": "outcome squashed or unknown, or listed with a state id the docs do not name",
    }
)
FLEET_CODE: Mapping[str, int] = MappingProxyType({s: code for code, s in enumerate(FLEET_STATES)})
#: The fleet state of a job listed with each state id; any other id, or none: ``other``.
FLEET_STATE_BY_ID: Mapping[int, str] = MappingProxyType(
    {
        CREATED: "pending",
        PENDING: "pending",
        QUEUED: "queued",
        RUNNING: "running",
        COMPLETE: "completed",
        FAILED: "failed",
        SQUASHED: "other",
    }
)
#: The fleet state of a job from its vanishing poll on, by its outcome
#: (:data:`~cfanalytics.analysis.OUTCOMES`); an ``unfinished`` job keeps its last state.
FLEET_STATE_BY_OUTCOME: Mapping[str, str] = MappingProxyType(
    {"completed": "completed", "failed": "failed", "squashed": "other", "unknown": "other"}
)
# Fleet state code by state id 0..7 (0: no state); ids beyond are other too.
_CODE_OF_ID = np.array([FLEET_CODE[FLEET_STATE_BY_ID.get(i, "other")] for i in range(8)])
#: The columns of :func:`snapshots`, besides ``status`` and ``sid``.
_SNAPSHOT_COLUMNS = (
    *("jobid", "observed_at", "asid", "jobprogress", "jobstart", "jobeta"),
    *("jobupdated", "joberror", "jobfailed"),
)

_Function = TypeVar("_Function", bound=Callable[..., Any])
_Table = TypeVar("_Table", bound=Callable[..., pd.DataFrame])


def answers(events: pd.DataFrame, endpoint: str) -> np.ndarray:
    """Whether each row of ``events`` is an answer of ``endpoint``."""
    column = events["endpoint"]
    out: np.ndarray = column.cat.codes.to_numpy() == column.cat.categories.get_loc(endpoint)
    return out


def known(events: pd.DataFrame, name: str) -> np.ndarray:
    """Whether each row of ``events`` has a value in column ``name``."""
    out: np.ndarray = ~events[name].array.isna()
    return out


def select(events: pd.DataFrame, keep: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
    """``events.loc[keep, columns]`` with a fresh RangeIndex, copying only those columns."""
    at = np.flatnonzero(keep)
    return pd.DataFrame({name: events[name].array[at] for name in columns}, copy=False)


def state_ids(events: pd.DataFrame) -> np.ndarray:
    """Each row's state id, ``jobstateid`` else read from the ``state`` name.

    As ``int8``: -1 where there is none, 0 for a negative id and 8 for ids beyond 7 (no
    rule tells them apart).
    """
    # A negative id is some state, no rule's: 0, as is NA, which the name stands in for.
    by_id = np.clip(events["jobstateid"].to_numpy(dtype=np.int64, na_value=0), 0, 8)
    given = known(events, "jobstateid")
    by_name = events["state"].cat.codes.to_numpy()  # the id less 1, -1 without a name
    out: np.ndarray = np.where(given, by_id.astype(np.int8), by_name + (by_name >= 0))
    return out


def polls(events: pd.DataFrame, *, undated: bool = False) -> pd.DataFrame:
    """Successful status polls, one row per response: ``run_id``, ``seq``, ``asid`` (``int64``,
    :data:`NO_ASID` where missing) and ``polled_at``, in time order.

    The first row of a response speaks for it. Polls at the same time keep the order in
    which they first appear. Polls without an ``observed_at`` cannot be placed in time: they
    are left out unless ``undated`` (then last, NaT), for rules that count polls in order.
    """
    status, problem = answers(events, "status"), known(events, "problem")
    # A response's rows usually come together: a row like the one before it is no response's
    # first row and tells nothing new of a problem. Only the others need telling apart.
    new = segments.changes(events["run_id"].array) | segments.changes(events["seq"].array)
    rows = np.flatnonzero(status & (new | segments.changes(status) | segments.changes(problem)))
    response = segments.numbers(*(events[key].array.take(rows) for key in ("run_id", "seq")))
    good = np.flatnonzero(~np.isin(response, response[problem[rows]]))
    rows = rows[good[segments.firsts(response[good])]]
    if not undated:
        rows = rows[known(events, "observed_at")[rows]]
    found = pd.DataFrame(
        {
            "run_id": events["run_id"].array.take(rows),
            "seq": events["seq"].array.take(rows),
            "asid": events["asid"].to_numpy(dtype=np.int64, na_value=NO_ASID)[rows],
            "polled_at": events["observed_at"].array.take(rows),
        }
    )
    return found.sort_values("polled_at", kind="stable")


def is_snapshot(events: pd.DataFrame) -> np.ndarray:
    """Whether each row of ``events`` is a snapshot."""
    named = (answers(events, "status") | answers(events, "queue")) & known(events, "jobid")
    out: np.ndarray = named & ~known(events, "problem")
    return out


def snapshots(events: pd.DataFrame) -> pd.DataFrame:
    """Every snapshot with its job columns, in time order, with ``status`` and ``sid``.

    A stable sort: recording order among equal times, unknown times last. ``status`` says a
    status row, not a queue answer; ``sid`` is the state id (:func:`state_ids`), NA if none.
    """
    keep = is_snapshot(events)
    sid = state_ids(events)[keep]
    rows = select(events, keep, _SNAPSHOT_COLUMNS).assign(
        status=answers(events, "status")[keep],
        sid=pd.arrays.IntegerArray(sid.astype(np.int64), sid < 0),
    )
    return rows.sort_values("observed_at", kind="stable", ignore_index=True)


def fleet_codes(sid: pd.Series) -> np.ndarray:
    """The fleet state code (a position in :data:`FLEET_STATES`) of each state id."""
    ids = sid.to_numpy(dtype=np.int64, na_value=0)
    out: np.ndarray = _CODE_OF_ID[np.where((ids >= 0) & (ids < len(_CODE_OF_ID)), ids, 0)]
    return out


def poll_times(found: pd.DataFrame) -> np.ndarray:
    """The distinct times of the polls ``found`` (:func:`polls`), sorted, as
    ``datetime64[us]``: the moments the fleet is counted at."""
    return np.unique(found["polled_at"].to_numpy(dtype="datetime64[us]"))


def job_snapshots(events: pd.DataFrame, *, of: Any = None) -> pd.DataFrame:
    """:func:`snapshots` (of the jobs ``of``, default all) sorted by job, then time, with
    ``code`` (:func:`fleet_codes`) and ``asid`` as ``int64`` (:data:`NO_ASID` if missing)."""
    snaps = snapshots(events)
    if of is not None:
        snaps = snaps.loc[snaps["jobid"].isin(of)]
    snaps = snaps.iloc[np.argsort(snaps["jobid"].to_numpy(dtype=np.int64), kind="stable")]
    return snaps.assign(
        code=fleet_codes(snaps["sid"]),
        asid=snaps["asid"].to_numpy(dtype=np.int64, na_value=NO_ASID),
    ).reset_index(drop=True)


def last_of_job(jobids: np.ndarray) -> np.ndarray:
    """Whether each row (sorted by job) is its job's last."""
    return np.append(jobids[1:] != jobids[:-1], True) if len(jobids) else np.zeros(0, bool)


def vanishing(last: pd.DataFrame, found: pd.DataFrame) -> pd.Series:
    """Per last snapshot (``jobid``, ``observed_at``, ``asid``): its vanishing poll, or NaT.

    ``found`` are the successful polls (:func:`polls`). Indexed by ``jobid``, as ``last``.
    """
    left = last[["jobid", "observed_at", "asid"]].sort_values("observed_at", kind="stable")
    nxt = pd.merge_asof(
        left,
        found[["asid", "polled_at"]],
        left_on="observed_at",
        right_on="polled_at",
        by="asid",
        direction="forward",
        allow_exact_matches=False,
    )
    return nxt.set_index("jobid")["polled_at"].reindex(last["jobid"]).astype(TIME)


def endings(
    last: pd.DataFrame, outcome: pd.Series, found: pd.DataFrame, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per job's last snapshot (of :func:`job_snapshots`) and its ``outcome``: the index in
    ``times`` of its vanishing poll (``len(times)`` if none), and its fleet state code from
    then on (:data:`FLEET_STATE_BY_OUTCOME`; unfinished: its last snapshot's)."""
    vanish = vanishing(last, found).to_numpy(dtype="datetime64[us]")
    gone = np.searchsorted(times, vanish, "left")  # NaT sorts last: never gone
    after = outcome.astype(object).map(FLEET_STATE_BY_OUTCOME).map(FLEET_CODE)
    code = last["code"].to_numpy(dtype=np.int64)
    return gone, np.where(after.isna(), code, after.fillna(-1).to_numpy(np.int64))


def seconds(delta: np.ndarray) -> np.ndarray:
    """``timedelta64`` values in seconds as pandas counts them (``total_seconds``), NaT as
    NaN: every duration in seconds is computed so."""
    out: np.ndarray = pd.TimedeltaIndex(delta, copy=False).total_seconds().to_numpy()
    return out


def utc(at: datetime | str) -> pd.Timestamp:
    """``at`` as a UTC timestamp; a naive one is taken to be UTC already."""
    stamp = pd.Timestamp(at)
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")


def clock(at: datetime | str, *, tz: str = "UTC") -> str:
    """How every time is written for people: to the second, in ``tz``, with its abbreviation
    (``2024-05-01 11:03:30 CEST``); a naive time is taken to be UTC."""
    return f"{utc(at).tz_convert(time_zone(tz)):%Y-%m-%d %H:%M:%S %Z}"


def conform(
    columns: Mapping[str, Any] | pd.DataFrame,
    schema: Mapping[str, object],
    *,
    sort_by: Sequence[str] = (),
) -> pd.DataFrame:
    """A table of ``schema``: its columns in order, each cast to its dtype, a fresh RangeIndex.

    ``columns`` holds every column of the schema (more are ignored), aligned by position: a
    Series' index is not looked at. Naive ``datetime64`` arrays are UTC, like every time
    here. Rows are then sorted by ``sort_by``, stably: ties keep their order.
    """
    typed = {name: _typed(columns[name], dtype) for name, dtype in schema.items()}
    frame = pd.DataFrame(typed, copy=False)
    return frame.sort_values(list(sort_by), kind="stable", ignore_index=True) if sort_by else frame


def _typed(values: Any, dtype: Any) -> Any:
    """``values`` as ``dtype``: a Series with a RangeIndex, or a new array."""
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True).astype(dtype)  # pandas copies on write only
    return pd.array(values, dtype=dtype)  # a copy: the caller may hold on to ``values``


def deprecated_positional(*names: str) -> Callable[[_Function], _Function]:
    """Still accept the keyword-only parameters ``names`` positionally, for one release.

    They came after the positional parameters, in this order, before they became
    keyword-only. Passed so, they are handed over by keyword, with a FutureWarning that
    names the keywords to use.
    """

    def decorate(function: _Function) -> _Function:
        parameters = inspect.signature(function).parameters.values()
        keywords = [p.name for p in parameters if p.kind is p.KEYWORD_ONLY]
        if list(names) != keywords[: len(names)]:
            raise TypeError(f"{names} are not the first keyword-only parameters of {function}")
        leading = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)

        @functools.wraps(function)
        def accept(*args: Any, **kwargs: Any) -> Any:
            if len(args) > leading:
                kwargs = _as_keywords(function.__name__, names, args[leading:], kwargs)
                args = args[:leading]
            return function(*args, **kwargs)

        return cast(_Function, accept)

    return decorate


def _as_keywords(
    name: str, names: tuple[str, ...], extra: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """``kwargs`` and the ``extra`` positional arguments as the keywords ``names``; warns."""
    if len(extra) > len(names):
        raise TypeError(f"{name}() takes at most {len(names)} optional arguments by position")
    moved = dict(zip(names, extra, strict=False))
    if twice := moved.keys() & kwargs.keys():
        raise TypeError(f"{name}() got multiple values for {sorted(twice)}")
    keywords = ", ".join(f"{keyword}=" for keyword in moved)
    warnings.warn(
        f"{name}(): pass {keywords} by keyword; positional use stops working in the next release",
        FutureWarning,
        stacklevel=3,
    )
    return kwargs | moved


#: The ``rollout`` column, first in every table per rollout: its dtype and meaning.
ROLLOUT: Mapping[str, tuple[object, str]] = MappingProxyType(
    {"rollout": (TEXT, "one image version on one ASID: ``<asid>/<target_imageversionid>``")}
)


def with_rollout(schema: Schema) -> Schema:
    """``schema`` with the ``rollout`` column first: every table per rollout starts so."""
    return Schema({**ROLLOUT, **schema.entries()})


def per_rollout(analyse: _Table) -> _Table:
    """Run ``analyse(events, ...)`` once per rollout and stack its rows, ``rollout`` first.

    Each rollout gets its own events (:func:`~cfanalytics.events.split_rollouts`), so its
    answer is the one it would get alone; a frame passed by keyword (a ``summary=``) is cut
    to that rollout's rows (:func:`of_rollout`). Rollouts come in their order, the rows of
    each in the order ``analyse`` gives. Events that name no rollout at all are analysed
    whole, with ``rollout`` NA; otherwise the runs that saw none are left out.
    """

    @functools.wraps(analyse)
    def run(events: pd.DataFrame, /, *args: Any, **kwargs: Any) -> pd.DataFrame:
        parts = [
            labelled(analyse(frame, *args, **_inputs(kwargs, name)), name)
            for name, frame in split_rollouts(validate(events))
            if name is not None
        ]
        return _stacked(parts) if parts else labelled(analyse(events, *args, **kwargs), None)

    return cast(_Table, run)


def per_rollout_rows(analyse: _Table) -> _Table:
    """Like :func:`per_rollout`, for an analysis of a table per job (a summary, ETA errors):
    once per value of its ``rollout`` column. A table without one is one rollout."""

    @functools.wraps(analyse)
    def run(table: pd.DataFrame, /, *args: Any, **kwargs: Any) -> pd.DataFrame:
        if "rollout" not in table.columns or table.empty:
            name = table["rollout"].iloc[0] if "rollout" in table.columns and len(table) else None
            return labelled(analyse(table, *args, **kwargs), name)
        parts = [
            labelled(analyse(rows.reset_index(drop=True), *args, **_inputs(kwargs, name)), name)
            for name, rows in _groups(table)
        ]
        return _stacked(parts)

    return cast(_Table, run)


def _groups(table: pd.DataFrame) -> list[tuple[Any, pd.DataFrame]]:
    """The rows of ``table`` per rollout, in order of first appearance (NA last)."""
    key = table["rollout"]
    first = key.iloc[0]
    if _all_of(key, first).all():  # the usual case: one rollout, no copy
        return [(None if pd.isna(first) else first, table)]
    names = list(dict.fromkeys(key.dropna()))
    groups = [(name, table.loc[_all_of(key, name)]) for name in names]
    if key.isna().any():
        groups.append((None, table.loc[key.isna().to_numpy()]))
    return groups


def _all_of(key: pd.Series, rollout: str | None) -> np.ndarray:
    """Whether each value of ``key`` (a ``rollout`` column) names ``rollout`` (None: NA)."""
    rows = key.isna() if rollout is None or pd.isna(rollout) else key == rollout
    out: np.ndarray = rows.to_numpy(dtype=bool, na_value=False)
    return out


def of_rollout(table: pd.DataFrame, rollout: str | None, *, what: str = "table") -> pd.DataFrame:
    """The rows of ``table`` (a per-job table with a ``rollout`` column) of ``rollout``.

    A table without the column (from before rollouts) is taken whole when it can only be of
    one rollout; raises :class:`~cfanalytics.exceptions.RolloutError` otherwise.
    """
    if "rollout" not in table.columns:
        found = table["target_imageversionid"].nunique() if "target_imageversionid" in table else 1
        if found > 1:
            raise RolloutError(f"{what} holds several rollouts but no 'rollout' column")
        return table
    rows = _all_of(table["rollout"], rollout)
    return (table if rows.all() else table.loc[rows]).reset_index(drop=True)  # all: no copy


def one_rollout(events: pd.DataFrame, rollout: str | None) -> tuple[str | None, pd.DataFrame]:
    """``rollout``, or the only rollout there is, and its events: for an analysis whose answer
    is about one rollout. Raises :class:`~cfanalytics.exceptions.RolloutError` naming the
    rollouts found (:func:`~cfanalytics.events.choose_rollout`) when it cannot tell which."""
    found, chosen = [], events
    for name, frame in split_rollouts(validate(events)):
        if name is None:
            continue
        found.append(name)
        if name == rollout or (rollout is None and len(found) == 1):
            chosen = frame  # the only frame kept: the others are needed only by name
        if name == rollout:
            break
    return choose_rollout(found, rollout), chosen


def pick_rollout(tables: Sequence[pd.DataFrame], rollout: str | None) -> str | None:
    """``rollout``, or the only rollout the ``rollout`` columns of ``tables`` name (None if
    they name none); raises :class:`~cfanalytics.exceptions.RolloutError` naming them when
    there are several, or ``rollout`` is not one of them."""
    found = list(
        dict.fromkeys(
            name
            for table in tables
            if "rollout" in table.columns
            for name in table["rollout"].dropna().unique()  # in order of appearance
        )
    )
    return choose_rollout(found, rollout) if found else rollout  # no rows: nothing to check


def _inputs(kwargs: dict[str, Any], rollout: str | None) -> dict[str, Any]:
    """The keyword arguments, each table cut to ``rollout``'s rows."""
    return {
        key: of_rollout(value, rollout, what=f"{key}=")
        if isinstance(value, pd.DataFrame)
        else value
        for key, value in kwargs.items()
    }


def labelled(table: pd.DataFrame, rollout: str | None) -> pd.DataFrame:
    """``table`` with ``rollout`` as its first column (replacing any it had): what a table of
    one rollout's analysis (a ``job_summary_of``) is given by :func:`per_rollout`."""
    body = table.drop(columns="rollout") if "rollout" in table.columns else table.copy(deep=False)
    body.insert(0, "rollout", pd.array([rollout], dtype=TEXT).take(np.zeros(len(body), np.intp)))
    return body


def _stacked(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The tables of each rollout, one after another, with a fresh RangeIndex."""
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
