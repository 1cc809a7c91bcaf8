"""What each CLI subcommand does; ``cli`` parses arguments and maps errors to exit codes."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..client import ENV_ACCESS_KEY, ENV_BASE_URL, ENV_SECRET_KEY, Client, JobFields

__all__ = [
    "demo",
    "image_status",
    "make_cassette",
    "postmortem",
    "queue",
    "record",
    "replay",
    "report",
    "scan_secrets",
    "simulate",
    "status",
    "summary",
]

STATUS_COLUMNS = (
    "jobid", "kind", "state", "jobprogress", "jobeta", "location", "machine", "mirror",
    "target_imageversionid", "joberror",
)  # fmt: skip


def _out(text: str = "") -> None:
    print(text, file=sys.stdout)


def _client(args: argparse.Namespace) -> Client:
    return Client(base_url=args.base_url, timeout=args.timeout)


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value.item() if hasattr(value, "item") else value


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain JSON-ready dicts: ISO 8601 UTC timestamps, None for missing."""
    return [
        {k: _cell(v) for k, v in row.items()} for row in frame.astype(object).to_dict("records")
    ]


def job_row(job: JobFields, columns: Sequence[str]) -> dict[str, Any]:
    """One job as a flat mapping of the given columns (state by name, times in ISO 8601)."""
    row = {}
    for name in columns:
        if name == "state":
            row[name] = job.state.label if job.state else job.jobstatename
        else:
            row[name] = _cell(getattr(job, name, None))
    return row


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """Rows as an aligned text table, JSON (an array of objects) or CSV."""
    if fmt == "json":
        return json.dumps(list(rows), indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    cells = [list(map(str, columns))]
    cells += [["" if row[c] is None else str(row[c]) for c in columns] for row in rows]
    widths = [max(map(len, column)) for column in zip(*cells, strict=True)]
    lines = ("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells)
    return "\n".join(line.rstrip() for line in lines)


def status(args: argparse.Namespace) -> int:
    """``cfanalytics status``: the incomplete install jobs of an ASID."""
    with _client(args) as client:
        listing = client.install_status(args.asid)
    rows = [job_row(job, STATUS_COLUMNS) for job in listing]
    _out(render(rows, STATUS_COLUMNS, args.format))
    if args.format == "table":
        _out(f"{len(rows)} incomplete install job(s) in ASID {args.asid}")
    return 0


def queue(args: argparse.Namespace) -> int:
    """``cfanalytics queue``: queue one install job, once."""
    with _client(args) as client:
        result = client.queue_install(args.jobid, asid=args.asid, mirroring=args.mirroring)
    state = result.state.label if result.state else result.jobstatename
    extra = (
        f"versionmirrorid {result.versionmirrorid}"
        if result.kind == "mirror"
        else f"machinejobid {result.machinejobid}, installs squashed: {result.installs_squashed}"
    )
    _out(f"queued {result.kind} job {result.jobid}: {state}, {result.jobprogress}% ({extra})")
    return 0


def image_status(args: argparse.Namespace) -> int:
    """``cfanalytics image-status``: fleet rollout counts of an image."""
    with _client(args) as client:
        result = client.image_status(args.asid, args.imageid, detail=args.detail)
    _out(
        f"image {result.imageid}: {result.completed_machines} completed, "
        f"{result.pending_machines} pending, {result.failed_machines} failed machines"
    )
    if result.fleets is not None:
        _out(json.dumps(result.fleets, indent=2))
    return 0


def simulator_keys(environ: Mapping[str, str]) -> tuple[dict[str, str], bool]:
    """Keys from the environment, else fresh random ones (and whether they are fresh)."""
    access, secret = environ.get(ENV_ACCESS_KEY), environ.get(ENV_SECRET_KEY)
    if access and secret:
        return {"access_key": access, "secret_key": secret}, False
    from ..simulator import throwaway_keys

    access, secret = throwaway_keys()
    return {"access_key": access, "secret_key": secret}, True


def _load_scenario(args: argparse.Namespace) -> Any:
    from ..simulator import Scenario, default_scenario

    scenario = Scenario.from_file(args.scenario) if args.scenario else default_scenario()
    return dataclasses.replace(scenario, asid=args.asid) if args.asid else scenario


def simulate(args: argparse.Namespace) -> int:
    """``cfanalytics simulate``: serve the simulator until interrupted."""
    from ..simulator import ScaledClock, Simulator, serve

    scenario = _load_scenario(args)
    keys, fresh = simulator_keys(os.environ)
    clock = ScaledClock(start=scenario.start, speed=args.speed)
    sim = Simulator(scenario, seed=args.seed, clock=clock, faults=args.faults, **keys)
    with serve(sim, host=args.host, port=args.port) as server:
        _out(
            f"Clanforge simulator serving {server.url} (ASID {sim.asid}, seed {args.seed}, "
            f"speed {args.speed:g}x, faults {args.faults:g})"
        )
        if fresh:
            _out("No keys in the environment; these work for this simulator only:")
            _out(f"  export {ENV_BASE_URL}={server.url}")
            _out(f"  export {ENV_ACCESS_KEY}={keys['access_key']}")
            _out(f"  export {ENV_SECRET_KEY}={keys['secret_key']}")
        _out("Press Ctrl-C to stop.")
        sys.stdout.flush()
        server.serve_forever()
    return 0


def demo(args: argparse.Namespace) -> int:
    """``cfanalytics demo``: simulator + queue the rollout + live progress + summary."""
    from ._demo import run_demo

    return run_demo(
        speed=args.speed,
        seed=args.seed,
        interval=args.interval,
        max_polls=args.max_polls,
        out_dir=Path(args.out),
    )


def progress_bar(total_hint: int = 0) -> tuple[Any, Any]:
    """A tqdm bar and the ``on_progress`` callback that moves it (jobs ended of queued)."""
    from tqdm import tqdm

    # Only on a terminal: piped or logged, stderr keeps to errors (one line each).
    bar = tqdm(total=total_hint, unit="job", desc="rollout", file=sys.stderr, disable=None)

    def on_progress(progress: Any) -> None:
        bar.total = len(progress.watched)
        bar.n = len(progress.ended.keys() & progress.watched)
        bar.set_postfix(dict(sorted(progress.counts().items())), refresh=True)

    return bar, on_progress


def record(args: argparse.Namespace) -> int:
    """``cfanalytics record``: queue, poll, and record every response."""
    from ..recording import RunPlan, resume
    from ..recording import record as record_run

    plan = RunPlan(
        asid=args.asid,
        jobs=args.jobs,
        interval=args.interval,
        max_polls=args.max_polls,
        max_duration=args.max_duration,
    )
    bar, on_progress = progress_bar()
    common = {"events_dir": args.events, "base_url": args.base_url, "timeout": args.timeout,
              "on_progress": on_progress}  # fmt: skip
    with bar:
        if args.resume:
            run = resume(args.cassette, **common)
        else:
            run = record_run(plan, cassette=args.cassette, overwrite=args.overwrite, **common)
    _describe(run)
    return 0


def _describe(run: Any) -> None:
    progress = run.progress
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(progress.counts().items())) or "no jobs"
    _out(f"run {run.run_id}: {len(progress.watched)} job(s) queued; {outcomes}")
    _out(f"stopped: {progress.stop_reason}; {run.events['seq'].nunique()} responses recorded")
    if run.cassette is not None:
        _out(f"cassette:  {run.cassette}")
    if run.event_log is not None:
        _out(f"event log: {run.event_log}")


def replay(args: argparse.Namespace) -> int:
    """``cfanalytics replay``: run the recorded plan again, offline, and show the events."""
    from ..recording import replay as replay_run

    if args.events_out and Path(args.events_out).suffix not in (".parquet", ".csv"):
        raise ValueError(f"cannot write {args.events_out}: use a .parquet or .csv file name")
    run = replay_run(args.cassette)
    _describe(run)
    if args.events_out:
        write_frame(run.events, Path(args.events_out))
        _out(f"events:    {args.events_out} ({len(run.events)} rows)")
    return 0


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as Parquet or CSV, by the file's suffix."""
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    else:
        raise ValueError(f"cannot write {path}: use a .parquet or .csv file name")


def summary(args: argparse.Namespace) -> int:
    """``cfanalytics summary``: one row per job, from a cassette or an event log."""
    from ..analysis import job_summary
    from ..recording import load_source

    frame = job_summary(load_source(args.source))
    columns = list(frame.columns)
    if args.format == "table":
        table = frame[["jobid", "kind", "location", "outcome", "completed_at", "error"]]
        _out(render(frame_records(table), list(table.columns), "table"))
        counts = frame["outcome"].value_counts().sort_index()
        _out(", ".join(f"{n} {k}" for k, n in counts.items() if n))
    else:
        _out(render(frame_records(frame), columns, args.format))
    return 0


def report(args: argparse.Namespace) -> int:
    """``cfanalytics report``: the self-contained HTML rollout timing report."""
    from ..report import write_report

    path = write_report(args.source, args.out, progress=sys.stderr.isatty())
    _out(f"report: {path.resolve()}")
    return 0


FAILURE_COLUMNS = ["jobid", "kind", "location", "machine", "error_class", "failed_at",
                   "progress_at_failure", "times_failed", "requeued", "outcome",
                   "error"]  # fmt: skip
API_ERROR_COLUMNS = ["observed_at", "endpoint", "problem", "http_status", "jobid", "error_message"]


def postmortem(args: argparse.Namespace) -> int:
    """``cfanalytics postmortem``: failed installs, where they concentrate, and API errors."""
    from ..analysis import (
        api_errors,
        failure_rates,
        failures,
        first_failure,
        job_summary,
        other_endings,
        polling_gaps,
    )
    from ..recording import load_source

    events = load_source(args.source)
    summary = job_summary(events)
    failed, errors = failures(events, summary), api_errors(events)
    others, gaps = other_endings(summary), polling_gaps(events)
    where = {by: failure_rates(summary, by) for by in ("location", "mirror")}
    if args.format == "json":
        body = {"failures": frame_records(failed), "api_errors": frame_records(errors),
                "other_endings": frame_records(others), "polling_gaps": frame_records(gaps),
                **{f"by_{by}": frame_records(rates) for by, rates in where.items()}}  # fmt: skip
        _out(json.dumps(body, indent=2))
        return 0
    sections = [
        ("Failed installs", failed, FAILURE_COLUMNS),
        *((f"Failure rate by {by} (worst first)", rates.round({"failure_rate": 3}),
           list(rates.columns))
          for by, rates in where.items()),
        ("API errors, in time order", errors, API_ERROR_COLUMNS),
        ("Gaps in polling (no successful status poll)", gaps, list(gaps.columns)),
        ("Squashed, or gone with no known outcome", others, list(others.columns)),
    ]  # fmt: skip
    lead = first_failure(failed, errors)
    if args.format == "md":
        _out(_markdown_draft(Path(args.source).name, summary, lead, sections))
        return 0
    _out(lead + "\n")
    for title, frame, columns in sections:
        rows = frame_records(frame[columns])
        _out(f"{title}: {len(rows)}")
        _out((render(rows, columns, "table") if rows else "  none") + "\n")
    return 0


def _markdown_draft(
    name: str, summary: pd.DataFrame, lead: str, sections: list[tuple[str, pd.DataFrame, Any]]
) -> str:
    """A postmortem draft for a ticket: what happened in a few lines, then the tables."""
    counts = summary["outcome"].value_counts()
    outcomes = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    lines = [f"# Postmortem draft: {name}", "", f"- {len(summary)} install jobs: {outcomes}.",
             f"- {lead}", "- Impact: _who noticed, and what it cost._",
             "- Root cause: _to be confirmed._", ""]  # fmt: skip
    for title, frame, columns in sections:
        rows = frame_records(frame[columns])
        lines += [f"## {title} ({len(rows)})", "", _markdown(rows, columns), ""]
    return "\n".join(lines)


def _markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as a GitHub-flavoured Markdown table (pipes in values escaped)."""
    if not rows:
        return "None."

    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def make_cassette(args: argparse.Namespace) -> int:
    """``cfanalytics make-cassette``: regenerate a shipped sample cassette."""
    from ..recording import make_cassette as make

    path = Path(args.out or f"cassettes/{args.name}.yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    run = make(args.name, path)
    _describe(run)
    return 0


def scan_secrets(args: argparse.Namespace) -> int:
    """``cfanalytics scan-secrets``: findings on stdout (redacted); exit 1 if any."""
    from ..recording import scan_paths

    known: list[str] = []
    if args.secrets_file:
        lines = Path(args.secrets_file).read_text(encoding="utf-8").splitlines()
        known = [line.strip() for line in lines if line.strip()]
    findings = scan_paths(args.paths, secrets=known)
    for finding in findings:
        _out(str(finding))
    if findings:
        print(f"cfanalytics: {len(findings)} possible credential leak(s) found", file=sys.stderr)
        return 1
    print("cfanalytics: no credentials found", file=sys.stderr)
    return 0
