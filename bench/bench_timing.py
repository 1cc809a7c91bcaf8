"""Benchmark: job summary, ETA errors and rollout metrics, against one pandas groupby pass.

    python bench/bench_timing.py [--jobs 10000] [--polls-per-job 100] [--repeat 5] [--cpu]

Builds a synthetic events table with :func:`cfanalytics.recording.synthetic_events` (the
generator of ``cfanalytics history synth``: seeded, in the events schema): one rollout of
``jobs`` install jobs, one in ten a mirror job, across 20 locations (4 up to 500 jobs),
listed by status polls every 15 s about ``polls-per-job`` times each (1 million
observations by default). Mirrors are queued first, then each location's machines in
waves; jobs wait Queued, then run with non-linear progress and a noisy, early-optimistic
``jobeta``. Most vanish from the list (completion interval-censored), a quarter show a
Complete row first, a few percent fail in clusters (a few Failed rows, then gone), the last
few are still running when the recording ends; about 0.5 % of polls fail (HTTP 503).

Then times, in the same run and on the same table, in interleaved rounds (best of ``repeat``
each, so load on a shared machine hits all of them alike):

- baseline: one ``events.groupby("jobid").agg(...)`` pass (first/last ``observed_at``, max
  progress, last state, row count, mean ``jobeta``);
- each step of the analysis: :func:`job_summary`, :func:`eta_errors`,
  :func:`job_eta_metrics`, :func:`error_by` (by progress decile and by location) and
  :func:`rollout_metrics` given what the steps before computed;
- the whole pipeline, the steps one after another as a report runs them; goal: at most 3x
  the baseline;
- ``rollout_metrics(events)`` alone, which computes everything it needs itself;
- :func:`~cfanalytics.events.split_rollouts`: telling the rollouts apart, which every public
  analysis of events does once (four of the pipeline's steps).

Prints the times and each ratio to the baseline, with its goal where it has one. ``--cpu``
times the CPU seconds of this process instead of wall time: steadier when other work shares
the machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import pandas as pd

from cfanalytics.analysis import error_by, eta_errors, job_eta_metrics, job_summary, rollout_metrics
from cfanalytics.events import split_rollouts
from cfanalytics.recording import synthetic_events

GOAL = 3.0  # the whole pipeline, in baselines


def rounds(
    fns: dict[str, Callable[[], object]], repeat: int, clock: Callable[[], float]
) -> dict[str, float]:
    """The best time (by ``clock``) of each function over ``repeat`` interleaved rounds."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return {name: min(spent) for name, spent in times.items()}


def baseline(events: pd.DataFrame) -> pd.DataFrame:
    """One pandas pass: a handful of per-job aggregates of the whole table."""
    return events.groupby("jobid").agg(
        first_seen=("observed_at", "min"),
        last_seen=("observed_at", "max"),
        max_progress=("jobprogress", "max"),
        last_state=("state", "last"),
        n=("observed_at", "size"),
        mean_eta=("jobeta", "mean"),
    )


def pipeline(events: pd.DataFrame) -> pd.Series:
    """Every step, each result handed to the next, as a report would run them."""
    summary = job_summary(events)
    errors = eta_errors(events, summary=summary)
    per_job = job_eta_metrics(events, errors=errors, summary=summary)
    error_by(errors, "progress_decile")
    error_by(errors, "location")
    return rollout_metrics(events, summary=summary, errors=errors, per_job=per_job)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--polls-per-job", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cpu", action="store_true", help="time CPU, not wall, seconds")
    args = parser.parse_args()

    built = time.perf_counter()
    events = synthetic_events(args.jobs, args.polls_per_job)
    built = time.perf_counter() - built
    status = events["endpoint"] == "status"
    print(
        f"{args.jobs:,} jobs, {int(status.sum()):,} status rows "
        f"({int(events.loc[status, 'jobid'].notna().sum()):,} observations, "
        f"{events.loc[status, ['run_id', 'seq']].drop_duplicates().shape[0]:,} polls), "
        f"{len(events):,} events; built in {built:.1f} s; best of {args.repeat}, interleaved"
        f"{', CPU time' if args.cpu else ''}"
    )

    summary = job_summary(events)
    errors = eta_errors(events, summary=summary)
    per_job = job_eta_metrics(events, errors=errors, summary=summary)
    steps: dict[str, Callable[[], object]] = {
        "baseline: one groupby().agg pass": lambda: baseline(events),
        "job_summary(events)": lambda: job_summary(events),
        "eta_errors(events, summary)": lambda: eta_errors(events, summary=summary),
        "job_eta_metrics(events, errors, summary)": lambda: job_eta_metrics(
            events, errors=errors, summary=summary
        ),
        "error_by(errors, decile & location)": lambda: (
            error_by(errors, "progress_decile"),
            error_by(errors, "location"),
        ),
        "rollout_metrics(events, summary=..., ...)": lambda: rollout_metrics(
            events, summary=summary, errors=errors, per_job=per_job
        ),
        "pipeline: all the steps above": lambda: pipeline(events),
        "rollout_metrics(events) alone": lambda: rollout_metrics(events),
        "split_rollouts(events), in each step": lambda: list(split_rollouts(events)),
    }
    best = rounds(steps, args.repeat, time.process_time if args.cpu else time.perf_counter)
    base = best["baseline: one groupby().agg pass"]
    for name, spent in best.items():
        ratio = f"{spent / base:5.2f}x"
        if name.startswith("pipeline"):
            verdict = "ok" if spent / base <= GOAL else "over"
            ratio += f" (goal <= {GOAL:g}x: {verdict})"
        print(f"{name:42} {spent:7.3f} s   {ratio}")


if __name__ == "__main__":
    main()
