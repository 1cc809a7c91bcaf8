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

from ..events import STATES, TIME
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
    "RUNNING",
    "SQUASHED",
    "answers",
    "conform",
    "deprecated_positional",
    "endings",
    "fleet_codes",
    "is_snapshot",
    "job_snapshots",
    "known",
    "last_of_job",
    "poll_times",
    "polls",
    "select",
    "snapshots",
    "state_ids",
    "utc",
    "vanishing",
]

#: Job state ids (``jobstateid``), named as :data:`cfanalytics.events.STATES` names them.
CREATED, PENDING, QUEUED, RUNNING, COMPLETE, FAILED, SQUASHED = range(1, len(STATES) + 1)
NO_ASID = -1  # what a missing asid reads as: one more ASID
NAT = np.datetime64("NaT", "us")

#: The fleet's states, bottom of a burn-up last; codes are positions in this tuple.
FLEET_STATES = ("waiting", "pending", "queued", "running", "completed", "failed", "other")
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
    by_id = events["jobstateid"].to_numpy(dtype=np.int64, na_value=-1)
    by_id = np.clip(by_id, -1, 8, out=by_id).astype(np.int8)  # NA: -1
    given = known(events, "jobstateid")
    by_id[given & (by_id < 0)] = 0  # a negative id, not NA: some state, no rule's
    by_name = events["state"].cat.codes.to_numpy()  # the id less 1, -1 without a name
    out: np.ndarray = np.where(given, by_id, by_name + (by_name >= 0))
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


def utc(at: datetime | str) -> pd.Timestamp:
    """``at`` as a UTC timestamp; a naive one is taken to be UTC already."""
    stamp = pd.Timestamp(at)
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")


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
