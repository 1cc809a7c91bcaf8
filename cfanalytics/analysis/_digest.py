"""What a history keeps of each rollout: a digest, small whatever the rollout's size.

A rollout's events are analysed once, where they are read (in this process, a worker process
or a Dask worker: :mod:`cfanalytics.analysis._engines`), by the same functions as a single
recording: :func:`job_summary`, :func:`job_eta_metrics`, :func:`failures`. Only the digest
travels back: the headline figures (:func:`group_metrics`), whole and per location and kind,
and one row per job of who it ran on and whether it failed. Every table across rollouts
(the history's rollouts, trends, machine history) is built from digests alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from ..events import TEXT, Schema
from ..recording import HistoryStore
from ._common import conform, of_rollout
from ._failures import failures
from ._headline import group_metrics
from ._summary import job_summary
from ._timing import job_eta_metrics

__all__ = [
    "DIGEST_GROUPS",
    "UNIT_SCHEMA",
    "Digest",
    "digest",
    "digest_in_store",
    "groups_in_store",
    "summary_in_store",
]

#: The groups a digest holds the figures of (a trend by another column reads the store again).
DIGEST_GROUPS = ("location", "kind")
#: :attr:`Digest.units`: one row per job of the rollout, about what it ran on.
UNIT_SCHEMA = Schema(
    {
        "kind": (TEXT, "machine or mirror"),
        "location": (TEXT, "the location of the job's machine"),
        "machine": (TEXT, "the machine's name; the mirror's for a mirror job"),
        "failed": ("boolean", "failed at least once (failures lists it)"),
        "error_class": (TEXT, "the class of its first failure, else NA"),
    }
)


@dataclass(frozen=True)
class Digest:
    """One rollout, digested: ``metrics`` (:func:`group_metrics`, one row), ``groups`` (the
    same per value of each of :data:`DIGEST_GROUPS`) and ``units`` (:data:`UNIT_SCHEMA`)."""

    rollout: str
    metrics: pd.DataFrame
    groups: Mapping[str, pd.DataFrame]
    units: pd.DataFrame


def digest(events: pd.DataFrame, rollout: str) -> Digest:
    """The digest of ``rollout`` from its events (those of one rollout, or more)."""
    summary, per_job = _analysed(events, rollout)
    failed = of_rollout(failures(events, summary=summary), rollout)
    groups = {by: group_metrics(summary, per_job, by=by) for by in DIGEST_GROUPS}
    return Digest(rollout, group_metrics(summary, per_job), groups, _units(summary, failed))


def digest_in_store(store: str | os.PathLike[str], rollout: str) -> Digest:
    """:func:`digest` of ``rollout`` as the store at ``store`` holds it: the task an engine
    runs, wherever it runs (it needs the package and read access to the store)."""
    return digest(_events(store, rollout), rollout)


def groups_in_store(store: str | os.PathLike[str], rollout: str, by: str) -> pd.DataFrame:
    """:func:`group_metrics` of ``rollout`` in the store, per value of ``by``."""
    return group_metrics(*_analysed(_events(store, rollout), rollout), by=by)


def summary_in_store(store: str | os.PathLike[str], rollout: str) -> pd.DataFrame:
    """:func:`job_summary` of ``rollout`` in the store."""
    return of_rollout(job_summary(_events(store, rollout)), rollout)


def _events(store: str | os.PathLike[str], rollout: str) -> pd.DataFrame:
    return _opened(os.fspath(store)).events(rollout=rollout)


@lru_cache(maxsize=8)
def _opened(path: str) -> HistoryStore:
    """The store at ``path``, one per process that runs tasks: the footers it read stay read
    (each checked against the file's size and time before use), not read again per task."""
    return HistoryStore(path)


def _analysed(events: pd.DataFrame, rollout: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``rollout``'s :func:`job_summary` and :func:`job_eta_metrics`."""
    summary = of_rollout(job_summary(events), rollout)
    return summary, job_eta_metrics(events, summary=summary)


def _units(summary: pd.DataFrame, failed: pd.DataFrame) -> pd.DataFrame:
    """Per job: its kind, location and machine (a mirror job's mirror), whether it failed."""
    first_class = failed.drop_duplicates("jobid").set_index("jobid")["error_class"]
    classes = first_class.astype(TEXT).reindex(summary["jobid"]).to_numpy()
    mirror = (summary["kind"] == "mirror").to_numpy(dtype=bool, na_value=False)
    units = {
        "kind": summary["kind"].astype(TEXT),
        "location": summary["location"],
        "machine": summary["machine"].mask(mirror, summary["mirror"]),
        "failed": summary["jobid"].isin(failed["jobid"]),
        "error_class": classes,
    }
    return conform(units, UNIT_SCHEMA)
