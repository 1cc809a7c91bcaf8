"""The events schema and the rows built from recorded exchanges."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cfanalytics.client import STATUS_FIELDS, RawResponse
from cfanalytics.events import (
    BOOL,
    COLUMNS,
    INT,
    LABEL,
    SCHEMA,
    STAMP_HEADER,
    TEXT,
    TIME,
    Exchange,
    category,
    concat_events,
    conform,
    empty_events,
    events_from_exchanges,
    exchange_rows,
    is_label,
    labels,
    validate,
)
from cfanalytics.exceptions import SchemaError

BASE = "https://api.multiplay.co.uk"
STATUS_URL = f"{BASE}/cfp/v1/imageinstall/status?accountserviceid=7"
DATE = "Mon, 02 Nov 2026 09:00:00 GMT"


def raw(url: str, body: Any, status: int = 200, **headers: str) -> RawResponse:
    text = body if isinstance(body, str) else json.dumps(body)
    pairs = (("date", DATE), *((k.replace("_", "-"), v) for k, v in headers.items()))
    return RawResponse("GET", url, status, pairs, text)


def events(*responses: RawResponse | Exchange) -> pd.DataFrame:
    exchanges = [r if isinstance(r, Exchange) else Exchange(r.method, r.url, r) for r in responses]
    return events_from_exchanges(exchanges, run_id="run-1")


JOB = {
    "jobid": 11,
    "jobcreated": 1793609100,
    "joberror": None,
    "jobeta": 1793610600,
    "jobfailed": 0,
    "jobprogress": 40,
    "jobstart": "1793610000",
    "jobstateid": 4,
    "jobstatename": "Running",
    "jobupdated": 1793610300,
    "mirroring": False,
    "restart": 1,
    "location": "London",
    "machine": 31001,
    "imagepath": "/games/arena/server",
    "install_at": None,
    "mirror": "mirror-lon-01",
    "target_imageversionid": 21,
}


def test_schema_is_typed_without_object_columns() -> None:
    """The empty table validates and no column falls back to object."""
    frame = validate(empty_events())
    assert tuple(frame.columns) == COLUMNS
    assert not any(dtype is object or str(dtype) == "object" for dtype in frame.dtypes)
    assert str(frame["observed_at"].dtype) == "datetime64[us, UTC]"
    assert list(frame["state"].cat.categories) == [
        "Created",
        "Pending",
        "Queued",
        "Running",
        "Complete",
        "Failed",
        "Squashed",
    ]


def test_validate_rejects_wrong_tables() -> None:
    """Missing columns, unknown columns and wrong dtypes are SchemaErrors."""
    with pytest.raises(SchemaError, match="missing"):
        validate(pd.DataFrame({"jobid": [1]}))
    frame = empty_events()
    frame["jobid"] = frame["jobid"].astype("float64")
    with pytest.raises(SchemaError, match="jobid"):
        validate(frame)
    with pytest.raises(SchemaError, match="not in the events schema"):
        conform(pd.DataFrame({"colour": ["red"]}))


def test_status_rows_one_per_job_typed() -> None:
    """Each listed job is a row with typed fields; the run and response order are kept."""
    frame = validate(events(raw(STATUS_URL, {"installs": [JOB, {**JOB, "jobid": 12}]})))
    assert list(frame["jobid"]) == [11, 12]
    row = frame.iloc[0]
    assert row["run_id"] == "run-1" and row["seq"] == 0 and row["endpoint"] == "status"
    assert row["asid"] == 7 and row["http_status"] == 200 and pd.isna(row["problem"])
    assert row["state"] == "Running" and row["kind"] == "machine" and row["machine"] == "31001"
    assert row["jobstart"] == pd.Timestamp(1793610000, unit="s", tz="UTC")
    assert row["observed_at"] == pd.Timestamp("2026-11-02T09:00:00Z")
    assert bool(row["restart"]) is True and pd.isna(row["extra"])


def test_empty_status_is_one_row_without_job() -> None:
    """A successful poll of an empty list is still an observation."""
    frame = events(raw(STATUS_URL, {"installs": []}))
    assert len(frame) == 1 and pd.isna(frame["jobid"][0]) and pd.isna(frame["problem"][0])


def test_stamp_refines_the_date_header() -> None:
    """The recorder's sub-second stamp wins over the 1-second Date header."""
    stamp = "2026-11-02T09:00:00.250000Z"
    frame = events(raw(STATUS_URL, {"installs": [JOB]}, **{STAMP_HEADER: stamp}))
    assert frame["observed_at"][0] == pd.Timestamp(stamp)


def test_quirks_are_read_and_kept() -> None:
    """Missing jobstateid, 'Completed', unknown fields and duplicate keys all survive."""
    text = (
        '{"installs": [{"jobid": 5, "jobstatename": "Completed", "restart": 0, "restart": 1,'
        ' "fleet": "eu", "jobprogress": "lots"}]}'
    )
    row = events(raw(STATUS_URL, text)).iloc[0]
    assert row["jobstateid"] == 5 and row["state"] == "Complete"
    assert json.loads(row["extra"]) == {
        "fleet": "eu",
        "__invalid__": {"jobprogress": "lots"},
        "__duplicates__": {"restart": [0, 1]},
    }


@pytest.mark.parametrize(
    ("mirroring", "body", "kind", "column"),
    [
        ("true", {"versionmirrorid": 9, "jobstateid": 3}, "mirror", "versionmirrorid"),
        (
            "false",
            {"machinejobid": 9, "installs_squashed": 2, "jobstateid": 3},
            "machine",
            "machinejobid",
        ),
        ("bogus", {"machinejobid": 9, "jobstateid": 3}, "machine", "machinejobid"),
    ],
)
def test_queue_rows(mirroring: str, body: dict[str, Any], kind: str, column: str) -> None:
    """A queue answer is one row; the job id comes from the path, the kind from mirroring."""
    url = f"{BASE}/cfp/v1/imageinstall/321/queue?accountserviceid=7&mirroring={mirroring}"
    row = events(raw(url, body)).iloc[0]
    assert row["endpoint"] == "queue" and row["jobid"] == 321 and row["kind"] == kind
    assert row[column] == 9 and row["state"] == "Queued"


def test_error_rows() -> None:
    """Envelopes, HTTP errors, garbage and transport failures are rows with a problem."""
    queue = f"{BASE}/cfp/v1/imageinstall/321/queue?accountserviceid=7&mirroring=true"
    envelope = {
        "success": False,
        "error": True,
        "error_code": 1,
        "error_message": "image locked by diffid: 5",
    }
    failed_at = datetime(2026, 11, 2, 9, 1, tzinfo=UTC)
    frame = events(
        raw(queue, envelope),
        raw(STATUS_URL, {"error_message": "boom"}, status=503),
        raw(STATUS_URL, "<html>502</html>"),
        Exchange("GET", STATUS_URL, None, "ReadTimeout: slow", failed_at),
    )
    assert list(frame["problem"]) == ["envelope", "http_status", "format", "transport"]
    assert list(frame["seq"]) == [0, 1, 2, 3]
    first = frame.iloc[0]
    assert first["jobid"] == 321 and first["kind"] == "mirror" and bool(first["success"]) is False
    assert first["error_code"] == 1 and first["error_message"] == "image locked by diffid: 5"
    assert frame["http_status"][1] == 503 and frame["error_message"][1] == "boom"
    assert "not valid JSON" in frame["error_message"][2]
    assert pd.isna(frame["http_status"][3]) and frame["observed_at"][3] == pd.Timestamp(failed_at)
    assert frame["jobid"][1:].isna().all()


def test_other_endpoints_keep_their_body() -> None:
    """A response from an endpoint the toolkit does not model is kept in extra."""
    frame = events(raw(f"{BASE}/cfp/v1/server/list?accountserviceid=7", {"servers": []}))
    assert frame["endpoint"][0] == "other"
    assert json.loads(json.loads(frame["extra"][0])["body"]) == {"servers": []}


def test_image_status_row() -> None:
    """The v2 rollout counts are one row, counts in extra."""
    frame = events(raw(f"{BASE}/cfp/v2/project/7/image/4101/status", {"pending_machines": 3}))
    assert frame["endpoint"][0] == "image_status" and frame["asid"][0] == 7
    assert json.loads(frame["extra"][0])["pending_machines"] == 3


def test_every_status_field_column_has_the_dtype_of_its_rule() -> None:
    """The client's field table and the schema agree: ints and states are Int64, times
    UTC datetimes, flags boolean, text string or label (``jobstatename`` has no column)."""
    dtype_of = {"int": (INT,), "state": (INT,), "time": (TIME,), "flag": (BOOL,)}
    dtype_of["text"] = (TEXT, LABEL)
    columns = {name: rule for name, rule in STATUS_FIELDS.items() if name in SCHEMA}
    assert set(STATUS_FIELDS) - set(columns) == {"jobstatename"}
    for name, rule in columns.items():
        dtype = SCHEMA[name]
        if isinstance(dtype, pd.Int8Dtype | pd.Int16Dtype):  # narrow only where bounds fit
            info = np.iinfo(dtype.numpy_dtype)
            assert rule.bounds is not None and info.min <= rule.bounds[0], name
            assert rule.bounds[-1] <= info.max, name
            continue
        assert any(dtype is allowed for allowed in dtype_of[rule.type]), name


def test_every_schema_dtype_is_applied() -> None:
    """Built frames carry exactly the declared dtypes."""
    frame = events(raw(STATUS_URL, {"installs": [JOB]}))
    for name, dtype in SCHEMA.items():
        assert is_label(frame[name].dtype) if dtype is LABEL else frame[name].dtype == dtype, name


def test_labels_are_categoricals_of_the_strings_present_sorted() -> None:
    """Repeated text is categorical: its categories the strings present, in text order, so
    it sorts and groups as text; any categorical or text input gives the same labels."""
    expected = pd.Categorical(["b", None, "a", "b"], categories=["a", "b"])
    for values in (
        ["b", None, "a", "b"],
        pd.array(["b", None, "a", "b"], dtype=TEXT),
        pd.Categorical(["b", None, "a", "b"], categories=["z", "b", "a"]),
    ):
        got = labels(values)
        assert is_label(got.dtype)
        assert list(got.categories) == ["a", "b"]
        assert got.tolist() == expected.tolist()
    assert not is_label(pd.CategoricalDtype(["b", "a"]))  # unsorted
    assert not is_label(category(("a", "b"), ordered=True))
    assert not is_label(TEXT)
    frame = conform(pd.DataFrame({"location": ["Sydney", "London"]}))
    assert list(frame["location"].cat.categories) == ["London", "Sydney"]
    full = empty_events().reindex(range(2)).assign(location=frame["location"].astype(TEXT))
    assert is_label(validate(full)["location"].dtype)  # text (a concat's) is made labels again
    with pytest.raises(SchemaError, match="location"):
        validate(full.assign(location=pd.array([1, 2], dtype=INT)))


def test_concat_events_gives_labels_as_pandas_3_does_on_any_pandas() -> None:
    """A label all missing in one table and present in another comes out as text (pandas 2's
    pd.concat would keep the other table's categories, and warn), which conform makes a label
    again; a label with the same categories in every table stays as it is."""
    some = empty_events().reindex(range(2)).assign(location=["Sydney", "London"], run_id="r")
    none = empty_events().reindex(range(1)).assign(run_id="r")
    both = concat_events([conform(some), conform(none)])
    assert both["location"].dtype == TEXT and is_label(both["run_id"].dtype)
    location = conform(both)["location"]
    assert is_label(location.dtype) and list(location.cat.categories) == ["London", "Sydney"]
    assert location.iloc[:2].tolist() == ["Sydney", "London"] and location.isna().iloc[2]


@pytest.mark.parametrize(("column", "value"), [("jobprogress", 300), ("http_status", 70_000)])
def test_narrow_numbers_out_of_range_are_refused_not_wrapped(column: str, value: int) -> None:
    """jobprogress is Int8 and http_status Int16: a value they cannot hold (from a frame or
    a file written by hand) is a SchemaError, never a wrapped number."""
    frame = empty_events().reindex(range(2)).astype({column: INT})
    frame[column] = pd.array([value, None], dtype=INT)
    with pytest.raises(SchemaError, match=column):
        conform(frame)
    frame[column] = pd.array([100, None], dtype=INT)
    assert conform(frame)[column].tolist()[0] == 100


def rowwise(exchanges: list[Exchange]) -> pd.DataFrame:
    """The reference: every exchange read row by row by the client's own readers."""
    rows = [
        row
        for seq, exchange in enumerate(exchanges)
        for row in exchange_rows(exchange, run_id="run-1", seq=seq)
    ]
    return conform(pd.DataFrame(rows))


QUIRKY_JOBS = [
    JOB,
    {**JOB, "jobid": 12, "jobstart": None, "jobeta": None, "machine": None},
    {**JOB, "jobid": 13, "jobstart": 1793610000, "mirroring": 1, "restart": "false"},
    {**JOB, "jobid": 14, "jobprogress": "55", "jobfailed": True, "mirroring": "TRUE"},
    {**JOB, "jobid": 15, "jobprogress": 12.0, "jobeta": "soon", "restart": 2.0},
    {**JOB, "jobid": 16, "jobcreated": -5, "jobupdated": 1.5e9, "location": 7},
    {**JOB, "jobid": 17, "jobstart": "", "joberror": "", "fleet": {"id": [1, {"a": 2}]}},
    {k: v for k, v in JOB.items() if k != "jobstateid"}
    | {"jobid": 18, "jobstatename": "Completed"},
    {**JOB, "jobid": 19, "jobstateid": 9, "jobstatename": "Mystery", "mirroring": None},
    {**JOB, "jobid": 20, "jobstateid": "x", "jobstatename": " failed "},
    {**JOB, "jobid": 21, "jobcreated": 2**63, "jobupdated": 10**11, "jobfailed": 2**64},
]


@pytest.mark.parametrize("split", [1, 3, len(QUIRKY_JOBS)])
def test_column_reader_matches_the_row_reader(split: int) -> None:
    """The fast column-wise path gives exactly the rows of the client's row-wise readers."""
    bodies = [
        json.dumps({"installs": QUIRKY_JOBS[i : i + split]})
        for i in range(0, len(QUIRKY_JOBS), split)
    ]
    bodies[0] = bodies[0].replace('"restart": 1', '"restart": 0, "restart": 1', 1)
    exchanges = [Exchange("GET", STATUS_URL, raw(STATUS_URL, b)) for b in bodies]
    exchanges.insert(1, Exchange("GET", STATUS_URL, raw(STATUS_URL, {"installs": []})))
    exchanges.append(Exchange("GET", STATUS_URL, raw(STATUS_URL, "{bad json")))
    beyond = {"installs": [{**JOB, "jobid": 2**63}]}  # no readable jobid: a format problem
    exchanges.append(Exchange("GET", STATUS_URL, raw(STATUS_URL, beyond)))
    fast = events_from_exchanges(exchanges, run_id="run-1")
    pd.testing.assert_frame_equal(fast, rowwise(exchanges))
    assert fast["extra"].notna().sum() >= 5
    assert fast["problem"].iloc[-1] == "format"


def test_column_reader_matches_on_the_shipped_cassettes() -> None:
    """Both readers agree on every interaction of the shipped cassettes."""
    from pathlib import Path

    from cfanalytics.recording import load_cassette

    for name in ("demo", "troubled"):
        cassette = load_cassette(Path(__file__).parents[2] / "cassettes" / f"{name}.yaml")
        exchanges = [Exchange(i.method, i.uri, i.to_raw()) for i in cassette]
        pd.testing.assert_frame_equal(
            events_from_exchanges(exchanges, run_id="run-1"), rowwise(exchanges)
        )


CLEAN_JOBS = [
    JOB,
    {**JOB, "jobid": 12, "jobstart": None, "jobeta": None, "machine": None, "restart": 0},
    {**JOB, "jobid": 13, "jobstart": "", "joberror": "", "mirroring": True},
    {k: v for k, v in JOB.items() if k != "jobstateid"}
    | {"jobid": 14, "jobstatename": "Completed"},
    {**JOB, "jobid": 15, "jobstateid": 9, "jobstatename": "Mystery", "mirroring": None},
]


def test_arrow_reader_takes_clean_bodies_and_matches() -> None:
    """Clean bodies go through pyarrow, and give the rows of the client's readers."""
    from cfanalytics.events._arrow import arrow_values

    bodies = [json.dumps({"installs": CLEAN_JOBS[i : i + 2]}) for i in range(0, 5, 2)]
    assert arrow_values(bodies) is not None
    exchanges = [Exchange("GET", STATUS_URL, raw(STATUS_URL, b)) for b in bodies]
    exchanges.insert(1, Exchange("GET", STATUS_URL, raw(STATUS_URL, {"installs": []})))
    queue = f"{BASE}/cfp/v1/imageinstall/12/queue?accountserviceid=7&mirroring=false"
    exchanges.insert(2, Exchange("GET", queue, raw(queue, {"machinejobid": 3})))
    pd.testing.assert_frame_equal(
        events_from_exchanges(exchanges, run_id="run-1"), rowwise(exchanges)
    )


@pytest.mark.parametrize(
    "change",
    [
        {"jobprogress": 1.5},  # a float
        {"jobstart": "17e8"},  # not digits
        {"jobcreated": -1},  # out of range
        {"restart": 2},  # not a flag
        {"fleet": "eu"},  # unknown field: needs extra
        {"jobstart": "99999999999999999999999"},  # beyond int64
        {"jobcreated": 2**63},  # beyond int64, as a number
    ],
)
def test_arrow_reader_declines_what_needs_judgement(change: dict[str, Any]) -> None:
    """Anything but plain values goes to the exact readers; the rows still match."""
    from cfanalytics.events._arrow import arrow_values

    bodies = [json.dumps({"installs": [JOB, {**JOB, "jobid": 99, **change}]})]
    assert arrow_values(bodies) is None
    exchanges = [Exchange("GET", STATUS_URL, raw(STATUS_URL, b)) for b in bodies]
    pd.testing.assert_frame_equal(
        events_from_exchanges(exchanges, run_id="run-1"), rowwise(exchanges)
    )


def test_all_clean_bodies_skip_the_row_reader_and_match() -> None:
    """A run of only clean status bodies is typed by pyarrow alone, equal to the row reader."""
    bodies = [json.dumps({"installs": CLEAN_JOBS[i : i + 3]}) for i in range(0, 5, 3)]
    exchanges = [Exchange("GET", STATUS_URL, raw(STATUS_URL, b)) for b in bodies]
    frame = events_from_exchanges(exchanges, run_id="run-1")
    pd.testing.assert_frame_equal(frame, rowwise(exchanges))
    assert frame["problem"].isna().all() and frame["versionmirrorid"].isna().all()
