"""The shareable HTML report of a recorded rollout: one self-contained file.

``cfanalytics report SOURCE -o report.html`` or :func:`write_report`. Images are inline,
nothing is fetched to view it, and the same source always gives the same bytes: the
report carries no clock reading, no absolute path and no random id.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .._files import write_atomically
from ..exceptions import ReportError
from ._data import ReportData, analyse
from ._html import page
from ._provenance import Provenance, load_with_provenance, sha256_of
from ._sections import SECTIONS, provenance_section

__all__ = ["Provenance", "ReportData", "analyse", "build_report", "sha256_of", "write_report"]

TITLE = "Rollout timing report"


def build_report(events: pd.DataFrame, provenance: Provenance) -> str:
    """The report of ``events`` as one HTML document."""
    data = analyse(events)
    sections = [section(data) for section in SECTIONS]
    lede = f"{provenance.source}: {len(data.summary)} install jobs"
    return page(TITLE, lede, [*sections, provenance_section(provenance)])


def write_report(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    parameters: Mapping[str, Any] | None = None,
) -> Path:
    """Write the report of a cassette or event log to ``out``; returns its path."""
    events, provenance = load_with_provenance(source, parameters)
    text = build_report(events, provenance)
    path = Path(out)
    write_atomically(path, text, what="report", error=ReportError)
    return path
