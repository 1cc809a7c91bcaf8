"""Shared pieces of every plot: the palette, time axes, legends, completion marks, hover texts.

Times are shown in matplotlib's own zone setting, ``rcParams["timezone"]`` (its default:
UTC), read when a plot is drawn: ``with matplotlib.rc_context({"timezone": "Europe/Berlin"})``
draws in Berlin time. The data stays UTC; only ticks, labels and texts convert.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, cast

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.transforms import ScaledTranslation

from ..exceptions import RolloutError

__all__ = [
    "FAILED_MARK",
    "KIND_COLOURS",
    "OKABE_ITO",
    "STATE_COLOURS",
    "axes_or_current",
    "clock_texts",
    "clock_time",
    "completion_marks",
    "date_numbers",
    "held_steps",
    "hours_formatter",
    "job_names",
    "label_text",
    "legend_above",
    "one_rollout",
    "set_tooltips",
    "time_axis",
    "tooltips",
    "utc_values",
    "zone",
]

_Plot = TypeVar("_Plot", bound=Callable[..., Axes])
# The attribute an artist's hover texts live on: plain data on the artist itself, so a figure
# carries its own tooltips (no registry, no global state) and any writer may use them.
_TOOLTIPS = "_cfanalytics_tooltips"

#: Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
KIND_COLOURS = {"mirror": OKABE_ITO[1], "machine": OKABE_ITO[0]}
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


def zone() -> str:
    """The zone times are shown in: matplotlib's ``rcParams["timezone"]``, read now."""
    return str(matplotlib.rcParams["timezone"])


def hours_formatter() -> mdates.DateFormatter:
    return mdates.DateFormatter("%H:%M", tz=zone())  # type: ignore[no-untyped-call]


def time_axis(ax: Axes, *, axis: Literal["x", "y"] = "x", label: str = "time") -> None:
    """Dates on ``axis`` in :func:`zone`: hours and minutes, the day as offset; the label
    names the zone ("time (UTC)"). The zone is fixed now, not when the figure is saved."""
    tz = zone()
    locator = mdates.AutoDateLocator(tz=tz)  # type: ignore[no-untyped-call]
    formatter = mdates.ConciseDateFormatter(locator, tz=tz)  # type: ignore[no-untyped-call]
    chosen = ax.xaxis if axis == "x" else ax.yaxis
    chosen.set_major_locator(locator)
    chosen.set_major_formatter(formatter)
    chosen.set_label_text(f"{label} ({tz})")


def utc_values(times: pd.Series) -> np.ndarray:
    """Tz-aware times as naive UTC ``datetime64``: what matplotlib reads as UTC."""
    naive: np.ndarray = times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
    return naive


def date_numbers(times: pd.Series) -> np.ndarray:
    """Tz-aware times as matplotlib date numbers (days since its epoch, UTC)."""
    days: np.ndarray = mdates.date2num(utc_values(times))  # type: ignore[no-untyped-call]
    return days


def legend_above(ax: Axes, handles: list[Any], *, above: float = 0.0) -> None:
    """A one-row legend above the Axes on the right, beside a left-aligned title; ``above``
    points higher, to clear tick labels along the top."""
    if handles:
        lift = ScaledTranslation(0, above / 72, ax.figure.dpi_scale_trans)
        ax.legend(
            handles=handles,
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            bbox_transform=ax.transAxes + lift,
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
    """A time (naive values are UTC, as matplotlib reads them) as hours and minutes in
    :func:`zone`."""
    moment = pd.Timestamp(when)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment
    return f"{moment.tz_convert(zone()):%H:%M}"


def clock_texts(times: pd.Series) -> pd.Series:
    """Tz-aware times as ``HH:MM:SS`` in :func:`zone`, for hover texts; NaT as "?"."""
    return times.dt.tz_convert(zone()).dt.strftime("%H:%M:%S").fillna("?")


def job_names(jobs: pd.DataFrame) -> pd.Series:
    """Who each row's job is, for hover texts: ``job 1234 · machine 31017 (Frankfurt)``.

    A mirror job names its mirror; missing columns (a frame without ``machine``) and
    missing values are left out.
    """
    kind = _text(jobs, "kind", "job")
    name = _text(jobs, "machine", "").where(kind != "mirror", _text(jobs, "mirror", ""))
    where = _text(jobs, "location", "").map(lambda place: f" ({place})" if place else "")
    who = (kind + " " + name).str.strip() + where
    return "job " + _text(jobs, "jobid", "?") + " · " + who


def _text(frame: pd.DataFrame, column: str, missing: str) -> pd.Series:
    """``frame[column]`` as text, ``missing`` where absent (the whole column, or a value)."""
    if column not in frame.columns:
        return pd.Series(missing, index=frame.index, dtype=object)
    return frame[column].astype(object).where(frame[column].notna(), missing).astype(str)


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
