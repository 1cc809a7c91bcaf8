"""Which jobs an analysis looks at: the ones of some locations or kinds, alone.

:func:`select_jobs` cuts a recording down to the jobs whose attributes match, keeping every
response they need (polls that listed none of them stay, as empty lists), so an analysis
of the cut is the one of those jobs watched alone: a report of Frankfurt's machine jobs.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..events import SCHEMA, job_events, validate
from ._columns import returns
from ._summary import job_summary

__all__ = ["SELECTABLE", "select_jobs"]

#: The job attributes :func:`select_jobs` matches on.
SELECTABLE = ("location", "kind", "mirror", "machine")


@returns(SCHEMA)
def select_jobs(events: pd.DataFrame, **attributes: str | Sequence[str] | None) -> pd.DataFrame:
    """The events of the jobs whose attributes (:data:`SELECTABLE`) match: each given as a
    value or a list of values (any of them), None for any. ``select_jobs(events,
    location=["Frankfurt", "London"], kind="machine")``. A job's attributes are its
    summary's (its last snapshot's). Raises ``ValueError`` naming the values present when
    one matches no job."""
    unknown = sorted(set(attributes) - set(SELECTABLE))
    if unknown:
        raise ValueError(f"cannot select jobs by {', '.join(unknown)}: use {', '.join(SELECTABLE)}")
    events = validate(events)
    jobs = job_summary(events)
    keep = pd.Series(True, index=jobs.index)
    for name, wanted in attributes.items():
        if wanted is None:
            continue
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        present = jobs[name].astype("string")
        missing = [v for v in values if not present.eq(v).any()]
        if missing:
            found = ", ".join(sorted(present.dropna().unique())) or "none"
            raise ValueError(f"no job has {name} {', '.join(missing)}; found: {found}")
        keep &= present.isin(values).fillna(False)
    return job_events(events, set(jobs.loc[keep.to_numpy(dtype=bool), "jobid"].astype(int)))
