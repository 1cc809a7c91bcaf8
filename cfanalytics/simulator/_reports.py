"""Read-only reports over the model's records: ground truth and v2 image machine counts."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ._records import Job, State, iso
from ._scenario import Location

__all__ = ["image_counts", "truth_row"]

_OUTCOMES: Mapping[State, str] = MappingProxyType(
    {State.COMPLETE: "completed", State.FAILED: "failed", State.SQUASHED: "squashed"}
)
_COUNT_KEYS = ("pending_machines", "failed_machines", "completed_machines")


def truth_row(job: Job) -> dict[str, Any]:
    """What really happened to one job; times are ISO 8601 UTC with a 'Z', or None."""
    plan = job.plan
    return {
        "jobid": job.jobid,
        "kind": job.kind,
        "location": job.location.name,
        "machine": None if job.machine is None else job.machine.machineid,
        "machine_name": None if job.machine is None else job.machine.name,
        "mirror": job.location.mirror,
        "imageid": job.version.image.imageid,
        "imageversionid": job.version.imageversionid,
        "outcome": _OUTCOMES.get(job.state, "pending"),
        "state": int(job.state),
        "created_at": iso(job.created_at),
        "queued_at": iso(job.queued_at),
        "first_queued_at": iso(job.first_queued_at),
        "started_at": iso(None if plan is None else plan.start),
        "first_started_at": iso(job.first_started_at),
        "completed_at": iso(job.completed_at),
        "failed_at": iso(job.failed_at),
        "squashed_at": iso(job.squashed_at),
        "attempts": job.attempt,
        "failures": job.failures,
        "error": job.last_error,
    }


def _bucket(state: State) -> str | None:
    if state is State.COMPLETE:
        return "completed_machines"
    if state is State.FAILED:
        return "failed_machines"
    return None if state is State.SQUASHED else "pending_machines"


def image_counts(
    locations: list[Location], machines: dict[str, int], jobs: list[Job], *, detail: bool
) -> dict[str, Any]:
    """Pending/failed/completed machine counts, overall and per fleet and region.

    ``jobs`` are the latest version's install jobs; with none (the image was never updated in
    the simulation) every machine counts as completed. Mirror and squashed jobs do not count.
    """
    per_loc = {loc.name: dict.fromkeys(_COUNT_KEYS, 0) for loc in locations}
    if not jobs:
        for loc in locations:
            per_loc[loc.name]["completed_machines"] = machines[loc.name]
    for job in jobs:
        bucket = None if job.machine is None else _bucket(job.state)
        if bucket is not None:
            per_loc[job.location.name][bucket] += 1
    result: dict[str, Any] = {k: sum(c[k] for c in per_loc.values()) for k in _COUNT_KEYS}
    if detail:
        result["fleets"] = _fleets(locations, per_loc)
    return result


def _fleets(locations: list[Location], per_loc: dict[str, dict[str, int]]) -> dict[str, Any]:
    fleets: dict[str, Any] = {}
    for loc in locations:
        fleet = fleets.setdefault(
            str(loc.fleetid), {**dict.fromkeys(_COUNT_KEYS, 0), "regions": {}}
        )
        for key in _COUNT_KEYS:
            fleet[key] += per_loc[loc.name][key]
        fleet["regions"][str(loc.regionid)] = {"name": loc.name, **per_loc[loc.name]}
    return fleets
