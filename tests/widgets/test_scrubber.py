"""The replay scrubber, headless: a recorded rollout poll by poll, driven by its slider
and Play control, and reloaded from a source that grows."""

from __future__ import annotations

import pandas as pd
import pytest

from cfanalytics import FleetTimeline, events_from_cassette
from cfanalytics.widgets import ReplayScrubber

from ..conftest import CASSETTES
from ..live.doubles import PNG, run


def test_scrubber_shows_the_fleet_at_each_poll_and_what_happened_later() -> None:
    """Slider stops at every poll; at() is the timeline's snapshot; the view shows it."""
    events = events_from_cassette(CASSETTES / "demo.yaml")
    timeline = FleetTimeline(events)

    async def scenario() -> None:
        scrubber = ReplayScrubber(CASSETTES / "demo.yaml")
        assert scrubber.slider.max == len(timeline) - 1 and scrubber.slider.value == 0
        first = scrubber.at()
        pd.testing.assert_frame_equal(first, timeline.at(timeline.times[0]))
        assert f"Poll 1 of {len(timeline)}" in scrubber.summary.value
        scrubber.show(-1)
        assert scrubber.time == timeline.times[-1]
        assert f"Poll {len(timeline)} of {len(timeline)}" in scrubber.summary.value
        end = scrubber.at()
        assert (end["state"] == "completed").sum() > (first["state"] == "completed").sum()
        assert scrubber.table.value.count("<tr data-jobid=") == len(end)
        assert "completed" in scrubber.table.value
        scrubber.play.value = 3  # Play drives the slider
        assert scrubber.slider.value == 3 and scrubber.time == timeline.times[3]
        assert bytes(scrubber.plot.value).startswith(PNG)
        assert not scrubber.tasks.errors

    run(scenario)


def test_scrubber_reloads_from_a_live_source() -> None:
    """A source with .events is read again on reload, which goes to the newest poll."""

    class Growing:
        def __init__(self) -> None:
            self.all = events_from_cassette(CASSETTES / "demo.yaml")
            self.events = self.all.iloc[:0]

    source = Growing()
    scrubber = ReplayScrubber(source)
    assert "Nothing recorded yet" in scrubber.summary.value and scrubber.slider.disabled
    source.events = source.all
    scrubber.reload(object())  # as LiveMonitor.on_finished calls it
    assert not scrubber.slider.disabled and scrubber.slider.value == scrubber.slider.max > 0
    with pytest.raises(TypeError, match="events table"):
        ReplayScrubber(42)
