"""The history store: every recording in one Hive-partitioned Parquet dataset that stock
tools read as it is; adding is idempotent, all-or-nothing under SIGKILL, and safe from two
processes at once; reading a rollout gives what analysing it alone gives."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from cfanalytics import __version__
from cfanalytics.events import (
    COLUMNS,
    SCHEMA_VERSION,
    conform,
    rollout_events,
    rollout_of,
    rollouts,
    validate,
)
from cfanalytics.exceptions import HistoryError, RolloutError
from cfanalytics.recording import (
    EventLog,
    HistoryProgress,
    HistoryStore,
    RunPlan,
    _store_add,
    _store_catalog,
    _store_files,
    load_source,
    record,
    resume,
    synthetic_events,
)

from ..conftest import CASSETTES, SimRig

NAMES = ("demo", "troubled")
LAYOUT = re.compile(r"asid=(-1|\d+)/month=(\d{4}-\d{2}|none)/[A-Za-z0-9][A-Za-z0-9._-]*\.parquet")


@pytest.fixture(scope="module")
def recordings() -> dict[str, pd.DataFrame]:
    """The shipped cassettes' events, read once (tests copy them before changing them)."""
    return {name: load_source(CASSETTES / f"{name}.yaml") for name in NAMES}


@pytest.fixture(scope="module")
def odd(recordings: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """A run with an unsafe id, rows without an ASID or a time, on two ASIDs and months."""
    frame = recordings["demo"].copy()
    seq = frame["seq"]
    frame["run_id"] = "odd run/ü"
    frame.loc[seq == 3, "asid"] = pd.NA
    frame.loc[seq == 5, "observed_at"] = pd.NaT
    frame.loc[seq >= seq.max() - 20, "observed_at"] += pd.Timedelta(days=40)
    frame.loc[seq >= seq.max() - 10, "asid"] = 7
    return conform(frame)


@pytest.fixture(scope="module")
def both(
    tmp_path_factory: pytest.TempPathFactory, recordings: dict[str, pd.DataFrame]
) -> HistoryStore:
    """A store of both shipped recordings (tests only read it)."""
    store = HistoryStore(tmp_path_factory.mktemp("both") / "store")
    store.add(*recordings.values())
    return store


@pytest.fixture(scope="module")
def varied(
    tmp_path_factory: pytest.TempPathFactory, recordings: dict[str, pd.DataFrame], odd: pd.DataFrame
) -> HistoryStore:
    """A store of the troubled recording and the odd run (tests only read it)."""
    store = HistoryStore(tmp_path_factory.mktemp("varied") / "store")
    store.add(recordings["troubled"])
    store.add(odd)
    return store


def in_store_order(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Runs one after the other as the store orders them: by first observed_at, then id."""
    ordered = sorted(frames, key=lambda f: (f["observed_at"].min(), str(f["run_id"].iloc[0])))
    return conform(pd.concat(ordered, ignore_index=True))


def responses(frame: pd.DataFrame) -> int:
    return len(frame.drop_duplicates(["run_id", "seq"]))


def stored_rollouts(frames: list[pd.DataFrame]) -> pd.Series:
    """Each row's ``rollout`` as the store computes it: run by run."""
    return pd.concat([pd.Series(rollout_of(f)).astype("string") for f in frames])


def test_a_store_of_one_recording_reads_back_as_loaded(tmp_path: Path) -> None:
    """Adding a cassette creates the store; its events are the cassette's, row for row, and
    ``load_source`` reads the store folder too."""
    store = HistoryStore(tmp_path / "history")
    added = store.add(CASSETTES / "demo.yaml")
    expected = load_source(CASSETTES / "demo.yaml")
    assert added.runs == tuple(expected["run_id"].unique())
    assert (added.responses_added, added.responses_present) == (responses(expected), 0)
    pd.testing.assert_frame_equal(validate(store.events()), expected)
    pd.testing.assert_frame_equal(load_source(store.path), expected)


def test_each_rollout_reads_as_analysed_alone(
    tmp_path: Path, recordings: dict[str, pd.DataFrame]
) -> None:
    """In a store of one recording, every rollout reads as ``rollout_events`` of it."""
    for name, frame in recordings.items():
        store = HistoryStore(tmp_path / name)
        store.add(frame)
        for rollout in rollouts(frame):
            got = validate(store.events(rollout=rollout))
            pd.testing.assert_frame_equal(got, rollout_events(frame, rollout))


def test_a_store_of_two_recordings_reads_each_rollout_from_its_runs(
    both: HistoryStore, recordings: dict[str, pd.DataFrame]
) -> None:
    """With both recordings stored, a rollout reads as ``rollout_events`` of the runs that
    saw it (one recording, unless both watched the same rollout); all events come run by
    run."""
    frames = list(recordings.values())
    pd.testing.assert_frame_equal(both.events(), in_store_order(frames))
    for rollout in sorted({r for f in frames for r in rollouts(f)}):
        saw = [f for f in frames if rollout in rollouts(f)]
        expected = rollout_events(in_store_order(saw), rollout)
        pd.testing.assert_frame_equal(both.events(rollout=rollout), expected)


def test_filters_read_what_pandas_would_keep(both: HistoryStore) -> None:
    """``asid``, ``since`` (inclusive), ``until`` (exclusive) and ``columns`` give what the
    same filter gives on the whole table; naive times are UTC."""
    full = both.events()
    asid = int(full["asid"].dropna().iloc[0])
    times = full["observed_at"].sort_values(ignore_index=True)
    since, until = times.iloc[len(times) // 3], times.iloc[2 * len(times) // 3]
    at = full["observed_at"]
    cases: list[tuple[dict[str, Any], pd.Series]] = [
        ({"asid": asid}, full["asid"] == asid),
        ({"asid": asid + 1000}, full["asid"] == asid + 1000),
        ({"since": since}, at >= since),
        ({"until": until}, at < until),
        (
            {"since": since.tz_localize(None).isoformat(), "until": until},
            at.between(since, until, "left"),
        ),
        ({"since": since, "columns": ["state", "jobid", "run_id"]}, at >= since),
    ]
    for options, keep in cases:
        expected = full.loc[keep.fillna(False).to_numpy()].reset_index(drop=True)
        expected = expected[options.get("columns", list(COLUMNS))]
        # A slice keeps every label of the whole; a filtered read has only its own.
        pd.testing.assert_frame_equal(
            both.events(**options), expected, obj=str(options), check_categorical=False
        )
    rollout = rollouts(full)[0]
    whole = both.events(rollout=rollout)
    later = whole.loc[(whole["observed_at"] >= since).to_numpy()].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        both.events(rollout=rollout, since=since), later, check_categorical=False
    )
    with pytest.raises(ValueError, match="not events columns"):
        both.events(columns=["jobid", "nonsense"])
    with pytest.raises(RolloutError, match=re.escape(rollout)):
        both.events(rollout=f"{asid}/999999999")


@pytest.mark.parametrize("streamed", ["at once", "in small batches"])
def test_the_catalog_has_one_row_per_rollout(
    both: HistoryStore,
    recordings: dict[str, pd.DataFrame],
    streamed: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One row per rollout: its ASID, image version, first and last time, runs, jobs; the
    same when the files are read a few rows at a time and the reduction folded each time."""
    if streamed == "in small batches":
        monkeypatch.setattr(_store_catalog._CatalogPartial, "BATCH_ROWS", 97)
        monkeypatch.setattr(_store_catalog._CatalogPartial, "FOLD_ROWS", 1)
    frames = list(recordings.values())
    full = pd.concat(frames, ignore_index=True).assign(rollout=stored_rollouts(frames).array)
    mine = full.dropna(subset=["rollout"]).groupby("rollout")
    expected = pd.DataFrame(
        {
            "asid": mine["asid"].first(),
            "imageversionid": mine["target_imageversionid"].min(),
            "first_seen": mine["observed_at"].min(),
            "last_seen": mine["observed_at"].max(),
            "runs": mine["run_id"].nunique(),
            "jobs": mine["jobid"].nunique(),
        }
    )
    catalog = both.catalog()
    assert catalog["rollout"].is_unique
    assert (
        str(catalog["asid"].dtype) == "Int64"
        and str(catalog["first_seen"].dtype) == "datetime64[us, UTC]"
    )
    got = catalog.set_index("rollout").sort_index()
    expected.index = expected.index.astype("string")
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_index_type=False)


def test_the_catalog_streams_odd_rows_as_it_reads_them_at_once(
    varied: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows without an ASID or a time, runs over two months: the catalog read a few rows
    at a time is the one read at once, its rollout without an ASID listed last."""
    at_once = varied.catalog()
    monkeypatch.setattr(_store_catalog._CatalogPartial, "BATCH_ROWS", 53)
    monkeypatch.setattr(_store_catalog._CatalogPartial, "FOLD_ROWS", 1)
    pd.testing.assert_frame_equal(varied.catalog(), at_once)
    assert at_once["asid"].isna().iloc[-1] and at_once["asid"].iloc[:-1].notna().all()


def test_the_catalog_reports_its_progress_file_by_file(both: HistoryStore) -> None:
    """``on_progress(done, total)`` counts the files read, up to all of them."""
    seen: list[tuple[int, int]] = []
    both.catalog(on_progress=lambda done, total: seen.append((done, total)))
    files = len(list(both.path.glob("asid=*/month=*/*.parquet")))
    assert seen == [(done, files) for done in range(1, files + 1)] and files > 1


def test_the_catalog_of_an_asid_is_its_rows_of_the_whole(both: HistoryStore) -> None:
    """``catalog(asid=)`` reads one ASID's folder and gives that ASID's rows of the whole."""
    whole = both.catalog()
    for asid in whole["asid"].dropna().unique():
        mine = whole.loc[(whole["asid"] == asid).to_numpy()].reset_index(drop=True)
        pd.testing.assert_frame_equal(both.catalog(asid=int(asid)), mine)
    assert both.catalog(asid=987654).empty


def test_the_catalog_counts_large_job_ids_exactly(tmp_path: Path) -> None:
    """Job ids past 2**53 (a float's exact range) are told apart; a missing one is no job."""
    big = 2**60
    part = pa.table(
        {
            "rollout": pa.array(["1/7"] * 3, pa.large_string()),
            "jobid": pa.array([big, big + 1, None], pa.int64()),
            "imageversionid": pa.array([7, 7, 7], pa.int64()),
            "first_seen": pa.array([0, 0, 0], pa.timestamp("us", tz="UTC")),
            "last_seen": pa.array([1, 1, 1], pa.timestamp("us", tz="UTC")),
        }
    )
    file = _store_files.StoredFile(tmp_path / "asid=1" / "month=2026-11" / "r.parquet", "r", pd.NaT)
    catalog = _store_catalog.Catalog()
    catalog.add(file, part)
    assert catalog.frame()["jobs"].tolist() == [2]


def test_a_file_without_rollout_statistics_is_read_to_know(tmp_path: Path) -> None:
    """A rollout is looked for only in files whose footers may hold it; a file whose
    statistics are missing may hold any, one of no rollout none."""
    table = pa.table({"rollout": pa.array(["1/7", "1/9", None], pa.large_string())})
    for name, options, expected in [
        ("with.parquet", {}, ("1/7", "1/9")),
        ("without.parquet", {"write_statistics": False}, None),
    ]:
        pq.write_table(table, tmp_path / name, **options)
        found = _store_files._rollout_range(pq.read_metadata(tmp_path / name), 0)
        assert found == expected
    pq.write_table(table.filter(pa.array([False, False, True])), tmp_path / "none.parquet")
    assert _store_files._rollout_range(pq.read_metadata(tmp_path / "none.parquet"), 0) == ("", "")


def written(path: Path) -> tuple[int, int, int]:
    """What a rewrite of ``path`` changes (not its access time: reading it changes that)."""
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def test_adding_again_adds_nothing_and_rewrites_nothing(
    tmp_path: Path, recordings: dict[str, pd.DataFrame]
) -> None:
    """A response is identified by (run_id, seq): the same run twice, in one add or two,
    is stored once, and a second add leaves the files untouched."""
    demo = recordings["demo"]
    store = HistoryStore(tmp_path / "history")
    stages: list[HistoryProgress] = []
    first = store.add(demo, demo, on_progress=stages.append)
    assert (first.responses_added, first.responses_present) == (responses(demo), 0)
    assert [s.stage for s in stages] == ["locked", "staged", "committed", "applied"]
    files = {p: written(p) for p in store.path.rglob("*.parquet")}
    again = store.add(demo)
    assert again.runs == () and again.responses_added == 0
    assert again.responses_present == responses(demo)
    assert {p: written(p) for p in store.path.rglob("*.parquet")} == files
    pd.testing.assert_frame_equal(store.events(), demo)


def test_a_resumed_recording_adds_only_what_it_carried_on_with(tmp_path: Path) -> None:
    """A run interrupted, stored, then resumed (same run id, seq carries on) and stored
    again: each response once, and the store reads as the finished cassette."""
    rig = SimRig(seed=4)
    plan = RunPlan(asid=1, interval=15, max_polls=12)
    cassette = tmp_path / "run.yaml"

    def interrupt(progress: Any) -> None:
        if progress.polls >= 4:
            raise KeyboardInterrupt  # as Ctrl-C would

    with pytest.raises(KeyboardInterrupt):
        record(plan, cassette=cassette, on_progress=interrupt, **rig.record_options())
    shutil.copy(cassette, tmp_path / "part.yaml")
    resume(cassette, **rig.record_options())
    part, whole = load_source(tmp_path / "part.yaml"), load_source(cassette)
    assert part["run_id"].unique().tolist() == whole["run_id"].unique().tolist()
    assert set(part["seq"]) < set(whole["seq"])
    store = HistoryStore(tmp_path / "history")
    store.add(tmp_path / "part.yaml")
    carried = store.add(cassette)
    assert carried.responses_added == responses(whole) - responses(part)
    assert carried.responses_present == responses(part)
    pd.testing.assert_frame_equal(store.events(), whole)
    assert store.add(tmp_path / "part.yaml").responses_added == 0


def test_each_response_is_kept_from_the_first_source_that_has_it(
    tmp_path: Path, recordings: dict[str, pd.DataFrame]
) -> None:
    """Two copies of a response that differ: the first source's is stored, in one add or
    across adds."""
    demo = recordings["demo"]
    changed = demo.assign(jobprogress=demo["jobprogress"] + 1)
    store = HistoryStore(tmp_path / "history")
    first = store.add(changed, demo)
    assert (first.responses_added, first.responses_present) == (responses(demo), 0)
    again = store.add(demo)
    assert (again.responses_added, again.responses_present) == (0, responses(demo))
    pd.testing.assert_frame_equal(store.events(), changed)


def test_a_run_grown_with_earlier_responses_reads_in_seq_order(
    tmp_path: Path, recordings: dict[str, pd.DataFrame]
) -> None:
    """The end of a recording stored first, then a start that overlaps it: the run's files
    are rewritten with the union, read back in ``seq`` order, each response once."""
    demo = recordings["demo"]
    seq = demo["seq"]
    late = demo.loc[(seq >= seq.quantile(0.3)).to_numpy()]
    early = demo.loc[(seq < seq.median()).to_numpy()]
    store = HistoryStore(tmp_path / "history")
    store.add(late)
    grown = store.add(early)
    assert grown.runs == ("demo",)
    assert grown.responses_added == responses(demo) - responses(late)
    assert grown.responses_present == responses(early) - grown.responses_added
    pd.testing.assert_frame_equal(store.events(), demo)
    rows = pd.concat(pq.read_table(p).to_pandas() for p in store.path.rglob("*.parquet"))
    assert sorted(rows["row"]) == list(range(len(demo)))


def test_sources_in_any_row_order_or_dtype_store_the_same(
    tmp_path: Path, varied: HistoryStore, recordings: dict[str, pd.DataFrame], odd: pd.DataFrame
) -> None:
    """Responses shuffled (each one's rows kept in order), runs interleaved, an index with
    repeats, columns as objects in another order: the files hold what adding each run's
    table in order gives, to the byte."""
    both = pd.concat([recordings["troubled"], odd])
    response = both.groupby(["run_id", "seq"], sort=False).ngroup().to_numpy()
    shuffled = np.random.default_rng(0).permutation(response.max() + 1)[response]
    mixed = both.iloc[np.argsort(shuffled, kind="stable")]
    mixed = mixed.astype(object)[list(reversed(mixed.columns))]
    store = HistoryStore(tmp_path / "history")
    store.add(mixed)
    files = sorted(p.relative_to(varied.path) for p in varied.path.rglob("*.parquet"))
    assert sorted(p.relative_to(store.path) for p in store.path.rglob("*.parquet")) == files
    for name in files:
        assert (store.path / name).read_bytes() == (varied.path / name).read_bytes(), name
    pd.testing.assert_frame_equal(store.events(), varied.events())


def test_many_runs_and_row_groups_in_one_add(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs staged a few at once are reported in order and stored whole; a run longer than
    a row group is written a row group at a time, still sorted across them."""
    monkeypatch.setattr(_store_add, "_ROW_GROUP", 400)
    monkeypatch.setattr(_store_add, "_IN_FLIGHT", 1500)
    frames = [synthetic_events(40, 12, seed=2, rollout=n, asids=2) for n in range(6)]
    stages: list[HistoryProgress] = []
    store = HistoryStore(tmp_path / "history")
    added = store.add(*frames, on_progress=stages.append)
    assert len(added.runs) == len(frames)
    staged = [s.done for s in stages if s.stage == "staged"]
    assert staged == list(range(1, len(frames) + 1))
    pd.testing.assert_frame_equal(store.events(), in_store_order(frames))
    for path in store.path.rglob("*.parquet"):
        file = pq.ParquetFile(path)
        assert file.metadata.num_row_groups == -(-file.metadata.num_rows // 400)
        frame = file.read().to_pandas()
        order = frame.sort_values(
            ["rollout", "jobid", "observed_at"], na_position="last", kind="stable"
        )
        assert order.index.tolist() == list(range(len(frame)))


def test_a_failed_write_leaves_the_store_as_it_was(
    tmp_path: Path, recordings: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that cannot be written (the disk full, say) while others are being staged:
    one clear error, nothing staged left behind, the store as before."""
    store = HistoryStore(tmp_path / "history")
    store.add(recordings["demo"])
    before = store.events()
    write = _store_add._RunRows.write

    def full_disk(rows: Any, handle: Any, order: Any) -> None:
        if "troubled" in str(rows.schema.metadata[b"cfanalytics.run_id"]):
            raise OSError(28, "No space left on device")
        write(rows, handle, order)

    monkeypatch.setattr(_store_add._RunRows, "write", full_disk)
    runs = [recordings["demo"].assign(run_id=f"copy-{n}") for n in range(3)]
    with pytest.raises(HistoryError, match="No space left") as caught:
        store.add(*runs, recordings["troubled"], *runs)
    assert len(str(caught.value).splitlines()) == 1
    assert not (store.path / "_staging").exists()
    pd.testing.assert_frame_equal(store.events(), before)


def test_another_store_is_a_source(tmp_path: Path, both: HistoryStore) -> None:
    """A store folder can be added to another store (and to itself, adding nothing)."""
    copy = HistoryStore(tmp_path / "copy")
    copy.add(both.path)
    pd.testing.assert_frame_equal(copy.events(), both.events())
    assert copy.add(copy.path).responses_added == 0


def test_rows_without_asid_or_time_read_back_as_na(
    varied: HistoryStore, recordings: dict[str, pd.DataFrame], odd: pd.DataFrame
) -> None:
    """Rows without an ASID (``asid=-1``) or a time (``month=none``) come back as NA; a run
    id that is no safe file name still names its rows."""
    frames = [recordings["troubled"], odd]
    pd.testing.assert_frame_equal(varied.events(), in_store_order(frames))
    rows = pd.concat(frames)
    asid = rows["asid"].fillna(-1).astype(str)
    month = rows["observed_at"].dt.strftime("%Y-%m").fillna("none")
    expected = set("asid=" + asid + "/month=" + month)
    assert {"-1", "7"} <= set(asid) and "none" in set(month)
    folders = {p.parent.relative_to(varied.path).as_posix() for p in varied.path.rglob("*.parquet")}
    assert folders == expected


def test_files_follow_the_layout(
    varied: HistoryStore, recordings: dict[str, pd.DataFrame], odd: pd.DataFrame
) -> None:
    """Only ``asid=<n>/month=<YYYY-MM>/<run>.parquet`` files; zstd; the events columns but
    asid, then rollout and row; sorted by rollout, jobid, observed_at; versions in the
    metadata; ``row`` numbers each run's rows 0..n-1."""
    everything = sorted(p for p in varied.path.rglob("*") if p.is_file())
    assert all(LAYOUT.fullmatch(p.relative_to(varied.path).as_posix()) for p in everything)
    rows: dict[str, list[int]] = {}
    for path in everything:
        file = pq.ParquetFile(path)
        meta = file.schema_arrow.metadata
        assert meta[b"cfanalytics.schema_version"] == str(SCHEMA_VERSION).encode()
        assert meta[b"cfanalytics.version"] == __version__.encode()
        assert file.schema_arrow.names == [c for c in COLUMNS if c != "asid"] + ["rollout", "row"]
        group = file.metadata.row_group(0)
        assert {group.column(i).compression for i in range(group.num_columns)} == {"ZSTD"}
        frame = file.read().to_pandas()
        order = frame.sort_values(
            ["rollout", "jobid", "observed_at"], na_position="last", kind="stable"
        )
        assert order.index.tolist() == list(range(len(frame)))
        rows.setdefault(frame["run_id"].iloc[0], []).extend(frame["row"])
    for run, numbers in rows.items():
        assert sorted(numbers) == list(range(len(numbers))), run


def _duckdb(folder: Path) -> pd.DataFrame:
    duckdb = pytest.importorskip("duckdb")
    query = f"select * from read_parquet('{folder}/**/*.parquet', hive_partitioning = true)"
    return duckdb.sql(query).df()


def _polars(folder: Path) -> pd.DataFrame:
    polars = pytest.importorskip("polars")
    return polars.scan_parquet(folder).collect().to_pandas()


def _dask(folder: Path) -> pd.DataFrame:
    dataframe = pytest.importorskip("dask.dataframe")
    return dataframe.read_parquet(folder).compute()


READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "duckdb": _duckdb,
    "polars": _polars,
    "pyarrow": lambda folder: ds.dataset(folder, partitioning="hive").to_table().to_pandas(),
    "pandas": pd.read_parquet,
    "dask": _dask,
}


@pytest.mark.parametrize("reader", READERS)
def test_stock_tools_read_the_store_as_it_is(
    reader: str, varied: HistoryStore, recordings: dict[str, pd.DataFrame], odd: pd.DataFrame
) -> None:
    """DuckDB, Polars, pyarrow, pandas and Dask read the folder with no custom code: every
    row, ``asid`` as an integer (-1 for none), and ``rollout`` to filter on."""
    frames = [recordings["troubled"], odd]
    read = READERS[reader](varied.path)
    assert len(read) == sum(map(len, frames))
    asid = pd.Series(read["asid"].astype(object)).astype(int)
    expected = pd.concat(frames)["asid"].fillna(-1).astype(int)
    assert asid.value_counts().to_dict() == expected.value_counts().to_dict()
    counts = pd.Series(read["rollout"].astype(object)).value_counts().sort_index()
    assert counts.to_dict() == stored_rollouts(frames).value_counts().sort_index().to_dict()


ADD_AND_STALL = """
import sys, time
import pandas as pd
from cfanalytics.recording import HistoryStore

folder, sources, stage, done, until = sys.argv[1:6]

def stall(progress):
    if progress.stage == "locked":
        print("locked", flush=True)
    if progress.stage == stage and progress.done == int(done):
        print("stalled", flush=True)
        time.sleep(60) if until == "killed" else sys.stdin.readline()

frames = pd.read_pickle(sources)
print("adding", flush=True)
HistoryStore(folder).add(*frames, on_progress=stall)
print("added", flush=True)
"""


def add_and_stall(
    folder: Path, sources: Path, stage: str, done: int, until: str
) -> subprocess.Popen[bytes]:
    """A real process adding the pickled ``sources``, stalled at ``stage`` (``done``) until
    killed or until a line on its stdin. Its stdout is unbuffered: a line read is all that
    was printed. Use it in ``with``, which closes its pipes."""
    args = [sys.executable, "-c", ADD_AND_STALL, folder, sources, stage, done, until]
    return subprocess.Popen(
        list(map(str, args)), stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
    )


def lines(child: subprocess.Popen[bytes], count: int) -> list[bytes]:
    assert child.stdout is not None
    return [child.stdout.readline().strip() for _ in range(count)]


@pytest.mark.parametrize(
    ("stage", "done", "outcome"),
    [("staged", 2, "before"), ("committed", 0, "after"), ("applied", 2, "after")],
)
def test_an_add_killed_midway_leaves_the_store_before_or_after(
    tmp_path: Path,
    recordings: dict[str, pd.DataFrame],
    odd: pd.DataFrame,
    stage: str,
    done: int,
    outcome: str,
) -> None:
    """SIGKILL while staging leaves the store as it was; after the commit, even with some
    files moved, the next use finishes the add. Nothing is left half-written."""
    demo, rest = recordings["demo"], [recordings["troubled"], odd]
    store = HistoryStore(tmp_path / "history")
    store.add(demo)
    reference = HistoryStore(tmp_path / "reference")
    reference.add(demo)
    reference.add(*rest)
    expected = {"before": store.events(), "after": reference.events()}[outcome]
    pd.to_pickle(rest, tmp_path / "rest.pkl")
    with add_and_stall(store.path, tmp_path / "rest.pkl", stage, done, "killed") as child:
        assert lines(child, 3) == [b"adding", b"locked", b"stalled"]
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    assert (store.path / "_staging").exists()
    ds.dataset(store.path, partitioning="hive").count_rows()  # stock readers are not tripped
    pd.testing.assert_frame_equal(HistoryStore(store.path).events(), expected)
    assert not (store.path / "_staging").exists()
    assert all(p.suffix == ".parquet" for p in store.path.rglob("*") if p.is_file())


def test_two_processes_adding_at_once_lose_nothing(
    tmp_path: Path, recordings: dict[str, pd.DataFrame]
) -> None:
    """One add holds the lock mid-transaction; another started then waits for it, and
    both runs end up stored whole."""
    demo = recordings["demo"]
    runs = {name: demo.assign(run_id=name) for name in ("first", "second")}
    for name, frame in runs.items():
        pd.to_pickle([frame], tmp_path / f"{name}.pkl")
    folder = tmp_path / "history"
    with add_and_stall(folder, tmp_path / "first.pkl", "staged", 1, "told") as first:
        assert lines(first, 3) == [b"adding", b"locked", b"stalled"]
        with add_and_stall(folder, tmp_path / "second.pkl", "never", 0, "told") as second:
            assert lines(second, 1) == [b"adding"] and second.stdout is not None
            waiting, _, _ = select.select([second.stdout], [], [], 1.0)
            assert not waiting, "the second add got the lock while the first held it"
            first.communicate(b"go\n", timeout=30)
            assert first.returncode == 0
            assert lines(second, 2) == [b"locked", b"added"] and second.wait(timeout=30) == 0
    stored = HistoryStore(folder).events()
    for name, frame in runs.items():
        mine = stored.loc[(stored["run_id"] == name).to_numpy()].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, conform(frame), obj=name, check_categorical=False)


def test_a_corrupt_file_is_one_clear_error(tmp_path: Path, odd: pd.DataFrame) -> None:
    """A file that is not Parquet: reading or adding names it in one line; a read whose
    filters leave its partition out (pruning) never opens it."""
    store = HistoryStore(tmp_path / "history")
    store.add(odd)
    broken = next(store.path.glob("asid=7/month=*/*.parquet"))
    broken.write_bytes(b"not parquet at all")
    for call in (store.events, store.catalog, lambda: store.add(odd.assign(seq=odd["seq"] + 1000))):
        with pytest.raises(HistoryError) as caught:
            call()
        assert str(broken) in str(caught.value) and len(str(caught.value).splitlines()) == 1
    ones = store.events(asid=1)
    assert len(ones) and (ones["asid"] == 1).all()
    month = broken.parent.name.removeprefix("month=")  # a later month than the others
    earlier = store.events(until=f"{month}-01")
    assert len(earlier) and (earlier["observed_at"] < pd.Timestamp(f"{month}-01", tz="UTC")).all()


def test_a_folder_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    """An event log folder, a file or a missing folder: one readable line each; an event log
    still loads as one."""
    log_folder = tmp_path / "events"
    with EventLog(log_folder, run_id="r1"):
        pass  # closing writes r1.parquet
    file = tmp_path / "file.txt"
    file.write_text("hello")
    for path, says in [(log_folder, "r1.parquet"), (file, "it is a file")]:
        with pytest.raises(HistoryError, match="is not a history store") as caught:
            HistoryStore(path)
        assert says in str(caught.value) and len(str(caught.value).splitlines()) == 1
    validate(load_source(log_folder))
    with pytest.raises(HistoryError, match="no history store"):
        HistoryStore(tmp_path / "missing").events()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert HistoryStore(empty).add(pd.DataFrame(columns=list(COLUMNS))).runs == ()
