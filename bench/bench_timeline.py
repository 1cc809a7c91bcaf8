"""Benchmark: the fleet at a moment, as a replay slider asks for it, against one filter pass.

    python bench/bench_timeline.py [--jobs 1000] [--polls 2000] [--calls 200] [--repeat 3]

Synthesizes an events table (seeded, in the events schema, through ``events.conform``):
``polls`` status polls 15 s apart, each listing every job queued and not yet gone, so the
table has about ``jobs * polls * 0.9`` rows (1.8 million by default), the worst case of a
slider over a long rollout. Jobs are queued in the first 5 % of the run, wait Queued a few
polls, then run with rising progress (a plateau now and then: stalls) and a whole-minute
``jobeta``. 5 % fail (three Failed rows, then gone), a tenth outlive the recording, the
others vanish; 1 % of polls fail (HTTP 503).

Times, in the same run and on the same table:

- baselines: ``fleet_states(events)`` (one pass computing every poll's counts), and the plain
  filter ``events.loc[events["observed_at"] <= t]`` a naive ``at(t)`` would start with;
- ``FleetTimeline(events)``: the one-off index (best of ``repeat``), against ``fleet_states``;
- ``at(t)`` and ``counts(t)`` for ``calls`` random times: median and worst call, against
  the filter's median at the same times, and against the slider's 200 ms budget.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from cfanalytics.analysis import FleetTimeline, fleet_states
from cfanalytics.events import conform

BUDGET_S = 0.2  # a slider tick
POLL_US, SECOND_US = 15_000_000, 1_000_000
T0_US = pd.Timestamp("2026-11-02 09:00", tz="UTC").value // 1000
QUEUED, RUNNING, FAILED = 3, 4, 6
STATES = np.array(["", "", "", "Queued", "Running", "Complete", "Failed"])


def utc(us: np.ndarray, valid: np.ndarray | None = None) -> pd.Series:
    """``datetime64[us, UTC]`` from microseconds since the epoch, NaT where not ``valid``."""
    values = us.astype("datetime64[us]")
    if valid is not None:
        values[~valid] = np.datetime64("NaT")
    return pd.Series(values).dt.tz_localize("UTC")


def lifetimes(rng: np.random.Generator, jobs: int, polls: int) -> pd.DataFrame:
    """Per job: the poll it is queued at, starts running at, and its last listing."""
    queued = rng.integers(0, max(1, polls // 20), jobs)
    start = queued + rng.integers(1, 6, jobs)
    last = rng.integers(int(polls * 0.8), int(polls * 1.1), jobs)
    failed = rng.random(jobs) < 0.05
    return pd.DataFrame({"queued": queued, "start": start, "last": last, "failed": failed})


def synthetic_events(jobs: int, polls: int, *, seed: int = 20261102) -> pd.DataFrame:
    """An events table: ``polls`` status polls listing ``jobs`` jobs while they are listed."""
    rng = np.random.default_rng(seed)
    life = lifetimes(rng, jobs, polls)
    queued, start, failed = (life[c].to_numpy() for c in ("queued", "start", "failed"))
    last = np.minimum(life["last"].to_numpy(), polls - 1)
    poll_at = T0_US + np.arange(polls) * POLL_US + rng.integers(0, SECOND_US, polls)
    outage = rng.random(polls) < 0.01
    outage[[0, -1]] = False
    listed = last - queued + 1
    job = np.repeat(np.arange(jobs), listed)
    poll = queued[job] + np.arange(len(job)) - np.repeat(np.cumsum(listed) - listed, listed)
    keep = ~outage[poll]
    job, poll = job[keep], poll[keep]
    sid = np.where(poll < start[job], QUEUED, RUNNING)
    sid = np.where(failed[job] & (poll > last[job] - 3), FAILED, sid)
    span = np.maximum(life["last"].to_numpy() - start, 1)[job]
    frac = np.clip((poll - start[job]) / span, 0, 0.99)
    progress = np.where(sid == RUNNING, (100 * frac) // 1, 0).astype(np.int64)
    t = poll_at[poll]
    eta = (t + (1 - frac) * span * POLL_US * rng.lognormal(0, 0.2, len(t))).astype(np.int64)
    running = sid == RUNNING
    status = pd.DataFrame(
        {
            "run_id": "bench",
            "seq": poll,
            "observed_at": utc(t),
            "endpoint": "status",
            "http_status": 200,
            "asid": 1,
            "jobid": 7_340_001 + job,
            "kind": "machine",
            "jobstateid": sid,
            "state": STATES[sid],
            "jobprogress": progress,
            "jobeta": utc(eta // (60 * SECOND_US) * (60 * SECOND_US), running),
            "location": np.array(["London", "Tokyo", "Dallas"])[job % 3],
        }
    )
    bare = np.flatnonzero(outage)
    failures = pd.DataFrame(
        {
            "run_id": "bench",
            "seq": bare,
            "observed_at": utc(poll_at[bare]),
            "endpoint": "status",
            "http_status": 503,
            "asid": 1,
            "problem": "http_status",
        }
    )
    events = pd.concat([status, failures], ignore_index=True)
    return conform(events.sort_values(["observed_at", "seq"], kind="stable"))


def best(fn: Callable[[], object], repeat: int) -> float:
    """The best wall time of ``repeat`` runs."""
    spent = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        spent.append(time.perf_counter() - began)
    return min(spent)


def per_call(fn: Callable[[pd.Timestamp], object], moments: list[pd.Timestamp]) -> list[float]:
    """The wall time of ``fn`` at each of ``moments``."""
    spent = []
    for moment in moments:
        began = time.perf_counter()
        fn(moment)
        spent.append(time.perf_counter() - began)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--polls", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    built = time.perf_counter()
    events = synthetic_events(args.jobs, args.polls)
    built = time.perf_counter() - built
    print(
        f"{args.jobs:,} jobs, {args.polls:,} polls, {len(events):,} events; "
        f"built in {built:.1f} s; best of {args.repeat}"
    )

    states = best(lambda: fleet_states(events), args.repeat)
    init = best(lambda: FleetTimeline(events), args.repeat)
    print(f"{'baseline: fleet_states(events)':40} {states:8.3f} s    ratio  1.00x")
    print(f"{'FleetTimeline(events)':40} {init:8.3f} s    ratio {init / states:5.2f}x")

    timeline = FleetTimeline(events)
    rng = np.random.default_rng(7)
    first, last = timeline.times[0], timeline.times[-1]
    moments = [first + (last - first) * float(f) for f in rng.random(args.calls)]
    observed = events["observed_at"]
    filtered = statistics.median(per_call(lambda t: events.loc[observed <= t], moments))
    print(
        f"{'baseline: events.loc[observed_at <= t]':40} {filtered * 1e3:8.2f} ms   "
        f"ratio  1.00x   (median of {args.calls} random times)"
    )
    for name, fn in (("at(t)", timeline.at), ("counts(t)", timeline.counts)):
        spent = per_call(fn, moments)
        median, worst = statistics.median(spent), max(spent)
        verdict = "within" if worst <= BUDGET_S else "over"
        tick = f"({verdict} the {BUDGET_S * 1e3:.0f} ms tick)"
        print(
            f"{name:40} {median * 1e3:8.2f} ms   ratio {median / filtered:5.2f}x   "
            f"worst {worst * 1e3:.2f} ms {tick}"
        )


if __name__ == "__main__":
    main()
