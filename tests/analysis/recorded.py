"""The shipped cassettes, one rollout at a time: what per-rollout invariants are checked on.

demo holds one rollout; troubled two (two images rolled out at once, sharing its polls): the
first runs with faults and failures, the second's image stays locked by a diff, so its jobs
never start (an idle rollout).
"""

from __future__ import annotations

import functools

import pandas as pd

from cfanalytics import events_from_cassette
from cfanalytics.events import rollout_events, rollouts

from ..conftest import CASSETTES

#: (cassette, position of the rollout in it): every rollout of the shipped cassettes.
ROLLOUTS = (("demo", 0), ("troubled", 0), ("troubled", 1))
IDS = [f"{name}-{index}" for name, index in ROLLOUTS]
#: The rollouts whose jobs ran: invariants about running, ETAs and endings need them.
ACTIVE = ROLLOUTS[:2]
ACTIVE_IDS = IDS[:2]
#: The troubled cassette's idle rollout.
IDLE = ROLLOUTS[2]


@functools.cache
def cassette_events(name: str) -> pd.DataFrame:
    """All events of the shipped cassette ``name``."""
    return events_from_cassette(CASSETTES / f"{name}.yaml")


def rollout_of_cassette(param: tuple[str, int]) -> pd.DataFrame:
    """The events of one rollout of a shipped cassette, as if recorded alone."""
    name, index = param
    events = cassette_events(name)
    return rollout_events(events, rollouts(events)[index])
