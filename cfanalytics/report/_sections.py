"""The report's sections, each a function of the analyses: what an analyst reads, in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from matplotlib.axes import Axes

from .. import plots
from ..analysis import (
    LATE_GRACE_S,
    OUTCOME_MEANINGS,
    PREDICTORS,
    STALLED_POLLS,
    STATE_MEANINGS,
    first_failure,
    never_queued,
    refusal_sentence,
)
from ..plots import DENSITY_ABOVE
from ._data import ReportData
from ._html import (
    MINUS,
    NA,
    SECONDS,
    SIGNED_SECONDS,
    Formatter,
    Seconds,
    Section,
    cards,
    duration,
    escape,
    figure,
    paragraph,
    percent,
    table,
    when,
    when_in,
)
from ._provenance import Provenance

__all__ = ["SECTIONS", "overview_section", "provenance_section"]

_ERROR_COLUMNS = {
    "n_jobs": "jobs completed with an ETA",  # not all jobs: say so, beside the failure tables
    "n_observations": "ETAs",
    "mae_s": "mean abs. error",
    "bias_s": "mean error (+ late)",
    "hit_rate": "finished by ETA",
}
_MAX_LANES = 60  # a readable number of lanes in one picture

_ERROR_FORMATS: dict[str, Formatter | Seconds] = {
    "mean abs. error": SECONDS,
    "mean error (+ late)": SIGNED_SECONDS,
    "finished by ETA": percent,
}


def _fleet_done(m: pd.Series, share: int) -> tuple[str, str, str]:
    completed, ended = m[f"time_to_{share}_s"], m[f"time_to_{share}_ended_s"]
    if pd.notna(completed):
        note = "from the first queue answer" + _of_queued(m, share)
        return duration(completed), f"to {share} % of all jobs completed", note
    done = f"{m['completed']} of {m['n_jobs']} completed"
    if pd.notna(ended):
        done += f"; {share} % had ended (completed or failed) after {duration(ended)}"
    return "not reached", f"{share} % of all jobs completed", done + _of_queued(m, share)


def _of_queued(m: pd.Series, share: int) -> str:
    """The same share of the queued jobs only, when the API refused some."""
    if m["n_queued"] == m["n_jobs"]:
        return ""
    if not m["n_queued"]:
        return "; no job was queued"
    at = m[f"time_to_{share}_queued_s"]
    when = duration(at) if pd.notna(at) else "not reached"
    return f"; {share} % of the {m['n_queued']} jobs queued: {when}"


def headline(data: ReportData) -> Section:
    """The four questions: how late, where, at what progress, when 90 % done."""
    m = data.metrics
    items = [
        _fleet_done(m, 50),
        _fleet_done(m, 90),
        (
            duration(m["eta_bias_s"], signed=True),
            "mean ETA error",
            "per job, then averaged; + is late",
        ),
        (duration(m["eta_mae_s"]), "mean absolute ETA error", "per job, then averaged"),
        (percent(m["hit_rate"]), "of ETAs met", "job finished by the ETA given"),
        (_skill(m["skill"]), "ETA skill", "error against a naive linear rule; < 1 beats it"),
        (duration(m["duration_p50_s"]), "median install", f"p90 {duration(m['duration_p90_s'])}"),
        (
            f"{m['completed']} / {m['failed']} / {m['unfinished']}",
            "completed / failed / unfinished",
            f"of {m['n_jobs']} jobs{_never_queued(data)}",
        ),
    ]
    return Section("headline", "Headline", [cards(items), paragraph(_answer(data))])


def refusals(data: ReportData) -> Section:
    """The jobs the API would not queue, by reason, with what to do: before any install ran,
    this is what went wrong first."""
    reasons = data.refusal_reasons[list(_REASON_COLUMNS)].rename(columns=_REASON_COLUMNS)
    jobs = data.refusals[list(_REFUSED_COLUMNS)].rename(columns=_REFUSED_COLUMNS)
    at = when_in(data.tz)
    if data.refusals.empty:
        return Section("refusals", "Queue refusals", [paragraph(_NONE_REFUSED)])
    return Section(
        "refusals",
        "Queue refusals",
        [
            paragraph(refusal_sentence(data.refusal_reasons, jobs=len(data.summary))),
            table(reasons, {"first refused at": at, "last refused at": at}),
            "<h3>Each job refused</h3>",
            table(jobs, {"last refused at": at}),
        ],
    )


_NONE_REFUSED = "The API queued every job it was asked to (or none was asked)."
_REASON_COLUMNS = {
    "label": "reason",
    "jobs": "jobs",
    "requests": "queue requests",
    "first_refused_at": "first refused at",
    "last_refused_at": "last refused at",
    "remedy": "what to do",
}
_REFUSED_COLUMNS = {
    "jobid": "job",
    "kind": "kind",
    "location": "location",
    "machine": "machine",
    "requests": "queue requests",
    "last_refused_at": "last refused at",
    "http_status": "HTTP status",
    "error_message": "the API said",
}


def _never_queued(data: ReportData) -> str:
    never = int(never_queued(data.summary).sum())
    refused = len(data.refusals)
    parts = [f"{refused} refused at queue time"] if refused else []
    if never > refused:
        parts.append(f"{never - refused} never queued")
    return "".join(f"; {part}" for part in parts)


def _refused(data: ReportData) -> str:
    """The refusals in a sentence, with what to do: what went wrong first, said first."""
    said = refusal_sentence(data.refusal_reasons, jobs=len(data.summary))
    return f"{said} " if said else ""


def _count(value: Any) -> str:
    return NA if pd.isna(value) else str(int(value))


def _skill(value: Any) -> str:
    return NA if pd.isna(value) else f"{float(value):.2f}"


def _worst(frame: pd.DataFrame, by: str) -> str:
    ranked = frame.dropna(subset=["mae_s"]).sort_values("mae_s", ascending=False)
    if ranked.empty:
        return NA
    top = ranked.iloc[0]
    return f"{top[by]} (mean absolute error {duration(top['mae_s'])})"


def _answer(data: ReportData) -> str:
    m = data.metrics
    bias = m["eta_bias_s"]
    lateness = "after" if pd.notna(bias) and bias > 0 else "before"
    decile = data.by_decile.assign(
        progress=lambda f: f["progress_decile"].map(lambda d: f"{10 * d}-{10 * d + 9} %")
    )
    etas = (  # no ETA was met or missed (nothing ran): nothing to say of them
        f"On average, jobs finished {duration(abs(bias))} {lateness} their ETA. The ETAs "
        f"were worst at progress {_worst(decile, 'progress')} and in location "
        f"{_worst(data.by_location, 'location')}. "
        if pd.notna(bias)
        else ""
    )
    return f"{_refused(data)}{etas}{_when_share(m, 90)}."


def _when_share(m: pd.Series, share: int) -> str:
    at, ended = m[f"time_to_{share}_s"], m[f"time_to_{share}_ended_s"]
    if pd.notna(at):
        return f"{share} % of jobs had completed {duration(at)} after the first queue answer"
    done, jobs = _count(m["completed"]), _count(m["n_jobs"])
    text = (
        f"Only {done} of {jobs} jobs completed, so {share} % never did"
        if m["completed"]
        else f"None of the {jobs} jobs completed"
    )
    if pd.notna(ended):
        text += f"; {share} % had ended (completed or failed) after {duration(ended)}"
    return text


def _draw(plot: Callable[..., Axes], frame: pd.DataFrame, **options: Any) -> Callable[[Axes], Axes]:
    return lambda ax: plot(frame, ax=ax, **options)


def fleet(data: ReportData) -> Section:
    """The rollout over time: states stacked, completion curves, one lane per machine."""
    intervals, lanes_note = _lanes_shown(data)
    lanes = max(int(intervals["jobid"].nunique()), 1)
    return Section(
        "fleet",
        "Fleet over time",
        [
            figure(
                _draw(plots.plot_burnup, data.states),
                caption=(
                    "Jobs in each state at every poll, with the times 50 % and 90 % of all "
                    "jobs had completed."
                ),
            ),
            figure(
                _draw(
                    plots.plot_completion_curve, data.completion, midpoint=data.completion_midpoint
                ),
                caption=(
                    "Share of all jobs completed and failed over time. Most completions are only "
                    "known to lie between two polls: the band is what the polls allow, the solid "
                    "line the maximum-likelihood estimate, the dashed one the window midpoints."
                ),
            ),
            figure(
                _draw(plots.plot_completion_curve, data.durations),
                caption=(
                    f"How long installs take: the same for the {_started(data)} jobs seen "
                    "started, in time since each started."
                ),
            ),
            figure(
                _draw(plots.plot_swimlanes, intervals, by="machine", failures=data.failures),
                caption=(
                    f"{lanes_note}, coloured by the state each poll saw; x: a failure, "
                    "at the time the Failures table gives."
                ),
                size=(9.0, min(2.4 + 0.22 * lanes, 14.0)),
            ),
        ],
    )


def _started(data: ReportData) -> int:
    return int(data.durations["n_jobs"].iloc[0]) if len(data.durations) else 0


def _lanes_shown(data: ReportData) -> tuple[pd.DataFrame, str]:
    """All machines' lanes, or for a big fleet those that failed first, then the slowest."""
    intervals = data.intervals
    machines = intervals["machine"].dropna().unique()
    if len(machines) <= _MAX_LANES:
        return intervals, "One lane per job, named by its machine (or mirror)"
    jobs = data.summary.merge(data.per_job[["jobid", "run_time_s"]], on="jobid", how="left")
    failed = jobs[jobs["outcome"] == "failed"].sort_values("failed_at")
    slow = jobs.sort_values("run_time_s", ascending=False, na_position="last")
    order = pd.concat([failed["machine"], slow["machine"]]).dropna().drop_duplicates()
    chosen = order.iloc[:_MAX_LANES]
    note = (
        f"{len(chosen)} of {len(machines)} machines: those with failures first, then "
        "those with the longest installs; and every mirror"
    )
    keep = intervals["machine"].isin(chosen) | (intervals["kind"] == "mirror")  # feed the rest
    return intervals[keep.fillna(False)], note


def accuracy(data: ReportData) -> Section:
    """How good the ETAs were, and at what progress."""
    errors = data.errors
    worst = data.per_job.nlargest(6, "eta_mae_s")["jobid"].tolist()
    by_decile = data.by_decile.assign(
        progress=lambda f: f["progress_decile"].map(lambda d: f"{10 * d}-{10 * d + 9} %")
    )
    return Section(
        "accuracy",
        "ETA accuracy",
        [
            figure(_draw(plots.plot_eta_vs_actual, errors), caption=_scatter_caption(errors)),
            "<h3>By progress</h3>",
            figure(
                _draw(plots.plot_error_by_decile, errors),
                caption=(f"Error (actual {MINUS} ETA) by the progress at which the ETA was given."),
            ),
            _error_table(by_decile, "progress"),
            "<h3>Progress against time</h3>",
            figure(
                _draw(plots.plot_progress_curves, data.progress),
                caption=(
                    "Reported progress against the share of each job's run time. On the diagonal, "
                    "progress is linear in time and a linear ETA is right; above it, progress runs "
                    "ahead of time and the last percent takes longest; plateaus are stalls."
                ),
            ),
            "<h3>The six jobs with the worst ETAs</h3>",
            figure(
                _draw(plots.plot_eta_trajectories, errors, jobs=worst),
                caption=(
                    "One panel per job, worst first: the ETA each poll gave; dotted: "
                    "when the job actually completed, shaded: the window between the two polls "
                    "that completion lies in. Panels share their axes."
                ),
                size=(9.0, 5.6),
            ),
        ],
    )


def _scatter_caption(errors: pd.DataFrame) -> str:
    head = "Predicted against actual time to go; above the line: late. "
    if len(errors) > DENSITY_ABOVE:
        return head + "Shade: how many polls gave that pair (log scale)."
    return head + "One point per poll; bars: completion seen only between two polls."


def _error_table(frame: pd.DataFrame, by: str) -> str:
    shown = frame.rename(columns=_ERROR_COLUMNS)[[by, *_ERROR_COLUMNS.values()]]
    return table(shown, _ERROR_FORMATS)


def forecast(data: ReportData) -> Section:
    """How the forecast would have done, poll by poll, beside the ETA and the linear rule;
    and, if jobs were still open at the end, when the rest is forecast to finish."""
    found = data.backtest
    scored = found.scores()
    if found.observations.empty:
        return Section("forecast", "Forecast", [paragraph(_NO_BACKTEST)])
    polls = found.observations["observed_at"].nunique()
    lead = (
        f"At {polls} polls, a forecast of every open job's completion was made from what had "
        "been observed up to that poll only (the method: below), then scored against the "
        f"completions, beside Clanforge's ETA and the linear rule: {len(found.observations)} "
        f"predictions of {int(scored['jobs'].iloc[0])} jobs, per job first, then across jobs."
    )
    return Section(
        "forecast",
        "Forecast",
        [
            paragraph(lead),
            table(_predictor_rows(scored), _PREDICTOR_FORMATS),
            figure(
                _draw(plots.plot_predictor_errors, found.scores("progress_decile")),
                caption="Mean absolute error of each predictor by the progress at which it "
                "predicted: lower is better.",
            ),
            *[paragraph(_rollout_forecast(row)) for row in found.rollouts.to_dict("records")],
        ],
    )


_NO_BACKTEST = "No job both ran with an ETA and completed, so no forecast could be scored."
_PREDICTOR_FORMATS: dict[str, Formatter | Seconds] = {
    "mean abs. error": SECONDS,
    "mean error (+ late)": SIGNED_SECONDS,
    "inside its 80 % interval": percent,
    "interval width": SECONDS,
}


def _predictor_rows(scored: pd.DataFrame) -> pd.DataFrame:
    first = scored.iloc[0]
    return pd.DataFrame(
        {
            "predictor": ["forecast", "Clanforge's ETA (jobeta)", "linear rule"],
            "mean abs. error": [first[f"{n}_mae_s"] for n in PREDICTORS],
            "mean error (+ late)": [first[f"{n}_bias_s"] for n in PREDICTORS],
            "inside its 80 % interval": [first["coverage"], None, None],
            "interval width": [first["width_s"], None, None],
        }
    )


def _rollout_forecast(row: dict[str, Any]) -> str:
    """The rollout's time to 90 %, against what was forecast when a quarter had completed."""
    actual = row["time_to_90_s"]
    done = "never reached" if actual is None else f"reached after {duration(actual)}"
    said, low_high = row["forecast_at_25_percent_s"], row["interval_at_25_percent_s"]
    if row["reach_at_25_percent"] is None:
        told = "a quarter of the jobs never completed, so it was never forecast from there"
    elif said is None or pd.isna(said):
        told = (
            "when a quarter of the jobs had completed, the forecast gave it only "
            f"{percent(row['reach_at_25_percent'])} odds of being reached"
        )
    else:
        low, high = low_high
        upper = "never" if high is None or pd.isna(high) else duration(high)
        told = (
            f"when a quarter of the jobs had completed, it was forecast at {duration(said)} "
            f"(80 %: {duration(low)} to {upper})"
        )
    return f"90 % of the jobs completed: {done}; {told}."


def where(data: ReportData) -> Section:
    """ETA accuracy by location and by kind of job."""
    return Section(
        "where",
        "Where",
        [
            "<h3>By location</h3>",
            _error_table(data.by_location, "location"),
            "<h3>By kind</h3>",
            _error_table(data.by_kind, "kind"),
        ],
    )


def failures(data: ReportData) -> Section:
    """Every failed install and why, where failures concentrate, and what the API got wrong."""
    failed = data.failures
    columns = {
        "jobid": "job",
        "kind": "kind",
        "location": "location",
        "machine": "machine",
        "failed_at": "failed at",
        "progress_at_failure": "at progress",
        "error_class": "class",
        "times_failed": "times",
        "requeued": "queued again",
        "outcome": "outcome",
        "error": "error",
    }
    rates = data.failure_rates.rename(columns=_RATE_COLUMNS)
    return Section(
        "failures",
        "Failures",
        [
            paragraph(
                _refused(data)  # what went wrong first, before any install ran
                + f"{len(failed)} of {len(data.summary)} jobs failed at least once. "
                + first_failure(failed, data.api_errors, tz=data.tz)
            ),
            table(
                failed[list(columns)].rename(columns=columns),
                {"failed at": when_in(data.tz), "times": _count, "at progress": _count},
                empty="No job failed.",
            ),
            *_time_to_failure(data),
            "<h3>By location</h3>",
            figure(
                _draw(plots.plot_failure_rates, data.failure_rates),
                caption=("Share of the jobs that ended which failed, per location, worst on top."),
                size=(9.0, 1.5 + 0.3 * len(data.failure_rates)),
            ),
            table(rates, {"failed of ended": percent}),
            "<h3>API trouble</h3>",
            figure(
                _draw(plots.plot_failure_timeline, data.failures, api_errors=data.api_errors),
                caption="Each failure at its time and location, marked by error class; "
                "below, every error answer of the API on the same time axis, a row per "
                "endpoint; a number counts the errors of a bunch too close to tell apart.",
                size=(9.0, 2.0 + 0.4 * data.failure_rates["location"].nunique()),
            ),
            paragraph(_api_trouble(data)),
            "<h3>Squashed, or gone with no known outcome</h3>",
            table(
                data.other_endings.rename(columns={"last_seen": "last seen"}),
                {"last seen": when_in(data.tz)},
                empty="None: no job was squashed, and none vanished with its outcome unknown.",
            ),
        ],
    )


_PROBLEM_WORDS = {
    "http_status": "HTTP",
    "envelope": "error envelopes",
    "format": "unreadable bodies",
    "transport": "without an answer",
}
_RATE_COLUMNS = {
    "n_jobs": "all jobs",
    "n_failed": "failed",
    "n_ended": "ended",
    "failure_rate": "failed of ended",
}


def _time_to_failure(data: ReportData) -> list[str]:
    if data.failures["time_to_failure_s"].isna().all():
        return []
    classes = max(int(data.failures["error_class"].nunique()), 1)
    return [
        figure(
            _draw(plots.plot_time_to_failure, data.failures),
            caption=("How long failed installs ran before failing, per error class."),
            size=(9.0, 1.5 + 0.4 * classes),
        )
    ]


def _api_trouble(data: ReportData) -> str:
    errors, gaps = data.api_errors, data.polling_gaps
    if errors.empty and gaps.empty:
        return "The API answered every request the recorder sent."
    kinds = errors.groupby(["problem", "http_status"], observed=True, dropna=False).size()
    parts = [
        f"{n} {_PROBLEM_WORDS.get(str(problem), str(problem))}"
        + ("" if pd.isna(status) or problem == "envelope" else f" {int(status)}")
        for (problem, status), n in kinds.items()
    ]
    text = f"{len(errors)} error answers ({', '.join(parts) or 'none'})"
    if len(gaps):
        longest = duration(gaps["gap_s"].max())
        text += f"; {len(gaps)} gaps in polling, the longest {longest}"
    return text + ". cfanalytics postmortem SOURCE lists them all."


def stragglers(data: ReportData) -> Section:
    """Jobs that ran past their ETA while still listed, or showed no progress for a while."""
    columns = {
        "jobid": "job",
        "kind": "kind",
        "location": "location",
        "machine": "machine",
        "reason": "why",
        "late_s": "late by",
        "overdue_since": "overdue since",
        "stalled_since": "stalled since",
        "longest_stall_polls": "longest stall (polls)",
        "outcome": "outcome",
    }
    worst_first = data.stragglers.sort_values(  # the latest first, then the longest stalls
        ["late_s", "longest_stall_polls"], ascending=False, na_position="last", kind="stable"
    )
    shown = worst_first[list(columns)].rename(columns=columns)
    formats: dict[str, Formatter | Seconds] = {
        "overdue since": when_in(data.tz),
        "stalled since": when_in(data.tz),
        "late by": SIGNED_SECONDS,
    }
    return Section(
        "stragglers",
        "Stragglers",
        [
            paragraph(
                f"{len(shown)} of {len(data.summary)} jobs were still running more than "
                f"{duration(LATE_GRACE_S)} past the first ETA they were given, or reported the "
                f"same progress for {STALLED_POLLS} polls or more in a row. Late by: the job's "
                "completion (or, if it did not complete, its last poll seen running) minus "
                "that first ETA."
            ),
            table(shown, formats, empty="No straggler."),
        ],
    )


def jobs(data: ReportData) -> Section:
    """One row per job: outcome, times and ETA accuracy."""
    merged = data.summary.merge(data.per_job, on="jobid", how="left", suffixes=("", "_job"))
    columns = {
        "jobid": "job",
        "kind": "kind",
        "location": "location",
        "machine": "machine",
        "outcome": "outcome",
        "started_at": "started",
        "completed_at": "completed",
        "queue_wait_s": "queue wait",
        "run_time_s": "run time",
        "n_etas": "ETAs",
        "eta_mae_s": "mean abs. error",
        "eta_bias_s": "mean error (+ late)",
        "revisions": "ETA changes",
        "error": "error",
    }
    formats: dict[str, Formatter | Seconds] = {
        "started": when_in(data.tz),
        "completed": when_in(data.tz),
        "queue wait": SECONDS,
        "run time": SECONDS,
        "mean abs. error": SECONDS,
        "ETA changes": _count,
        "mean error (+ late)": SIGNED_SECONDS,
    }
    shown = merged[list(columns)].rename(columns=columns)
    return Section(
        "jobs",
        "Jobs",
        [
            f"<details><summary>All {len(shown)} jobs</summary>{table(shown, formats)}</details>",
        ],
    )


def method(_: ReportData) -> Section:
    """How the numbers are defined, and the words the report uses for states and outcomes."""
    notes = [
        f"Error = actual completion {MINUS} ETA: positive when a job finished later than "
        "predicted.",
        "The status list only shows incomplete jobs, so most completions are seen only "
        "between the last poll that listed a job and the first that did not. The point "
        "estimate is the middle of that window; the bars and bands show the window.",
        "A poll's ETA counts as met when the job finished by it (midpoint of the window); "
        "for ETAs that fall inside a job's completion window the data cannot tell.",
        "Averages are taken per job first, then across jobs, so long jobs with many polls "
        "do not dominate.",
        "Skill compares Clanforge's ETA with a naive rule (elapsed time scaled by progress): "
        "below 1, the ETA beats the rule.",
        "Failed requests (5xx, timeouts, bad bodies) never count as a job's absence.",
        "Forecast: each running job's time to go is the median, over the jobs of its kind "
        "that had completed, of the time each still had to go from the same progress, "
        "scaled by how much slower this job got there (to a power chosen on the completed "
        "jobs); the 80 % interval comes from how wrong that was, job left out, on the "
        "completed ones. Jobs not running yet wait for their mirror's job and a free slot "
        "of their location. It uses only what was observed up to the poll it is made at; "
        "with a history, the earlier rollouts of the ASID teach it too.",
    ]
    return Section(
        "method",
        "Method",
        [_items(notes), "<h3>Words</h3>", _terms(VOCABULARY)],
    )


#: The report's words, each defined once: states at a poll, outcomes, lateness, failure time.
VOCABULARY: dict[str, str] = {
    **{f"{state} (state)": text for state, text in STATE_MEANINGS.items()},
    **{f"{outcome} (outcome)": text for outcome, text in OUTCOME_MEANINGS.items()},
    "refused at queue time": "every queue request sent for the job got an error, so it was "
    "never queued; its outcome stays unfinished",
    "late by": f"the job's completion {MINUS} the first ETA it was given while running; for a "
    "job that did not complete, its last poll seen running (a lower bound)",
    "overdue": f"listed running more than {duration(LATE_GRACE_S)} past the first ETA it was given",
    "stalled": f"listed running at the same progress for {STALLED_POLLS} polls or more in a row",
    "failed at": "the API's jobupdated of the job's first Failed listing (else the time of that "
    "poll): the failures table, the swimlanes and the failure plots all use it",
    "times": "to the second, in the time zone the header states",
}


def _items(notes: list[str]) -> str:
    return f"<ul>{''.join(f'<li>{escape(n)}</li>' for n in notes)}</ul>"


def _terms(words: dict[str, str]) -> str:
    rows = "".join(f"<dt>{escape(w)}</dt><dd>{escape(t)}</dd>" for w, t in words.items())
    return f"<dl class='terms'>{rows}</dl>"


def overview_section(rollouts: list[tuple[str | None, pd.Series]]) -> Section:
    """The rollouts of the source side by side, each reported on below on its own."""
    frame = pd.DataFrame(
        [
            {
                "rollout": name,
                "jobs": m["n_jobs"],
                "completed": m["completed"],
                "failed": m["failed"],
                "unfinished": m["unfinished"],
                "to 90 % completed": m["time_to_90_s"],
                "ETA mean abs. error": m["eta_mae_s"],
                "ETA mean error (+ late)": m["eta_bias_s"],
            }
            for name, m in rollouts
        ]
    )
    formats: dict[str, Formatter | Seconds] = {
        "to 90 % completed": SECONDS,
        "ETA mean abs. error": SECONDS,
        "ETA mean error (+ late)": SIGNED_SECONDS,
    }
    note = paragraph(
        "A rollout is the install jobs of one image version on one ASID (ASID/version). "
        "Each is analysed on its own below: nothing of one is counted in another."
    )
    return Section("rollouts", "Rollouts", [note, table(frame, formats)])


def provenance_section(source: Provenance, *, tz: str = "UTC") -> Section:
    """Where the numbers come from, down to the source file's hash; times in ``tz``."""
    rows = [
        ("cfanalytics", source.version),
        ("source", f"{source.source} ({source.kind})"),
        ("SHA-256", source.sha256),
        ("API host", source.api_host or "not recorded"),
        ("ASID", ", ".join(map(str, source.asids)) or NA),
        ("runs", ", ".join(source.run_ids)),
        ("first response", when(source.first_observed, tz)),
        ("last response", when(source.last_observed, tz)),
        *((str(k), _param(v)) for k, v in source.parameters.items()),
    ]
    frame = pd.DataFrame(rows, columns=["", "value"])
    return Section("provenance", "Provenance", [table(frame)])


def _param(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) if value else "none"
    return str(value)


SECTIONS: tuple[Callable[[ReportData], Section], ...] = (
    headline,
    refusals,
    fleet,
    accuracy,
    forecast,
    where,
    stragglers,
    failures,
    jobs,
    method,
)
