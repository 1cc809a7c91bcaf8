"""The postmortem of a recorded rollout: failed installs, where they concentrate, API errors.

One :class:`Postmortem` holds every table; the CLI prints it (``cfanalytics postmortem``) as
text, JSON (:meth:`Postmortem.tables`) or a Markdown draft for a ticket
(:meth:`Postmortem.markdown`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..analysis import (
    api_errors,
    failure_rates,
    failures,
    first_failure,
    job_summary,
    other_endings,
    polling_gaps,
)
from ..events import json_records

__all__ = ["Postmortem", "postmortem"]

#: The columns of the failed installs and API errors a reader sees first, in order.
FAILURE_COLUMNS = (
    "jobid",
    "kind",
    "location",
    "machine",
    "error_class",
    "failed_at",
    "progress_at_failure",
    "times_failed",
    "requeued",
    "outcome",
    "error",
)
API_ERROR_COLUMNS = ("observed_at", "endpoint", "problem", "http_status", "jobid", "error_message")
RATES_BY = ("location", "mirror")


@dataclass(frozen=True)
class Postmortem:
    """Every table of a postmortem, and the sentence that leads it."""

    source: str
    summary: pd.DataFrame
    failures: pd.DataFrame
    api_errors: pd.DataFrame
    other_endings: pd.DataFrame
    polling_gaps: pd.DataFrame
    failure_rates: Mapping[str, pd.DataFrame]
    lead: str

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by their JSON names (``failures``, ``api_errors``, ``by_location``, ...)."""
        return {
            "failures": self.failures,
            "api_errors": self.api_errors,
            "other_endings": self.other_endings,
            "polling_gaps": self.polling_gaps,
            **{f"by_{by}": rates for by, rates in self.failure_rates.items()},
        }

    def sections(self) -> list[tuple[str, pd.DataFrame]]:
        """The titled tables to read, each cut to the columns a reader needs."""
        rates = [
            (f"Failure rate by {by} (worst first)", frame.round({"failure_rate": 3}))
            for by, frame in self.failure_rates.items()
        ]
        return [
            ("Failed installs", self.failures[list(FAILURE_COLUMNS)]),
            *rates,
            ("API errors, in time order", self.api_errors[list(API_ERROR_COLUMNS)]),
            ("Gaps in polling (no successful status poll)", self.polling_gaps),
            ("Squashed, or gone with no known outcome", self.other_endings),
        ]

    def markdown(self) -> str:
        """A draft for a ticket: what happened in a few lines, then the tables."""
        counts = self.summary["outcome"].value_counts()
        outcomes = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        lines = [
            f"# Postmortem draft: {self.source}",
            "",
            f"- {len(self.summary)} install jobs: {outcomes}.",
            f"- {self.lead}",
            "- Impact: _who noticed, and what it cost._",
            "- Root cause: _to be confirmed._",
            "",
        ]
        for title, frame in self.sections():
            lines += [f"## {title} ({len(frame)})", "", markdown_table(frame), ""]
        return "\n".join(lines)


def postmortem(events: pd.DataFrame, *, source: str = "") -> Postmortem:
    """The postmortem of ``events``; ``source`` names the recording in the draft's title."""
    summary = job_summary(events)
    failed, errors = failures(events, summary=summary), api_errors(events)
    return Postmortem(
        source=source,
        summary=summary,
        failures=failed,
        api_errors=errors,
        other_endings=other_endings(summary),
        polling_gaps=polling_gaps(events),
        failure_rates={by: failure_rates(summary, by) for by in RATES_BY},
        lead=first_failure(failed, errors),
    )


def markdown_table(frame: pd.DataFrame) -> str:
    """A frame as a GitHub-flavoured Markdown table (pipes in values escaped); "None." if empty."""
    rows = json_records(frame)
    if not rows:
        return "None."
    columns: Sequence[str] = list(frame.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_markdown_cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _markdown_cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")
