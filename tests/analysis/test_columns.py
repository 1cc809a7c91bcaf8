"""Every table an analysis returns documents its columns (name, dtype, meaning) in one place,
its docstring shows them, and what it returns on the shipped cassettes is what it documents."""

from __future__ import annotations

import inspect
import pickle
import pydoc
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

import cfanalytics.analysis as analysis
from cfanalytics.analysis import (
    ETA_ERROR_SCHEMA,
    GROUP_METRICS,
    MACHINE_HISTORY_SCHEMA,
    ROLLOUTS_SCHEMA,
    UNIT_SCHEMA,
    FleetTimeline,
    History,
    api_error_stretches,
    api_errors,
    backtest,
    compare,
    completion_curve,
    describe,
    error_by,
    eta_errors,
    failure_rates,
    failures,
    fleet_at,
    fleet_states,
    group_metrics,
    job_eta_metrics,
    job_summary,
    machine_history,
    metrics_by_rollout,
    other_endings,
    polling_gaps,
    progress_curves,
    queue_refusals,
    refusal_reasons,
    rollout_metrics,
    select_jobs,
    standing,
    state_intervals,
    stragglers,
    trend,
)
from cfanalytics.events import FLOAT, INT, LABEL, SCHEMA, TEXT, Schema, is_label, rollouts
from cfanalytics.recording import HistoryStore

from ..conftest import CASSETTES, REPO
from .recorded import cassette_events, rollout_of_cassette

_ERROR_KEYS = ["kind", "progress_decile"]


@dataclass(frozen=True)
class Tables:
    """A shipped cassette's events and the tables most analyses take, computed once; ``one``
    is the events of its first rollout, ``history`` a store holding the cassette."""

    events: pd.DataFrame
    summary: pd.DataFrame
    errors: pd.DataFrame
    rollout: str
    one: pd.DataFrame
    history: History


@dataclass(frozen=True)
class Call:
    """What a function returned, the columns its arguments named (by placeholder, with their
    dtypes) and the documented columns its arguments leave out."""

    result: pd.DataFrame | pd.Series
    given: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    absent: tuple[str, ...] = ()


def _one_rollout_tables(t: Tables) -> tuple[pd.DataFrame, pd.DataFrame]:
    summary = job_summary(t.one)
    return summary, job_eta_metrics(t.one, summary=summary)


#: How each function returning a frame is called (a ``[variant]`` suffix: once more).
CALLS: dict[str, Callable[[Tables], Call]] = {
    "job_summary": lambda t: Call(job_summary(t.events)),
    "eta_errors": lambda t: Call(eta_errors(t.events, summary=t.summary)),
    "job_eta_metrics": lambda t: Call(job_eta_metrics(t.events, summary=t.summary)),
    "error_by": lambda t: Call(
        error_by(t.errors, _ERROR_KEYS), {"<by>": {k: t.errors[k].dtype for k in _ERROR_KEYS}}
    ),
    "fleet_states": lambda t: Call(fleet_states(t.events, summary=t.summary)),
    "state_intervals": lambda t: Call(state_intervals(t.events, summary=t.summary)),
    "progress_curves": lambda t: Call(progress_curves(t.events, summary=t.summary)),
    "stragglers": lambda t: Call(stragglers(t.events, summary=t.summary)),
    "completion_curve": lambda t: Call(completion_curve(t.summary), absent=("elapsed_s",)),
    "completion_curve[job]": lambda t: Call(
        completion_curve(t.summary, clock="job"), absent=("time",)
    ),
    "failures": lambda t: Call(failures(t.events, summary=t.summary)),
    "failure_rates": lambda t: Call(
        failure_rates(t.summary, "location"), {"<by>": {"location": t.summary["location"].dtype}}
    ),
    "api_errors": lambda t: Call(api_errors(t.events)),
    "api_error_stretches": lambda t: Call(api_error_stretches(api_errors(t.events))),
    "polling_gaps": lambda t: Call(polling_gaps(t.events)),
    "other_endings": lambda t: Call(other_endings(t.summary)),
    "queue_refusals": lambda t: Call(queue_refusals(t.events, summary=t.summary)),
    "refusal_reasons": lambda t: Call(refusal_reasons(queue_refusals(t.events))),
    "rollout_metrics": lambda t: Call(rollout_metrics(t.events, rollout=t.rollout)),
    "metrics_by_rollout": lambda t: Call(metrics_by_rollout(t.events)),
    "compare": lambda t: Call(
        compare(t.one, t.one, by="kind", n_boot=20), {"<by>": {"kind": TEXT}}
    ),
    "group_metrics": lambda t: Call(
        group_metrics(*_one_rollout_tables(t), by="location"), {"<by>": {"location": TEXT}}
    ),
    "group_metrics[all]": lambda t: Call(group_metrics(*_one_rollout_tables(t)), {"<by>": {}}),
    "fleet_at": lambda t: Call(fleet_at(t.events, rollout=t.rollout)),
    "Backtest.scores": lambda t: Call(
        backtest(t.one, every=25).scores("kind"), {"<by>": {"kind": t.summary["kind"].dtype}}
    ),
    "FleetTimeline.at": lambda t: Call(FleetTimeline(t.events, rollout=t.rollout).at()),
    "select_jobs": lambda t: Call(select_jobs(t.events, kind="machine")),
    "describe": lambda t: Call(describe(eta_errors)),
    "History.catalog": lambda t: Call(t.history.catalog()),
    "History.events": lambda t: Call(t.history.events()),
    "History.summary": lambda t: Call(t.history.summary()),
    "History.rollouts": lambda t: Call(t.history.rollouts()),
    "machine_history": lambda t: Call(machine_history(t.history)),
    "trend": lambda t: Call(
        trend(t.history, "eta_mae_s", by="location"),
        {"<by>": {"location": TEXT}, "<metric>": {"eta_mae_s": FLOAT}},
    ),
    "Standing.trend": lambda t: Call(
        standing(t.one, t.history).trend("failed"), {"<by>": {}, "<metric>": {"failed": INT}}
    ),
    "Standing.offenders": lambda t: Call(standing(t.one, t.history).offenders()),
}


def _public_functions() -> dict[str, Callable[..., Any]]:
    """Every public function of cfanalytics.analysis, and every public method of its classes,
    by name (``Class.method``)."""
    found: dict[str, Callable[..., Any]] = {}
    for name in analysis.__all__:
        value = getattr(analysis, name)
        if inspect.isclass(value):
            found |= {
                f"{name}.{member}": function
                for member, function in vars(value).items()
                if not member.startswith("_") and inspect.isfunction(function)
            }
        elif inspect.isfunction(value):
            found[name] = value
    return found


def _returning_tables() -> dict[str, Callable[..., Any]]:
    """The public functions that return a frame, or say they return a table."""
    return {
        name: function
        for name, function in _public_functions().items()
        if "DataFrame" in str(inspect.signature(function).return_annotation)
        or hasattr(function, "schema")
    }


def _function(call: str) -> Callable[..., Any]:
    name = call.split("[")[0]
    return _returning_tables()[name]


@pytest.fixture(scope="module", params=["demo", "troubled"])
def tables(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Tables:
    """A shipped cassette, its tables, and a history store of it alone."""
    name = request.param
    events = cassette_events(name)
    store = tmp_path_factory.mktemp(f"history-{name}") / "store"
    HistoryStore(store).add(CASSETTES / f"{name}.yaml")
    summary = job_summary(events)
    return Tables(
        events=events,
        summary=summary,
        errors=eta_errors(events, summary=summary),
        rollout=rollouts(events)[0],
        one=rollout_of_cassette((name, 0)),
        history=History(store),
    )


def _documented(schema: Schema, call: Call) -> dict[str, object]:
    """The columns ``call`` should have, in order, with their dtypes: the schema's, a
    placeholder replaced by the columns its argument named."""
    expected: dict[str, object] = {}
    for name, dtype in schema.items():
        if name.startswith("<"):
            expected |= call.given[name]
        elif name not in call.absent:
            expected[name] = dtype
    return expected


def _same_dtype(actual: object, documented: object) -> bool:
    """Whether a column of dtype ``actual`` is of the ``documented`` dtype; a fixed vocabulary
    with the same categories in the same order, a label by :func:`is_label`."""
    if documented is LABEL:
        return is_label(actual)
    if isinstance(documented, pd.CategoricalDtype):
        return (
            isinstance(actual, pd.CategoricalDtype)
            and list(actual.categories) == list(documented.categories)
            and actual.ordered == documented.ordered
        )
    return bool(actual == pd.api.types.pandas_dtype(documented))  # type: ignore[arg-type]


def test_every_function_returning_a_frame_documents_its_columns() -> None:
    """Each public function or method returning a frame has a schema, and each is called
    below: a new one without documented columns, or left uncalled, fails here."""
    found = _returning_tables()
    assert {name.split("[")[0] for name in CALLS} == set(found)
    undocumented = [name for name, f in found.items() if not isinstance(f.schema, Schema)]
    assert not undocumented


@pytest.mark.parametrize("call", sorted(CALLS))
def test_returned_columns_are_the_documented_ones(tables: Tables, call: str) -> None:
    """On both shipped cassettes, each function returns the documented columns, in order,
    with the documented dtypes; every column has a meaning."""
    schema: Schema = _function(call).schema
    made = CALLS[call](tables)
    expected = _documented(schema, made)
    if isinstance(made.result, pd.Series):  # rollout_metrics: the columns are the index
        assert list(made.result.index) == list(expected)
    else:
        assert list(made.result.columns) == list(expected)
        wrong = {
            name: str(made.result[name].dtype)
            for name, dtype in expected.items()
            if not _same_dtype(made.result[name].dtype, dtype)
        }
        assert not wrong
    assert all(meaning.strip() for meaning in schema.meanings.values())


def _table_in(doc: str) -> list[tuple[str, ...]]:
    """The rows (name, dtype, meaning) of the columns table in a docstring, wrapped lines
    joined again."""
    lines = doc.split("Columns\n-------\n", 1)[1].splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("=")]
    spans = [m.span() for m in re.finditer("=+", lines[rules[0]])]
    rows: list[list[str]] = []
    for line in lines[rules[1] + 1 : rules[2]]:
        ends = [end for _, end in spans[:-1]] + [None]  # the last column runs on
        cells = [line[start:end].strip() for (start, _), end in zip(spans, ends, strict=True)]
        if cells[0]:
            rows.append(cells)
        else:  # a continuation of the row above
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
    return [tuple(row) for row in rows]


@pytest.mark.parametrize("name", sorted(_returning_tables()))
def test_help_shows_every_column_with_its_dtype_and_meaning(name: str) -> None:
    """The docstring ends with the columns table, read back as what describe() gives, and
    help() shows it."""
    function = _returning_tables()[name]
    doc = inspect.getdoc(function) or ""
    assert _table_in(doc) == list(describe(function).itertuples(index=False, name=None))
    assert "Columns\n    -------" in pydoc.render_doc(function, renderer=pydoc.plaintext)


def test_describe_gives_name_dtype_and_meaning() -> None:
    """describe() of a function is that of its schema; dtypes read as people write them."""
    table = describe(eta_errors)
    pd.testing.assert_frame_equal(table, describe(ETA_ERROR_SCHEMA))
    assert list(table.columns) == ["name", "dtype", "meaning"]
    assert list(table["name"]) == list(ETA_ERROR_SCHEMA)
    row = table.set_index("name").loc["error_s"]
    assert row["dtype"] == "Float64" and "later than predicted" in row["meaning"]
    events = describe(SCHEMA).set_index("name")["dtype"]
    assert events["observed_at"] == "datetime64[us, UTC]"
    assert events["state"].startswith("category (Created < Pending <")
    assert events["location"] == "category (text)"
    with pytest.raises(TypeError, match="neither a Schema"):
        describe(len)


def test_every_public_schema_is_declared_with_its_meanings() -> None:
    """Each table constant of analysis and events is a Schema: the dtype mapping it always
    was, every column with a meaning; a table per rollout says what ``rollout`` is."""
    names = [n for n in analysis.__all__ if n.endswith("_SCHEMA") or n == "GROUP_METRICS"]
    schemas = {name: getattr(analysis, name) for name in names} | {"events": SCHEMA}
    assert len(schemas) >= 19
    for name, schema in schemas.items():
        assert isinstance(schema, Schema), name
        assert list(schema.meanings) == list(schema), name
        assert all(meaning.strip() for meaning in schema.meanings.values()), name
    assert "image version" in ETA_ERROR_SCHEMA.meanings["rollout"]


def test_a_schema_is_a_read_only_mapping_of_dtypes() -> None:
    """As a mapping a Schema is ``{name: dtype}``, in order, equal to that dict, read-only
    and picklable; its meanings and entries go along; a column without one is refused."""
    schema = Schema({"jobid": (INT, "the job"), "error_s": (FLOAT, "T - E, s")})
    assert schema == {"jobid": INT, "error_s": FLOAT} and list(schema) == ["jobid", "error_s"]
    assert dict(schema.meanings) == {"jobid": "the job", "error_s": "T - E, s"}
    assert schema.entries("error_s") == {"error_s": (FLOAT, "T - E, s")}
    with pytest.raises(TypeError):
        schema["more"] = INT  # type: ignore[index]
    again = pickle.loads(pickle.dumps(schema))
    assert again == schema and again.meanings == schema.meanings
    with pytest.raises(ValueError, match="without a meaning: \\['x'\\]"):
        Schema({"x": (INT, " ")})


def test_tables_kept_as_attributes_are_their_schemas(tables: Tables) -> None:
    """A standing's rollouts and machines, and a digest's figures and units, are documented
    too: each has its schema's columns and dtypes."""
    placed = standing(tables.one, tables.history)
    digested = tables.history.digest(tables.rollout)
    for frame, schema in (
        (placed.rollouts, ROLLOUTS_SCHEMA),
        (placed.machines, MACHINE_HISTORY_SCHEMA),
        (digested.metrics, GROUP_METRICS),
        (digested.units, UNIT_SCHEMA),
    ):
        assert list(frame.columns) == list(schema)
        assert all(_same_dtype(frame[name].dtype, dtype) for name, dtype in schema.items())


def test_readme_example_is_what_help_shows() -> None:
    """The README's example of a columns table is failure_rates' docstring as it is."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("### What each column means", 1)[1].split("\n## ", 1)[0]
    shown = section.split("Columns\n-------\n", 1)[1].split("```", 1)[0]
    documented = (failure_rates.__doc__ or "").split("Columns\n-------\n", 1)[1]
    assert shown.strip() == documented.strip()
