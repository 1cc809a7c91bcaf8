"""Writing the report: analyse, render every section, write one self-contained file.

``cfanalytics report SOURCE -o report.html`` or :func:`write_report`. Images are inline,
nothing is fetched to view it, and the same source always gives the same bytes: the
report carries no clock reading, no absolute path and no random id.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from .._files import write_atomically
from ..exceptions import ReportError
from ._data import analyse
from ._html import page
from ._provenance import Provenance, load_with_provenance
from ._sections import SECTIONS, provenance_section

__all__ = ["TITLE", "build_report", "write_report"]

TITLE = "Rollout timing report"


def build_report(events: pd.DataFrame, provenance: Provenance, *, progress: bool = False) -> str:
    """The report of ``events`` as one HTML document; ``progress`` shows a bar on stderr."""
    with tqdm(
        total=len(SECTIONS) + 1,
        desc="report",
        unit="step",
        disable=not progress,
        file=sys.stderr,
        leave=False,
    ) as bar:
        bar.set_postfix_str("analysing")
        data = analyse(events)
        if data.summary.empty:
            raise ReportError(f"{provenance.source} holds no install job to report on")
        sections = []
        for section in SECTIONS:
            bar.update()
            bar.set_postfix_str(section.__name__)
            sections.append(section(data))
        bar.update()
    lede = f"{provenance.source}: {len(data.summary)} install jobs"
    return page(TITLE, lede, [*sections, provenance_section(provenance)])


def write_report(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    parameters: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> Path:
    """Write the report of a cassette or event log to ``out``; returns its path.

    ``parameters`` are shown under provenance; ``progress`` shows a bar on stderr.
    """
    path = Path(out)
    _check_output(Path(source), path)
    events, provenance = load_with_provenance(source, parameters)
    text = build_report(events, provenance, progress=progress)
    write_atomically(path, text, what="report", error=ReportError)
    return path


def _check_output(source: Path, out: Path) -> None:
    """Refuse to write over the source, or into an event log; fail before the work."""
    source, target = source.resolve(), out.resolve()
    if target == source or (source.is_dir() and target.is_relative_to(source)):
        raise ReportError(f"will not write the report {out} over its source {source.name}")
    folder = target.parent
    if folder.exists() and not (folder.is_dir() and os.access(folder, os.W_OK)):
        raise ReportError(f"cannot write report {out}: {folder} is not a writable folder")
