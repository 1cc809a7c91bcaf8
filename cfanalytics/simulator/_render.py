"""JSON bodies, written by hand from (key, value) pairs.

By hand because the documented status example repeats the ``restart`` key, which no dict can
hold, and because the scenario decides how some values are typed (section 6 of
``clanforge-api.md``). Fixed parts of each job object are rendered once and cached: the status
list is the hot path and may hold thousands of jobs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from ._model import Snapshot
from ._records import Job, State, Version
from ._scenario import Scenario

__all__ = ["Renderer", "encode", "envelope", "forbidden", "render_pairs"]


def encode(value: object) -> str:
    """One JSON value; the common scalar types skip ``json.dumps`` for speed."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    return json.dumps(value)


def render_pairs(pairs: Iterable[tuple[str, object]]) -> str:
    """A JSON object from pairs, in order, duplicates kept."""
    return "{" + ", ".join(f'"{key}": {encode(value)}' for key, value in pairs) + "}"


def envelope(message: str, *, code: int = 1) -> bytes:
    """The Clanforge application-error envelope."""
    return render_pairs(
        [
            ("success", False),
            ("error", True),
            ("error_code", code),
            ("error_message", message),
            ("messages", []),
            ("_debug", []),
        ]
    ).encode()


def forbidden() -> bytes:
    """The body of a 403: the documented short form, without error_code."""
    pairs = [("success", False), ("error", True), ("error_message", "Forbidden")]
    return render_pairs(pairs).encode()


class Renderer:
    """Renders job-shaped bodies the way the scenario says the API types them."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._names = {state: state.name.capitalize() for state in State}
        self._names[State.COMPLETE] = scenario.complete_state_name
        self._name_json = {state: json.dumps(name) for state, name in self._names.items()}
        # jobid -> (fixed head, fixed tail) of its status-list object.
        self._fixed: dict[int, tuple[str, str]] = {}
        # jobid -> (snapshot, rendered object): reused while the snapshot is the same one.
        self._items: dict[int, tuple[Snapshot, str]] = {}

    def job_fields(self, snap: Snapshot) -> list[tuple[str, object]]:
        """The job fields shared by every job-shaped response, in documented order."""
        start = self.scenario.jobstart_before_start if snap.start is None else str(snap.start)
        pairs: list[tuple[str, object]] = [
            ("jobcreated", snap.created),
            ("joberror", snap.error),
            ("jobeta", snap.eta),
            ("jobfailed", snap.failed),
            ("jobprogress", snap.progress),
            ("jobstart", start),
        ]
        if self.scenario.include_jobstateid:
            pairs.append(("jobstateid", int(snap.state)))
        pairs += [("jobstatename", self._names[snap.state]), ("jobupdated", snap.updated)]
        return pairs

    def _success(self) -> list[tuple[str, object]]:
        return [("success", True)] if self.scenario.queue_success_field else []

    def queue_body(self, job: Job, snap: Snapshot, squashed: int) -> bytes:
        """The queue response: mirror or machine shape, without the jobid."""
        if job.is_mirror:
            head: list[tuple[str, object]] = [("versionmirrorid", job.subid)]
        else:
            head = [("machinejobid", job.subid), ("installs_squashed", squashed)]
        return render_pairs(head + self.job_fields(snap) + self._success()).encode()

    def version_body(self, version: Version, snap: Snapshot) -> bytes:
        """imageversion/create and imageversion/<id>/status: the version job."""
        head: list[tuple[str, object]] = [("imageversionid", version.imageversionid)]
        return render_pairs(head + self.job_fields(snap) + self._success()).encode()

    def status_body(self, jobs: Iterable[tuple[Job, Snapshot]]) -> bytes:
        """``{"installs": [...]}`` for the status list."""
        items = []
        for job, snap in jobs:
            cached = self._items.get(job.jobid)
            if cached is not None and cached[0] is snap:  # the model reuses unchanged snapshots
                items.append(cached[1])
                continue
            head, tail = self._fixed.get(job.jobid) or self._fix(job)
            item = f"{head}{self._middle(snap)}, {tail}"
            self._items[job.jobid] = (snap, item)
            items.append(item)
        return ('{"installs": [' + ", ".join(items) + "]}").encode()

    def _middle(self, snap: Snapshot) -> str:
        """joberror .. jobupdated, as :meth:`job_fields` gives them, in one format string.

        The hot path of a status list whose running jobs all changed: no pairs, no generic
        encoding. ``test_status_list_keys_types_and_duplicate_restart`` pins the equivalence.
        """
        if snap.start is not None:
            start = f'"{snap.start}"'
        else:
            start = encode(self.scenario.jobstart_before_start)
        eta = "null" if snap.eta is None else str(snap.eta)
        error = "null" if snap.error is None else json.dumps(snap.error)
        state = f'"jobstateid": {int(snap.state)}, ' if self.scenario.include_jobstateid else ""
        return (
            f'"joberror": {error}, "jobeta": {eta}, "jobfailed": {snap.failed}, '
            f'"jobprogress": {snap.progress}, "jobstart": {start}, {state}'
            f'"jobstatename": {self._name_json[snap.state]}, "jobupdated": {snap.updated}'
        )

    def _fix(self, job: Job) -> tuple[str, str]:
        """Render the fields of a job that never change, once."""
        s = self.scenario
        mirroring: object = job.is_mirror
        if s.mirroring_as == "int":
            mirroring = int(job.is_mirror)
        elif s.mirroring_as == "string":
            mirroring = "1" if job.is_mirror else "0"
        restart = job.version.restart if s.restart_as == "bool" else int(job.version.restart)
        tail: list[tuple[str, object]] = [
            ("mirroring", mirroring),
            ("restart", restart),
            ("location", job.location.name),
            ("machine", None if job.machine is None else job.machine.machineid),
            ("imagepath", job.version.image.imagepath),
            ("install_at", job.version.install_at),
            ("mirror", job.location.mirror),
            ("target_imageversionid", job.version.imageversionid),
        ]
        if s.duplicate_restart_key:
            tail.append(("restart", restart))
        head = f'{{"jobid": {job.jobid}, "jobcreated": {int(job.created_at)}, '
        fixed = (head, render_pairs(tail)[1:])
        self._fixed[job.jobid] = fixed
        return fixed
