"""The live monitor's controllers without a widget: :class:`Monitor` following a rollout
(and forecasting its finish), :class:`FleetHeader` summing a fleet up, :class:`Throttle`
spacing redraws.

The monitor runs against the simulator in-process (its clock moved by the runner's
sleeps) or a scripted client; the throttle reads a manual clock. Nothing sleeps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from cfanalytics import events_from_cassette, rollouts
from cfanalytics.analysis import (
    ETA_ERROR_SCHEMA,
    FLEET_STATE_BY_OUTCOME,
    FLEET_STATES_SCHEMA,
    SNAPSHOT_SCHEMA,
)
from cfanalytics.client import AsyncClient, JobState
from cfanalytics.live import FLEET_FORECAST_SCHEMA, FleetHeader, Monitor, QueueController, Throttle
from cfanalytics.recording import RolloutRunner
from cfanalytics.simulator import ManualClock

from ..conftest import CASSETTES
from .doubles import RecordingRig, created, run, scripted

AT = pd.Timestamp("2024-05-01 12:00", tz="UTC")


def dtypes(schema: Any) -> dict[str, Any]:
    """The dtypes a table of ``schema`` has, to compare with ``frame.dtypes``."""
    return {name: pd.api.types.pandas_dtype(dtype) for name, dtype in schema.items()}


async def follow_on_the_simulator(
    rig: RecordingRig, client: AsyncClient, **options: Any
) -> Monitor:
    """Queue the London jobs on ``rig``'s simulator, then follow them with a fresh monitor
    (``options`` go to the runner); the monitor has not run yet."""
    controller = QueueController(client, rig.sim.asid)
    await controller.refresh()
    results = await controller.queue(controller.choices(location="London")["jobid"].tolist())
    monitor = Monitor(rig.runner(client, **options))
    monitor.follow([r.result for r in results if r.result is not None])
    return monitor


# --- Monitor on the simulator, with a recorder ----------------------------------------------


def test_monitor_follows_queued_jobs_and_reads_the_fleet_from_the_recording() -> None:
    """Run to the end: the fleet, header, ETA errors and burn-up hold exactly the followed
    jobs, each in the state the runner saw it end in, though every job was recorded."""
    rig = RecordingRig()

    async def scenario() -> None:
        async with rig.async_client() as client:
            monitor = await follow_on_the_simulator(rig, client)
            progress = await monitor.run()
        following = monitor.following
        assert progress.stop_reason == "every queued job ended" and progress.done
        events = monitor.events()
        assert events is not None and set(events["jobid"].dropna()) > following

        fleet = monitor.fleet()
        assert dict(fleet.dtypes) == dtypes(SNAPSHOT_SCHEMA)
        assert fleet["jobid"].tolist() == sorted(following)
        ended = {j: FLEET_STATE_BY_OUTCOME[outcome] for j, outcome in progress.ended.items()}
        assert dict(zip(fleet["jobid"], fleet["state"].astype(str), strict=True)) == ended
        assert fleet.attrs["at"] == pd.Timestamp(progress.last_seen)

        header = monitor.header()
        assert header.jobs == len(following) and header.done_share == 1.0
        assert sum(header.counts.values()) == len(following)
        assert header.eta_median_s is None and header.at == fleet.attrs["at"]

        completed = {j for j, outcome in progress.ended.items() if outcome == "completed"}
        errors = monitor.eta_errors()
        assert len(errors) > 0 and set(errors["jobid"]) <= completed

        states = monitor.fleet_states()
        assert dict(states.dtypes) == dtypes(FLEET_STATES_SCHEMA)
        assert (states.groupby("observed_at")["jobs"].sum() == len(following)).all()
        last = states.loc[states["observed_at"] == states["observed_at"].max()]
        ended_at_last = last.loc[last["state"].isin(["completed", "failed", "other"]), "jobs"]
        assert ended_at_last.sum() == len(following)

    run(scenario)


def test_mid_rollout_the_fleet_agrees_with_the_runners_last_poll() -> None:
    """Stopped after 12 polls: the recorded fleet's running jobs, progress and ETAs are
    those of the runner's last poll, and the header spreads the time to go until them."""
    rig = RecordingRig()

    async def scenario() -> None:
        async with rig.async_client() as client:
            monitor = await follow_on_the_simulator(rig, client, max_polls=12)
            progress = await monitor.run()
        assert progress.polls == 12 and not progress.done

        latest = progress.latest
        unended = monitor.following - progress.ended.keys()
        running = {j for j in unended if latest[j].state is JobState.RUNNING}
        fleet = monitor.fleet().set_index("jobid")
        assert running and set(fleet.index[fleet["state"] == "running"]) == running
        for jobid in running:
            assert fleet.at[jobid, "jobprogress"] == latest[jobid].jobprogress
            assert fleet.at[jobid, "jobeta"] == pd.Timestamp(latest[jobid].jobeta)

        header = monitor.header()
        assert progress.last_seen is not None
        etas = [eta for j in running if (eta := latest[j].jobeta) is not None]
        to_go = [(eta - progress.last_seen).total_seconds() for eta in etas]
        assert header.counts["running"] == len(running) and 0 < header.done_share < 1
        assert header.eta_median_s == pytest.approx(np.median(to_go))
        assert header.eta_p90_s == pytest.approx(np.percentile(to_go, 90))

    run(scenario)


# --- Monitor's forecasts ----------------------------------------------------------------------

FORECAST_COLUMNS = ["forecast_at", "lower_at", "upper_at"]


def test_mid_rollout_each_open_followed_job_has_its_forecast_next_to_its_eta() -> None:
    """20 polls in: one forecast, as of the fleet's poll, of exactly the followed jobs not
    ended; the fleet with forecasts is the fleet plus those three columns after ``jobeta``,
    each running job's median inside its interval, ended jobs without one."""
    rig = RecordingRig()

    async def scenario() -> None:
        async with rig.async_client() as client:
            monitor = await follow_on_the_simulator(rig, client, max_polls=20)
            await monitor.run()
        fleet = monitor.fleet()
        (found,) = monitor.forecasts()
        assert found.at == fleet.attrs["at"] and found.rollout_name == fleet.at[0, "rollout"]
        ended = fleet["state"].isin(["completed", "failed", "other"])
        assert sorted(found.jobs["jobid"]) == sorted(fleet.loc[~ended, "jobid"])
        assert found.rollout["share"].tolist() == [50, 90, 100]

        joined = monitor.fleet_forecast()
        assert dict(joined.dtypes) == dtypes(FLEET_FORECAST_SCHEMA)
        after_eta = list(joined.columns[list(joined.columns).index("jobeta") + 1 :])[:3]
        assert after_eta == FORECAST_COLUMNS
        pd.testing.assert_frame_equal(joined.drop(columns=FORECAST_COLUMNS), fleet)
        assert joined.attrs["at"] == fleet.attrs["at"]
        by_job = found.jobs.set_index("jobid")[FORECAST_COLUMNS]
        mine = joined.set_index("jobid")
        pd.testing.assert_frame_equal(mine.loc[by_job.index, FORECAST_COLUMNS], by_job)
        assert mine.loc[ended.to_numpy(), FORECAST_COLUMNS].isna().all(axis=None)
        running = mine.loc[mine["state"] == "running"]
        assert len(running) > 0 and running["forecast_at"].notna().all()
        assert (running["lower_at"] <= running["forecast_at"]).all()
        assert (running["upper_at"].isna() | (running["forecast_at"] <= running["upper_at"])).all()

    run(scenario)


def test_the_forecast_is_made_once_per_poll() -> None:
    """Asked again with nothing new recorded (even from a copy), the monitor answers the same
    forecast; the events of an earlier poll get their own, as of that poll."""
    rig = RecordingRig()

    async def scenario() -> None:
        async with rig.async_client() as client:
            monitor = await follow_on_the_simulator(rig, client, max_polls=12)
            await monitor.run()
        events = monitor.events()
        assert events is not None
        first = monitor.forecasts()
        assert monitor.forecasts() is first and monitor.forecasts(events.copy()) is first
        last_poll = events["seq"] == events["seq"].max()
        earlier = monitor.forecasts(events.loc[~last_poll])
        assert earlier is not first and earlier[0].at < first[0].at
        assert monitor.forecasts() is not first  # the cache holds one poll's answer

    run(scenario)


def test_the_finish_counts_the_followed_jobs_only() -> None:
    """At the end, 50 % and 90 % are done at the completions of the followed jobs that make
    those shares, though most of the rollout's jobs were never queued; nothing is open."""
    rig = RecordingRig()

    async def scenario() -> None:
        async with rig.async_client() as client:
            monitor = await follow_on_the_simulator(rig, client)
            await monitor.run()
        fleet = monitor.fleet_forecast()
        (found,) = monitor.forecasts()
        assert found.jobs.empty and fleet[FORECAST_COLUMNS].isna().all(axis=None)
        finished = fleet["completed_at"].dropna().sort_values().tolist()
        rollout = found.rollout.set_index("share")
        for share in (50, 90):
            needed = int(np.ceil(len(fleet) * share / 100))
            assert needed <= len(finished), "the default scenario completes most London jobs"
            assert rollout.at[share, "done"]
            assert rollout.at[share, "forecast_at"] == finished[needed - 1]

    run(scenario)


def test_nothing_recorded_yet_no_forecast() -> None:
    """Before the first request: no forecast, and a fleet with forecast columns all empty."""
    rig = RecordingRig()

    async def scenario() -> None:
        async with rig.async_client() as client:
            monitor = Monitor(rig.runner(client))
            assert monitor.forecasts() == ()
            fleet = monitor.fleet_forecast()
            assert fleet.empty and dict(fleet.dtypes) == dtypes(FLEET_FORECAST_SCHEMA)

    run(scenario)


def test_one_forecast_per_rollout_of_the_followed_jobs() -> None:
    """The troubled cassette holds two rollouts: following jobs of both, one forecast each,
    of that rollout's followed jobs only; the fleet's forecasts join on rollout and job."""
    events = events_from_cassette(CASSETTES / "troubled.yaml")
    names = rollouts(events)
    jobids = events["jobid"].dropna().unique().tolist()

    async def scenario() -> None:
        client = scripted(list)
        monitor = Monitor(RolloutRunner(client, 1, queue=False, interval=0))
        monitor.follow([await client.queue_install(j, asid=1, mirroring=False) for j in jobids])
        found = monitor.forecasts(events)
        assert [f.rollout_name for f in found] == names
        fleet = monitor.fleet_forecast(events)
        for f in found:
            of_rollout = fleet.loc[fleet["rollout"] == f.rollout_name]
            assert set(f.jobs["jobid"]) <= set(of_rollout["jobid"])
            opened = of_rollout.loc[of_rollout["jobid"].isin(f.jobs["jobid"])]
            assert opened["forecast_at"].notna().sum() == f.jobs["forecast_at"].notna().sum()

    run(scenario)


# --- Monitor without a recorder -------------------------------------------------------------


def test_without_a_recorder_the_fleet_comes_from_the_runners_progress() -> None:
    """Any runner will do: before a poll the jobs wait; then each row has the state, progress
    and ETA last listed, and an ended job its outcome. Recorded history stays empty."""
    listings = iter(
        [
            [created(1), created(2)],
            [
                created(1, jobstateid=4, jobstatename="Running", jobprogress=42),
                created(2, jobstateid=6, jobstatename="Failed"),
            ],
            [],
        ]
    )
    fleets: list[pd.DataFrame] = []

    async def scenario() -> None:
        client = scripted(lambda: next(listings))
        controller = QueueController(client, 7)
        await controller.refresh()
        monitor = Monitor(RolloutRunner(client, 7, queue=False, interval=0))
        monitor.runner.on_progress = lambda progress: fleets.append(monitor.fleet())
        outcomes = await controller.queue([1, 2])
        monitor.follow(outcome.result for outcome in outcomes if outcome.result is not None)

        before = monitor.fleet()
        assert dict(before.dtypes) == dtypes(SNAPSHOT_SCHEMA)
        assert before["state"].tolist() == ["waiting", "waiting"] and before.attrs["at"] is None
        assert monitor.header().done_share == 0.0

        await monitor.run()
        assert [fleet["state"].tolist() for fleet in fleets] == [
            ["running", "failed"],
            ["completed", "failed"],
        ]
        assert fleets[0]["jobprogress"].tolist() == [42, 0]
        assert fleets[0].at[0, "jobeta"] == pd.Timestamp(created(1)["jobeta"], unit="s", tz="UTC")
        assert FleetHeader.of(fleets[0]).counts == {"running": 1, "failed": 1}
        assert monitor.header().done_share == 1.0
        assert monitor.events() is None
        assert monitor.eta_errors().empty and list(monitor.eta_errors()) == list(ETA_ERROR_SCHEMA)
        assert monitor.fleet_states().empty
        assert monitor.forecasts() == ()
        no_forecast = monitor.fleet_forecast()
        assert dict(no_forecast.dtypes) == dtypes(FLEET_FORECAST_SCHEMA)
        assert no_forecast["state"].tolist() == ["completed", "failed"]
        assert no_forecast[["forecast_at", "lower_at", "upper_at"]].isna().all(axis=None)

    run(scenario)


# --- FleetHeader ----------------------------------------------------------------------------


def fleet_of(rows: list[tuple[str, float | None]], at: pd.Timestamp | None) -> pd.DataFrame:
    """A fleet table of :data:`SNAPSHOT_SCHEMA`: one job per ``(state, seconds to its ETA)``,
    at time ``at``."""
    columns: dict[str, Any] = {
        "jobid": range(1, len(rows) + 1),
        "state": [state for state, _ in rows],
        "jobeta": [None if s is None else AT + pd.Timedelta(seconds=s) for _, s in rows],
    }
    frame = pd.DataFrame(columns)
    for name in SNAPSHOT_SCHEMA.keys() - columns.keys():
        frame[name] = None
    frame = frame.astype(dict(SNAPSHOT_SCHEMA))[list(SNAPSHOT_SCHEMA)]
    frame.attrs["at"] = at
    return frame


def test_header_counts_states_share_done_and_spreads_the_etas_of_running_jobs() -> None:
    """Counts by state (none for empty states), ended = completed + failed + other, and the
    median and 90th percentile of the time to go until the ETAs of Running jobs only."""
    rows: list[tuple[str, float | None]] = [
        ("running", 60),
        ("running", 120),
        ("running", 600),
        ("running", None),  # no ETA yet: counted, not spread
        ("queued", 900),  # an ETA, but not Running: not spread
        ("waiting", None),
        ("completed", None),
        ("completed", None),
        ("failed", None),
        ("other", None),
    ]
    header = FleetHeader.of(fleet_of(rows, AT))
    assert header.jobs == 10 and header.at == AT
    assert header.counts == {
        "waiting": 1,
        "queued": 1,
        "running": 4,
        "completed": 2,
        "failed": 1,
        "other": 1,
    }
    assert header.done_share == pytest.approx(0.4)
    assert header.eta_median_s == pytest.approx(120.0)
    assert header.eta_p90_s == pytest.approx(120 + 0.8 * (600 - 120))


def test_header_of_an_empty_fleet_or_one_without_a_time() -> None:
    """No jobs: nothing counted, nothing done, no ETAs; no poll time: no time to go."""
    empty = FleetHeader.of(fleet_of([], None))
    assert (empty.jobs, empty.counts, empty.done_share) == (0, {}, 0.0)
    assert empty.eta_median_s is None and empty.eta_p90_s is None
    untimed = FleetHeader.of(fleet_of([("running", 60)], None))
    assert untimed.counts == {"running": 1} and untimed.eta_median_s is None


# --- Throttle ------------------------------------------------------------------------------


def test_throttle_redraws_first_then_once_per_interval_and_when_forced() -> None:
    """The first ask is due; then not before ``every_s`` has passed; a forced redraw is
    always due and the interval counts again from it."""
    clock = ManualClock(0)
    throttle = Throttle(2.0, clock=clock.now)
    assert throttle.due()
    clock.advance(1.9)
    assert not throttle.due()
    clock.advance(0.1)
    assert throttle.due()
    clock.advance(1.0)
    assert throttle.due(force=True)
    clock.advance(1.5)
    assert not throttle.due()


def test_throttle_gap_grows_with_what_the_last_redraw_cost() -> None:
    """``timing`` measures the redraw, even one that raised; the gap is then cost / share,
    and shrinks back to ``every_s`` after a cheap redraw."""
    clock = ManualClock(0)
    throttle = Throttle(0.5, share=0.25, clock=clock.now)
    with pytest.raises(RuntimeError), throttle.timing():
        clock.advance(3.0)
        raise RuntimeError("the plot failed")
    assert throttle.cost_s == 3.0 and throttle.gap_s == 12.0
    with throttle.timing():
        clock.advance(0.01)
    assert throttle.gap_s == 0.5


def redraw_starts(throttle: Throttle, clock: ManualClock, cost_s: float) -> list[float]:
    """Poll every 0.1 s for 200 s, redrawing (at ``cost_s`` each) whenever ``due``; the
    times the redraws started."""
    starts: list[float] = []
    while clock.now() < 200:
        if throttle.due():
            starts.append(clock.now())
            with throttle.timing():
                clock.advance(cost_s)
        clock.advance(0.1)
    return starts


@pytest.mark.parametrize(("cost_s", "gap_s"), [(1.0, 4.0), (0.01, 0.5)])
def test_throttle_keeps_redraws_to_their_share_of_the_time(cost_s: float, gap_s: float) -> None:
    """Redraws costing 1 s with a share of 1/4 start at least 4 s apart (cheap ones every
    ``every_s``), and no later than the first poll after that."""
    clock = ManualClock(0)
    throttle = Throttle(0.5, share=0.25, clock=clock.now)
    gaps = np.diff(redraw_starts(throttle, clock, cost_s))
    assert len(gaps) > 10
    assert gaps.min() >= gap_s - 1e-6
    assert gaps.max() <= gap_s + 0.1 + 1e-6
    assert cost_s * (len(gaps) + 1) <= 0.25 * 200 + cost_s


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_throttle_refuses_a_share_outside_zero_to_one(share: float) -> None:
    """A share of 0 would divide by zero at the first redraw: refused when built."""
    with pytest.raises(ValueError, match="0 < share <= 1"):
        Throttle(1.0, share=share)
