"""Shared pieces of every plot: the palette, UTC time axes, legends, completion marks."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes

from ..exceptions import RolloutError

__all__ = [
    "FAILED_MARK",
    "KIND_COLOURS",
    "OKABE_ITO",
    "STATE_COLOURS",
    "TRAJECTORY_COLOURS",
    "axes_or_current",
    "clock_time",
    "completion_marks",
    "held_steps",
    "hours_formatter",
    "label_text",
    "legend_above",
    "one_rollout",
    "set_tooltips",
    "tooltips",
    "utc_axis",
    "utc_values",
]

_Plot = TypeVar("_Plot", bound=Callable[..., Axes])
# The attribute an artist's hover texts live on: plain data on the artist itself, so a figure
# carries its own tooltips (no registry, no global state) and any writer may use them.
_TOOLTIPS = "_cfanalytics_tooltips"

#: Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
KIND_COLOURS = {"mirror": OKABE_ITO[1], "machine": OKABE_ITO[0]}
# Okabe-Ito without its yellow (faint on white), vermillion next to orange moved apart.
TRAJECTORY_COLOURS = tuple(OKABE_ITO[i] for i in (0, 1, 2, 4, 3, 5, 7))
#: A colour per fleet state (:data:`cfanalytics.analysis.FLEET_STATES`), the same in every plot.
STATE_COLOURS = {
    "completed": OKABE_ITO[2],
    "failed": OKABE_ITO[3],
    "other": OKABE_ITO[4],
    "running": OKABE_ITO[0],
    "queued": OKABE_ITO[1],
    "pending": "#F6EFA6",  # Okabe-Ito's yellow, paler: listed but never queued is background
    "waiting": "#D9D9D9",
}
FAILED_MARK = OKABE_ITO[7]  # drawn on vermillion bars: black stays visible


def axes_or_current(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # only here: pyplot picks a backend, slow to import

    return plt.gca()


def label_text(value: object) -> str:
    """API text as a label: matplotlib would read ``$...$`` in a name as a formula."""
    return str(value).replace("$", r"\$")


def hours_formatter() -> mdates.DateFormatter:
    return mdates.DateFormatter("%H:%M", tz="UTC")  # type: ignore[no-untyped-call]


def utc_axis(ax: Axes) -> None:
    """Dates on x in UTC, whatever the local zone: hours and minutes, the day as offset."""
    locator = mdates.AutoDateLocator(tz="UTC")  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz="UTC")  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel("time (UTC)")


def utc_values(times: pd.Series) -> np.ndarray:
    """Tz-aware times as naive UTC ``datetime64``: what matplotlib reads as UTC."""
    naive: np.ndarray = times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
    return naive


def legend_above(ax: Axes, handles: list[Any]) -> None:
    """A one-row legend above the Axes on the right, beside a left-aligned title."""
    if handles:
        ax.legend(
            handles=handles,
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            ncol=len(handles),
            frameon=False,
            fontsize="small",
            handlelength=1.2,
            columnspacing=1.0,
            borderaxespad=0.2,
        )


def held_steps(times: np.ndarray) -> np.ndarray:
    """``times`` and one more median poll interval: the step where the last poll's counts show."""
    if len(times) < 2:
        return np.append(times, times[-1:] + np.timedelta64(1, "s"))
    return np.append(times, times[-1] + np.median(np.diff(times)))


def clock_time(when: Any) -> str:
    return f"{pd.Timestamp(when):%H:%M}"


def completion_marks(
    ax: Axes,
    times: np.ndarray,
    completed: pd.Series | None,
    total: float,
    label: Callable[[Any], str] = clock_time,
) -> None:
    """Dashed lines at 50 % and 90 % of ``total``; where ``completed`` reaches each, ``label``
    of the time."""
    done = np.zeros(len(times)) if completed is None else completed.to_numpy()
    box = {"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.75, "linewidth": 0}
    for share in (0.5, 0.9):
        level = share * total
        reached = np.flatnonzero(done >= level)
        ax.axhline(level, color="0.15", linestyle="--", linewidth=0.8)
        note = "" if len(reached) else " (not reached)"
        ax.annotate(
            f"{share:.0%} of jobs{note}",
            (0.005, level),
            va="bottom",
            color="0.15",
            xycoords=("axes fraction", "data"),
            fontsize="small",
            bbox=box,
        )
        if not len(reached):
            continue
        when = times[reached[0]]
        ax.plot([when], [level], marker="o", color="black", markersize=5)
        late = when - times[0] > (times[-1] - times[0]) / 2  # label left of the dot: inside
        ax.annotate(
            f"{share:.0%} completed {label(when)}",
            (when, level),
            xytext=(-5 if late else 5, 5),
            textcoords="offset points",
            ha="right" if late else "left",
            fontsize="small",
            fontweight="bold",
            bbox=box,
        )


def one_rollout(plot: _Plot) -> _Plot:
    """Refuse data of several rollouts: a plot draws one rollout, never a merge of two.

    The data (the first argument) is a table of :mod:`cfanalytics.analysis`, with its
    ``rollout`` column; the error names the rollouts and how to pick one.
    """

    @functools.wraps(plot)
    def draw(data: pd.DataFrame, /, *args: Any, **kwargs: Any) -> Axes:
        if "rollout" in data.columns:
            found = list(dict.fromkeys(data["rollout"].dropna()))
            if len(found) > 1:
                raise RolloutError(
                    f"{plot.__name__} draws one rollout; the data holds {len(found)} "
                    f"({', '.join(found)}): pass data[data['rollout'] == ID]"
                )
        return plot(data, *args, **kwargs)

    return cast(_Plot, draw)


def set_tooltips(artist: Artist, texts: Sequence[str]) -> Artist:
    """Give ``artist`` one hover text per mark it draws, in drawing order (one for a line or a
    bar, one per point of a scatter); returns it.

    Matplotlib has no tooltips: the report's SVG figures show these as each mark's ``<title>``.
    """
    setattr(artist, _TOOLTIPS, [str(text) for text in texts])
    return artist


def tooltips(artist: Artist) -> list[str] | None:
    """The hover texts :func:`set_tooltips` gave ``artist``, or None."""
    texts: list[str] | None = getattr(artist, _TOOLTIPS, None)
    return texts
