"""Across rollouts: a history store's rollouts, each figure as when analysed alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import cfanalytics as cf
from cfanalytics.analysis import (
    GROUP_METRICS,
    MACHINE_HISTORY_SCHEMA,
    ROLLOUTS_SCHEMA,
    History,
    failures,
    group_metrics,
    job_eta_metrics,
    job_summary,
    machine_history,
    rollout_metrics,
    standing,
    trend,
)
from cfanalytics.analysis._summary import install_seconds
from cfanalytics.recording import HistoryStore, record

from ..conftest import CASSETTES, SimRig
from .recorded import ROLLOUTS, cassette_events, rollout_of_cassette


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo and troubled recordings in one store: three rollouts of ASID 1."""
    path = tmp_path_factory.mktemp("history") / "store"
    HistoryStore(path).add(CASSETTES / "demo.yaml", CASSETTES / "troubled.yaml")
    return path


def _alone(param: tuple[str, int]) -> tuple[str, pd.DataFrame]:
    events = rollout_of_cassette(param)
    return cf.rollouts(events)[0], events


def test_rollouts_are_one_row_each_with_the_schema(store: Path) -> None:
    table = History(store).rollouts()
    assert list(table.columns) == list(ROLLOUTS_SCHEMA)
    assert dict(table.dtypes.astype(str)) == {
        c: str(pd.Series(dtype=d).dtype) for c, d in ROLLOUTS_SCHEMA.items()
    }  # type: ignore[call-overload]
    assert sorted(table["rollout"]) == sorted(
        name for cassette in ("demo", "troubled") for name in cf.rollouts(cassette_events(cassette))
    )
    assert (table["asid"] == 1).all() and table["first_seen"].is_monotonic_increasing


@pytest.mark.parametrize("param", ROLLOUTS, ids=[f"{n}-{i}" for n, i in ROLLOUTS])
def test_each_figure_is_the_one_the_rollout_gets_alone(store: Path, param: tuple[str, int]) -> None:
    """rollouts() and summary() of the store equal the rollout's own analysis."""
    name, events = _alone(param)
    history = History(store)
    row = history.rollouts().set_index("rollout").loc[name]
    alone = rollout_metrics(events)
    summary = job_summary(events)
    for metric in ("completed", "failed", "unfinished", "time_to_50_s", "time_to_90_s"):
        assert _same(row[metric], alone[metric]), metric
    for metric in ("eta_mae_s", "eta_bias_s"):
        assert _same(row[metric], alone[metric]), metric
    assert row["jobs"] == alone["n_jobs"] == len(summary)
    installs = install_seconds(summary).dropna()
    assert _same(row["install_p50_s"], installs.quantile(0.5) if len(installs) else pd.NA)
    pd.testing.assert_frame_equal(history.summary(rollout=name), summary)


def test_summary_of_everything_is_each_rollout_in_order(store: Path) -> None:
    history = History(store)
    whole = history.summary()
    parts = [history.summary(rollout=name) for name in history.catalog()["rollout"]]
    pd.testing.assert_frame_equal(whole, pd.concat(parts, ignore_index=True))


def test_group_metrics_by_location_add_up_to_the_rollout() -> None:
    events = rollout_of_cassette(("demo", 0))
    summary = job_summary(events)
    per_job = job_eta_metrics(events, summary=summary)
    whole = group_metrics(summary, per_job)
    by_location = group_metrics(summary, per_job, by="location")
    assert list(whole.columns) == list(GROUP_METRICS) and len(whole) == 1
    assert list(by_location.columns) == ["location", *GROUP_METRICS]
    for count in ("jobs", "completed", "failed", "unfinished"):
        assert by_location[count].sum() == whole[count].iloc[0]
    assert set(by_location["location"]) == set(summary["location"].dropna())
    # A location's time to 50 % counts from the rollout's start, so none is before 0.
    assert (by_location["time_to_50_s"].dropna() > 0).all()


def test_worst_location_has_the_slowest_median_install(store: Path) -> None:
    history = History(store)
    for row in history.rollouts().itertuples():
        events = history.events(rollout=row.rollout)
        summary = job_summary(events)
        by_location = group_metrics(
            summary, job_eta_metrics(events, summary=summary), by="location"
        )
        if by_location["install_p50_s"].notna().any():
            slowest = by_location.loc[by_location["install_p50_s"].idxmax(), "location"]
            assert row.worst_location == slowest
        else:
            assert pd.isna(row.worst_location)


def test_trend_per_rollout_and_per_location(store: Path) -> None:
    history = History(store)
    per_rollout = trend(history, "failure_rate")
    assert list(per_rollout.columns) == [
        "rollout",
        "asid",
        "imageversionid",
        "first_seen",
        "failure_rate",
    ]
    pd.testing.assert_series_equal(per_rollout["failure_rate"], history.rollouts()["failure_rate"])
    per_location = trend(store, "install_p50_s", by="location")  # a path works too
    assert list(per_location.columns)[-2:] == ["location", "install_p50_s"]
    assert set(per_location["rollout"]) == set(per_rollout["rollout"])
    with pytest.raises(ValueError, match="no metric 'speed'; choose from jobs"):
        trend(history, "speed")


def test_machine_history_counts_failed_rollouts(store: Path) -> None:
    """Each machine's failed rollouts are those where failures() lists its job."""
    table = machine_history(store, k=2, n=3)
    assert list(table.columns) == list(MACHINE_HISTORY_SCHEMA)
    expected: dict[str, set[str]] = {}
    for param in ROLLOUTS:
        name, events = _alone(param)
        for row in failures(events).itertuples():
            unit = row.mirror if row.kind == "mirror" else row.machine
            expected.setdefault(unit, set()).add(name)
    found = table.loc[table["failed"] > 0].set_index("machine")["failed"].to_dict()
    assert found == {unit: len(names) for unit, names in expected.items()}
    assert (table["repeat_offender"] == (table["failed_recent"] >= 2)).all()
    assert table["repeat_offender"].any()  # a Frankfurt drive failed in both recordings
    first = table.iloc[0]
    assert first["repeat_offender"] and "failing_drive" in first["failure_classes"]
    with pytest.raises(ValueError, match="1 <= k <= n"):
        machine_history(store, k=4, n=3)


def test_catalog_filters(store: Path) -> None:
    history = History(store)
    assert len(history.catalog(asid=1)) == 3 and history.catalog(asid=2).empty
    assert history.catalog(since="2026-11-03").empty
    assert len(history.catalog(until="2026-11-03")) == 3
    assert history.rollouts(asid=7).empty and trend(history, "jobs", by="kind", asid=7).empty
    assert machine_history(history, asid=7).empty


def test_history_sees_what_is_added_later(tmp_path: Path, sim_rig: Callable[..., SimRig]) -> None:
    """Results are kept per rollout only while the store is unchanged."""
    path = tmp_path / "store"
    HistoryStore(path).add(CASSETTES / "demo.yaml")
    history = cf.open_history(path)
    assert len(history.rollouts()) == 1 and len(history.catalog(asid=1)) == 1
    rig = sim_rig(seed=9)
    run = record(
        cf.RunPlan(asid=1, interval=15.0, max_polls=5),
        cassette=tmp_path / "run.yaml",
        history=path,
        **rig.record_options(),
    )
    assert run.history is not None and run.history.responses_added == run.events["seq"].nunique()
    assert len(history.rollouts()) == 2 and len(history.catalog(asid=1)) == 2
    assert repr(history) == f"History({str(path)!r})"


def test_a_run_that_fails_is_still_added(tmp_path: Path, sim_rig: Callable[..., SimRig]) -> None:
    """A run stopped by an error keeps what it recorded in the store too."""
    path = tmp_path / "store"
    rig = sim_rig(seed=2)
    calls = 0

    async def sleep(seconds: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        await rig.sleep(seconds)

    with pytest.raises(KeyboardInterrupt):
        record(
            cf.RunPlan(asid=1, interval=15.0, max_polls=10),
            cassette=tmp_path / "run.yaml",
            history=path,
            **rig.record_options(sleep=sleep),
        )
    stored = HistoryStore(path).events()
    assert stored["seq"].nunique() >= 3


def _same(a: object, b: object) -> bool:
    if pd.isna(a) or pd.isna(b):  # type: ignore[arg-type]
        return bool(pd.isna(a) and pd.isna(b))  # type: ignore[arg-type]
    return bool(abs(float(a) - float(b)) < 1e-6)  # type: ignore[arg-type]


def test_the_order_of_rollouts_is_one_rule(store: Path) -> None:
    """Rollouts first seen at the same time (all three here) are ordered by id, the same in
    the catalog, in machine_history and in standing: the last one's machines are the store's."""
    history = History(store)
    names = history.catalog()["rollout"].tolist()
    assert names == sorted(names)  # one first_seen: ties by id
    last = names[-1]
    placed = standing(history.events(rollout=last), history)
    assert placed.previous == tuple(names[:-1])
    pd.testing.assert_frame_equal(placed.machines, machine_history(history))


def test_standing_keeps_every_earlier_rollout_for_its_machines(store: Path) -> None:
    """``previous`` narrows the rollouts compared, never who is a repeat offender."""
    history = History(store)
    last = history.catalog()["rollout"].iloc[-1]
    events = history.events(rollout=last)
    one, every = standing(events, history, previous=1), standing(events, history, previous=None)
    assert len(one.previous) == 1 and len(every.previous) == 2
    pd.testing.assert_frame_equal(one.machines, every.machines)
    with pytest.raises(ValueError, match="previous must be at least 1"):
        standing(events, history, previous=0)


def test_rank_judges_a_bias_by_its_size(store: Path) -> None:
    history = History(store)
    last = history.catalog()["rollout"].iloc[-1]
    placed = standing(history.events(rollout=last), history)
    bias = placed.rollouts["eta_bias_s"].astype(float)
    rank, of = placed.rank("eta_bias_s")
    sizes = bias.abs().dropna()
    assert of == len(sizes) and rank == int((sizes > abs(bias.iloc[-1])).sum()) + 1


def test_group_metrics_refuses_several_rollouts_and_unknown_groups() -> None:
    both = pd.concat([cassette_events("demo"), cassette_events("troubled")], ignore_index=True)
    summary = job_summary(both)
    per_job = job_eta_metrics(both, summary=summary)
    with pytest.raises(cf.RolloutError, match=r"one rollout: 3 rollouts found \(1/845605"):
        group_metrics(summary, per_job)
    one = job_summary(cassette_events("demo"))
    with pytest.raises(ValueError, match="cannot group by 'colour'"):
        group_metrics(one, job_eta_metrics(cassette_events("demo"), summary=one), by="colour")
    with pytest.raises(ValueError, match="cannot take a trend by 'rollout'"):
        trend(History.__new__(History), "jobs", by="rollout")


def test_the_slowest_location_is_a_known_one() -> None:
    """Jobs without a location are a group of their own, never the worst location."""
    events = rollout_of_cassette(("demo", 0))
    summary = job_summary(events)
    slow = summary["location"] == summary["location"].iloc[0]
    summary = summary.assign(location=summary["location"].mask(slow))  # its jobs: no location
    per_job = job_eta_metrics(events, summary=job_summary(events))
    by_location = group_metrics(summary, per_job, by="location")
    assert by_location["location"].isna().iloc[-1]  # NA last
    from cfanalytics.analysis._history import _slowest

    assert pd.notna(_slowest(by_location))


def test_dates_are_checked(store: Path) -> None:
    history = History(store)
    with pytest.raises(ValueError, match="since: not a date: ''"):
        history.rollouts(since="")
    with pytest.raises(ValueError, match="must come before until"):
        history.catalog(since="2026-12-01", until="2026-11-01")
