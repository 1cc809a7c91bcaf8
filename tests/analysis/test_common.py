"""The shared rules and conventions of the analysis package: signatures, state ids, conform."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cfanalytics import analysis, events_from_cassette
from cfanalytics.analysis import _common as common
from cfanalytics.events import INT, STATES, TIME, category

CASSETTES = Path(__file__).parents[2] / "cassettes"


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    """The demo cassette's events."""
    return events_from_cassette(CASSETTES / "demo.yaml")


def public_functions() -> list[Callable[..., Any]]:
    """Every function and class the analysis package exports, but the engines: they say
    where to run, and analyse nothing (every setting of theirs is keyword-only)."""
    named = (getattr(analysis, name) for name in analysis.__all__)
    engines = (analysis.Embedded, analysis.Dask, analysis.Engine)
    return [thing for thing in named if callable(thing) and thing not in engines]


@pytest.mark.parametrize("engine", [analysis.Embedded, analysis.Dask])
def test_every_setting_of_an_engine_is_keyword_only(engine: type) -> None:
    parameters = list(inspect.signature(engine).parameters.values())
    assert parameters and all(p.kind is p.KEYWORD_ONLY for p in parameters)


@pytest.mark.parametrize("function", public_functions(), ids=lambda f: f.__name__)
def test_every_optional_input_is_keyword_only(function: Callable[..., Any]) -> None:
    """What has a default is keyword-only; what comes first is what is analysed."""
    parameters = list(inspect.signature(function).parameters.values())
    optional = [p for p in parameters if p.default is not p.empty]
    assert all(p.kind is p.KEYWORD_ONLY for p in optional), parameters
    assert parameters[0].default is parameters[0].empty


def positional_cases(events: pd.DataFrame) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
    """The functions whose optional inputs were positional, with those inputs."""
    summary = analysis.job_summary(events)
    errors = analysis.eta_errors(events, summary=summary)
    when = analysis.FleetTimeline(events).times[3]
    return [
        (analysis.eta_errors, (summary,)),
        (analysis.job_eta_metrics, (errors, summary)),
        (analysis.job_eta_metrics, (errors,)),
        (analysis.fleet_states, (summary.iloc[::2],)),
        (analysis.state_intervals, (summary,)),
        (analysis.progress_curves, (summary,)),
        (analysis.failures, (summary,)),
        (analysis.fleet_at, (when,)),
    ]


def test_positional_use_warns_and_gives_the_same_result(demo: pd.DataFrame) -> None:
    """For one release the old positional calls still work, with a FutureWarning naming the
    keywords to use; the result is the keyword call's."""
    for function, extra in positional_cases(demo):
        keywords = list(inspect.signature(function).parameters)[1 : 1 + len(extra)]
        expected = function(demo, **dict(zip(keywords, extra, strict=True)))
        named = ", ".join(f"{keyword}=" for keyword in keywords)
        with pytest.warns(FutureWarning, match=f"{function.__name__}\\(\\): pass {named} by"):
            got = function(demo, *extra)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_keyword_use_does_not_warn(demo: pd.DataFrame, recwarn: pytest.WarningsRecorder) -> None:
    """Only positional use of an optional input warns."""
    analysis.eta_errors(demo, summary=analysis.job_summary(demo))
    analysis.fleet_at(demo, when=None, grace_s=0)
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]


def test_positional_misuse_is_still_a_type_error(demo: pd.DataFrame) -> None:
    """Too many positional inputs, or one given twice, fail as Python would fail them."""
    summary = analysis.job_summary(demo)
    with pytest.raises(TypeError, match="at most 1"):
        analysis.eta_errors(demo, summary, summary)
    with pytest.raises(TypeError, match="multiple values"):
        analysis.fleet_states(demo, summary, summary=summary)
    with pytest.raises(TypeError):
        analysis.rollout_metrics(demo, summary)  # type: ignore[misc]


def test_deprecated_positional_names_keyword_only_parameters() -> None:
    """The decorator refuses names that are not the first keyword-only parameters."""

    def f(events: object, *, a: int = 0, b: int = 0) -> None:
        del events, a, b

    with pytest.raises(TypeError):
        common.deprecated_positional("b")(f)


def test_state_ids_are_named_as_the_events_schema_names_them() -> None:
    """``CREATED`` is 1, ..., ``SQUASHED`` 7: the position in STATES, plus 1."""
    for number, name in enumerate(STATES, start=1):
        assert getattr(common, name.upper()) == number


def test_fleet_state_maps_use_the_fleet_vocabulary() -> None:
    """Every state id 1..7 has a fleet state; outcomes map to ended states only."""
    assert set(analysis.FLEET_STATE_BY_ID) == set(range(1, len(STATES) + 1))
    assert set(analysis.FLEET_STATE_BY_ID.values()) <= set(analysis.FLEET_STATES)
    ended = {"completed", "failed", "other"}
    assert set(analysis.FLEET_STATE_BY_OUTCOME.values()) <= ended
    assert set(analysis.FLEET_STATE_BY_OUTCOME) <= set(analysis.OUTCOMES) - {"unfinished"}


def test_conform_applies_a_schema() -> None:
    """Columns in schema order and dtypes, extra columns dropped, a RangeIndex; naive times
    are UTC; rows sorted stably by ``sort_by``."""
    schema = {"jobid": INT, "at": TIME, "state": category(("a", "b"))}
    columns = {
        "state": pd.Series(["b", "a", "b"], index=[7, 8, 9]),
        "extra": [1, 2, 3],
        "at": np.array(["2024-05-01T12:00", "NaT", "2024-05-01T11:00"], dtype="M8[us]"),
        "jobid": np.array([2, 1, 2]),
    }
    frame = common.conform(columns, schema, sort_by=["jobid"])
    assert list(frame.columns) == list(schema) and dict(frame.dtypes) == schema
    assert isinstance(frame.index, pd.RangeIndex)
    assert frame["jobid"].tolist() == [1, 2, 2]
    assert frame["state"].tolist() == ["a", "b", "b"]
    assert frame["at"].iloc[2] == pd.Timestamp("2024-05-01 11:00", tz="UTC")
    assert pd.isna(frame["at"].iloc[0])
