"""The durable event log: flushed per response, compacted to Parquet, read by DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as pads
import pytest

from cfanalytics.client import RawResponse
from cfanalytics.events import (
    Exchange,
    conform,
    events_from_exchanges,
    exchange_rows,
    validate,
)
from cfanalytics.exceptions import EventLogError
from cfanalytics.recording import EventLog, load_events, write_events

URL = "https://api.multiplay.co.uk/cfp/v1/imageinstall/status?accountserviceid=3"


def response(n: int) -> Exchange:
    body = {"installs": [{"jobid": 100 + n, "jobstateid": 4, "jobprogress": n, "mirroring": True}]}
    headers = (("date", f"Mon, 02 Nov 2026 09:00:{n:02d} GMT"),)
    return Exchange("GET", URL, RawResponse("GET", URL, 200, headers, json.dumps(body)))


def write(log: EventLog, count: int, start: int = 0) -> None:
    for seq in range(start, start + count):
        log.append(exchange_rows(response(seq), run_id=log.run_id, seq=seq))


def expected(count: int, run_id: str = "r1") -> pd.DataFrame:
    return events_from_exchanges([response(n) for n in range(count)], run_id=run_id)


def test_closed_log_is_parquet_equal_to_the_events(tmp_path: Path) -> None:
    """After close, one Parquet file holds exactly the events; the journal is gone."""
    with EventLog(tmp_path, run_id="r1") as log:
        write(log, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1.parquet"]
    pd.testing.assert_frame_equal(validate(load_events(tmp_path)), expected(5))


def test_duckdb_reads_the_folder_as_is(tmp_path: Path) -> None:
    """DuckDB reads the Parquet dataset directly, timestamps in UTC."""
    for run in ("r1", "r2"):
        with EventLog(tmp_path, run_id=run) as log:
            write(log, 3)
    rows = duckdb.sql(
        f"select run_id, count(*) as n, max(jobprogress) as p "
        f"from read_parquet('{tmp_path}/*.parquet') group by run_id order by run_id"
    ).fetchall()
    assert rows == [("r1", 3, 2), ("r2", 3, 2)]


def test_a_crash_loses_nothing_flushed(tmp_path: Path) -> None:
    """Without close (a crash), the journal already holds every appended response."""
    log = EventLog(tmp_path, run_id="r1")
    write(log, 4)
    # No close: read what another process would see now.
    pd.testing.assert_frame_equal(load_events(tmp_path), expected(4))
    with (tmp_path / "_r1.jsonl").open("a") as journal:
        journal.write('{"run_id": "r1", "seq": 4, "jobi')  # killed mid-write
    pd.testing.assert_frame_equal(load_events(tmp_path), expected(4))
    log.close(compact=False)


def test_reopening_appends(tmp_path: Path) -> None:
    """Reopening the same run continues its seq and appends; compacted parts are merged."""
    with EventLog(tmp_path, run_id="r1") as log:
        assert log.next_seq == 0
        write(log, 2)
    with EventLog(tmp_path, run_id="r1") as log:
        assert log.next_seq == 2
        write(log, 3, start=log.next_seq)
    pd.testing.assert_frame_equal(load_events(tmp_path), expected(5))


def test_a_folder_without_events_is_an_error(tmp_path: Path) -> None:
    """Pointing at a folder with no event files says so instead of an empty table."""
    with pytest.raises(EventLogError, match="holds no event files"):
        load_events(tmp_path)


def test_secrets_are_scrubbed(tmp_path: Path) -> None:
    """A secret that slipped into a response never reaches the log."""
    secret = "SKsupersecret123"
    body = json.dumps({"installs": [{"jobid": 1, "joberror": f"auth {secret} failed"}]})
    exchange = Exchange("GET", URL, RawResponse("GET", URL, 200, (), body))
    log = EventLog(tmp_path, run_id="r1", secrets=[secret])
    log.append(exchange_rows(exchange, run_id="r1", seq=0))
    assert secret not in (tmp_path / "_r1.jsonl").read_text()
    log.close()
    assert secret.encode() not in (tmp_path / "r1.parquet").read_bytes()
    assert load_events(tmp_path)["joberror"][0] == "auth <FILTERED> failed"


def test_unreadable_inputs_are_event_log_errors(tmp_path: Path) -> None:
    """A missing log, a corrupt Parquet file and an unwritable folder are clear errors."""
    with pytest.raises(EventLogError, match="no event log"):
        load_events(tmp_path / "missing")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(EventLogError, match="not a readable Parquet"):
        load_events(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(EventLogError, match="cannot write"):
        EventLog(blocker / "sub", run_id="r1")


def test_dataset_readers_read_the_folder_while_recording_and_after_a_crash(
    tmp_path: Path,
) -> None:
    """The journal and temporary files have names dataset readers skip (``_``, ``.``): a
    folder with a compacted run and a run still recording (or killed) reads as the
    compacted Parquet, by pandas and pyarrow alike, with no custom code."""
    with EventLog(tmp_path, run_id="r1") as log:
        write(log, 3)
    live = EventLog(tmp_path, run_id="r2")
    write(live, 2)  # recording, or killed here: its journal stays
    (tmp_path / ".r2.parquet.tmp").write_bytes(b"half a file")  # a compaction cut short
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".r2.parquet.tmp",
        "_r2.jsonl",
        "r1.parquet",
    ]
    by_pandas = pd.read_parquet(tmp_path)
    by_arrow = pads.dataset(tmp_path, format="parquet").to_table()
    assert len(by_pandas) == by_arrow.num_rows == 3
    assert len(load_events(tmp_path)) == 5  # and ours reads the journal too
    live.close()
    assert len(pd.read_parquet(tmp_path)) == 5


def test_a_journal_named_as_before_is_taken_over(tmp_path: Path) -> None:
    """Logs before kept the journal as ``<run>.jsonl``: it is read, and reopening the run
    carries it on under the new name."""
    log = EventLog(tmp_path, run_id="r1")
    write(log, 2)
    log.close(compact=False)
    (tmp_path / "_r1.jsonl").rename(tmp_path / "r1.jsonl")  # as an older version left it
    pd.testing.assert_frame_equal(load_events(tmp_path), expected(2))
    with EventLog(tmp_path, run_id="r1") as again:
        assert again.next_seq == 2
        write(again, 2, start=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1.parquet"]
    pd.testing.assert_frame_equal(load_events(tmp_path), expected(4))


def test_a_csv_export_keeps_awkward_text_and_every_missing_value(tmp_path: Path) -> None:
    """Text that CSV readers like to reinterpret ("NA", "null", digits, commas, quotes, line
    breaks, a leading space) comes back as it was; every missing value comes back missing."""
    events = expected(4)
    awkward = ["NA", "null", "007", ' a, "quoted"\nsecond line']
    events = events.assign(joberror=awkward, extra=awkward[::-1], mirror=pd.NA, restart=pd.NA)
    events = conform(events)
    path = tmp_path / "events.csv"
    write_events(events, path)
    back = load_events(path)
    pd.testing.assert_frame_equal(back, events)
    pd.testing.assert_frame_equal(back, load_events(_twin(events, tmp_path)))


def _twin(events: pd.DataFrame, tmp_path: Path) -> Path:
    """The same events exported as Parquet."""
    path = tmp_path / "events.parquet"
    write_events(events, path)
    return path


def test_stock_readers_read_the_exports(tmp_path: Path) -> None:
    """The .csv and .parquet events exports read in DuckDB and pyarrow without custom code:
    every row, the job ids and the times as written."""
    import pyarrow.csv
    import pyarrow.parquet

    from cfanalytics import events_from_cassette
    from cfanalytics.recording import write_events

    from ..conftest import CASSETTES

    events = events_from_cassette(CASSETTES / "demo.yaml")
    for name in ("events.csv", "events.parquet"):
        path = tmp_path / name
        write_events(events, path)
        reader = "read_csv_auto" if name.endswith(".csv") else "read_parquet"
        ((count, jobs, first),) = duckdb.sql(
            f"select count(*), count(distinct jobid), min(observed_at) from {reader}('{path}')"
        ).fetchall()
        assert (count, jobs) == (len(events), events["jobid"].nunique()), name
        earliest = events["observed_at"].min().tz_convert("UTC").tz_localize(None)
        first = pd.Timestamp(first)  # DuckDB gives an aware time in its session's zone
        naive = first.tz_convert("UTC").tz_localize(None) if first.tzinfo else first
        assert naive == earliest
        read = pyarrow.csv.read_csv if name.endswith(".csv") else pyarrow.parquet.read_table
        table = read(path)
        assert table.num_rows == len(events) and "jobid" in table.column_names
