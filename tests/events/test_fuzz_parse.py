"""Hostile status bodies through the client and both events readers (issue 7, part 3).

Each property feeds generated bodies (wrong types, huge and negative numbers, progress over
100, millisecond timestamps, numbers as strings, repeated keys, deep nesting, invalid UTF-8)
and holds every reader to one rule: data or a :class:`CfAnalyticsError`, never another
exception; and a value that cannot be read as its documented type ends None / NA and is
kept, as sent, in ``invalid`` (client) or ``extra["__invalid__"]`` (events).
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfanalytics import CfAnalyticsError
from cfanalytics.client import STATUS_FIELDS, RawResponse
from cfanalytics.events import Exchange, conform, events_from_exchanges, exchange_rows, validate

from ..client.test_client import make_client

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
URL = "https://api.multiplay.co.uk/cfp/v1/imageinstall/status?accountserviceid=1"
DATE = (("date", "Tue, 14 Nov 2023 22:13:20 GMT"),)

INTS = ("jobprogress", "jobfailed", "target_imageversionid")
TIMES = ("jobcreated", "jobstart", "jobupdated", "jobeta", "install_at")
FLAGS = ("mirroring", "restart", "success")
TEXTS = ("joberror", "location", "machine", "mirror", "imagepath")

scalars = st.one_of(
    st.none(),
    st.just(""),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 100, 101, -1, 1_700_000_000, 1_700_000_000_000, 2**63, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**25), 10**25).map(str),
    st.sampled_from(["1e3", "²", "١٢", "+5", " 7 ", "1_000", "--5", "true", "no", "abc"]),
    st.text(max_size=8),
)
hostile = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = (*INTS, *TIMES, *FLAGS, *TEXTS, "jobstateid", "jobstatename")


def test_every_status_field_is_fuzzed() -> None:
    """A field added to the client's table is fed hostile values here too."""
    assert {"jobid", *FIELDS} == set(STATUS_FIELDS)


@st.composite
def jobs(draw: st.DrawFn) -> dict[str, Any]:
    """A job: a readable jobid (mostly), any subset of fields with hostile values, extras."""
    job: dict[str, Any] = {"jobid": draw(st.integers(1, 10**6) | hostile)}
    for name in draw(st.lists(st.sampled_from(FIELDS), unique=True)):
        job[name] = draw(hostile)
    job |= draw(st.dictionaries(st.sampled_from(["x", "machineid"]), hostile))
    return job


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    """A status body's text (compact or not, maybe a repeated key) and its jobs."""
    listed = draw(st.lists(jobs(), max_size=4))
    compact = draw(st.booleans())
    text = json.dumps({"installs": listed}, separators=(",", ":") if compact else None)
    if listed and draw(st.booleans()):  # repeat a key, as the documented example does
        text = text.replace("[{", '[{"restart":"x",', 1)
    return text, listed


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _raw(text: str, status: int = 200) -> RawResponse:
    return RawResponse("GET", URL, status, DATE, text)


def _events(text: str) -> pd.DataFrame:
    return events_from_exchanges([Exchange("GET", URL, _raw(text))], run_id="fuzz")


@FUZZ
@given(bodies())
def test_client_reads_or_raises_a_typed_error(body: tuple[str, list[dict[str, Any]]]) -> None:
    """Every field is its documented type or None; None only when empty or flagged."""
    text, listed = body
    client = make_client(lambda request: httpx.Response(200, text=text))
    try:
        status = client.install_status(1)
    except CfAnalyticsError:
        return
    assert len(status) == len(listed)
    for job, sent in zip(status, listed, strict=True):
        for name in (*INTS, *TIMES, *FLAGS, *TEXTS):
            value = getattr(job, name)
            if value is None:
                assert _empty(sent.get(name)) or name in job.invalid, (name, sent.get(name))
            else:
                assert name not in job.invalid
        if job.jobprogress is not None:
            assert 0 <= job.jobprogress <= 100
        if job.jobfailed is not None:
            assert job.jobfailed >= 0


def _flagged(extra: Any) -> dict[str, Any]:
    if extra is None or extra is pd.NA:
        return {}
    invalid: dict[str, Any] = json.loads(extra).get("__invalid__", {})
    return invalid


@FUZZ
@given(bodies())
def test_events_follow_the_schema_and_flag_what_they_cannot_read(
    body: tuple[str, list[dict[str, Any]]],
) -> None:
    """``validate`` passes; a column is NA only where the value was empty or is flagged."""
    text, listed = body
    frame = validate(_events(text))
    jobs_rows = frame[frame["jobid"].notna()]
    if frame["problem"].notna().all():
        return  # the body as a whole was refused (e.g. an unreadable jobid): one error row
    assert len(jobs_rows) == len(listed)
    for (_, row), sent in zip(jobs_rows.iterrows(), listed, strict=True):
        flagged = _flagged(row["extra"])
        for name in (*INTS, *TIMES, *FLAGS, *TEXTS):
            if name in sent and name != "restart" and pd.isna(row[name]):
                assert _empty(sent[name]) or name in flagged, (name, sent[name], row["extra"])
        for name, value in flagged.items():
            expected = sent.get(name, "x")  # "x": the injected first "restart"
            assert value == expected or _nan_equal(value, expected), name


def _nan_equal(a: Any, b: Any) -> bool:
    """Equal, a NaN counting as equal to a NaN (also inside lists and objects)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_nan_equal, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_nan_equal(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


@FUZZ
@given(st.lists(bodies(), min_size=1, max_size=3))
def test_fast_readers_give_the_rows_of_the_general_reader(
    many: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    """The column-wise readers (pyarrow, then Python) and the row reader agree on every body."""
    exchanges = [Exchange("GET", URL, _raw(text)) for text, _ in many]
    fast = events_from_exchanges(exchanges, run_id="fuzz")
    rows = [r for seq, e in enumerate(exchanges) for r in exchange_rows(e, run_id="fuzz", seq=seq)]
    slow = conform(pd.DataFrame(rows))
    pd.testing.assert_frame_equal(fast, slow)


@settings(FUZZ, max_examples=12)
@given(st.sampled_from([1, 900, 5_000, 50_000]), st.sampled_from(["[", '{"a":']), st.booleans())
def test_deep_nesting_is_an_error_row_not_a_crash(depth: int, opener: str, compact: bool) -> None:
    """A body nested deeper than the JSON parsers recurse: a format problem, never a crash.

    Before the fix pyarrow's parser crashed the process (SIGSEGV) at ~20,000 levels, and
    ``json`` raised RecursionError past the client.
    """
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + ("" if opener == "[" else "1") + closer * depth
    space = "" if compact else " "
    text = f'{{"installs":{space}[{{"jobid":{space}1,{space}"x":{space}{nested}}}]}}'
    frame = validate(_events(text))
    assert len(frame) == 1
    client = make_client(lambda request: httpx.Response(200, text=text))
    try:
        job = client.install_status(1).installs[0]
    except CfAnalyticsError:
        assert frame["problem"].iloc[0] == "format"
    else:
        assert job.jobid == 1 and frame["jobid"].iloc[0] == 1


@FUZZ
@given(st.binary(max_size=64), st.sampled_from([b'{"installs": [{"jobid": 1, "location": "', b""]))
def test_invalid_utf8_bodies_are_read_or_refused(noise: bytes, prefix: bytes) -> None:
    """Bytes that are not UTF-8 reach the client as text it reads or refuses with a typed error."""
    content = prefix + noise + (b'"}]}' if prefix else b"")
    client = make_client(lambda request: httpx.Response(200, content=content))
    try:
        status = client.install_status(1)
    except CfAnalyticsError:
        return
    validate(_events(status.raw.text))
