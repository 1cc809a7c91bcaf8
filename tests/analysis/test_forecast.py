"""The forecast: what it learns, that it only looks back, and the backtest that scores it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cfanalytics import backtest, events_from_cassette, forecast, job_summary
from cfanalytics.analysis import FORECAST_JOB_SCHEMA, FORECAST_ROLLOUT_SCHEMA
from cfanalytics.analysis._common import polls
from cfanalytics.cli import main

from .test_summary import COMPLETE, Recording, at, job, running

CASSETTES = Path(__file__).parents[2] / "cassettes"


def steady(slow: int = 4) -> Recording:
    """Jobs 1-3 run 0 to 100 % in 10 minutes and complete at minute 10; job ``slow`` runs at
    half their pace: at 50 % when they complete."""
    rec = Recording()
    for minute in range(11):
        rows = [
            running(j, jobstart=at(0), jobprogress=10 * minute, jobeta=at(10))
            for j in (1, 2, 3)
            if minute < 10
        ]
        rows += [job(j, COMPLETE, jobupdated=at(10)) for j in (1, 2, 3) if minute == 10]
        rows.append(running(slow, jobstart=at(0), jobprogress=5 * minute, jobeta=at(10)))
        rec.poll(minute, *rows)
    return rec


def test_a_slow_job_is_forecast_from_the_pace_of_the_finished_ones() -> None:
    """Three jobs took 10 minutes; the fourth got to 50 % in 10: it finishes at minute 20,
    which neither its ETA (minute 10) nor anything else in the data said."""
    found = forecast(steady().events())
    assert found.at == at(10) and found.finished == 3
    row = found.jobs.set_index("jobid").loc[4]
    assert row["basis"] == "running" and row["jobeta"] == at(10)
    assert abs((row["forecast_at"] - at(20)).total_seconds()) < 1
    assert row["lower_at"] <= row["forecast_at"] <= row["upper_at"]
    assert list(found.jobs.columns) == list(FORECAST_JOB_SCHEMA)
    assert list(found.rollout.columns) == list(FORECAST_ROLLOUT_SCHEMA)
    shares = found.rollout.set_index("share")
    assert shares.loc[50, "done"] and shares.loc[50, "forecast_s"] == 600.0  # 2 of 4 by 10
    assert not shares.loc[100, "done"] and 0 < shares.loc[100, "reach"] <= 1


def test_with_nothing_finished_it_falls_back_to_the_eta_and_the_linear_rule() -> None:
    """Before any job completed: between the ETA and the linear rule, honestly wide."""
    events = steady().events()
    found = forecast(events, at=at(4))
    row = found.jobs.set_index("jobid").loc[1]
    linear, eta = at(10), at(10)  # 40 % after 4 minutes; its ETA says 10 too
    assert row["linear_eta"] == linear and row["forecast_at"] == eta
    assert (row["upper_at"] - row["lower_at"]).total_seconds() > 6 * 60  # x/÷ 3 of 6 min


@pytest.mark.parametrize("name", ["demo", "troubled"])
def test_the_forecast_sees_nothing_after_at(name: str) -> None:
    """Cutting the events at ``at`` changes nothing: the forecast only looks back."""
    events = events_from_cassette(CASSETTES / f"{name}.yaml")
    first = job_summary(events)["rollout"].iloc[0]
    times = sorted(polls(events)["polled_at"].unique())
    when = pd.Timestamp(times[len(times) // 3])
    whole = forecast(events, at=when, rollout=first)
    cut = forecast(events.loc[events["observed_at"] <= when], at=when, rollout=first)
    pd.testing.assert_frame_equal(whole.jobs, cut.jobs)
    pd.testing.assert_frame_equal(whole.rollout, cut.rollout)
    again = forecast(events, at=when, rollout=first)
    pd.testing.assert_frame_equal(whole.rollout, again.rollout)  # seeded: the same draws


def test_machines_behind_a_failed_mirror_are_never_forecast_to_complete() -> None:
    """A machine waits on its mirror's job; that job failed: no completion, in no draw."""
    rec = Recording()
    mirror = {"kind": "mirror", "mirror": "m1", "location": "L"}
    machine = {"kind": "machine", "mirror": "m1", "location": "L"}
    rec.poll(0, job(1, 3, **mirror), job(2, 3, **machine))
    rec.poll(
        1,
        job(1, 6, jobfailed=True, joberror="network", jobupdated=at(1), **mirror),
        job(2, 3, **machine),
    )
    found = forecast(rec.events())
    row = found.jobs.set_index("jobid").loc[2]
    assert row["basis"] == "waiting" and pd.isna(row["forecast_at"])
    assert found.rollout.set_index("share").loc[100, "reach"] == 0.0


def test_the_backtest_scores_each_poll_with_the_forecast_made_at_it() -> None:
    """Every scored observation's forecast error is its completion minus what the forecast
    at that poll said; the three predictors are side by side; JSON as the issue asks."""
    events = steady().events()
    found = backtest(events)
    obs = found.observations
    assert set(obs["jobid"]) == {1, 2, 3} and len(obs) == 3 * 10  # Running rows with an ETA
    one = obs.loc[obs["observed_at"] == at(5)].iloc[0]
    said = forecast(events, at=at(5)).jobs.set_index("jobid").loc[one["jobid"], "forecast_at"]
    assert one["forecast_error_s"] == (one["completed_at"] - said).total_seconds()
    assert one["linear_error_s"] == 0.0 and one["jobeta_error_s"] == 0.0
    figures = found.summary()
    assert set(figures) == {"jobs", "observations", "forecast", "jobeta", "linear", "rollouts"}
    assert set(figures["forecast"]) == {"mae_s", "bias_s", "coverage_80", "width_80_s"}
    assert json.loads(json.dumps(figures)) == figures
    assert list(found.scores("progress_decile")["progress_decile"]) == list(range(10))


def test_the_backtest_command_prints_the_three_predictors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cfanalytics backtest SOURCE`` as a table and as JSON; a missing source is one line."""
    source = CASSETTES / "demo.yaml"
    assert main(["backtest", str(source), "--every", "10"]) == 0
    text = capsys.readouterr().out
    for line in ("forecast ", "jobeta ", "linear ", "by progress decile:", "by location:"):
        assert line in text
    assert main(["backtest", str(source), "--every", "10", "--format", "json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["forecast"]["mae_s"] > 0 and figures["rollouts"][0]["jobs"] == 48
    assert main(["backtest", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert np.isfinite(figures["linear"]["mae_s"])


def test_a_history_teaches_the_forecast_before_any_job_of_this_rollout_completed(
    tmp_path: Path,
) -> None:
    """Early in week 6 nothing has completed: alone, the forecast falls back (wide); with the
    earlier weeks of the ASID in a history store it learns from their jobs, and is narrower."""
    from cfanalytics.recording import HistoryStore

    store = tmp_path / "store"
    HistoryStore(store).add(*(CASSETTES / "history" / f"week-{w}.yaml" for w in range(1, 6)))
    events = events_from_cassette(CASSETTES / "history" / "week-6.yaml")
    summary = job_summary(events)
    machines = summary.loc[summary["kind"] == "machine", "completed_at"].dropna().sort_values()
    when = machines.iloc[0] - pd.Timedelta(seconds=1)  # before any machine completed
    alone = forecast(events, at=when)
    taught = forecast(events, at=when, history=store)
    assert alone.history == 0 and taught.history > 10
    running = (alone.jobs["basis"] == "running") & (alone.jobs["kind"] == "machine")
    assert running.any()
    width = {
        name: (found.jobs["upper_at"] - found.jobs["lower_at"])[running].dt.total_seconds().median()
        for name, found in (("alone", alone), ("taught", taught))
    }
    assert width["taught"] < width["alone"] / 2
