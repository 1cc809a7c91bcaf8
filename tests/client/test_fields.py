"""The one table of field rules: its shape, and how one rule reads a value."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from cfanalytics.client import (
    FIELDS,
    STATUS_FIELDS,
    FieldRule,
    InstallJob,
    JobFields,
    QueueResult,
    state_id_of,
)

LEFTOVERS = {"extra", "invalid", "duplicates"}


def _typed_fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} - LEFTOVERS


def test_the_table_names_every_typed_field_of_the_results() -> None:
    """Job fields, status entries and queue answers read exactly the fields the table lists."""
    job = {name for name, rule in FIELDS.items() if rule.sent_in == "job"}
    assert job == _typed_fields(JobFields)
    assert set(STATUS_FIELDS) == _typed_fields(InstallJob)
    queue = {name for name, rule in FIELDS.items() if rule.sent_in == "queue"}
    assert job | queue == _typed_fields(QueueResult) - {"jobid", "kind", "raw"}


def test_bounds_are_the_documented_ranges() -> None:
    """Progress is a percent, failures a count, and times unix seconds (not milliseconds)."""
    assert FIELDS["jobprogress"].bounds == range(101)
    assert FIELDS["jobfailed"].bounds == range(2**63)
    times = [rule for rule in FIELDS.values() if rule.type == "time"]
    assert {rule.name for rule in times} == {
        "jobcreated",
        "jobstart",
        "jobupdated",
        "jobeta",
        "install_at",
    }
    assert all(rule.bounds == range(10**11) for rule in times)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("jobprogress", "55", 55),
        ("jobprogress", 12.0, 12),
        ("jobprogress", " 7 ", 7),
        ("jobfailed", True, 1),
        ("jobstateid", 9, 9),  # no bounds: an unknown state id is still an id
        ("jobstart", "1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("mirroring", "YES", True),
        ("restart", 0, False),
        ("machine", 1234, "1234"),
        ("machine", 1.5, "1.5"),
    ],
)
def test_a_rule_reads_its_type(name: str, value: Any, expected: Any) -> None:
    """Numbers come from ints, integral floats and digit strings; flags from 0/1 and words."""
    assert FIELDS[name].read(value) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jobprogress", 101),
        ("jobprogress", 1.5),
        ("jobprogress", "²"),
        ("jobfailed", -1),
        ("jobid", 2**63),
        ("jobcreated", 10**11),  # milliseconds, most likely
        ("jobcreated", -1),
        ("jobstateid", "x"),
        ("mirroring", 2),
        ("mirroring", 1.0),
        ("machine", True),
        ("machine", [1]),
    ],
)
def test_a_rule_refuses_what_is_not_its_type(name: str, value: Any) -> None:
    """Out of bounds or of another type: ValueError (the readers flag it, never clip it)."""
    with pytest.raises(ValueError):
        FIELDS[name].read(value)


def test_state_names_map_to_ids_in_any_spelling() -> None:
    """Both spellings of state 5, any case, spaces around; anything else has no id."""
    assert [state_id_of(n) for n in ("Completed", "complete", " failed ", "Squashed")] == [
        5,
        5,
        6,
        7,
    ]
    assert [state_id_of(n) for n in ("Mystery", None, 3, "")] == [None] * 4


def test_a_time_rule_needs_bounds() -> None:
    """A time without bounds could overflow the datetime: the table refuses to hold one."""
    with pytest.raises(ValueError, match="bounds"):
        FieldRule("when", "time", "job")
