"""The report's history section: this rollout against the previous ones of its ASID."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from matplotlib.axes import Axes

from ..analysis import Standing
from ..plots import plot_trend
from ._html import (
    MINUS,
    SECONDS,
    SIGNED_SECONDS,
    Formatter,
    Seconds,
    Section,
    duration,
    figure,
    paragraph,
    percent,
    table,
    when,
)

__all__ = ["history_section"]

#: The figures compared, their names in the report, and how they are written.
_FIGURES: dict[str, tuple[str, Formatter]] = {
    "time_to_50_s": ("to 50 % completed", duration),
    "time_to_90_s": ("to 90 % completed", duration),
    "install_p50_s": ("median install", duration),
    "install_p90_s": ("90th pct. install", duration),
    "eta_mae_s": ("ETA mean abs. error", duration),
    "eta_bias_s": ("ETA mean error (+ late)", lambda s: duration(s, signed=True)),
    "failure_rate": ("failure rate", percent),
}
#: How a column of the figures is written when it is a column (one unit for all its rows).
_COLUMNS: dict[str, Seconds] = {
    "time_to_50_s": SECONDS,
    "time_to_90_s": SECONDS,
    "install_p50_s": SECONDS,
    "install_p90_s": SECONDS,
    "eta_mae_s": SECONDS,
    "eta_bias_s": SIGNED_SECONDS,
}
#: The trend plots, side by side: where it degrades, how long, how often it fails.
_TRENDS = (("install_p50_s", "location"), ("time_to_50_s", None), ("failure_rate", None))


def history_section(found: Standing, *, store: str, k: int, n: int, tz: str = "UTC") -> Section:
    """``found``'s rollout against the previous rollouts of its ASID in the ``store``; times
    in ``tz``."""
    count = len(found.previous)
    rollouts = f"{count} rollout{'s' if count > 1 else ''}"
    title = f"Against the previous {rollouts}"
    if not found.previous:
        text = (
            f"The history store {store} holds no rollout of this ASID before {found.rollout}: "
            "nothing to compare with yet."
        )
        return Section("history", "Against earlier rollouts", [paragraph(text)])
    lead = paragraph(
        f"{found.rollout} against the {rollouts} of its ASID before it in the history store "
        f"{store}, oldest first. Every figure is the one each rollout gets analysed alone. "
        "Rank 1 is the worst (the largest; for the ETA's bias, the furthest from 0) of the "
        "rollouts that have the figure."
    )
    return Section(
        "history",
        title,
        [
            lead,
            table(_ranks(found)),
            figure(_trends(found), caption=_caption(found), size=(12.0, 3.8), ncols=len(_TRENDS)),
            table(_rollouts(found, tz), _formats()),
            paragraph(
                f"Repeat offenders: machines that failed here, and in at least {k} of their last "
                f"{n} rollouts counting this one, among every earlier rollout of the ASID in the "
                "store (a failing drive shows so)."
            ),
            table(_offenders(found, n), empty="None."),
        ],
    )


def _offenders(found: Standing, n: int) -> pd.DataFrame:
    names = {
        "kind": "kind",
        "location": "location",
        "machine": "machine",
        "rollouts": "rollouts seen",
        "failed": "failed in",
        "failed_recent": f"failed in its last {n}",
        "failure_classes": "error classes",
    }
    return found.offenders()[list(names)].rename(columns=names)


def _ranks(found: Standing) -> pd.DataFrame:
    """Each figure: this rollout's, the previous ones' median, and this one's rank."""
    previous = found.rollouts.iloc[:-1]
    rows = []
    for metric, (label, fmt) in _FIGURES.items():
        rank, of = found.rank(metric)
        before = previous[metric].astype(float)
        # NaN when no earlier rollout has the figure, without numpy < 2's empty-slice warning.
        median = before.median() if before.notna().any() else float("nan")
        rows.append(
            {
                "": label,
                "this rollout": fmt(found.rollouts[metric].iloc[-1]),
                "median before": fmt(median),
                "rank": f"{rank} of {of}" if rank else MINUS,
            }
        )
    return pd.DataFrame(rows)


def _rollouts(found: Standing, tz: str) -> pd.DataFrame:
    """The rollouts compared, oldest first, this one marked."""
    frame = found.rollouts
    shown = pd.DataFrame(
        {
            "rollout": [
                f"{name} (this one)" if name == found.rollout else name for name in frame["rollout"]
            ],
            "started": [when(at, tz) for at in frame["first_seen"]],
            "jobs": frame["jobs"],
            "failed": frame["failed"],
        }
    )
    for metric, (label, _) in _FIGURES.items():
        shown[label] = frame[metric]
    shown["slowest location"] = frame["worst_location"]
    return shown


def _formats() -> dict[str, Formatter | Seconds]:
    return {label: _COLUMNS.get(metric, fmt) for metric, (label, fmt) in _FIGURES.items()}


def _trends(found: Standing) -> Callable[..., None]:
    def draw(*axes: Axes) -> None:
        for ax, (metric, by) in zip(axes, _TRENDS, strict=True):
            plot_trend(found.trend(metric, by=by), highlight=found.rollout, ax=ax)

    return draw


def _caption(found: Standing) -> str:
    return (
        f"Median install time by location, time to 50 % completed, and failure rate of each "
        f"rollout when it started; {found.rollout} is ringed."
    )
