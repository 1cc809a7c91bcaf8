"""The ``cfanalytics`` command line: argument parsing, printing and exit codes only.

Errors end the process with exit code 2 and one readable line on stderr, never a
traceback (``-v`` shows the traceback and debug logs). Credentials are read from the
environment only, so they never land in shell history.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import cast

from .._defaults import MAX_STALL_S, QUEUE_CONCURRENCY
from .._version import __version__
from ..exceptions import CfAnalyticsError
from ._parser import Parser
from ._values import column_names, count, port, positive, positive_number, share, zone

__all__ = ["build_parser", "main"]

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def _add_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--asid", type=positive, required=True, help="account service ID (ASID) to work on"
    )
    parser.add_argument(
        "--base-url",
        help="API base URL (default: $CLANFORGE_BASE_URL, else https://api.multiplay.co.uk)",
    )
    parser.add_argument(
        "--timeout", type=positive_number, default=30.0, help="seconds to wait for each answer"
    )


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output format"
    )


def _simulate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="run the embedded Clanforge simulator on loopback",
        description="Serve the Clanforge image-install API from the embedded simulator. "
        "Keys come from CLANFORGE_ACCESS_KEY / CLANFORGE_SECRET_KEY; if unset, fresh "
        "keys are made and printed as export lines.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only)")
    p.add_argument("--port", type=port, default=8086, help="port (0 picks a free one)")
    p.add_argument("--asid", type=positive, help="ASID to serve (default: the scenario's, 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument(
        "--speed", type=positive_number, default=1.0, help="simulated seconds per real second"
    )
    p.add_argument("--scenario", help="scenario file (JSON or TOML) over the defaults")
    p.add_argument("--faults", type=float, default=0.0, help="share of requests to fault")


def _demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="start the simulator, queue its rollout and watch it finish",
        description="Start the embedded simulator on loopback, queue every queueable install "
        "job of its default rollout and watch them until they end, with a progress bar.",
    )
    p.add_argument(
        "--speed", type=positive_number, default=60.0, help="simulated seconds per real second"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--interval", type=float, default=15.0, help="simulated seconds between polls")
    p.add_argument("--max-polls", type=int, default=400, help="stop after this many polls")
    p.add_argument("--out", default="demo-out", help="folder for the outputs")


def _client_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="list the incomplete install jobs of an ASID",
        description="List every incomplete install job of an ASID (the status list): kind, "
        "state, progress, ETA, location, machine and mirror, target image version, error.",
    )
    _add_connection(p)
    _add_format(p)

    p = sub.add_parser(
        "queue",
        help="queue one install job (sent once, never retried)",
        description="Queue one install job. The request changes state, so it is sent once; "
        "when the answer is lost, read the status list to see whether it took effect.",
    )
    p.add_argument("jobid", type=positive, help="install job id")
    _add_connection(p)
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--mirror", dest="mirroring", action="store_true", help="a mirror job")
    kind.add_argument("--machine", dest="mirroring", action="store_false", help="a machine job")

    p = sub.add_parser(
        "image-status",
        help="fleet rollout counts of an image",
        description="How many machines have an image completed, pending and failed (the "
        "v2 image status); with --detail, per fleet and region too.",
    )
    p.add_argument("imageid", type=positive, help="image id")
    _add_connection(p)
    p.add_argument("--detail", action="store_true", help="include fleets and regions")


class _SampleNames(Collection[str]):
    """The shipped samples' names, read from :data:`cfanalytics.recording.SAMPLES` only when
    argparse checks or shows them, so building the parser loads nothing heavy; and
    ``history``, the folder of :data:`cfanalytics.recording.HISTORY`."""

    @staticmethod
    def _names() -> list[str]:
        from ..recording import SAMPLES

        return sorted([*SAMPLES, "history"])

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def _add_window(p: argparse.ArgumentParser) -> None:
    """--since and --until: which rollouts, by when they were first seen (one rule:
    :func:`cfanalytics.analysis.started_between`)."""
    p.add_argument(
        "--since", metavar="DATE", help="only rollouts first seen at or after DATE (UTC)"
    )
    p.add_argument("--until", metavar="DATE", help="only rollouts first seen before DATE (UTC)")


def _job_ids(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of job ids: {text!r}"
        ) from None


def _recording_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "record",
        help="queue jobs, poll until they end, record every response",
        description="Queue install jobs, poll the status list until every queued job ended "
        "(or a limit), and record every response into a vcrpy cassette and an event log. "
        "Targets CLANFORGE_BASE_URL: the real API or the simulator.",
    )
    _add_connection(p)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--jobs", type=_job_ids, help="comma-separated job ids to queue")
    which.add_argument(
        "--all-queueable",
        dest="jobs",
        action="store_const",
        const=None,
        help="queue every queueable job in the status list (the default)",
    )
    p.add_argument("--interval", type=float, default=15.0, help="seconds between polls")
    p.add_argument("--max-duration", type=float, help="stop once responses span this many s")
    p.add_argument("--max-polls", type=int, help="stop after this many polls")
    p.add_argument(
        "--max-stall",
        type=float,
        default=MAX_STALL_S,
        help="stop once no queued job changed (state, progress, ETA) for this many s of "
        "responses (default: %(default)s; 0: never). A run also stops once every job left "
        "waits on a mirror job that failed or was never queued, and names that mirror job",
    )
    p.add_argument(
        "--concurrency",
        type=positive,
        default=QUEUE_CONCURRENCY,
        metavar="N",
        help="queue requests in flight at once; all hold back while the API says to slow "
        "down (429, 503 with Retry-After)",
    )
    p.add_argument(
        "--requeue-failed",
        type=count,
        default=0,
        metavar="N",
        help="queue a job that failed again, up to N times each (0: never)",
    )
    p.add_argument("--cassette", required=True, help="cassette file to write (.yaml or .json)")
    p.add_argument("--events", help="event log folder to append to")
    p.add_argument("--history", metavar="DIR", help="history store to add the run to when it ends")
    p.add_argument("--overwrite", action="store_true", help="replace an existing cassette")
    p.add_argument(
        "--resume",
        action="store_true",
        help="carry on a run that was killed: same --cassette and --events; its plan is the "
        "recorded one, and nothing recorded is asked for or written again",
    )

    p = sub.add_parser("replay", help="replay a recorded run offline and rebuild its events")
    p.description = (
        "Run a recording's plan again over its cassette, offline and without sleeping: the "
        "same requests get the recorded answers, giving the same events. Only cassettes "
        "written by cfanalytics record hold a plan; read any other with cfanalytics summary "
        "or cfanalytics events."
    )
    p.add_argument("cassette", help="a cassette written by cfanalytics record")
    p.add_argument("--events-out", help="write the events to FILE.parquet or FILE.csv")

    p = sub.add_parser(
        "make-cassette",
        help="regenerate a shipped sample cassette from the simulator",
        description="Record a sample rollout from the in-process simulator with a fixed seed "
        "and a manual clock: the same command always writes the same bytes.",
    )
    p.add_argument("name", metavar="NAME", choices=_SampleNames(), help="which sample: %(choices)s")
    p.add_argument(
        "-o",
        "--out",
        help="cassette file (default: cassettes/NAME.yaml); for history, a folder "
        "(default: cassettes/history)",
    )


def _add_source(parser: argparse.ArgumentParser, *, every: str = "every rollout") -> None:
    parser.add_argument(
        "source",
        help="cassette, folder of cassettes, event log folder, .parquet or .csv events export, "
        "or history store",
    )
    parser.add_argument(
        "--rollout",
        metavar="ID",
        help=f"only this rollout, ASID/VERSION as the output names it (default: {every})",
    )


def _add_history(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--history", metavar="DIR", help=f"history store folder: {what}")


def _analysis_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "summary",
        help="one row per job from a cassette or an event log",
        description="One row per job and rollout of any source: how it ended (completed, "
        "failed, squashed, unfinished, unknown), when, its queue and start times, last "
        "error, and how far its ETAs were off.",
    )
    _add_source(p)
    _add_format(p)

    p = sub.add_parser(
        "events",
        help="the events table of a source, written to .parquet or .csv",
        description="Read any source (cassette, event log, Parquet export, history store) "
        "into the one events table, of one rollout or all, and write it for other tools.",
    )
    _add_source(p)
    p.add_argument("-o", "--out", required=True, help="FILE.parquet or FILE.csv to write")

    p = sub.add_parser(
        "report",
        help="write the rollout timing report: one self-contained HTML file",
        description="Analyse a recorded rollout (ETA against actual completion, the fleet "
        "over time, failures) and write it as one HTML file with inline images that opens "
        "anywhere without a network. The same source always gives the same bytes.",
    )
    _add_source(p)
    p.add_argument("-o", "--out", default="report.html", help="HTML file to write")
    _add_history(p, "add a section against the previous rollouts of the ASID in this store")
    p.add_argument(
        "--previous",
        type=positive,
        metavar="N",
        help="how many earlier rollouts the history section compares with (default: 5)",
    )
    p.add_argument("--title", help="the report's title (default: Rollout timing report)")
    p.add_argument(
        "--location",
        type=column_names,
        metavar="NAME[,NAME]",
        help="only the jobs of these locations, analysed as if watched alone",
    )
    p.add_argument(
        "--kind",
        type=column_names,
        metavar="KIND[,KIND]",
        help="only the jobs of these kinds (mirror, machine)",
    )
    _add_window(p)
    p.add_argument(
        "--tz",
        type=zone,
        default="UTC",
        metavar="ZONE",
        help="show times in this zone (an IANA name such as Europe/Berlin); the data stays UTC",
    )

    p = sub.add_parser(
        "postmortem",
        help="failed installs and API errors of a recorded rollout",
        description="List every install that failed (error text and class, when, at what "
        "progress, how often, whether it was queued again) and every error the API gave "
        "(status, envelope, bad body, no answer). JSON for tools, Markdown for a ticket.",
    )
    _add_source(p, every="the only one; name it if there are several")
    p.add_argument(
        "--format", choices=("table", "json", "md"), default="table", help="output format"
    )
    _add_history(p, "also list repeat offenders (failed here and in earlier rollouts)")

    p = sub.add_parser(
        "compare",
        help="is rollout B worse than rollout A, beyond noise?",
        description="Compare two rollouts metric by metric (jobs, install time p50 and p90, "
        "ETA error and bias, failure rate), overall and per group, with bootstrap intervals "
        "of B - A and a verdict: worse, better or same (n/a with too few jobs).",
    )
    p.add_argument("a", metavar="A", help="the reference: a SOURCE, or an id with --history")
    p.add_argument("b", metavar="B", help="the rollout in question: a SOURCE, or an id")
    _add_history(p, "A and B are rollout ids (ASID/VERSION) in it")
    p.add_argument("--rollout-a", metavar="ID", help="the rollout of A, if it holds several")
    p.add_argument("--rollout-b", metavar="ID", help="the rollout of B, if it holds several")
    p.add_argument(
        "--by",
        type=column_names,
        default="location,kind",
        help="job summary columns to group by, comma-separated, '' for none",
    )
    p.add_argument("--level", type=share, default=0.9, help="confidence level of the intervals")
    _add_format(p)

    p = sub.add_parser(
        "backtest",
        help="how good the forecast, the ETA and the linear rule were, poll by poll",
        description="Walk each recording poll by poll: at each, forecast every job's "
        "completion from the data so far (cfanalytics.forecast), then score the forecast, "
        "Clanforge's jobeta and the linear rule against the completions (per job first, "
        "then across jobs), and the rollout's time to 90 % as forecast when 25 % of its "
        "jobs had completed.",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="cassettes or event logs")
    _add_history(p, "also learn from the earlier rollouts of each ASID in it")
    p.add_argument(
        "--every",
        type=positive,
        default=1,
        metavar="N",
        help="forecast at every N-th poll (faster on long recordings)",
    )
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")

    p = sub.add_parser(
        "history",
        help="keep every recording in one store: add sources, list its rollouts, synthesize",
        description="A history store is one folder of Parquet files (Hive-partitioned by ASID "
        "and month) that DuckDB, Polars, pyarrow, pandas and Dask read as they are. Adding is "
        "idempotent, atomic and safe with several processes at once.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = actions.add_parser(
        "add",
        help="add cassettes, event logs, exports or stores",
        description="Add every response of each SOURCE (cassette, folder of cassettes, event "
        "log, .parquet or .csv events export, history store) to the store, creating it. "
        "A response already there is kept once.",
    )
    q.add_argument("sources", nargs="+", metavar="SOURCE", help="what to add")
    q.add_argument("--to", required=True, metavar="DIR", help="the store folder")
    q = actions.add_parser(
        "list",
        help="one row per rollout in the store",
        description="List the rollouts a store holds, one row each: ASID, image version, "
        "first and last seen, runs and jobs.",
    )
    q.add_argument("store", metavar="DIR", help="the store folder")
    _add_format(q)
    q = actions.add_parser(
        "synth",
        help="write a synthetic history: realistic rollouts made with numpy, for scale work",
        description="Write N synthetic rollouts of J jobs (one in ten a mirror) over ASIDs "
        "1..K to a store, one per ASID and week, each job listed by about P polls: "
        "non-linear progress, optimistic ETAs, clustered failures, a few HTTP 503 polls. "
        "The same arguments always give the same events.",
    )
    q.add_argument(
        "--rollouts", type=positive, required=True, metavar="N", help="rollouts to write"
    )
    q.add_argument(
        "--jobs", type=positive, required=True, metavar="J", help="install jobs per rollout"
    )
    q.add_argument(
        "--polls", type=positive, required=True, metavar="P", help="polls per job, on average"
    )
    q.add_argument("--seed", type=int, default=0, metavar="S", help="random seed")
    q.add_argument(
        "--asids", type=positive, default=1, metavar="K", help="ASIDs 1..K to spread over"
    )
    q.add_argument("--to", required=True, metavar="DIR", help="the store folder")

    p = sub.add_parser(
        "rollouts",
        help="one row per rollout of a history store, with its headline figures",
        description="List every rollout of a history store in the order they started: jobs, "
        "how many completed, failed or are unfinished, time to 50 and 90 % completed, "
        "install times, ETA error and bias, failure rate and the slowest location.",
    )
    p.add_argument("store", metavar="DIR", help="the history store folder")
    p.add_argument("--asid", type=positive, help="only this ASID's rollouts")
    _add_window(p)
    _add_format(p)
    p.add_argument(
        "--engine",
        choices=("embedded", "dask"),
        default="embedded",
        help="where rollouts are analysed: worker processes here (embedded) or a Dask "
        "cluster (dask)",
    )
    p.add_argument(
        "--workers",
        type=positive,
        metavar="N",
        help="worker processes (embedded: default the cores; dask's LocalCluster: 2)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --engine dask: an existing cluster's scheduler, e.g. tcp://10.0.0.5:8786 "
        "(default: a LocalCluster here)",
    )

    p = sub.add_parser(
        "scan-secrets",
        help="look for Clanforge keys in cassettes, event logs, reports and notebooks",
        description="Scan files and folders (cassettes, event logs, reports, notebooks) for "
        "credentials: the keys in CLANFORGE_ACCESS_KEY / CLANFORGE_SECRET_KEY (raw, base64, "
        "as a Basic token, URL- or JSON-escaped), Authorization headers, and key-looking "
        "values. Excerpts are redacted. Exit 1 when anything is found.",
    )
    p.add_argument("paths", nargs="+", help="files or folders to scan")
    p.add_argument(
        "--secrets-file",
        help="more known secrets, one per line (never on the "
        "command line: it would land in shell history)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = Parser(
        prog="cfanalytics",
        description="Study Multiplay Clanforge image rollouts: query, queue, record, replay, "
        "summarise, report, postmortem, scan for secrets, simulate.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs, tracebacks")
    # The commands are built with argparse's API alone, so typed as its own parsers.
    sub = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True, metavar="COMMAND"),
    )
    _demo_parser(sub)
    _simulate_parser(sub)
    _client_parsers(sub)
    _recording_parsers(sub)
    _analysis_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from . import _commands  # after parsing: --help and --version load nothing heavy
    from ._stderr import cli_terms, retry_notices

    run: Callable[[argparse.Namespace], int] = getattr(_commands, args.command.replace("-", "_"))
    try:
        with retry_notices():
            return run(args)
    except BrokenPipeError:  # the reader went away (`| head`): not an error worth a line
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CfAnalyticsError, OSError, ValueError) as exc:
        if args.verbose:
            raise
        print(f"cfanalytics: error: {cli_terms(_one_line(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("cfanalytics: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
