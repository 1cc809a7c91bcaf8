"""Benchmark: status-list requests per second from the simulator, against a baseline.

Usage: ``python bench/bench_simulator.py [--jobs 1000] [--seconds 3]``

Five figures, measured in the same run so the ratios are fair:

* in-process: ``httpx.Client`` over ``SimTransport`` vs over an ``httpx.MockTransport`` that
  returns the same pre-rendered status body (what httpx itself costs). The simulator is
  measured twice: with its clock still (polls within one update tick, served from its cache)
  and with a new update tick before every request (every Running job re-rendered);
* loopback: ``serve(sim)`` vs a plain ``ThreadingHTTPServer`` returning those same bytes, both
  through one keep-alive ``httpx.Client``.

The ratio sim/baseline is the share of the transport's ceiling the simulator reaches.
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from cfanalytics.simulator import ManualClock, SimTransport, Simulator, default_scenario, serve

ACCESS, SECRET = "bench-access", "bench-secret"
STATUS = "/cfp/v1/imageinstall/status"
PARAMS = {"accountserviceid": "1"}


def build_simulator(jobs: int, *, update_interval_s: float = 15.0) -> Simulator:
    """A ~``jobs``-job rollout, all queued, two minutes in: a mix of Queued and Running."""
    scenario = dataclasses.replace(
        default_scenario().scaled(jobs), update_interval_s=update_interval_s
    )
    clock = ManualClock(scenario.start)
    sim = Simulator(scenario, seed=0, clock=clock, access_key=ACCESS, secret_key=SECRET)
    for job in sim.model.listed():
        sim.model.queue(job.jobid, mirroring=job.is_mirror)
    clock.advance(120)
    return sim


def rate(client: httpx.Client, seconds: float, before: Callable[[], None] | None = None) -> float:
    """Status requests per second over ``seconds`` of wall time (after one warm-up)."""
    client.get(STATUS, params=PARAMS).raise_for_status()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        if before is not None:
            before()
        response = client.get(STATUS, params=PARAMS)
        response.raise_for_status()
        count += 1
    return count / (time.perf_counter() - start)


def baseline_handler(body: bytes) -> type[BaseHTTPRequestHandler]:
    """A handler returning ``body`` for every GET, tuned like the simulator's server."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self.send_response_only(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the baseline must not pay for logging the simulator does not do

    return Handler


@contextmanager
def baseline_server(body: bytes) -> Iterator[str]:
    """A plain ThreadingHTTPServer on loopback serving ``body``; yields its URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), baseline_handler(body))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        thread.join()
        httpd.server_close()


def measure(
    label: str,
    make: Callable[[], httpx.Client],
    seconds: float,
    before: Callable[[], None] | None = None,
) -> float:
    with make() as client:
        value = rate(client, seconds, before)
    print(f"  {label:<40} {value:9.1f} req/s")
    return value


def sim_client(sim: Simulator) -> httpx.Client:
    return httpx.Client(transport=SimTransport(sim), base_url="http://sim", auth=(ACCESS, SECRET))


def bench_in_process(sim: Simulator, body: bytes, jobs: int, seconds: float) -> dict[str, float]:
    """Simulator (still clock, and a new tick per request) vs MockTransport with ``body``."""

    def mock(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Type": "application/json"}, content=body)

    print("in-process")
    still = measure("simulator via SimTransport", lambda: sim_client(sim), seconds)
    # Worst case: a new update tick before every request, so every Running job's progress and
    # ETA are recomputed and re-rendered (1 s ticks keep the rollout going for the whole run).
    moving = build_simulator(jobs, update_interval_s=1.0)
    clock = moving.clock
    assert isinstance(clock, ManualClock)
    ticking = measure(
        "simulator, new tick every request",
        lambda: sim_client(moving),
        seconds,
        before=lambda: clock.advance(1.0),
    )
    base = measure(
        "baseline: MockTransport, same bytes",
        lambda: httpx.Client(transport=httpx.MockTransport(mock), base_url="http://sim"),
        seconds,
    )
    return {"still": still, "ticking": ticking, "baseline": base}


def bench_loopback(sim: Simulator, body: bytes, seconds: float) -> dict[str, float]:
    """serve(sim) vs a plain ThreadingHTTPServer with ``body``, one keep-alive client each."""
    print("loopback (keep-alive)")
    with serve(sim) as server:
        auth = (ACCESS, SECRET)
        still = measure(
            "simulator via serve()", lambda: httpx.Client(base_url=server.url, auth=auth), seconds
        )
    with baseline_server(body) as url:
        base = measure(
            "baseline: ThreadingHTTPServer, same bytes", lambda: httpx.Client(base_url=url), seconds
        )
    return {"still": still, "baseline": base}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs in the status list")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement")
    args = parser.parse_args(argv)

    sim = build_simulator(args.jobs)
    with sim_client(sim) as client:
        reference = client.get(STATUS, params=PARAMS)
    body = reference.content
    listed = len(reference.json()["installs"])
    print(f"status list: {listed} jobs, {len(body) / 1024:.0f} KiB per response")
    inproc = bench_in_process(sim, body, args.jobs, args.seconds)
    loop = bench_loopback(sim, body, args.seconds)
    print("ratios sim/baseline")
    print(f"  in-process                         {inproc['still'] / inproc['baseline']:6.2f}")
    print(f"  in-process, new tick every request {inproc['ticking'] / inproc['baseline']:6.2f}")
    print(f"  loopback                           {loop['still'] / loop['baseline']:6.2f}")


if __name__ == "__main__":
    main()
