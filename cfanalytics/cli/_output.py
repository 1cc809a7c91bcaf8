"""What the commands print and write: text tables, JSON, CSV, a progress bar, CSV files."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..client import JobFields
from ..events import json_value
from ..recording import CSV_TIME_FORMAT

__all__ = ["STATUS_COLUMNS", "job_row", "out", "progress_bar", "render", "steps_bar", "write_frame"]

#: The columns ``cfanalytics status`` prints, in order.
STATUS_COLUMNS = (
    "jobid",
    "kind",
    "state",
    "jobprogress",
    "jobeta",
    "location",
    "machine",
    "mirror",
    "target_imageversionid",
    "joberror",
)


def out(text: str = "") -> None:
    """Print a line of the command's result on stdout (errors go to stderr, elsewhere)."""
    print(text, file=sys.stdout)


def job_row(job: JobFields, columns: Sequence[str]) -> dict[str, Any]:
    """One job as a flat mapping of the given columns (state by name, times in ISO 8601)."""
    row = {}
    for name in columns:
        if name == "state":
            row[name] = job.state.label if job.state else job.jobstatename
        else:
            row[name] = json_value(getattr(job, name, None))
    return row


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """Rows as an aligned text table, JSON (an array of objects) or CSV."""
    if fmt == "json":
        return json.dumps(list(rows), indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    cells = [list(map(str, columns))]
    cells += [["" if row[c] is None else str(row[c]) for c in columns] for row in rows]
    widths = [max(map(len, column)) for column in zip(*cells, strict=True)]
    lines = ("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells)
    return "\n".join(line.rstrip() for line in lines)


def progress_bar(total_hint: int = 0) -> tuple[Any, Any]:
    """A tqdm bar and the ``on_progress`` callback that moves it (jobs ended of queued)."""
    from tqdm import tqdm

    # Only on a terminal: piped or logged, stderr keeps to errors (one line each).
    bar = tqdm(total=total_hint, unit="job", desc="rollout", file=sys.stderr, disable=None)

    def on_progress(progress: Any) -> None:
        bar.total = len(progress.watched)
        bar.n = len(progress.ended.keys() & progress.watched)
        bar.set_postfix(dict(sorted(progress.counts().items())), refresh=True)

    return bar, on_progress


def steps_bar(desc: str, *, unit: str) -> tuple[Any, Any]:
    """A tqdm bar and its ``on_progress(done, total)`` callback, for work in countable steps."""
    from tqdm import tqdm

    bar = tqdm(unit=unit, desc=desc, file=sys.stderr, disable=None)  # a terminal only

    def on_progress(done: int, total: int) -> None:
        bar.total, bar.n = total, done
        bar.refresh()

    return bar, on_progress


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write a table (not events: :func:`~cfanalytics.recording.write_events` writes those)
    as CSV, times as an events CSV gives them."""
    frame.to_csv(path, index=False, date_format=CSV_TIME_FORMAT)
