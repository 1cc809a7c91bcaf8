"""Building events rows from recorded exchanges (a request and what came back).

Answers are read by the live client's own rules (:func:`cfanalytics.client.route`),
so a recorded run and a live one give the same rows. Nothing the API said is dropped: what
has no column goes to ``extra``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from ..client import (
    ImageStatus,
    InstallJob,
    InstallStatus,
    JobFields,
    QueueResult,
    RawResponse,
    Route,
    read_response,
    route,
)
from ..exceptions import APIError, HTTPStatusError, ResponseError, ResponseFormatError
from ._fast import StatusBody, status_frame
from ._schema import COLUMNS, STATES, concat_events, conform, empty_events

__all__ = ["STAMP_HEADER", "Exchange", "events_from_exchanges", "exchange_rows", "observed_at"]

#: Sub-second receive time the recorder adds to every response (ISO 8601, UTC, microseconds).
STAMP_HEADER = "x-cfanalytics-observed-at"

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its response, or the transport failure that replaced it."""

    method: str
    url: str
    response: RawResponse | None
    error: str | None = None  #: why no response came (transport failure)
    failed_at: datetime | None = None  #: when the transport failure was seen


def observed_at(raw: RawResponse) -> datetime | None:
    """When a response was received: the recorder's stamp, else the server's ``Date``."""
    stamp = raw.header(STAMP_HEADER)
    if stamp:
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            pass
    return raw.date


def _extra(fields: JobFields) -> str | None:
    extra = dict(fields.extra)
    if fields.invalid:
        extra["__invalid__"] = dict(fields.invalid)
    if fields.duplicates:
        extra["__duplicates__"] = {k: list(v) for k, v in fields.duplicates.items()}
    return json.dumps(extra, sort_keys=True, default=str) if extra else None


def _job_fields(fields: JobFields) -> Row:
    state = fields.jobstateid
    return {
        "jobstateid": state,
        "state": STATES[state - 1] if state is not None and 1 <= state <= 7 else None,
        "jobprogress": fields.jobprogress,
        "jobcreated": fields.jobcreated,
        "jobstart": fields.jobstart,
        "jobupdated": fields.jobupdated,
        "jobeta": fields.jobeta,
        "jobfailed": fields.jobfailed,
        "joberror": fields.joberror,
        "success": fields.success,
        "extra": _extra(fields),
    }


def _install_row(job: InstallJob) -> Row:
    return {
        **_job_fields(job),
        "jobid": job.jobid,
        "kind": job.kind,
        "mirroring": job.mirroring,
        "restart": job.restart,
        "location": job.location,
        "machine": job.machine,
        "mirror": job.mirror,
        "imagepath": job.imagepath,
        "install_at": job.install_at,
        "target_imageversionid": job.target_imageversionid,
    }


def _queue_row(result: QueueResult) -> Row:
    row = _job_fields(result)
    squashed = result.installs_squashed
    if isinstance(squashed, tuple):  # a list of ids: count here, ids kept in extra
        extra = json.loads(row["extra"] or "{}") | {"installs_squashed": list(squashed)}
        row["extra"] = json.dumps(extra, sort_keys=True)
        squashed = len(squashed)
    mirroring = None if result.kind is None else result.kind == "mirror"
    return row | {
        "kind": result.kind,
        "mirroring": mirroring,
        "versionmirrorid": result.versionmirrorid,
        "machinejobid": result.machinejobid,
        "installs_squashed": squashed,
    }


def _image_row(result: ImageStatus) -> Row:
    counts: dict[str, Any] = {
        "imageid": result.imageid,
        "pending_machines": result.pending_machines,
        "failed_machines": result.failed_machines,
        "completed_machines": result.completed_machines,
    }
    if result.fleets is not None:
        counts["fleets"] = result.fleets
    return {"extra": json.dumps(counts, sort_keys=True)}


def _result_rows(result: object) -> list[Row]:
    if isinstance(result, InstallStatus):
        # An empty list still is an observation: one row without a job says "none listed".
        return [_install_row(job) for job in result.installs] or [{}]
    if isinstance(result, QueueResult):
        return [_queue_row(result)]
    if isinstance(result, ImageStatus):
        return [_image_row(result)]
    return [{}]


def _error_row(exc: ResponseError, where: Route) -> Row:
    row: Row = {"error_message": str(exc) if isinstance(exc, ResponseFormatError) else None}
    if isinstance(exc, APIError | HTTPStatusError):
        row |= {"error_code": exc.error_code, "error_message": exc.error_message}
    if isinstance(exc, APIError):
        row |= {"problem": "envelope", "success": False}
    else:
        row["problem"] = "format" if isinstance(exc, ResponseFormatError) else "http_status"
    if where.endpoint == "queue":
        kind = None if where.mirroring is None else "mirror" if where.mirroring else "machine"
        row |= {"kind": kind, "mirroring": where.mirroring}
    return row


def exchange_rows(exchange: Exchange, *, run_id: str, seq: int) -> list[Row]:
    """The events rows of one exchange (at least one)."""
    where = route(exchange.url)
    base: Row = {
        "run_id": run_id,
        "seq": seq,
        "endpoint": where.endpoint,
        "asid": where.asid,
        "jobid": where.jobid,
    }
    raw = exchange.response
    if raw is None:
        message = exchange.error or "no response"
        return [
            base
            | {"observed_at": exchange.failed_at, "problem": "transport", "error_message": message}
        ]
    base |= {"observed_at": observed_at(raw), "http_status": raw.status_code}
    if where.call is None:
        return [base | {"extra": json.dumps({"body": raw.text[:2000]})}]
    try:
        rows = _result_rows(read_response(where.call, raw))
    except ResponseError as exc:
        rows = [_error_row(exc, where)]
    return [base | row for row in rows]


def _status_body(exchange: Exchange, seq: int, routes: dict[str, Route]) -> StatusBody | None:
    """The exchange as a successful status body for the column-wise reader, if it is one."""
    raw = exchange.response
    if raw is None or not 200 <= raw.status_code < 300:
        return None
    where = routes.get(exchange.url)
    if where is None:  # polls repeat one URL: parse it once
        where = routes[exchange.url] = route(exchange.url)
    if where.endpoint != "status":
        return None
    return StatusBody(seq, observed_at(raw), raw.status_code, where.asid, raw.text)


def events_from_exchanges(exchanges: Iterable[Exchange], *, run_id: str) -> pd.DataFrame:
    """The events table of a run's exchanges, in order (``seq`` counts from 0).

    Successful status bodies, the bulk of any recording, are read column-wise
    (:mod:`._fast`); everything else row by row. Both follow the same rules.
    """
    exchanges = list(exchanges)
    routes: dict[str, Route] = {}
    bodies = [
        b for seq, e in enumerate(exchanges) if (b := _status_body(e, seq, routes)) is not None
    ]
    columns, leftovers = status_frame(bodies, run_id=run_id)
    fast_seqs = {b.seq for b in bodies} - {bodies[i].seq for i in leftovers}
    rows = [
        row | {"_pos": pos}
        for seq, exchange in enumerate(exchanges)
        if seq not in fast_seqs
        for pos, row in enumerate(exchange_rows(exchange, run_id=run_id, seq=seq))
    ]
    if not rows:  # the column readers typed everything already: only fill and order
        missing = [name for name in COLUMNS if name not in columns]
        blank = empty_events()[missing].reindex(range(len(columns["jobid"])))
        frame = {name: columns[name] if name in columns else blank[name] for name in COLUMNS}
        return conform(pd.DataFrame(frame, copy=False))  # the text read as labels
    slow = conform(pd.DataFrame(rows).drop(columns="_pos")).assign(_pos=[r["_pos"] for r in rows])
    frame = concat_events([pd.DataFrame(columns), slow])
    frame = frame.sort_values(["seq", "_pos"], kind="stable").drop(columns="_pos")
    return conform(frame)
