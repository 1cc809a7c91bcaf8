"""The completion curve: NPMLE and midpoint estimates by hand, and against a textbook loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cfanalytics.analysis import (
    COMPLETION_SCHEMA,
    SUMMARY_SCHEMA,
    completion_curve,
    job_summary,
    time_to_fraction,
)
from cfanalytics.exceptions import SchemaError

from .recorded import ACTIVE, ACTIVE_IDS, rollout_of_cassette
from .test_summary import COMPLETE, FAILED, Recording, at, job, running

CASSETTES = Path(__file__).parents[2] / "cassettes"
ENDINGS = ("completed", "failed", "squashed")


def completed(after: float, before: float | None = None, start: float | None = 0) -> dict[str, Any]:
    """A completed job: window (``after``, ``before``] in minutes, exact if ``before`` is None."""
    before = after if before is None else before
    times = {"completed_after": at(after), "completed_before": at(before)}
    return {"outcome": "completed", "last_seen": at(after), "started": start} | times


def ended(outcome: str, minute: float, start: float | None = 0) -> dict[str, Any]:
    """A failed (at ``failed_at``) or squashed (at ``last_seen``) job, or a right-censored one."""
    row = {"outcome": outcome, "last_seen": at(minute), "started": start}
    return row | ({"failed_at": at(minute)} if outcome == "failed" else {})


def summary(*jobs: dict[str, Any]) -> pd.DataFrame:
    """A job summary frame with the rows given, typed by SUMMARY_SCHEMA, seen first at 0."""
    rows = []
    for jobid, row in enumerate(jobs, start=1):
        start = row.pop("started")
        row |= {"jobid": jobid, "started_at": None if start is None else at(start)}
        row.setdefault("first_seen", at(0) if row["last_seen"] is not None else None)
        if "completed_after" in row:
            span = row["completed_before"] - row["completed_after"]
            row["completed_at"] = row["completed_after"] + span / 2
        rows.append(row)
    frame = pd.DataFrame(rows)
    return pd.DataFrame(
        {
            name: frame.get(name, pd.Series([None] * len(frame))).astype(dtype)
            for name, dtype in SUMMARY_SCHEMA.items()
        }
    )


def step(curve: pd.DataFrame, outcome: str, column: str = "incidence") -> Callable[..., Any]:
    """``outcome``'s ``column`` as a step function of time (0 before the first row).

    ``f(t)`` is the value at ``t``; ``f(t, left=True)`` the value just before ``t``.
    """
    time = "time" if "time" in curve.columns else "elapsed_s"
    rows = curve.loc[curve["outcome"] == outcome]
    times = pd.Index(rows[time])
    values = np.concatenate([[0.0], rows[column].to_numpy(dtype=float)])

    def value(t: Any, *, left: bool = False) -> Any:
        """The value at ``t`` (or just before it): scalars or arrays of times."""
        return values[times.searchsorted(t, side="left" if left else "right")]

    return value


def incidence_at(curve: pd.DataFrame, minute: float, outcome: str = "completed") -> float:
    """The incidence of ``outcome`` at ``minute`` on the wall clock."""
    return float(step(curve, outcome)(at(minute)))


# By hand


def test_exact_times_without_censoring_give_the_empirical_incidence() -> None:
    """All exact, nothing censored: NPMLE = midpoint = share ended by t, at every row."""
    jobs = summary(completed(1), completed(2), completed(2), ended("failed", 3), completed(4))
    npmle, midpoint = completion_curve(jobs), completion_curve(jobs, method="midpoint")
    assert list(npmle["time"].unique()) == [at(0), at(1), at(2), at(3), at(4)]
    done = npmle.loc[npmle["outcome"] == "completed", "incidence"].tolist()
    assert done == pytest.approx([0, 1 / 5, 3 / 5, 3 / 5, 4 / 5], abs=1e-12)
    failed = npmle.loc[npmle["outcome"] == "failed", "incidence"].tolist()
    assert failed == pytest.approx([0, 0, 0, 1 / 5, 1 / 5], abs=1e-12)
    for outcome in ENDINGS:
        mine = npmle.loc[npmle["outcome"] == outcome, "incidence"].to_numpy(dtype=float)
        other = midpoint.loc[midpoint["outcome"] == outcome, "incidence"].to_numpy(dtype=float)
        assert mine == pytest.approx(other, abs=1e-12)
    assert (npmle["lower"] == npmle["upper"]).all()  # exact times: no uncertainty
    assert (npmle["n_jobs"] == 5).all()


def test_failures_compete_with_completion() -> None:
    """Completed + failed add up to the share ended; naive 1 - KM would claim 100 % done.

    Done at 1, 3 and 4 min, failed at 2: 3 of 4 completed. Kaplan-Meier with the failure
    as censoring: S = (3/4)(1/2)(0) = 0 after 4 min, so "100 % complete": 25 points too many.
    """
    jobs = summary(completed(1), ended("failed", 2), completed(3), completed(4))
    curve = completion_curve(jobs)
    done, failed = incidence_at(curve, 4), incidence_at(curve, 4, "failed")
    assert (done, failed) == pytest.approx((0.75, 0.25), abs=1e-12)
    assert done + failed == pytest.approx(1.0)
    for minute in (0, 1, 2, 3, 4):
        assert incidence_at(curve, minute) <= 1 - incidence_at(curve, minute, "failed") + 1e-12
    naive = 1 - (1 - 1 / 4) * (1 - 1 / 2) * (1 - 1 / 1)
    assert naive - done == pytest.approx(0.25)


def test_right_censoring_gives_aalen_johansen_by_hand() -> None:
    """Done at 1, censored at 2, failed at 3, done at 4 and 5: both methods give AJ.

    S(1) = 4/5; F_f(3) = 4/5 * 1/3 = 4/15, S(3) = 8/15; F_c(4) = 1/5 + 8/15 * 1/2 = 7/15,
    S(4) = 4/15; F_c(5) = 7/15 + 4/15 = 11/15.
    """
    jobs = summary(
        completed(1), ended("unfinished", 2), ended("failed", 3), completed(4), completed(5)
    )
    expected = {1: 1 / 5, 2: 1 / 5, 3: 1 / 5, 4: 7 / 15, 5: 11 / 15}
    for method in ("npmle", "midpoint"):
        curve = completion_curve(jobs, method=method)
        for minute, share in expected.items():
            assert incidence_at(curve, minute) == pytest.approx(share, abs=1e-8)
        assert incidence_at(curve, 5, "failed") == pytest.approx(4 / 15, abs=1e-8)
    curve = completion_curve(jobs)
    lower, upper = step(curve, "completed", "lower"), step(curve, "completed", "upper")
    assert (lower(at(4)), upper(at(4))) == pytest.approx((2 / 5, 3 / 5))  # + censored at 2


def test_overlapping_windows_put_mass_at_the_right_end_of_innermost_intervals() -> None:
    """Windows (0, 2] and (1, 3]: the NPMLE puts both jobs in (1, 2], shown at 2 min.

    The midpoint method has them at 1 and 2 min. The band is [0, 1] at 1 min.
    """
    jobs = summary(completed(0, 2), completed(1, 3))
    npmle, midpoint = completion_curve(jobs), completion_curve(jobs, method="midpoint")
    assert [incidence_at(npmle, m) for m in (1, 2, 3)] == pytest.approx([0, 1, 1], abs=1e-9)
    assert [incidence_at(midpoint, m) for m in (1, 2, 3)] == pytest.approx([0.5, 1, 1])
    lower, upper = step(npmle, "completed", "lower"), step(npmle, "completed", "upper")
    assert (lower(at(1)), upper(at(1)), lower(at(3))) == (0.0, 1.0, 1.0)


def test_a_chain_of_windows_splits_its_mass() -> None:
    """Windows (0, 2], (1, 3], (2, 4]: likelihood p1 (p1 + p2) p2, maximal at p1 = p2 = 1/2."""
    curve = completion_curve(summary(completed(0, 2), completed(1, 3), completed(2, 4)))
    assert [incidence_at(curve, m) for m in (1, 2, 3, 4)] == pytest.approx([0, 0.5, 1, 1], abs=1e-9)


def test_mass_is_not_split_where_only_another_outcome_has_a_time() -> None:
    """Done in (0, 3], failed at 1: the completion is shown at 3 min, not partly at 1.

    The failure's time cuts the window in two cells, but nothing tells them apart for the
    completion: the whole window is one innermost interval, its mass at its right end.
    """
    curve = completion_curve(summary(completed(0, 3), ended("failed", 1)))
    assert [incidence_at(curve, m) for m in (1, 2, 3)] == pytest.approx([0, 0, 0.5])


def test_em_iterates_to_the_maximum() -> None:
    """Windows (0, 1], (0, 1], (0, 3], (2, 3]: likelihood p1^2 p2, maximal at p1 = 2/3.

    From the even start the EM takes p1 to (2 + p1) / 4: 0.625 after one step, 2/3 at the end.
    """
    jobs = summary(completed(0, 1), completed(0, 1), completed(0, 3), completed(2, 3))
    curve = completion_curve(jobs)
    assert [incidence_at(curve, m) for m in (1, 2, 3)] == pytest.approx([2 / 3, 2 / 3, 1])


def test_an_ending_and_a_censoring_at_the_same_time() -> None:
    """Done at 1, censored at 1, done at 2: the censored job was still at risk at 1 (1/3)."""
    jobs = summary(completed(1), ended("unfinished", 1), completed(2))
    for method in ("npmle", "midpoint"):
        curve = completion_curve(jobs, method=method)
        assert incidence_at(curve, 1) == pytest.approx(1 / 3)
        assert incidence_at(curve, 2) == pytest.approx(1.0)


def test_a_censored_job_is_credited_to_what_was_seen_after_it() -> None:
    """Done in (0, 2], failed at 1, censored at 1: likelihood c^2 f, so c = 2/3, f = 1/3.

    The censored job can only have ended after 1 min, where only the completion was seen.
    """
    jobs = summary(completed(0, 2), ended("failed", 1), ended("unfinished", 1))
    curve = completion_curve(jobs)
    assert incidence_at(curve, 2) == pytest.approx(2 / 3, abs=1e-9)
    assert incidence_at(curve, 2, "failed") == pytest.approx(1 / 3, abs=1e-9)


def test_mass_after_the_last_event_has_no_cause() -> None:
    """Done at 1, still running at 2: half completed, and nothing says how the rest ends."""
    curve = completion_curve(summary(completed(1), ended("unfinished", 2)))
    assert incidence_at(curve, 2) == pytest.approx(0.5)
    assert incidence_at(curve, 2, "failed") == incidence_at(curve, 2, "squashed") == 0
    assert step(curve, "completed", "upper")(at(2)) == 1.0  # it may have completed since


def test_unknown_jobs_seen_are_censored_and_never_seen_are_dropped() -> None:
    """An unknown job seen at 2 min is censored there; one never seen is not in the risk set."""
    never = {"outcome": "unknown", "last_seen": None, "started": None}
    jobs = summary(completed(1), ended("unknown", 2), ended("squashed", 3), never)
    curve = completion_curve(jobs)
    assert (curve["n_jobs"] == 3).all()
    assert incidence_at(curve, 3) == pytest.approx(1 / 3)
    # The censored job can only have ended after 2 min, where only the squash was seen.
    assert incidence_at(curve, 3, "squashed") == pytest.approx(2 / 3)


def test_job_clock_counts_seconds_since_each_start() -> None:
    """Started at 1, done at 4: 180 s; started at 2, window (3, 5]: (60, 180] s;
    started at 0, failed at 1: 60 s; never started: left out."""
    jobs = summary(
        completed(4, start=1),
        completed(3, 5, start=2),
        ended("failed", 1, start=0),
        completed(2, start=None),
    )
    npmle = completion_curve(jobs, clock="job")
    assert "time" not in npmle.columns and (npmle["n_jobs"] == 3).all()
    assert list(npmle["elapsed_s"].unique()) == [0.0, 60.0, 180.0]
    done = npmle.loc[npmle["outcome"] == "completed", "incidence"].tolist()
    assert done == pytest.approx([0, 0, 2 / 3], abs=1e-9)
    assert step(npmle, "failed")(60.0) == pytest.approx(1 / 3)
    midpoint = completion_curve(jobs, clock="job", method="midpoint")
    assert step(midpoint, "completed")(120.0) == pytest.approx(1 / 3)  # midpoint of (60, 180]
    assert time_to_fraction(npmle, 0.5) == 180.0


def test_time_to_fraction_by_hand() -> None:
    """First time the share is reached; NaT on the wall clock and NA on the job clock if never."""
    jobs = summary(completed(1), completed(2), ended("failed", 3), completed(4))
    curve = completion_curve(jobs)
    assert time_to_fraction(curve, 0.25) == at(1)
    assert time_to_fraction(curve, 0.5) == at(2)
    assert time_to_fraction(curve, 0.75) == at(4)
    assert time_to_fraction(curve, 0.25, outcome="failed") == at(3)
    assert time_to_fraction(curve, 0.9) is pd.NaT
    assert time_to_fraction(curve, 0.1, outcome="squashed") is pd.NaT
    assert time_to_fraction(completion_curve(jobs, clock="job"), 0.9) is pd.NA
    with pytest.raises(ValueError, match="fraction"):
        time_to_fraction(curve, 1.5)
    with pytest.raises(ValueError, match="outcome"):
        time_to_fraction(curve, 0.5, outcome="unfinished")


def test_from_a_recording_with_a_failure() -> None:
    """Through ``job_summary``: the failure counts at its ``failed_at``, the vanished job at
    the end of its window."""
    rec = Recording()
    rec.poll(0, running(1), running(2), running(3))
    rec.poll(
        1, job(1, COMPLETE, jobupdated=at(0.5)), job(2, FAILED, jobupdated=at(0.75)), running(3)
    )
    rec.poll(3, job(2, FAILED))
    curve = completion_curve(job_summary(rec.events()))
    assert incidence_at(curve, 0.75, "failed") == pytest.approx(1 / 3)
    assert incidence_at(curve, 1) == pytest.approx(1 / 3)
    assert incidence_at(curve, 3) == pytest.approx(2 / 3, abs=1e-9)  # job 3 in (1, 3]


# The frame


@pytest.mark.parametrize("clock", ["wall", "job"])
def test_schema_and_order(clock: str) -> None:
    """COMPLETION_SCHEMA's columns (one time column), all three outcomes, sorted; also empty."""
    time = "time" if clock == "wall" else "elapsed_s"
    expected = {name: dtype for name, dtype in COMPLETION_SCHEMA.items() if name != "elapsed_s"}
    if clock == "job":
        expected = {"elapsed_s": COMPLETION_SCHEMA["elapsed_s"]} | {
            name: dtype for name, dtype in expected.items() if name != "time"
        }
    jobs = summary(completed(1), ended("failed", 2))
    for frame in (
        completion_curve(jobs, clock=clock),
        completion_curve(jobs.iloc[:0], clock=clock),
    ):
        assert dict(frame.dtypes) == expected
        assert isinstance(frame.index, pd.RangeIndex)
    frame = completion_curve(jobs, clock=clock)
    assert frame["outcome"].unique().tolist() == list(ENDINGS)
    for _, rows in frame.groupby("outcome", observed=True):
        assert rows[time].is_monotonic_increasing and rows["incidence"].iloc[0] == 0


def test_bad_input_is_refused() -> None:
    """A frame that is not a job summary, an unknown clock or method."""
    with pytest.raises(SchemaError, match="failed_at"):
        completion_curve(summary(completed(1)).drop(columns="failed_at"))
    with pytest.raises(ValueError, match="clock"):
        completion_curve(summary(completed(1)), clock="cpu")
    with pytest.raises(ValueError, match="method"):
        completion_curve(summary(completed(1)), method="km")


# On the shipped cassettes


@pytest.fixture(scope="module", params=ACTIVE, ids=ACTIVE_IDS)
def cassette_summary(request: pytest.FixtureRequest) -> pd.DataFrame:
    """The job summary of a rollout of a shipped cassette: demo (failures) and troubled
    (also unfinished)."""
    return job_summary(rollout_of_cassette(request.param))


def textbook_aalen_johansen(
    durations: list[float], codes: list[int], event: int
) -> dict[float, float]:
    """Aalen-Johansen, written the slow way from its definition, as an independent reference.

    At each distinct time t with d_k endings of outcome k and d endings of any outcome among
    n still at risk: F_k(t) = F_k(t-) + S(t-) d_k / n, and S(t) = S(t-) (1 - d / n). A job
    censored at t is still at risk at t (censoring after endings at the same time).
    """
    survival, incidence, out = 1.0, 0.0, {}
    for t in sorted(set(durations)):
        at_risk = sum(1 for d in durations if d >= t)
        ending = [c for d, c in zip(durations, codes, strict=True) if d == t and c > 0]
        if not ending:
            continue
        incidence += survival * sum(1 for c in ending if c == event) / at_risk
        survival *= 1 - len(ending) / at_risk
        out[t] = incidence
    return out


@pytest.mark.parametrize("clock", ["wall", "job"])
def test_midpoint_method_equals_a_textbook_aalen_johansen(
    cassette_summary: pd.DataFrame, clock: str
) -> None:
    """Same CIF as the definition computed with plain loops, to 1e-9 at every ending time.

    (lifelines' AalenJohansenFitter agreed to 1e-16 when we tried it, but it pins pandas
    below 3, so it is not a test dependency.)
    """
    jobs = cassette_summary
    if clock == "job":
        jobs = jobs.loc[jobs["started_at"].notna()]
    jobs = jobs.loc[jobs["last_seen"].notna()]
    curve = completion_curve(jobs, clock=clock, method="midpoint")
    code = jobs["outcome"].map({"completed": 1, "failed": 2, "squashed": 3}).fillna(0)
    ends = jobs["failed_at"].where(code == 2, jobs["last_seen"])
    ends = jobs["completed_at"].where(code == 1, ends)
    zero = jobs["started_at"] if clock == "job" else curve["time"].min()
    durations = (ends - zero).dt.total_seconds().tolist()
    checked = 0
    for event, outcome in ((1, "completed"), (2, "failed")):
        reference = textbook_aalen_johansen(durations, code.astype(int).tolist(), event)
        times = np.array(list(reference))
        if clock == "wall":
            times = zero + pd.to_timedelta(times, unit="s")
        mine = step(curve, outcome)(times)
        assert np.abs(mine - np.array(list(reference.values()))).max() < 1e-9
        checked += len(reference)
    assert checked > 20


@pytest.mark.parametrize("clock", ["wall", "job"])
def test_npmle_and_midpoint_stay_in_the_band_and_near_each_other(
    cassette_summary: pd.DataFrame, clock: str
) -> None:
    """Both lie in [lower, upper]; they differ by at most the share of undecided jobs.

    Why: both are averages over jobs of each job's chance of having completed by t. For the
    NPMLE this is self-consistency (its output is an EM step: each job spread over its own
    window); for Aalen-Johansen, Efron's redistribution to the right (a censored job's mass
    goes to later endings). A job whose window closed by t counts 1 in both; one whose
    window opens after t (or that ended otherwise, or was censored after t) counts 0 in
    both. Only the others, with after <= t < before, or censored at or before t, can differ,
    each by at most 1/n: that share bounds the difference, and it is upper - lower.
    """
    npmle = completion_curve(cassette_summary, clock=clock)
    midpoint = completion_curve(cassette_summary, clock=clock, method="midpoint")
    for curve in (npmle, midpoint):
        assert (curve["incidence"] >= curve["lower"] - 1e-12).all()
        assert (curve["incidence"] <= curve["upper"] + 1e-12).all()
    column = "time" if clock == "wall" else "elapsed_s"
    times = sorted(set(npmle[column]) | set(midpoint[column]))
    gap = np.abs(step(npmle, "completed")(times) - step(midpoint, "completed")(times))
    jobs = on_clock(cassette_summary, clock)
    censored = jobs["outcome"].isin(["unfinished", "unknown"])
    for t, difference in zip(times, gap, strict=True):
        window = (jobs["completed_after"] <= t) & (t < jobs["completed_before"])
        undecided = window.fillna(False) | (censored & (jobs["last_seen"] <= t))
        assert difference <= undecided.sum() / len(jobs) + 1e-9
    assert gap.max() > 0.01  # the two methods do differ: the check has teeth


@pytest.mark.parametrize("clock", ["wall", "job"])
def test_npmle_likelihood_is_at_least_the_midpoint_one(
    cassette_summary: pd.DataFrame, clock: str
) -> None:
    """The EM's answer is a maximum: no lower likelihood than the midpoint estimate's masses.

    A job's likelihood: completed in (a, b]: F_c(b) - F_c(a); exactly at t as k: the jump
    F_k(t) - F_k(t-); censored at c: 1 - sum_k F_k(c).
    """
    jobs = on_clock(cassette_summary, clock)
    npmle = log_likelihood(completion_curve(cassette_summary, clock=clock), jobs)
    midpoint = completion_curve(cassette_summary, clock=clock, method="midpoint")
    assert np.isfinite(npmle)
    assert npmle >= log_likelihood(midpoint, jobs) - 1e-9


def test_npmle_converges_on_the_cassettes(
    cassette_summary: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    """Overlapping windows (the job clock) converge within the 10,000 EM steps: no warning."""
    with caplog.at_level("WARNING", logger="cfanalytics.analysis._completion"):
        completion_curve(cassette_summary, clock="job")
    assert not caplog.records


def on_clock(jobs: pd.DataFrame, clock: str) -> pd.DataFrame:
    """The risk set, its times in seconds since each ``started_at`` on the job clock."""
    jobs = jobs.loc[jobs["last_seen"].notna()]
    if clock == "wall":
        return jobs
    jobs = jobs.loc[jobs["started_at"].notna()]
    names = ["completed_after", "completed_before", "completed_at", "failed_at", "last_seen"]
    return jobs.assign(**{n: (jobs[n] - jobs["started_at"]).dt.total_seconds() for n in names})


def log_likelihood(curve: pd.DataFrame, jobs: pd.DataFrame) -> float:
    """Sum over the jobs of the log of the probability the curve gives what was seen."""
    total = 0.0
    cif = {outcome: step(curve, outcome) for outcome in ENDINGS}
    for row in jobs.itertuples():
        if row.outcome == "completed" and row.completed_after < row.completed_before:
            p = cif["completed"](row.completed_before) - cif["completed"](row.completed_after)
        elif row.outcome in ENDINGS:
            t = {"completed": row.completed_before, "failed": row.failed_at}.get(
                row.outcome, row.last_seen
            )
            p = cif[row.outcome](t) - cif[row.outcome](t, left=True)
        else:
            p = 1 - sum(f(row.last_seen) for f in cif.values())
        total += float(np.log(p))
    return total
