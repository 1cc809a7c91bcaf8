"""The main job, ``cfanalytics demo``: a rollout on the embedded simulator, recorded.

Starts the simulator as a real HTTP server on loopback, records a rollout through it with
the same code a user points at the real API (queue every queueable job, poll until each
has ended), then writes the cassette, the event log, the per-job summary and the HTML
report under the output folder and prints where they are.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ..analysis import job_summary
from ..events import json_records
from ..recording import RecordedRun, RunPlan, new_run_id, record
from ..report import write_report
from ..simulator import ScaledClock, Simulator, default_scenario, serve, throwaway_keys
from ._output import progress_bar, render, write_frame

__all__ = ["run_demo"]

SUMMARY_COLUMNS = ["jobid", "kind", "location", "outcome", "completed_at", "eta_mae_s", "error"]


def _record(
    sim: Simulator, url: str, folder: Path, plan: RunPlan, keys: tuple[str, str]
) -> RecordedRun:
    def sim_now() -> datetime:
        # Responses are stamped in simulated time, so they agree with the API's timestamps.
        return datetime.fromtimestamp(sim.clock.now(), UTC)

    bar, on_progress = progress_bar()
    with bar:
        return record(
            plan,
            cassette=folder / "rollout.yaml",
            events_dir=folder / "events",
            base_url=url,
            access_key=keys[0],
            secret_key=keys[1],
            run_id=folder.name,
            clock=sim_now,
            on_progress=on_progress,
        )


def _report(run: RecordedRun, folder: Path, out: TextIO) -> None:
    summary = job_summary(run.events)
    write_frame(summary, folder / "summary.csv")
    table = summary[SUMMARY_COLUMNS].round({"eta_mae_s": 0})
    print(render(json_records(table), SUMMARY_COLUMNS, "table"), file=out)
    by_location = summary.pivot_table(
        index="location", columns="outcome", values="jobid", aggfunc="count", observed=False
    )
    print(f"\n{by_location.to_string()}\n", file=out)
    print(f"stopped: {run.progress.stop_reason}", file=out)
    print(f"cassette:  {run.cassette}", file=out)
    print(f"event log: {run.event_log}", file=out)
    print(f"summary:   {folder / 'summary.csv'}", file=out)
    print(f"replay it: cfanalytics replay {run.cassette}", file=out)
    report = write_report(folder / "rollout.yaml", folder / "report.html")
    print(f"report:    {report.resolve()}  (open it in a browser)", file=out)


def run_demo(
    *,
    speed: float,
    seed: int,
    interval: float,
    max_polls: int,
    out_dir: Path,
    out: TextIO = sys.stdout,
) -> int:
    """Record the demo rollout; ``interval`` is in simulated seconds. Returns the exit code."""
    scenario = default_scenario()
    keys = throwaway_keys()  # never the user's real keys
    clock = ScaledClock(start=scenario.start, speed=speed)
    sim = Simulator(scenario, seed=seed, clock=clock, access_key=keys[0], secret_key=keys[1])
    folder = out_dir / new_run_id()
    # Poll every `interval` simulated seconds: that is interval / speed real seconds.
    plan = RunPlan(asid=sim.asid, interval=interval / speed, max_polls=max_polls)
    with serve(sim) as server:
        print(f"Clanforge simulator on {server.url} (ASID {sim.asid}, {speed:g}x)", file=out)
        run = _record(sim, str(server.url), folder, plan, keys)
    _report(run, folder, out)
    return 0
