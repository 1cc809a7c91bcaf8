"""Benchmark: the events table from status bodies, against a bare pyarrow JSON parse.

    python bench/bench_events.py [--bodies 10000] [--jobs 100] [--repeat 3]

Builds ``bodies`` install-status bodies of ``jobs`` jobs each (1 million observations by
default), then times, in the same run and on the same bodies (rounds interleaved, best of
``repeat`` each, so load on a shared machine hits all of them alike):

- baseline: ``pyarrow.json.read_json`` of the clean bodies as JSON Lines (parse only: no typing,
  no quirks, and it refuses the documented duplicate ``restart`` key); and, for reference, the
  same parse in the 4 MB chunks the events reader uses (the floor of that reader);
- clean: :func:`events_from_exchanges` of the clean bodies (parse, type, check every quirk,
  build the typed events table); goal: at most 2x the baseline;
- duplicate key: the same bodies with ``restart`` sent twice in every job, as the API's docs and
  the default simulator do (pyarrow alone cannot parse these); goal: at most 3x the baseline.

Prints the times, each ratio with its goal, and the memory per row of the events table with
its goal (half what it took with every integer an ``Int64`` and every text a ``string``).
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable

import pyarrow.json as pj

from cfanalytics.client import RawResponse
from cfanalytics.events import Exchange, events_from_exchanges
from cfanalytics.simulator import default_scenario

URL = "https://api.multiplay.co.uk/cfp/v1/imageinstall/status?accountserviceid=1"
START = 1793610000
# The ids the simulator's default scenario hands out with seed 0 (derived, see Scenario).
FIRST_JOBID, IMAGEVERSIONID = default_scenario().first_ids(0)
BYTES_GOAL = 140  # bytes per row of the events table


def body(poll: int, jobs: int, *, duplicate: bool) -> str:
    """One status body as the simulator writes it (optionally with the duplicate key)."""
    items = []
    for j in range(jobs):
        progress = (poll + j) % 100
        job = {
            "jobid": FIRST_JOBID + j,
            "jobcreated": START - 900,
            "joberror": None,
            "jobeta": START + 600 + poll,
            "jobfailed": 0,
            "jobprogress": progress,
            "jobstart": str(START + j),
            "jobstateid": 4,
            "jobstatename": "Running",
            "jobupdated": START + 15 * poll,
            "mirroring": j % 12 == 0,
            "restart": 1,
            "location": ("London", "Frankfurt", "Ashburn", "Singapore")[j % 4],
            "machine": None if j % 12 == 0 else 31000 + j,
            "imagepath": "/games/arena/server",
            "install_at": None,
            "mirror": "mirror-lon-01",
            "target_imageversionid": IMAGEVERSIONID,
        }
        text = json.dumps(job)
        items.append(text[:-1] + ', "restart": 1}' if duplicate else text)
    return '{"installs": [' + ", ".join(items) + "]}"


def rounds(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """The best wall time of each function over ``repeat`` interleaved rounds."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(spent) for name, spent in times.items()}


def chunks(bodies: list[str], size: int = 4 << 20) -> list[bytes]:
    """The bodies as JSON Lines in pieces of about ``size`` characters, as the events reader
    parses them."""
    pieces, start, filled = [], 0, 0
    for end, text in enumerate(bodies, 1):
        filled += len(text)
        if filled >= size or end == len(bodies):
            pieces.append("\n".join(bodies[start:end]).encode())
            start, filled = end, 0
    return pieces


def exchanges(bodies: list[str]) -> list[Exchange]:
    date = (("date", "Mon, 02 Nov 2026 09:00:00 GMT"),)
    return [Exchange("GET", URL, RawResponse("GET", URL, 200, date, b)) for b in bodies]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    bodies = [body(i, args.jobs, duplicate=False) for i in range(args.bodies)]
    lines = "\n".join(bodies).encode()
    clean = exchanges(bodies)
    dup = exchanges([body(i, args.jobs, duplicate=True) for i in range(args.bodies)])
    rows = args.bodies * args.jobs
    print(f"{args.bodies:,} status bodies x {args.jobs} jobs = {rows:,} observations")

    frame = events_from_exchanges(clean, run_id="bench")
    best = rounds(
        {
            "base": lambda: pj.read_json(io.BytesIO(lines)),
            "chunked": lambda: [pj.read_json(io.BytesIO(c)) for c in chunks(bodies)],
            "clean": lambda: events_from_exchanges(clean, run_id="bench"),
            "dup": lambda: events_from_exchanges(dup, run_id="bench"),
        },
        args.repeat,
    )
    base, floor = best["base"], best["chunked"]
    memory = frame.memory_usage(deep=True).sum() / len(frame)
    print(f"baseline  pyarrow.json.read_json      {base:7.2f} s")
    print(f"          ... in 4 MB chunks (floor)  {floor:7.2f} s   ratio {floor / base:5.2f}x")
    for name, label, goal in (("clean", "clean bodies", 2), ("dup", "duplicate restart key", 3)):
        ratio = best[name] / base
        verdict = "ok" if ratio <= goal else "over"
        print(
            f"events    {label:<27s} {best[name]:7.2f} s   ratio {ratio:5.2f}x"
            f"   goal <= {goal}x: {verdict}   ({best[name] / floor:.2f}x the floor)"
        )
    verdict = "ok" if memory <= BYTES_GOAL else "over"
    print(
        f"memory    {memory:.0f} bytes per row ({len(frame.columns)} typed columns)"
        f"   goal <= {BYTES_GOAL} (half the 280 of all-Int64 and string columns): {verdict}"
    )


if __name__ == "__main__":
    main()
