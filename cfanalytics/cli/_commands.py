"""What each CLI subcommand does; ``_main`` parses arguments and maps errors to exit codes.

Each command imports the layers it needs when it runs, so a light command starts light.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..client import ENV_ACCESS_KEY, ENV_BASE_URL, ENV_SECRET_KEY, Client
from ..events import json_records
from ._output import STATUS_COLUMNS, job_row, out, progress_bar, render, steps_bar
from ._sources import check_source

__all__ = [
    "backtest",
    "compare",
    "demo",
    "events",
    "history",
    "image_status",
    "make_cassette",
    "postmortem",
    "queue",
    "record",
    "replay",
    "report",
    "rollouts",
    "scan_secrets",
    "simulate",
    "status",
    "summary",
]


def _client(args: argparse.Namespace) -> Client:
    return Client(base_url=args.base_url, timeout=args.timeout)


def status(args: argparse.Namespace) -> int:
    """``cfanalytics status``: the incomplete install jobs of an ASID."""
    with _client(args) as client:
        listing = client.install_status(args.asid)
    rows = [job_row(job, STATUS_COLUMNS) for job in listing]
    out(render(rows, STATUS_COLUMNS, args.format))
    if args.format == "table":
        out(f"{len(rows)} incomplete install job(s) in ASID {args.asid}")
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
    out(f"queued {result.kind} job {result.jobid}: {state}, {result.jobprogress}% ({extra})")
    return 0


def image_status(args: argparse.Namespace) -> int:
    """``cfanalytics image-status``: fleet rollout counts of an image."""
    with _client(args) as client:
        result = client.image_status(args.asid, args.imageid, detail=args.detail)
    out(
        f"image {result.imageid}: {result.completed_machines} completed, "
        f"{result.pending_machines} pending, {result.failed_machines} failed machines"
    )
    if result.fleets is not None:
        out(json.dumps(result.fleets, indent=2))
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
        out(
            f"Clanforge simulator serving {server.url} (ASID {sim.asid}, seed {args.seed}, "
            f"speed {args.speed:g}x, faults {args.faults:g})"
        )
        if fresh:
            out("No keys in the environment; these work for this simulator only:")
            out(f"  export {ENV_BASE_URL}={server.url}")
            out(f"  export {ENV_ACCESS_KEY}={keys['access_key']}")
            out(f"  export {ENV_SECRET_KEY}={keys['secret_key']}")
        out("Press Ctrl-C to stop.")
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
        max_stall=args.max_stall or None,
        concurrency=args.concurrency,
        requeue_failed=args.requeue_failed,
    )
    bar, on_progress = progress_bar()
    common = {
        "events_dir": args.events,
        "history": args.history,
        "base_url": args.base_url,
        "timeout": args.timeout,
        "on_progress": on_progress,
    }
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
    out(f"run {run.run_id}: {len(progress.watched)} job(s) queued; {outcomes}")
    out(f"stopped: {progress.stop_reason}; {run.events['seq'].nunique()} responses recorded")
    if run.cassette is not None:
        out(f"cassette:  {run.cassette}")
    if run.event_log is not None:
        out(f"event log: {run.event_log}")
    if getattr(run, "history", None) is not None:
        added = run.history
        already = added.responses_present
        out(f"history:   {added.responses_added} response(s) added, {already} already there")


def replay(args: argparse.Namespace) -> int:
    """``cfanalytics replay``: run the recorded plan again, offline, and show the events."""
    from ..recording import EXPORT_SUFFIXES, write_events
    from ..recording import replay as replay_run

    if args.events_out and Path(args.events_out).suffix not in EXPORT_SUFFIXES:
        raise ValueError(f"cannot write {args.events_out}: use a .parquet or .csv file name")
    run = replay_run(args.cassette)
    _describe(run)
    if args.events_out:
        write_events(run.events, args.events_out)
        out(f"events:    {args.events_out} ({len(run.events)} rows)")
    return 0


def _events(args: argparse.Namespace) -> Any:
    """The events of ``args.source``, of ``args.rollout`` only if given."""
    from ..events import rollout_events
    from ..recording import load_source

    events = load_source(check_source(args.source))
    return events if args.rollout is None else rollout_events(events, args.rollout)


def summary(args: argparse.Namespace) -> int:
    """``cfanalytics summary``: one row per job and rollout, from any source."""
    from ..analysis import job_summary

    frame = job_summary(_events(args))
    columns = list(frame.columns)
    if args.format == "table":
        shown = ["rollout", "jobid", "kind", "location", "outcome", "completed_at", "error"]
        table = frame[shown]
        out(render(json_records(table), list(table.columns), "table"))
        counts = frame["outcome"].value_counts().sort_index()
        out(", ".join(f"{n} {k}" for k, n in counts.items() if n))
    else:
        out(render(json_records(frame), columns, args.format))
    return 0


def events(args: argparse.Namespace) -> int:
    """``cfanalytics events``: write the events table of a source for other tools."""
    from ..recording import write_events

    frame = _events(args)
    write_events(frame, args.out)
    out(f"events: {args.out} ({len(frame)} rows)")
    return 0


def history(args: argparse.Namespace) -> int:
    """``cfanalytics history add|list|synth``: keep recordings in one store, list its
    rollouts, or write a synthetic history."""
    from ..recording import HistoryStore

    if args.action == "synth":
        return _synth(args)
    if args.action == "list":
        catalog = HistoryStore(args.store).catalog()
        out(render(json_records(catalog), list(catalog.columns), args.format))
        return 0
    added = HistoryStore(args.to).add(*map(check_source, args.sources))
    out(
        f"{args.to}: {added.responses_added} response(s) added from {len(added.runs)} run(s), "
        f"{added.responses_present} already there"
    )
    return 0


def _synth(args: argparse.Namespace) -> int:
    """``cfanalytics history synth``: a synthetic history, and one line of what it took."""
    from time import perf_counter

    from ..recording import synthesize

    bar, on_progress = steps_bar("synth", unit="rollout")
    started = perf_counter()
    with bar:
        made = synthesize(
            args.to,
            rollouts=args.rollouts,
            jobs=args.jobs,
            polls=args.polls,
            seed=args.seed,
            asids=args.asids,
            on_progress=on_progress,
        )
    seconds = perf_counter() - started
    out(
        f"{args.to}: {made.rollouts} rollout(s), {made.rows:,} rows in {made.files} file(s), "
        f"{seconds:.1f} s ({made.rows / max(seconds, 1e-9):,.0f} rows/s)"
    )
    return 0


def rollouts(args: argparse.Namespace) -> int:
    """``cfanalytics rollouts``: one row per rollout of a history store."""
    from ..analysis import History

    engine = {"engine": args.engine, "workers": args.workers, "scheduler": args.scheduler}
    which = {"asid": args.asid, "since": args.since, "until": args.until}
    with History(args.store, **engine) as history:
        files, on_file = steps_bar("catalog", unit="file")
        with files:  # read once here, kept for the rollouts
            history.catalog(**which, on_progress=on_file)
        bar, on_progress = steps_bar("rollouts", unit="rollout")
        with bar:
            table = history.rollouts(**which, on_progress=on_progress)
    if args.format == "table":
        shown = table[[c for c in table.columns if c not in _ROLLOUT_DETAIL]]
        digits = {c: 1 for c in shown.columns if c.endswith("_s")} | {"failure_rate": 3}
        out(render(json_records(shown.round(digits)), list(shown.columns), "table"))
        out(f"{len(table)} rollout(s) in {args.store}")
    else:
        out(render(json_records(table), list(table.columns), args.format))
    return 0


_ROLLOUT_DETAIL = ("asid", "imageversionid", "last_seen", "runs", "install_p90_s")


def report(args: argparse.Namespace) -> int:
    """``cfanalytics report``: the self-contained HTML rollout timing report."""
    from ..report import write_report

    if args.previous is not None and args.history is None:
        raise ValueError("--previous counts earlier rollouts of a history: give --history DIR")
    path = write_report(
        check_source(args.source),
        args.out,
        rollout=args.rollout,
        progress=sys.stderr.isatty(),
        history=args.history,
        title=args.title,
        jobs={"location": args.location, "kind": args.kind},
        since=args.since,
        until=args.until,
        tz=args.tz,
        **({} if args.previous is None else {"previous": args.previous}),
    )
    out(f"report: {path.resolve()}")
    return 0


def postmortem(args: argparse.Namespace) -> int:
    """``cfanalytics postmortem``: failed installs, where they concentrate, and API errors."""
    from ..recording import load_source
    from ..report import postmortem as build

    found = build(
        load_source(check_source(args.source)),
        source=Path(args.source).name,
        rollout=args.rollout,
        history=args.history,
    )
    if args.format == "json":
        tables = {name: json_records(frame) for name, frame in found.tables().items()}
        out(json.dumps(tables, indent=2))
    elif args.format == "md":
        out(found.markdown())
    else:
        out(found.lead + "\n")
        for title, frame in found.sections():
            rows = json_records(frame)
            out(f"{title} ({len(rows)})")  # as the Markdown draft heads it
            out((render(rows, list(frame.columns), "table") if rows else "  none") + "\n")
    return 0


def backtest(args: argparse.Namespace) -> int:
    """``cfanalytics backtest``: the forecast, jobeta and the linear rule, side by side."""
    from ..analysis import PREDICTORS, Backtest
    from ..analysis import backtest as walk
    from ..recording import load_source

    bar, on_progress = steps_bar("backtest", unit="poll")
    parts = []
    with bar:
        for source in args.sources:
            events = load_source(check_source(source))
            parts.append(
                walk(events, history=args.history, every=args.every, on_progress=on_progress)
            )
    found = Backtest.combine(parts)
    if args.format == "json":
        out(json.dumps(found.summary(), indent=2))
    else:
        out(_backtest_table(found, ", ".join(Path(s).name for s in args.sources), PREDICTORS))
    return 0


def _backtest_table(found: Any, sources: str, predictors: Sequence[str]) -> str:
    """The backtest as text: the three predictors overall, by progress decile, location and
    kind; then each rollout's time to 90 % against its forecast."""
    figures = found.summary()
    parts = [
        f"backtest of {sources}: {figures['jobs']} jobs, {figures['observations']} "
        "observations. Error = completion - prediction (+: later than predicted); MAE and "
        "bias per job first, then across jobs; coverage: share inside the forecast's 80 % "
        "interval."
    ]
    rows = _overall_rows(found.scores(), predictors)
    parts.append(render(rows, list(rows[0]), "table") if rows else "No observation to score.")
    for by in ("progress_decile", "location", "kind"):
        table = found.scores(by)
        shown = [
            {
                by.replace("_", " "): row[by],
                "jobs": row["jobs"],
                **{f"{n} MAE (s)": _seconds(row[f"{n}_mae_s"]) for n in predictors},
                "coverage": _share(row["coverage"]),
            }
            for row in json_records(table)
        ]
        if shown:
            parts.append(f"by {by.replace('_', ' ')}:\n{render(shown, list(shown[0]), 'table')}")
    parts += [_rollout_line(row) for row in figures["rollouts"]]
    return "\n\n".join(parts)


def _overall_rows(overall: Any, predictors: Sequence[str]) -> list[dict[str, str]]:
    """One row per predictor; the forecast's also with its interval's coverage and width."""
    if overall.empty:
        return []
    first = overall.iloc[0]
    return [
        {
            "predictor": name,
            "MAE (s)": _seconds(first[f"{name}_mae_s"]),
            "bias (s)": _seconds(first[f"{name}_bias_s"], signed=True),
            "coverage": _share(first["coverage"]) if name == "forecast" else "",
            "interval width (s)": _seconds(first["width_s"]) if name == "forecast" else "",
        }
        for name in predictors
    ]


def _seconds(value: Any, *, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):+.0f}" if signed else f"{float(value):.0f}"


def _share(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * float(value):.0f} %"


def _rollout_line(row: Mapping[str, Any]) -> str:
    """A rollout's time to 90 % against the forecast of it made when 25 % had completed."""
    actual = row.get("time_to_90_s")
    said = row.get("forecast_at_25_percent_s")
    low, high = row.get("interval_at_25_percent_s") or (None, None)
    reach = row.get("reach_at_25_percent")
    if reach is None:
        told = "no forecast of it: 25 % never completed"
    elif said is None:
        told = f"forecast when 25 % had completed: reached in only {_share(reach)} of the draws"
    else:
        told = (
            f"forecast when 25 % had completed: {_seconds(said)} s "
            f"(80 %: {_seconds(low)} to {'never' if high is None else _seconds(high) + ' s'})"
        )
    done = "never reached" if actual is None else f"{_seconds(actual)} s"
    return f"rollout {row['rollout']} ({row['jobs']} jobs): time to 90 % completed {done}; {told}"


def compare(args: argparse.Namespace) -> int:
    """``cfanalytics compare``: is rollout B worse than rollout A, beyond noise?"""
    from ..analysis import compare as compare_rollouts

    if args.history is None:
        from ..recording import load_source

        a, b = load_source(check_source(args.a)), load_source(check_source(args.b))
        picked = {"rollout_a": args.rollout_a, "rollout_b": args.rollout_b}
    elif args.rollout_a or args.rollout_b:
        raise ValueError("--rollout-a/-b pick rollouts of SOURCEs; with --history, A and B are ids")
    else:
        from ..recording import HistoryStore

        store = HistoryStore(args.history)
        a, b = store.events(rollout=args.a), store.events(rollout=args.b)
        picked = {"rollout_a": args.a, "rollout_b": args.b}
    frame = compare_rollouts(a, b, by=args.by, level=args.level, **picked)
    if args.format == "table":
        out(_compare_table(frame, args.level))
    else:
        out(render(json_records(frame), list(frame.columns), args.format))
    return 0


def _compare_table(frame: Any, level: float) -> str:
    """The comparison as a text table between a heading and a count of the verdicts."""
    first = json_records(frame.head(1))[0]
    shown = [c for c in frame.columns if c not in ("rollout_a", "rollout_b")]
    rows = json_records(frame[shown])
    for row in rows:
        for name in ("a", "b", "diff", "low", "high"):
            row[name] = _figure(row["metric"], row[name])
        row["verdict"] = row["verdict"] or "n/a"
    verdicts = [row["verdict"] for row in rows]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("worse", "better", "same", "n/a"))
    return (
        f"B {first['rollout_b']} against A {first['rollout_a']}: diff = B - A, "
        f"low..high its {level:.0%} bootstrap interval\n\n"
        f"{render(rows, shown, 'table')}\n\n{counts}"
    )


def _figure(metric: str, value: float | None) -> str:
    """One value of the comparison table: seconds to 0.1, shares to 0.001, counts whole."""
    if value is None:
        return ""
    if metric == "failure_rate":
        return f"{value:.3f}"
    return f"{value:.1f}" if metric.endswith("_s") else f"{value:g}"


def make_cassette(args: argparse.Namespace) -> int:
    """``cfanalytics make-cassette``: regenerate a shipped sample cassette (or, for
    ``history``, the folder of weekly cassettes)."""
    from ..recording import make_cassette as make
    from ..recording import make_history

    if args.name == "history":
        for run in make_history(Path(args.out or "cassettes/history")):
            _describe(run)
        return 0
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
        out(str(finding))
    if findings:
        print(f"cfanalytics: {len(findings)} possible credential leak(s) found", file=sys.stderr)
        return 1
    print("cfanalytics: no credentials found", file=sys.stderr)
    return 0
