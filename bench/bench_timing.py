"""Benchmark: job summary, ETA errors and rollout metrics, against one pandas groupby pass.

    python bench/bench_timing.py [--jobs 10000] [--polls-per-job 100] [--repeat 3]

Builds a synthetic events table (seeded, in the events schema): ``jobs`` install jobs, one in
ten a mirror job, across 20 locations, listed by status polls every 15 s in two runs of the
recorder, about ``polls-per-job`` listings each (1 million observations by default). Jobs are
queued in waves (a successful queue answer each), wait Queued, then run with rising progress
and a noisy, early-optimistic ``jobeta``. Most vanish from the list (completion
interval-censored), a quarter show a Complete row first, 5 % fail (a few Failed rows, then
gone), the last few are still running when the recording ends; 0.5 % of polls fail (HTTP 503).

Then times, in the same run and on the same table, the best of ``repeat`` runs of:

- baseline: one ``events.groupby("jobid").agg(...)`` pass (first/last ``observed_at``, max
  progress, last state, row count, mean ``jobeta``);
- each step of the analysis: :func:`job_summary`, :func:`eta_errors`,
  :func:`job_eta_metrics`, :func:`error_by` (by progress decile and by location) and
  :func:`rollout_metrics` given what the steps before computed, and the whole pipeline;
- ``rollout_metrics(events)`` alone, which computes everything it needs itself.

Prints seconds and the ratio to the baseline; the aim is a pipeline within 3x of it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from cfanalytics.analysis import error_by, eta_errors, job_eta_metrics, job_summary, rollout_metrics
from cfanalytics.events import SCHEMA, conform
from cfanalytics.simulator import default_scenario

AIM = 3.0
POLL_US = 15_000_000  # a status poll every 15 s
SECOND_US = 1_000_000
T0_US = pd.Timestamp("2026-11-02 09:00", tz="UTC").value // 1000
# The ids the simulator's default scenario hands out with seed 0 (derived, see Scenario).
FIRST_JOBID, IMAGEVERSIONID = default_scenario().first_ids(0)
LOCATIONS = (
    "London",
    "Frankfurt",
    "Amsterdam",
    "Paris",
    "Madrid",
    "Stockholm",
    "Warsaw",
    "Ashburn",
    "Chicago",
    "Dallas",
    "Seattle",
    "Los Angeles",
    "Toronto",
    "Sao Paulo",
    "Singapore",
    "Tokyo",
    "Seoul",
    "Mumbai",
    "Sydney",
    "Johannesburg",
)
# Outcomes drawn per job: vanish while running, Complete row then vanish, Failed, unfinished.
VANISH, COMPLETE, FAILED = 0, 1, 2
QUEUED_ID, RUNNING_ID, COMPLETE_ID, FAILED_ID = 3, 4, 5, 6


def times(us: np.ndarray, valid: np.ndarray | None = None) -> pd.Series:
    """``datetime64[us, UTC]`` from microseconds since the epoch (NaT where not ``valid``)."""
    values = us.astype("datetime64[us]")
    if valid is not None:
        values[~valid] = np.datetime64("NaT")
    return pd.Series(values).dt.tz_localize("UTC")


def ints(values: np.ndarray, valid: np.ndarray | None = None) -> pd.arrays.IntegerArray:
    """Nullable ``Int64`` (NA where not ``valid``)."""
    mask = np.zeros(len(values), bool) if valid is None else ~valid
    return pd.arrays.IntegerArray(values.astype(np.int64), mask)


def texts(codes: np.ndarray, names: list[str]) -> pd.Series:
    """Nullable strings from codes into ``names`` (-1 is NA)."""
    return pd.Series(pd.Categorical.from_codes(codes, names)).astype(pd.StringDtype())


def frame(n: int, **columns: object) -> pd.DataFrame:
    """``n`` rows of every events column: those given, NA of the column's dtype elsewhere."""
    out = {}
    for name, dtype in SCHEMA.items():
        value = columns.get(name)
        if value is None:
            out[name] = pd.Series(pd.NA, index=range(n), dtype=dtype)
        elif np.ndim(value) == 0:
            out[name] = pd.Series([value] * n, dtype=dtype)
        else:
            out[name] = pd.Series(value).astype(dtype)
    return pd.DataFrame(out)


def lifecycles(rng: np.random.Generator, jobs: int, polls: int) -> pd.DataFrame:
    """Per job, in poll numbers: queued at, polls spent Queued, polls listed; and its outcome."""
    queued = np.sort(rng.integers(0, 4 * polls, jobs))  # waves over four average lifetimes
    listed = np.maximum(6, rng.gamma(4.0, polls / 4, jobs).round().astype(np.int64))
    wait = np.minimum(listed - 3, rng.geometric(1 / max(2, polls / 10), jobs))
    outcome = rng.choice(3, jobs, p=[0.70, 0.25, 0.05])
    end = queued + listed
    n_polls = int(np.sort(end)[-max(1, jobs // 200) - 1]) + 1  # the last 0.5 % stay listed
    listed = np.minimum(listed, n_polls - queued)
    unfinished = queued + listed >= n_polls
    outcome[unfinished] = VANISH
    wait = np.minimum(wait, listed - 1)
    failed_rows = np.minimum(listed - wait - 1, rng.integers(1, 12, jobs))
    return pd.DataFrame(
        {
            "queued": queued,
            "wait": wait,
            "listed": listed,
            "outcome": outcome,
            "failed_rows": np.maximum(failed_rows, 1),
            "n_polls": n_polls,
        }
    )


def synthetic_events(jobs: int, polls_per_job: int, *, seed: int = 20261102) -> pd.DataFrame:
    """A realistic events table of ``jobs`` jobs listed ``polls_per_job`` times on average."""
    rng = np.random.default_rng(seed)
    life = lifecycles(rng, jobs, polls_per_job)
    n_polls = int(life["n_polls"].iloc[0])
    queued, wait, listed = (life[c].to_numpy() for c in ("queued", "wait", "listed"))
    outcome, failed_rows = life["outcome"].to_numpy(), life["failed_rows"].to_numpy()
    poll_at = T0_US + np.arange(n_polls) * POLL_US + rng.integers(0, 2 * SECOND_US, n_polls)
    outage = np.zeros(n_polls, bool)  # 0.5 % of polls fail, never the first or last
    outage[rng.choice(np.arange(1, n_polls - 1), max(1, n_polls // 200), replace=False)] = True

    # Per job: start, true end (between the last listing and the next poll, or before a
    # Complete row), failure time, progress curve shape; attributes.
    first_run = queued + wait
    start = poll_at[first_run] - rng.integers(0, 10 * SECOND_US, jobs)
    last = queued + listed - 1
    end = poll_at[last] + rng.integers(1, POLL_US, jobs)
    end = np.where(outcome == COMPLETE, poll_at[last] - rng.integers(1, 10 * SECOND_US, jobs), end)
    fail_at = poll_at[last - failed_rows + 1] - rng.integers(1, POLL_US, jobs)
    shape = rng.lognormal(0.0, 0.35, jobs)
    mirror = np.arange(jobs) < max(1, jobs // 10)
    location = rng.integers(0, len(LOCATIONS), jobs)

    # One row per (job, poll listing it).
    job = np.repeat(np.arange(jobs), listed)
    k = np.arange(len(job)) - np.repeat(np.cumsum(listed) - listed, listed)
    poll = queued[job] + k
    keep = ~outage[poll]
    job, k, poll = job[keep], k[keep], poll[keep]
    t = poll_at[poll]
    o = outcome[job]
    sid = np.where(k < wait[job], QUEUED_ID, RUNNING_ID)
    sid = np.where((o == COMPLETE) & (k == listed[job] - 1), COMPLETE_ID, sid)
    sid = np.where((o == FAILED) & (k >= listed[job] - failed_rows[job]), FAILED_ID, sid)
    running, begun = sid == RUNNING_ID, sid != QUEUED_ID
    frac = np.clip((np.minimum(t, fail_at[job]) - start[job]) / (end - start)[job], 0, 0.999)
    progress = np.where(begun, np.floor(100 * frac ** shape[job]), 0).astype(np.int64)
    progress[sid == COMPLETE_ID] = 100
    # ETA: optimistic early, noisy, whole minutes (so it often stays put between polls).
    remaining = (end[job] - t) * np.exp(-0.4 * (1 - frac) + rng.normal(0, 0.15, len(t)))
    eta = (t + remaining) // (60 * SECOND_US) * (60 * SECOND_US)
    has_eta = running & (rng.random(len(t)) > 0.01)
    has_start = begun & (job % 50 != 0)  # a few jobs never report jobstart
    updated = np.where(sid == COMPLETE_ID, end[job], t // SECOND_US * SECOND_US)

    # Responses in time order: polls and queue answers, numbered per run from 0.
    queue_at = poll_at[queued] - rng.integers(SECOND_US, 14 * SECOND_US, jobs)
    resp_at = np.concatenate([poll_at, queue_at])
    order = np.argsort(resp_at, kind="stable")
    second_run = resp_at >= poll_at[n_polls // 2]
    seq = np.empty(len(resp_at), np.int64)
    sorted_second = second_run[order]
    seq[order] = np.arange(len(order)) - np.where(sorted_second, (~sorted_second).sum(), 0)
    run_id = np.where(second_run, "bench-2", "bench-1")

    jobid = FIRST_JOBID + np.arange(jobs)
    kinds = np.where(mirror, 0, 1)
    states = np.array(["", "", "", "Queued", "Running", "Complete", "Failed"])
    status = frame(
        len(job),
        run_id=run_id[poll],
        seq=seq[poll],
        observed_at=times(t),
        endpoint="status",
        http_status=200,
        asid=1,
        jobid=jobid[job],
        kind=pd.Categorical.from_codes(kinds[job], ["mirror", "machine"]),
        jobstateid=sid,
        state=states[sid],
        jobprogress=progress,
        jobcreated=times(queue_at[job] - 60 * SECOND_US),
        jobstart=times(start[job] // SECOND_US * SECOND_US, has_start),
        jobupdated=times(updated),
        jobeta=times(eta, has_eta),
        jobfailed=(sid == FAILED_ID).astype(np.int64),
        joberror=texts(np.where(sid == FAILED_ID, 0, -1), ["download failed: checksum mismatch"]),
        mirroring=mirror[job],
        restart=True,
        location=texts(location[job], list(LOCATIONS)),
        machine=texts(np.where(mirror[job], -1, job), [f"{31000 + j}" for j in range(jobs)]),
        mirror=texts(location[job], [f"mirror-{n.lower()[:3]}-01" for n in LOCATIONS]),
        imagepath="/games/arena/server",
        target_imageversionid=IMAGEVERSIONID,
    )

    listed_polls = np.zeros(n_polls, bool)
    listed_polls[poll] = True
    bare = np.flatnonzero(outage | ~listed_polls)  # failed polls, and empty lists
    bad = outage[bare]
    bare_rows = frame(
        len(bare),
        run_id=run_id[bare],
        seq=seq[bare],
        observed_at=times(poll_at[bare]),
        endpoint="status",
        http_status=ints(np.where(bad, 503, 200)),
        asid=1,
        problem=np.where(bad, "http_status", None),
    )
    answers = n_polls + np.arange(jobs)
    queue = frame(
        jobs,
        run_id=run_id[answers],
        seq=seq[answers],
        observed_at=times(queue_at),
        endpoint="queue",
        http_status=200,
        asid=1,
        jobid=jobid,
        kind=pd.Categorical.from_codes(kinds, ["mirror", "machine"]),
        jobstateid=QUEUED_ID,
        state="Queued",
        jobprogress=0,
        jobcreated=times(queue_at - 60 * SECOND_US),
        jobupdated=times(queue_at),
        jobfailed=0,
        success=True,
        mirroring=mirror,
        versionmirrorid=ints(7_840_001 + np.arange(jobs), mirror),
        machinejobid=ints(7_840_001 + np.arange(jobs), ~mirror),
        installs_squashed=0,
    )
    events = pd.concat([status, bare_rows, queue], ignore_index=True)
    events = events.sort_values(["observed_at", "seq"], kind="stable")
    return conform(events)


def best(fn: Callable[[], object], repeat: int) -> float:
    """The best wall time of ``repeat`` runs."""
    spent = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        spent.append(time.perf_counter() - start)
    return min(spent)


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
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    built = time.perf_counter()
    events = synthetic_events(args.jobs, args.polls_per_job)
    built = time.perf_counter() - built
    status = events["endpoint"] == "status"
    print(
        f"{args.jobs:,} jobs, {int(status.sum()):,} status rows "
        f"({int(events.loc[status, 'jobid'].notna().sum()):,} observations, "
        f"{events.loc[status, ['run_id', 'seq']].drop_duplicates().shape[0]:,} polls), "
        f"{len(events):,} events; built in {built:.1f} s; best of {args.repeat}"
    )

    base = best(lambda: baseline(events), args.repeat)
    summary = job_summary(events)
    errors = eta_errors(events, summary=summary)
    per_job = job_eta_metrics(events, errors=errors, summary=summary)
    steps: list[tuple[str, Callable[[], object]]] = [
        ("job_summary(events)", lambda: job_summary(events)),
        ("eta_errors(events, summary)", lambda: eta_errors(events, summary=summary)),
        (
            "job_eta_metrics(events, errors, summary)",
            lambda: job_eta_metrics(events, errors=errors, summary=summary),
        ),
        (
            "error_by(errors, decile & location)",
            lambda: (error_by(errors, "progress_decile"), error_by(errors, "location")),
        ),
        (
            "rollout_metrics(events, summary=..., ...)",
            lambda: rollout_metrics(events, summary=summary, errors=errors, per_job=per_job),
        ),
    ]
    print(f"{'baseline: one groupby().agg pass':44} {base:7.3f} s   ratio  1.00x")
    for name, fn in steps:
        spent = best(fn, args.repeat)
        print(f"{name:44} {spent:7.3f} s   ratio {spent / base:5.2f}x")
    total = best(lambda: pipeline(events), args.repeat)
    verdict = "meets" if total / base <= AIM else "misses"
    print(
        f"{'total: the whole pipeline':44} {total:7.3f} s   ratio {total / base:5.2f}x"
        f"   ({verdict} the {AIM:.0f}x aim)"
    )
    alone = best(lambda: rollout_metrics(events), args.repeat)
    print(f"{'rollout_metrics(events) alone':44} {alone:7.3f} s   ratio {alone / base:5.2f}x")


if __name__ == "__main__":
    main()
