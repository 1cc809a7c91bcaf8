"""The plot contract: every plot function draws on the Axes it is given and returns it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # tests only: no display here

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from cfanalytics import eta_errors, events_from_cassette, job_summary, plots

DEMO = Path(__file__).parent.parent / "cassettes" / "demo.yaml"


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    """No figure outlives its test."""
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    """The demo cassette's ETA errors and job summary."""
    events = events_from_cassette(DEMO)
    return {"errors": eta_errors(events), "summary": job_summary(events)}


PLOTS: list[tuple[Callable[..., Any], str]] = [
    (plots.plot_eta_vs_actual, "errors"),
    (plots.plot_error_by_decile, "errors"),
    (plots.plot_eta_trajectories, "errors"),
    (plots.plot_burnup, "summary"),
]


def test_every_plot_function_is_listed() -> None:
    """The contract below covers every public plot function."""
    listed = {fn.__name__ for fn, _ in PLOTS}
    assert listed == {name for name in plots.__all__ if name.startswith("plot_")}


@pytest.mark.parametrize(("plot", "source"), PLOTS, ids=[fn.__name__ for fn, _ in PLOTS])
def test_plot_contract(
    plot: Callable[..., Any], source: str, data: dict[str, pd.DataFrame]
) -> None:
    """Given an Axes it draws there, titles and labels it, and returns it; else the current one."""
    fig, ax = plt.subplots()
    assert plot(data[source], ax=ax) is ax
    assert ax.has_data() and ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert len(fig.axes) == 1  # drew nothing elsewhere
    other = plt.figure().add_subplot()
    assert plot(data[source]) is other  # ax=None: the current Axes


def test_eta_vs_actual_has_the_identity_line(data: dict[str, pd.DataFrame]) -> None:
    """The y = x reference is drawn across the data."""
    ax = plots.plot_eta_vs_actual(data["errors"])
    labels = [line.get_label() for line in ax.get_lines()]
    assert "ETA exact (y = x)" in labels


def test_burnup_counts_every_completion(data: dict[str, pd.DataFrame]) -> None:
    """The burn-up ends at the number of completed jobs."""
    ax = plots.plot_burnup(data["summary"])
    line = ax.get_lines()[0]
    assert max(line.get_ydata()) == data["summary"]["completed_at"].notna().sum()
