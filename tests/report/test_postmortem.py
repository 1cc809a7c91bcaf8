"""The postmortem in Python: every table of a recording, its lead and its Markdown draft
(``cfanalytics postmortem`` prints the same object; its CLI tests are in tests/analysis)."""

from __future__ import annotations

import pandas as pd
import pytest

import cfanalytics as cf
from cfanalytics.report import Postmortem, postmortem

from ..conftest import CASSETTES


@pytest.fixture(scope="module")
def troubled() -> Postmortem:
    return postmortem(cf.load_source(CASSETTES / "troubled.yaml"), source="troubled.yaml")


def test_tables_are_the_analyses_of_the_recording(troubled: Postmortem) -> None:
    """Each table is what the analysis function gives for the same events, unchanged."""
    events = cf.load_source(CASSETTES / "troubled.yaml")
    summary = cf.job_summary(events)
    tables = troubled.tables()
    names = "refusal_reasons queue_refusals failures api_error_stretches api_errors other_endings"
    assert list(tables) == [*names.split(), "polling_gaps", "by_location", "by_mirror"]
    pd.testing.assert_frame_equal(tables["queue_refusals"], cf.analysis.queue_refusals(events))
    pd.testing.assert_frame_equal(tables["failures"], cf.failures(events, summary=summary))
    pd.testing.assert_frame_equal(tables["api_errors"], cf.api_errors(events))
    pd.testing.assert_frame_equal(tables["by_mirror"], cf.failure_rates(summary, "mirror"))
    first, idle = troubled.rollouts
    assert troubled.lead.startswith(f"{first}: The first failure was job")
    assert f"{idle}: 24 of 24 jobs were refused at queue time (24 image locked by diff " in (
        troubled.lead
    )
    assert "reject or finish diff 218599, then queue the jobs again. No install failed." in (
        troubled.lead
    )


def test_sections_cut_columns_and_keep_rows(troubled: Postmortem) -> None:
    """The readable sections keep every row, with the columns a reader needs first."""
    sections = dict(troubled.sections())
    failed = sections["Failed installs"]
    assert len(failed) == len(troubled.failures)
    assert list(failed.columns[:4]) == ["rollout", "jobid", "kind", "location"]  # 2 rollouts
    assert (sections["Failure rate by mirror, worst first"]["failure_rate"] <= 1).all()


def test_markdown_draft_escapes_pipes_and_says_none() -> None:
    """Pipes in API text cannot break a table; an empty table reads "None."."""
    events = cf.load_source(CASSETTES / "demo.yaml")
    draft = postmortem(events, source="demo.yaml").markdown()
    (rollout,) = cf.rollouts(events)
    assert draft.startswith(f"# Postmortem draft: demo.yaml, rollout {rollout}\n")
    assert "## API errors by kind and stretch of time (0)\n\nNone." in draft
    from cfanalytics.report._postmortem import markdown_table

    table = markdown_table(pd.DataFrame({"error": ["a | b"], "at": [pd.NaT]}))
    assert table.splitlines()[2] == "| a \\| b |  |"


def test_markdown_draft_shows_api_text_as_text() -> None:
    """A location or error text carrying HTML is escaped in the draft's lead and tables: a
    ticket shows it, never renders or runs it."""
    from cfanalytics.report._postmortem import markdown_table

    from ..analysis.test_summary import FAILED, Recording, job

    rec = Recording()
    hostile = "<b onmouseover=alert(1)>Fra</b>"
    rec.poll(0, job(1, 4, location=hostile, jobstart=None))
    rec.poll(1, job(1, FAILED, location=hostile, joberror="disk <script>x()</script> full"))
    draft = postmortem(rec.events(), source="<i>x</i>.yaml").markdown()
    assert "<b " not in draft and "<script>" not in draft and "<i>" not in draft
    assert "&lt;b onmouseover=alert(1)&gt;Fra&lt;/b&gt;" in draft
    assert "&lt;script&gt;" in draft and "&lt;i&gt;x&lt;/i&gt;.yaml" in draft
    table = markdown_table(pd.DataFrame({"error": ["a & b\nc"]}))
    assert table.splitlines()[2] == "| a &amp; b c |"
