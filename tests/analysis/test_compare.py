"""compare: two rollouts metric by metric, with bootstrap intervals and a verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cfanalytics.analysis import (
    COMPARE_SCHEMA,
    compare,
    failure_rates,
    job_summary,
    rollout_metrics,
)
from cfanalytics.events import empty_events, rollouts
from cfanalytics.exceptions import RolloutError

from .recorded import ACTIVE, IDLE, cassette_events, rollout_of_cassette
from .test_summary import COMPLETE, Recording, at, job, running

N_BOOT = 200  # enough to tell the cases apart here, and fast
LOCATIONS = ("London", "Tokyo")


def finished(
    per_location: int, *, slow: str | None = None, late_s: float = 60.0, version: int = 7
) -> pd.DataFrame:
    """A finished rollout: ``per_location`` machine jobs in each of :data:`LOCATIONS`, all
    started at minute 0, each seen Running once with an ETA ``late_s`` (+0, 10 or 20 s)
    before its nominal completion (10 to 19 min), then seen Complete exactly. In location
    ``slow`` every job completes after 1.5 times its nominal duration (same ETAs)."""
    rec, listed, done = Recording(), [], []
    for i in range(per_location * len(LOCATIONS)):
        location = LOCATIONS[i % len(LOCATIONS)]
        minutes = 10 + (i * 7) % 10
        eta = at(minutes) - pd.Timedelta(seconds=late_s + 10 * (i % 3))
        where = {"location": location, "target_imageversionid": version}
        listed.append(running(100 + i, jobstart=at(0), jobeta=eta, **where))
        factor = 1.5 if location == slow else 1.0
        done.append(job(100 + i, COMPLETE, jobupdated=at(minutes * factor), **where))
    rec.poll(0.5, *listed)
    rec.poll(40, *done)
    return rec.events()


def row(table: pd.DataFrame, metric: str, **group: str) -> pd.Series:
    """The one row of ``metric`` in ``group`` (by-column values)."""
    keep = table["metric"] == metric
    for name, value in group.items():
        keep &= table[name] == value
    assert keep.sum() == 1, (metric, group)
    return table.loc[keep.to_numpy(dtype=bool)].iloc[0]


def test_a_rollout_against_itself_differs_by_nothing() -> None:
    """Compared with itself, every difference is 0, every interval holds 0 and every verdict
    that can be given is "same"."""
    demo = cassette_events("demo")
    table = compare(demo, demo, n_boot=N_BOOT)
    known = table["diff"].notna()
    assert known.all()
    assert (table["diff"] == 0).all()
    judged = table["verdict"].notna()
    assert judged.sum() >= 20
    assert (table.loc[judged, "verdict"] == "same").all()
    assert (table.loc[judged, "low"] <= 0).all() and (table.loc[judged, "high"] >= 0).all()


def test_a_slowed_location_is_worse_there_and_only_there() -> None:
    """Jobs in London taking 50 % longer make London's install times and ETA error worse;
    Tokyo is the same, and compared the other way round London is better."""
    base, slowed = finished(12), finished(12, slow="London")
    table = compare(base, slowed, by="location", n_boot=N_BOOT)
    for metric in ("install_p50_s", "install_p90_s", "eta_mae_s"):
        london = row(table, metric, location="London")
        assert london["verdict"] == "worse" and london["low"] > 0, metric
        tokyo = row(table, metric, location="Tokyo")
        assert tokyo["verdict"] == "same" and tokyo["diff"] == 0, metric
    assert row(table, "failure_rate", location="London")["verdict"] == "same"
    for metric in ("install_p90_s", "eta_mae_s"):  # half the jobs slower: overall too
        assert row(table, metric, location="all")["verdict"] == "worse", metric
    back = compare(slowed, base, by="location", n_boot=N_BOOT)
    assert row(back, "install_p50_s", location="London")["verdict"] == "better"


def test_the_seed_makes_the_table_reproducible() -> None:
    """The same seed gives the same table; another seed other intervals (and, near the edge,
    verdicts) but the same values. A row does not depend on the others: the overall rows are
    the same whatever ``by``."""
    a, b = cassette_events("demo"), rollout_of_cassette(ACTIVE[1])
    first = compare(a, b, seed=3, n_boot=N_BOOT)
    pd.testing.assert_frame_equal(first, compare(a, b, seed=3, n_boot=N_BOOT))
    other = compare(a, b, seed=4, n_boot=N_BOOT)
    drawn = ["low", "high", "verdict"]
    pd.testing.assert_frame_equal(first.drop(columns=drawn), other.drop(columns=drawn))
    assert not first["low"].equals(other["low"])
    overall = compare(a, b, by=(), seed=3, n_boot=N_BOOT)
    mine = first.loc[first["location"] == "all"].drop(columns=["location", "kind"])
    pd.testing.assert_frame_equal(overall, mine.reset_index(drop=True))


def test_an_interval_shrinks_with_more_jobs() -> None:
    """Eight times the jobs, drawn alike, give a narrower interval of the same difference."""

    def width(per_location: int) -> float:
        table = compare(finished(per_location), finished(per_location, slow="London"), by=())
        found = row(table, "install_p50_s")
        return float(found["high"] - found["low"])

    assert width(40) < 0.6 * width(5)


def test_values_are_the_rules_of_rollout_metrics_and_failure_rates() -> None:
    """Install times and ETA errors are rollout_metrics' own, failure rates failure_rates'
    own (failed of ended; troubled's active rollout fails more often than demo),
    and ``diff`` is ``b - a``."""
    a, b = cassette_events("demo"), rollout_of_cassette(ACTIVE[1])
    table = compare(a, b, by="location", n_boot=N_BOOT)
    for side, events in (("a", a), ("b", b)):
        headline = rollout_metrics(events)
        for metric, name in (("install_p50_s", "duration_p50_s"), ("eta_bias_s", "eta_bias_s")):
            assert row(table, metric, location="all")[side] == pytest.approx(headline[name])
        assert row(table, "eta_mae_s", location="all")[side] == pytest.approx(headline["eta_mae_s"])
        rates = failure_rates(job_summary(events), "location").set_index("location")
        for location, rate in rates.iterrows():
            found = row(table, "failure_rate", location=str(location))
            assert found[side] == pytest.approx(rate["failure_rate"])
            assert found[f"n_{side}"] == rate["n_ended"]
    overall = row(table, "failure_rate", location="all")
    assert (overall["a"], overall["b"]) == (pytest.approx(5 / 48), pytest.approx(7 / 48))
    assert (table["diff"] == table["b"] - table["a"]).all()


def test_too_few_jobs_give_na_not_errors() -> None:
    """A side with fewer than two jobs behind a value gets no interval and no verdict: the
    one-job mirror groups, the idle rollout (nothing ended, no install time), a location it
    lacks, and no events at all."""
    demo, idle = cassette_events("demo"), rollout_of_cassette(IDLE)
    alone = compare(demo, demo, n_boot=N_BOOT)
    ones = alone.loc[(alone["kind"] == "mirror") & (alone["metric"] != "jobs")]
    assert len(ones) and (ones["n_a"] == 1).all() and (ones["diff"] == 0).all()
    assert ones[["low", "high", "verdict"]].isna().all().all()
    table = compare(demo, idle, n_boot=N_BOOT)
    mirror = table.loc[(table["kind"] == "mirror") & (table["metric"] != "jobs")]
    assert len(mirror) and mirror[["low", "high", "verdict"]].isna().all().all()
    rate = row(table, "failure_rate", location="all", kind="all")
    assert pd.isna(rate["b"]) and rate["n_b"] == 0 and pd.isna(rate["verdict"])
    ashburn = row(table, "jobs", location="Ashburn", kind="machine")
    assert (ashburn["a"], ashburn["b"], ashburn["n_b"]) == (14, 0, 0)
    nothing = compare(empty_events(), demo, by=(), n_boot=N_BOOT)
    assert nothing["rollout_a"].isna().all() and nothing["verdict"].isna().all()
    assert row(nothing, "jobs")["diff"] == 48


def test_the_bias_verdict_judges_its_distance_from_zero() -> None:
    """ETAs as far early as they were late are no worse (the signed diff is far below 0, the
    verdict "same"); ETAs further late are worse."""
    late = finished(12, late_s=60)
    early = compare(late, finished(12, late_s=-80), by=(), n_boot=N_BOOT)
    flipped = row(early, "eta_bias_s")
    assert flipped["a"] > 0 > flipped["b"] and flipped["high"] < 0
    assert flipped["verdict"] == "same"
    later = row(compare(late, finished(12, late_s=300), by=(), n_boot=N_BOOT), "eta_bias_s")
    assert later["verdict"] == "worse" and later["low"] > 0


def test_columns_rows_and_dtypes() -> None:
    """Columns and dtypes are COMPARE_SCHEMA (another ``by`` in place of location and kind);
    the overall group comes first, each group has every metric in order."""
    demo = cassette_events("demo")
    table = compare(demo, demo, n_boot=N_BOOT)
    assert dict(table.dtypes) == dict(COMPARE_SCHEMA)
    assert table["rollout_a"].eq(rollouts(demo)[0]).all()
    metrics = list(table["metric"].cat.categories)
    assert table["metric"].tolist() == metrics * (len(table) // len(metrics))
    assert table.loc[: len(metrics) - 1, ["location", "kind"]].eq("all").all().all()
    by_kind = compare(demo, demo, by=["kind"], n_boot=N_BOOT)
    assert list(by_kind.columns) == [c for c in COMPARE_SCHEMA if c != "location"]
    assert by_kind["kind"].unique().tolist() == ["all", "machine", "mirror"]


def test_several_rollouts_on_a_side_raise_naming_them() -> None:
    """Events of two rollouts need ``rollout_a`` / ``rollout_b``; the error names them."""
    troubled, demo = cassette_events("troubled"), cassette_events("demo")
    first, idle = rollouts(troubled)
    with pytest.raises(RolloutError, match="rollout_a=") as caught:
        compare(troubled, demo, n_boot=N_BOOT)
    assert first in str(caught.value) and idle in str(caught.value)
    picked = compare(troubled, demo, rollout_a=idle, by=(), n_boot=N_BOOT)
    assert picked["rollout_a"].eq(idle).all()
    with pytest.raises(RolloutError, match="rollout_b="):
        compare(demo, troubled, n_boot=N_BOOT)


@pytest.mark.parametrize(
    "options",
    [{"level": 1.0}, {"level": 0.0}, {"n_boot": 0}, {"by": ("nope",)}, {"by": ("rollout",)}],
)
def test_unusable_options_raise_value_error(options: dict[str, object]) -> None:
    """A level outside (0, 1), no resamples, or a column the job summary lacks."""
    demo = cassette_events("demo")
    with pytest.raises(ValueError):
        compare(demo, demo, **options)  # type: ignore[arg-type]


def test_the_interval_matches_the_normal_approximation() -> None:
    """The bootstrap interval of a mean difference is near its normal approximation: the
    vectorised draws resample jobs as intended."""
    base, slowed = finished(40), finished(40, slow="London")
    found = row(compare(base, slowed, by=(), n_boot=4000, level=0.9), "eta_mae_s")
    jobs = [job_summary(events) for events in (base, slowed)]
    spread = np.hypot(*(s["eta_mae_s"].std() / np.sqrt(len(s)) for s in jobs))
    assert found["high"] - found["low"] == pytest.approx(2 * 1.645 * spread, rel=0.15)
