"""Benchmark: the events table from status bodies, against a bare pyarrow JSON parse.

    python bench/bench_events.py [--bodies 10000] [--jobs 100] [--repeat 3]

Builds ``bodies`` install-status bodies of ``jobs`` jobs each (1 million observations by
default), then times, in the same run and on the same bodies:

- baseline: ``pyarrow.json.read_json`` of the bodies as JSON Lines (parse only: no typing,
  no quirks, and it refuses the documented duplicate ``restart`` key);
- cfanalytics: :func:`events_from_exchanges` (parse, type, check every quirk, build the
  typed events table).

Prints the best time of each, the ratio, and the memory per row of the events table. A
last line times bodies carrying the documented duplicate key, which pyarrow cannot read.
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


def best(fn: Callable[[], object], repeat: int) -> float:
    """The best wall time of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


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
    recorded = exchanges(bodies)
    rows = args.bodies * args.jobs
    print(f"{args.bodies:,} status bodies x {args.jobs} jobs = {rows:,} observations")

    base = best(lambda: pj.read_json(io.BytesIO(lines)), args.repeat)
    frame = events_from_exchanges(recorded, run_id="bench")
    ours = best(lambda: events_from_exchanges(recorded, run_id="bench"), args.repeat)
    memory = frame.memory_usage(deep=True).sum() / len(frame)
    print(f"baseline  pyarrow.json.read_json      {base:7.2f} s")
    print(f"events    events_from_exchanges       {ours:7.2f} s   ratio {ours / base:.2f}x")
    print(f"memory    {memory:.0f} bytes per row ({len(frame.columns)} typed columns)")

    dup = exchanges([body(i, args.jobs, duplicate=True) for i in range(args.bodies)])
    with_dup = best(lambda: events_from_exchanges(dup, run_id="bench"), 1)
    print(
        f"events    with the duplicate key      {with_dup:7.2f} s   ratio {with_dup / base:.2f}x"
        "  (pyarrow cannot parse these)"
    )


if __name__ == "__main__":
    main()
