"""Writing the report: analyse, render every section, write one self-contained file.

``cfanalytics report SOURCE -o report.html`` or :func:`write_report`. Images are inline,
nothing is fetched to view it, and the same source always gives the same bytes: the
report carries no clock reading, no absolute path and no random id.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
from tqdm import tqdm

from .._files import write_atomically
from ..analysis import (
    REPEAT_K,
    REPEAT_N,
    History,
    open_history,
    select_jobs,
    standing,
    started_between,
    time_zone,
)
from ..events import TIME, rollout_events, split_rollouts
from ..exceptions import ReportError
from ._data import ReportData, analyse
from ._history import history_section
from ._html import Section, page, paragraph
from ._provenance import Provenance, load_with_provenance
from ._sections import SECTIONS, overview_section, provenance_section

__all__ = ["TITLE", "build_report", "write_report"]

TITLE = "Rollout timing report"


def build_report(
    events: pd.DataFrame,
    provenance: Provenance,
    *,
    rollout: str | None = None,
    progress: bool = False,
    history: History | str | os.PathLike[str] | None = None,
    previous: int = 5,
    title: str | None = None,
    jobs: Mapping[str, str | Sequence[str] | None] | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    tz: str = "UTC",
) -> str:
    """The report of ``events`` as one HTML document; ``progress`` shows a bar on stderr.

    ``tz`` is the zone every shown time is in, tables, text and plot axes alike (an IANA
    name such as ``Europe/Berlin``), stated under the title; the data stays UTC.

    ``since`` / ``until`` keep the rollouts first seen in that window, as
    :func:`~cfanalytics.analysis.started_between` says (a history store's rollouts of a week).

    ``title`` replaces :data:`TITLE`. ``jobs`` keeps the jobs whose attributes match, as
    :func:`~cfanalytics.analysis.select_jobs` takes them (``{"location": ["Frankfurt"],
    "kind": "machine"}``): each is analysed as if those jobs were watched alone, and the
    selection is stated under the title.

    Each rollout is analysed and shown on its own, after an overview of them all when there
    are several; ``rollout`` picks one (:class:`~cfanalytics.exceptions.RolloutError` names
    the rollouts found if it is not there). With a ``history`` (a store folder or a
    :class:`~cfanalytics.History`), each rollout also gets a section against the
    ``previous`` rollouts of its ASID there: trend plots, its rank, repeat offenders.
    """
    try:
        tz = time_zone(tz)
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    chosen = {name: value for name, value in (jobs or {}).items() if value}
    if chosen:
        events = select_jobs(events, **chosen)
    parts = _rollouts(events, rollout)
    if since is not None or until is not None:
        parts = _within(parts, since, until)
    found = None if history is None else open_history(history)
    if previous < 1:
        raise ValueError(f"previous must be at least 1, not {previous}")
    with (
        tqdm(
            total=len(parts) * (len(SECTIONS) + 1 + (found is not None)),
            desc="report",
            unit="step",
            disable=not progress,
            file=sys.stderr,
            leave=False,
        ) as bar,
        matplotlib.rc_context({"timezone": tz}),  # plots' time axes, whatever matplotlibrc says
    ):
        analysed = []
        for name, frame in parts:
            bar.set_postfix_str(f"analysing {name}")
            data = analyse(frame, tz=tz, history=found)
            bar.update()
            if not data.summary.empty:
                analysed.append((name, data))
        if not analysed:
            raise ReportError(f"{provenance.source} holds no install job to report on")
        sections = []
        for name, data in analysed:
            shown = []
            for section in SECTIONS:
                bar.set_postfix_str(section.__name__)
                shown.append(section(data))
                bar.update()
            if found is not None:
                bar.set_postfix_str("history")
                shown.insert(-1, _against(found, name, data, previous))  # before Method
                bar.update()
            sections += shown if len(analysed) == 1 else [_of(name, s) for s in shown]
    count = sum(len(data.summary) for _, data in analysed)
    lede = f"{provenance.source}: {count} install jobs"
    if len(analysed) > 1:
        lede += f" in {len(analysed)} rollouts"
        sections.insert(0, overview_section([(name, data.metrics) for name, data in analysed]))
    elif analysed[0][0] is not None:
        lede += f" of rollout {analysed[0][0]}"
    if chosen:
        lede += " (only " + "; ".join(f"{k} {_listed(v)}" for k, v in chosen.items()) + ")"
    lede += f". Times in {tz}."
    return page(title or TITLE, lede, [*sections, provenance_section(provenance, tz=tz)])


def _listed(value: str | Sequence[str] | None) -> str:
    return str(value) if isinstance(value, str) else ", ".join(map(str, value or ()))


def _against(found: History, name: str | None, data: ReportData, previous: int) -> Section:
    """The rollout ``name`` of ``data`` against the previous ones in the history."""
    if name is None:
        return Section("history", "Against earlier rollouts", [paragraph(_NO_ROLLOUT)])
    placed = standing(data.events, found, rollout=name, previous=previous)
    return history_section(placed, store=found.path.name, k=REPEAT_K, n=REPEAT_N)


_NO_ROLLOUT = "The recording names no rollout (no ASID and no run): nothing to compare with."


def _rollouts(events: pd.DataFrame, rollout: str | None) -> list[tuple[str | None, pd.DataFrame]]:
    """The events of each rollout to report on (of ``rollout`` only, if given)."""
    if rollout is not None:
        return [(rollout, rollout_events(events, rollout))]
    parts: list[tuple[str | None, pd.DataFrame]] = [
        (name, frame) for name, frame in split_rollouts(events) if name is not None
    ]
    return parts or [(None, events)]


def _within(
    parts: list[tuple[str | None, pd.DataFrame]],
    since: datetime | str | None,
    until: datetime | str | None,
) -> list[tuple[str | None, pd.DataFrame]]:
    """The rollouts of ``parts`` that the window holds; an error naming when they started
    if it holds none."""
    first = pd.Series([frame["observed_at"].min() for _, frame in parts], dtype=TIME)
    held = started_between(first, since=since, until=until)
    kept = [part for part, keep in zip(parts, held, strict=True) if keep]
    if kept:
        return kept
    when = sorted((at, name) for (name, _), at in zip(parts, first, strict=True) if pd.notna(at))
    started = ", ".join(f"{name} {at:%Y-%m-%d %H:%M}" for at, name in when)
    raise ReportError(
        f"no rollout was first seen between {since or 'the start'} and {until or 'the end'} "
        f"(UTC); the source's started: {started or 'none'}"
    )


def _of(rollout: str | None, section: Section) -> Section:
    """``section`` as a part of ``rollout``'s report: its anchor and title say whose."""
    slug = "".join(c if c.isalnum() else "-" for c in str(rollout))
    shown = Section(f"{slug}-{section.anchor}", f"{rollout}: {section.title}", [])
    shown.body = section.body
    return shown


def write_report(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    parameters: Mapping[str, Any] | None = None,
    rollout: str | None = None,
    progress: bool = False,
    history: History | str | os.PathLike[str] | None = None,
    previous: int = 5,
    title: str | None = None,
    jobs: Mapping[str, str | Sequence[str] | None] | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    tz: str = "UTC",
) -> Path:
    """Write the report of a cassette, event log or history store to ``out``; returns its path.

    ``parameters`` are shown under provenance; ``rollout`` picks one rollout (default: all,
    each on its own); ``progress`` shows a bar on stderr; ``history`` and ``previous`` add
    each rollout's section against the previous ones; ``title``, ``jobs`` (a selection of
    jobs by location, kind, mirror or machine), ``since``, ``until`` and ``tz`` as for
    :func:`build_report`.
    """
    path = Path(out)
    _check_output(Path(source), path)
    found = None if history is None else open_history(history)  # a wrong folder fails first
    events, provenance = load_with_provenance(source, parameters)
    text = build_report(
        events,
        provenance,
        rollout=rollout,
        progress=progress,
        history=found,
        previous=previous,
        title=title,
        jobs=jobs,
        since=since,
        until=until,
        tz=tz,
    )
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
