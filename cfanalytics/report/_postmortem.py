"""The postmortem of a recorded rollout: queue refusals, failed installs, where they
concentrate, API errors.

One :class:`Postmortem` holds every table; the CLI prints it (``cfanalytics postmortem``) as
text, JSON (:meth:`Postmortem.tables`) or a Markdown draft for a ticket
(:meth:`Postmortem.markdown`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..analysis import (
    MACHINE_HISTORY_SCHEMA,
    REPEAT_K,
    REPEAT_N,
    History,
    api_error_stretches,
    api_errors,
    failure_rates,
    failures,
    first_failure,
    job_summary,
    open_history,
    other_endings,
    polling_gaps,
    queue_refusals,
    refusal_reasons,
    refusal_sentence,
    standing,
)
from ..events import TEXT, json_records, rollout_events

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
STRETCH_COLUMNS = ("endpoint", "kind", "errors", "statuses", "jobs", "first_at", "span_s")
#: The columns of the refusals by reason, and of each refused job, a reader sees.
REASON_COLUMNS = ("label", "jobs", "requests", "first_refused_at", "remedy")
REFUSAL_COLUMNS = ("jobid", "kind", "location", "machine", "reason", "requests", "error_message")
RATES_BY = ("location", "mirror")
#: The columns of a repeat offender a reader sees.
OFFENDER_COLUMNS = (
    "kind",
    "location",
    "machine",
    "rollouts",
    "failed",
    "failed_recent",
    "failure_classes",
)


@dataclass(frozen=True)
class Postmortem:
    """Every table of a postmortem, and the sentence that leads it.

    Each table has its ``rollout`` column: a recording of several rollouts gives each its
    own rows, and its own sentence in ``lead``.
    """

    source: str
    rollouts: tuple[str, ...]
    summary: pd.DataFrame
    #: The jobs the API refused to queue (:func:`~cfanalytics.analysis.queue_refusals`),
    #: and the same grouped by reason, each with its remedy.
    refusals: pd.DataFrame
    refusal_reasons: pd.DataFrame
    failures: pd.DataFrame
    api_errors: pd.DataFrame
    #: ``api_errors`` by kind and stretch of time (:func:`~cfanalytics.api_error_stretches`).
    api_error_stretches: pd.DataFrame
    other_endings: pd.DataFrame
    polling_gaps: pd.DataFrame
    failure_rates: Mapping[str, pd.DataFrame]
    lead: str
    #: With a history: the machines that failed here and in at least k of their last n
    #: rollouts (:meth:`~cfanalytics.analysis.Standing.offenders`), else None.
    repeat_offenders: pd.DataFrame | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by their JSON names (``failures``, ``api_errors``, ``by_location``, ...)."""
        return {
            "refusal_reasons": self.refusal_reasons,
            "queue_refusals": self.refusals,
            "failures": self.failures,
            "api_error_stretches": self.api_error_stretches,
            "api_errors": self.api_errors,
            "other_endings": self.other_endings,
            "polling_gaps": self.polling_gaps,
            **{f"by_{by}": rates for by, rates in self.failure_rates.items()},
            **(
                {} if self.repeat_offenders is None else {"repeat_offenders": self.repeat_offenders}
            ),
        }

    def sections(self) -> list[tuple[str, pd.DataFrame]]:
        """The titled tables to read, each cut to the columns a reader needs (``rollout``
        first when there are several), times to the second and durations in whole seconds
        (:func:`readable`); :meth:`tables` keeps them exact."""
        whose = ["rollout"] if len(self.rollouts) > 1 else []
        return [(title, readable(frame)) for title, frame in self._sections(whose)]

    def _sections(self, whose: list[str]) -> list[tuple[str, pd.DataFrame]]:
        rates = [
            (f"Failure rate by {by}, worst first", _cut(frame.round({"failure_rate": 3}), whose))
            for by, frame in self.failure_rates.items()
        ]
        return [
            ("Refused at queue time, by reason", self.refusal_reasons[[*whose, *REASON_COLUMNS]]),
            ("Jobs refused at queue time", self.refusals[[*whose, *REFUSAL_COLUMNS]]),
            ("Failed installs", self.failures[[*whose, *FAILURE_COLUMNS]]),
            *rates,
            ("API errors by kind and stretch of time", self._stretches(whose)),
            ("Gaps in polling, without a successful status poll", _cut(self.polling_gaps, whose)),
            ("Squashed, or gone with no known outcome", _cut(self.other_endings, whose)),
            *self._offenders(whose),
        ]

    def _stretches(self, whose: list[str]) -> pd.DataFrame:
        return self.api_error_stretches[[*whose, *STRETCH_COLUMNS]]

    def _offenders(self, whose: list[str]) -> list[tuple[str, pd.DataFrame]]:
        if self.repeat_offenders is None:
            return []
        title = "Repeat offenders, failed here and in earlier rollouts"
        return [(title, self.repeat_offenders[[*whose, *OFFENDER_COLUMNS]])]

    def markdown(self) -> str:
        """A draft for a ticket: what happened in a few lines, then the tables."""
        counts = self.summary["outcome"].value_counts()
        outcomes = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        lines = [
            f"# Postmortem draft: {_markdown_text(self.source + _of_rollouts(self.rollouts))}",
            "",
            f"- {len(self.summary)} install jobs: {outcomes}.",
            f"- {_markdown_text(self.lead)}",
            "- Impact: _who noticed, and what it cost._",
            "- Root cause: _to be confirmed._",
            "",
        ]
        for title, frame in self.sections():
            lines += [f"## {title} ({len(frame)})", "", markdown_table(frame), ""]
        return "\n".join(lines)


def postmortem(
    events: pd.DataFrame,
    *,
    source: str = "",
    rollout: str | None = None,
    history: History | str | os.PathLike[str] | None = None,
    k: int = REPEAT_K,
    n: int = REPEAT_N,
) -> Postmortem:
    """The postmortem of ``events``, each rollout apart (of ``rollout`` only, if given);
    ``source`` names the recording in the draft's title.

    With a ``history`` (a store, or :class:`~cfanalytics.History`), ``repeat_offenders``
    lists the machines that failed in a rollout and in at least ``k`` of their last ``n``
    rollouts up to it (earlier rollouts of its ASID from the history): a failing drive.

    Raises :class:`~cfanalytics.exceptions.RolloutError` naming the rollouts found when
    ``rollout`` is not one of them.
    """
    if rollout is not None:
        events = rollout_events(events, rollout)
    summary = job_summary(events)
    failed, errors = failures(events, summary=summary), api_errors(events)
    refused = queue_refusals(events, summary=summary)
    names = tuple(dict.fromkeys(summary["rollout"].dropna()))
    offenders = None if history is None else _offenders(events, names, history, k=k, n=n)
    reasons = refusal_reasons(refused)
    lead = _lead(summary, reasons, failed, errors, names)
    if offenders is not None and len(offenders):
        lead += " " + _offender_sentence(offenders, n)
    return Postmortem(
        source=source,
        rollouts=names,
        summary=summary,
        refusals=refused,
        refusal_reasons=reasons,
        failures=failed,
        api_errors=errors,
        api_error_stretches=api_error_stretches(errors),
        other_endings=other_endings(summary),
        polling_gaps=polling_gaps(events),
        failure_rates={by: failure_rates(summary, by) for by in RATES_BY},
        lead=lead,
        repeat_offenders=offenders,
    )


def _offenders(
    events: pd.DataFrame,
    names: tuple[str, ...],
    history: History | str | os.PathLike[str],
    *,
    k: int,
    n: int,
) -> pd.DataFrame:
    """The repeat offenders of each rollout, ``rollout`` first."""
    found = open_history(history)
    parts = [
        standing(events, found, rollout=name, previous=None, k=k, n=n)
        .offenders()
        .assign(rollout=name)
        for name in names
    ]
    schema = {"rollout": TEXT, **MACHINE_HISTORY_SCHEMA}
    frame = pd.concat(
        [pd.DataFrame({c: pd.Series(dtype=d) for c, d in schema.items()}), *parts],
        ignore_index=True,
    )
    return frame[["rollout", *[c for c in frame.columns if c != "rollout"]]]


def _offender_sentence(offenders: pd.DataFrame, n: int) -> str:
    """Who keeps failing, in one sentence."""
    names = [
        f"{row.kind} {row.machine} in {row.location} (failed in {row.failed_recent} of its "
        f"last {min(n, int(row.rollouts))} rollouts)"
        for row in offenders.drop_duplicates(["kind", "machine"]).itertuples()
    ]
    return f"Repeat offenders: {'; '.join(names)}."


def _lead(
    summary: pd.DataFrame,
    reasons: pd.DataFrame,
    failed: pd.DataFrame,
    errors: pd.DataFrame,
    rollouts: tuple[str, ...],
) -> str:
    """Per rollout, what went wrong first: the refusals at queue time (they come before any
    install), then the first failure, a sentence each."""

    def said(name: str | None) -> str:
        jobs = summary if name is None else summary.loc[summary["rollout"] == name]
        mine = reasons if name is None else reasons.loc[reasons["rollout"] == name]
        first = refusal_sentence(mine, jobs=len(jobs))
        return f"{first} {first_failure(failed, errors, rollout=name)}".lstrip()

    if len(rollouts) <= 1:
        return said(rollouts[0] if rollouts else None)
    return " ".join(f"{name}: {said(name)}" for name in rollouts)


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as a reader takes it in: times to the second, and the seconds of ``*_s``
    columns whole (a poll's gap is 41 s, not 41.047266)."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            out[name] = column.dt.floor("s")
        elif name.endswith("_s") and pd.api.types.is_float_dtype(column.dtype):
            out[name] = column.round().astype("Int64")
    return out


def _cut(frame: pd.DataFrame, whose: list[str]) -> pd.DataFrame:
    """``frame`` with ``rollout`` first if ``whose`` asks for it, else without it."""
    rest = [c for c in frame.columns if c != "rollout"]
    return frame[[*whose, *rest]]


def _of_rollouts(rollouts: tuple[str, ...]) -> str:
    if not rollouts:
        return ""
    return f", rollout {rollouts[0]}" if len(rollouts) == 1 else f", rollouts {', '.join(rollouts)}"


def markdown_table(frame: pd.DataFrame) -> str:
    """A frame as a GitHub-flavoured Markdown table (pipes and HTML in values escaped);
    "None." if empty."""
    rows = json_records(frame)
    if not rows:
        return "None."
    columns: Sequence[str] = list(frame.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_markdown_cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _markdown_cell(value: Any) -> str:
    return "" if value is None else _markdown_text(str(value)).replace("|", "\\|")


#: What the API sends is text, never markup: GitHub renders raw HTML in Markdown, so a
#: location named ``<script>`` or ``<b onmouseover=...>`` would land in the ticket live.
_MARKDOWN_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\n": " ", "\r": " "})


def _markdown_text(text: str) -> str:
    """API text as Markdown that shows it as it is: HTML escaped, one line."""
    return text.translate(_MARKDOWN_ESCAPES)
