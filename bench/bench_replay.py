"""Benchmark: replaying N polls of one status URL, cfanalytics against vcrpy.

Usage: ``python bench/bench_replay.py [--polls 5000] [--vcrpy-polls 5000] [--quick]``

Cassettes of N polls of ``/cfp/v1/imageinstall/status`` (distinct ~300-byte Clanforge status
bodies) are written with :class:`CassetteWriter` in a temporary folder, as YAML and as JSON.
Then, in the same run:

* cfanalytics: ``load_cassette`` + every poll through ``httpx.Client(transport=ReplayTransport)``,
  at N/10 and N (per-poll cost shows whether it stays linear), for YAML and JSON. For context,
  the transport alone (``handle_request`` without a client) and the floor of httpx itself
  (a ``MockTransport`` serving the same bodies from memory) are measured too;
* vcrpy: ``vcr.use_cassette(record_mode="none")`` around an ``httpx.Client`` whose
  ``MockTransport`` fails if called, at ``--vcrpy-polls`` (its matching is quadratic: 5,000
  polls take minutes), compared with cfanalytics at that same size. Both times include loading
  the cassette.

``--quick`` runs 500 polls (vcrpy included) in a few seconds. cfanalytics times are the fastest
of ``--repeat`` runs (default 3); vcrpy runs once.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import vcr

from cfanalytics.recording import CassetteWriter, Interaction, ReplayTransport, load_cassette

HOST = "api.multiplay.co.uk"
URL = f"https://{HOST}/cfp/v1/imageinstall/status?accountserviceid=1"
SECRETS = ("bench-access", "bench-secret")
REQUEST_HEADERS = (
    ("host", HOST),
    ("accept", "*/*"),
    ("accept-encoding", "gzip, deflate"),
    ("connection", "keep-alive"),
    ("user-agent", "python-httpx/0.28.1"),
    ("content-type", "application/x-www-form-urlencoded"),
    ("authorization", "Basic YmVuY2gtYWNjZXNzOmJlbmNoLXNlY3JldA=="),  # dropped when written
)


def status_body(poll: int) -> bytes:
    """A realistic status list with one running job; progress and times move each poll."""
    start = 1_700_000_000
    job = {
        "jobid": 90210 + poll % 3,
        "jobstateid": 4,
        "jobstatename": "Running",
        "jobprogress": poll * 100 // 5000 % 100,
        "jobcreated": start,
        "jobstart": str(start + 60),
        "jobupdated": start + 15 * poll,
        "jobeta": start + 3600 + poll,
        "jobfailed": 0,
        "joberror": "",
        "mirroring": False,
        "restart": True,
        "location": "Frankfurt",
        "machine": f"m-{poll % 97:04d}",
        "imagepath": "/images/game/1.2.3",
    }
    return json.dumps({"installs": [job]}, separators=(",", ":")).encode()


def interaction(poll: int) -> Interaction:
    """Poll number ``poll`` as the recorder would capture it."""
    body = status_body(poll)
    stamp = f"2023-11-14T22:{poll // 60 % 60:02d}:{poll % 60:02d}.{poll:06d}+00:00"
    return Interaction(
        method="GET",
        uri=URL,
        request_headers=REQUEST_HEADERS,
        status_code=200,
        reason="OK",
        headers=(
            ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            ("server", "nginx"),
            ("x-cfanalytics-observed-at", stamp),
        ),
        body=body,
    )


@contextmanager
def timer() -> Iterator[Callable[[], float]]:
    """``with timer() as elapsed:`` then ``elapsed()`` is the block's wall time in seconds."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def build(folder: Path, polls: int, suffix: str) -> Path:
    """Write a cassette of ``polls`` polls; prints how long writing took."""
    path = folder / f"status-{polls}{suffix}"
    with timer() as elapsed, CassetteWriter(path, secrets=SECRETS) as writer:
        for poll in range(polls):
            writer.append(interaction(poll))
    size = path.stat().st_size / 1e6
    print(f"  wrote {path.name:<18} {size:6.2f} MB in {elapsed():6.2f} s (CassetteWriter)")
    return path


def check(bodies: list[bytes], polls: int, who: str) -> None:
    """Every poll got its own recorded body, in order."""
    if bodies != [status_body(poll) for poll in range(polls)]:
        sys.exit(f"{who} replayed the wrong bodies")


def replay_ours(path: Path, polls: int, repeat: int) -> tuple[float, float]:
    """Load + replay with cfanalytics; (load s, replay s) of the fastest of ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        with timer() as load:
            cassette = load_cassette(path)
        with timer() as run, httpx.Client(transport=ReplayTransport(cassette)) as client:
            bodies = [client.get(URL).content for _ in range(polls)]
        check(bodies, polls, "cfanalytics")
        runs.append((load(), run()))
    return min(runs, key=sum)


def replay_vcrpy(path: Path, polls: int, serializer: str) -> float:
    """Load + replay with vcrpy itself; the wrapped transport must never be reached."""

    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"vcrpy reached the transport for {request.url}")

    with (
        timer() as elapsed,
        vcr.use_cassette(str(path), record_mode="none", serializer=serializer),
        httpx.Client(transport=httpx.MockTransport(never)) as client,
    ):
        bodies = [client.get(URL).content for _ in range(polls)]
    check(bodies, polls, "vcrpy")
    return elapsed()


def floors(path: Path, polls: int) -> tuple[float, float]:
    """(ReplayTransport alone, httpx.Client over a MockTransport from memory), in seconds."""
    cassette = load_cassette(path)
    transport = ReplayTransport(cassette)
    request = httpx.Request("GET", URL)
    with timer() as alone:
        for _ in range(polls):
            transport.handle_request(request)
    bodies = iter([i.body for i in cassette.interactions])
    mock = httpx.MockTransport(lambda request: httpx.Response(200, content=next(bodies)))
    with timer() as floor, httpx.Client(transport=mock) as client:
        for _ in range(polls):
            client.get(URL)
    return alone(), floor()


def report_ours(label: str, polls: int, load: float, run: float) -> float:
    """Print one cfanalytics measurement; returns load + replay."""
    total = load + run
    per = total / polls * 1e6
    print(
        f"  {label:<6} {polls:>6} polls: load {load:6.3f} s + replay {run:6.3f} s "
        f"= {total:6.3f} s  ({per:6.1f} µs per poll)"
    )
    return total


def measure_ours(
    cassettes: dict[tuple[int, str], Path], sizes: list[int], repeat: int
) -> dict[tuple[int, str], float]:
    """cfanalytics at every size and format; returns load + replay by (size, suffix)."""
    totals: dict[tuple[int, str], float] = {}
    for suffix in (".yaml", ".json"):
        for polls in sizes:
            load, run = replay_ours(cassettes[polls, suffix], polls, repeat)
            totals[polls, suffix] = report_ours(suffix[1:].upper(), polls, load, run)
    return totals


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; ``--quick`` caps both sizes at 500."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--polls", type=int, default=5000, help="polls replayed by cfanalytics")
    parser.add_argument("--vcrpy-polls", type=int, default=5000, help="polls replayed by vcrpy")
    parser.add_argument("--vcrpy-serializer", choices=["yaml", "json"], default="yaml")
    parser.add_argument("--repeat", type=int, default=3, help="cfanalytics runs (fastest kept)")
    parser.add_argument("--quick", action="store_true", help="500 polls, a few seconds")
    args = parser.parse_args(argv)
    if args.quick:
        args.polls, args.vcrpy_polls = 500, min(args.vcrpy_polls, 500)
    if args.polls < 10 or args.vcrpy_polls < 1:
        parser.error("--polls must be >= 10 and --vcrpy-polls >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    """Build the cassettes, measure both replays, print times, ratios and linearity."""
    args = parse_args(argv)
    polls, vcrpy_polls, vcrpy_format = args.polls, args.vcrpy_polls, args.vcrpy_serializer
    sizes = sorted({polls // 10, polls, vcrpy_polls})
    vcrpy_suffix = "." + vcrpy_format
    print(f"Python {sys.version.split()[0]}, httpx {httpx.__version__}, vcrpy {vcr.__version__}")
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        print("Cassettes (one status URL, distinct ~300-byte bodies):")
        cassettes = {(n, s): build(Path(tmp), n, s) for n in sizes for s in (".yaml", ".json")}
        print(
            "cfanalytics: load_cassette + httpx.Client(transport=ReplayTransport), every poll "
            f"(fastest of {args.repeat}):"
        )
        ours = measure_ours(cassettes, sizes, args.repeat)
        alone, floor = floors(cassettes[polls, ".json"], polls)
        print(
            f"  context at {polls} polls: ReplayTransport.handle_request alone {alone:.3f} s "
            f"({alone / polls * 1e6:.1f} µs/poll); httpx.Client over a MockTransport serving "
            f"from memory {floor:.3f} s ({floor / polls * 1e6:.1f} µs/poll: httpx's own floor)"
        )
        print(f"vcrpy: use_cassette(record_mode='none') + httpx.Client, {vcrpy_format.upper()}:")
        theirs = replay_vcrpy(cassettes[vcrpy_polls, vcrpy_suffix], vcrpy_polls, vcrpy_format)
        print(f"  {vcrpy_polls} polls: {theirs:.2f} s ({theirs / vcrpy_polls * 1e3:.2f} ms/poll)")
    summarize(polls, vcrpy_polls, ours, theirs, vcrpy_format)


def summarize(
    polls: int,
    vcrpy_polls: int,
    ours: dict[tuple[int, str], float],
    theirs: float,
    vcrpy_format: str,
) -> None:
    """Print the ratio against vcrpy and the linearity check."""
    suffix = "." + vcrpy_format
    ours_there, ours_all = ours[vcrpy_polls, suffix], ours[polls, suffix]
    print("Summary:")
    print(
        f"  at {vcrpy_polls} polls ({vcrpy_format.upper()}, load + replay): cfanalytics "
        f"{ours_there:.2f} s, vcrpy {theirs:.2f} s -> {theirs / ours_there:.0f}x faster"
    )
    if vcrpy_polls != polls:
        guess = theirs * (polls / vcrpy_polls) ** 2
        print(
            f"  vcrpy at {polls} polls NOT measured; quadratic extrapolation ~{guess:.0f} s "
            f"(~{guess / ours_all:.0f}x cfanalytics' {ours_all:.2f} s)"
        )
    small = polls // 10
    for suffix in (".yaml", ".json"):
        per_small, per_large = ours[small, suffix] / small, ours[polls, suffix] / polls
        print(
            f"  linearity ({suffix[1:].upper()}, load + replay per poll): {small} polls "
            f"{per_small * 1e6:.1f} µs, {polls} polls {per_large * 1e6:.1f} µs "
            f"(ratio {per_large / per_small:.2f}; 1.0 = linear, 10 = quadratic)"
        )


if __name__ == "__main__":
    main()
