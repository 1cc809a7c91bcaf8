"""Crash safety: a recorder killed mid-run, or out of disk, loses nothing it had received.

The recorder runs as a real ``cfanalytics record`` process against the simulator on
loopback; the test kills it with SIGKILL (or caps its file size, as a full disk would),
then checks what is on disk and carries the run on with ``record --resume``.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from cfanalytics import events_from_cassette, load_events, replay
from cfanalytics.recording import journal_path
from cfanalytics.recording._journal import read_journal
from cfanalytics.simulator import ScaledClock, Simulator, default_scenario, serve

from ..conftest import ACCESS_KEY, CASSETTES, SECRET_KEY, SimRig

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).with_name("cfanalytics")
SPEED = 300.0  # simulated seconds per real second: a rollout takes a few real seconds


def serving(speed: float) -> Iterator[dict[str, str]]:
    """A simulator on loopback in real (scaled) time, and an environment pointing at it."""
    scenario = default_scenario()
    clock = ScaledClock(start=scenario.start, speed=speed)
    sim = Simulator(scenario, seed=2, clock=clock, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    with serve(sim) as server:
        yield os.environ | {
            "CLANFORGE_BASE_URL": str(server.url),
            "CLANFORGE_ACCESS_KEY": ACCESS_KEY,
            "CLANFORGE_SECRET_KEY": SECRET_KEY,
        }


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    """The simulator at :data:`SPEED`: a rollout takes a few real seconds."""
    yield from serving(SPEED)


@pytest.fixture
def slow_env() -> Iterator[dict[str, str]]:
    """The simulator five times slower: a rollout (some 20 s) outlasts what a test does
    meanwhile (three refused runs)."""
    yield from serving(SPEED / 5)


def record_args(folder: Path, *more: str) -> list[str]:
    """``cfanalytics record`` polling every 15 simulated seconds into ``folder``, for at most
    40 simulated minutes (jobs waiting on a failed mirror would wait for ever)."""
    interval = str(15 / SPEED)
    return [
        str(CLI),
        "record",
        "--asid",
        "1",
        "--interval",
        interval,
        "--max-duration",
        "2400",
        "--cassette",
        str(folder / "run.yaml"),
        "--events",
        str(folder / "events"),
        *more,
    ]


def responses_on_disk(folder: Path) -> int:
    """Responses the event log holds now (its journal is flushed per response)."""
    journals = list((folder / "events").glob("*.jsonl"))
    if not journals:
        return 0
    seqs = {line.split('"seq": ')[1].split(",")[0] for line in _lines(journals[0])}
    return len(seqs)


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if '"seq": ' in line]


def wait_for(condition: object, *, timeout: float = 60.0) -> None:
    """Poll another process's progress on disk (it has no clock to inject)."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("the recorder made no progress in time")
        time.sleep(0.02)


def check_whole(folder: Path) -> pd.DataFrame:
    """The finished run: one cassette, no journal, events numbered 0..n-1 once each."""
    cassette = folder / "run.yaml"
    assert cassette.is_file() and not journal_path(cassette).exists()
    events = load_events(folder / "events")
    seqs = events.drop_duplicates("seq")["seq"].tolist()
    assert seqs == list(range(len(seqs))), "every response once, in order"
    assert not events.duplicated(["run_id", "seq", "jobid"]).any()
    queued = events.loc[(events["endpoint"] == "queue") & events["problem"].isna(), "jobid"]
    assert queued.is_unique, "no job was queued twice"
    pd.testing.assert_frame_equal(events, events_from_cassette(cassette))
    pd.testing.assert_frame_equal(replay(cassette).events, events)
    return events


@pytest.mark.timeout(300)
def test_sigkill_mid_run_then_resume(tmp_path: Path, env: dict[str, str]) -> None:
    """Killed after some 40 responses: everything flushed is readable, and --resume
    finishes the run into the same cassette and log without repeating anything."""
    with subprocess.Popen(  # leaving closes its stderr
        record_args(tmp_path), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as process:
        wait_for(lambda: responses_on_disk(tmp_path) >= 40 or process.poll() is not None)
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the run should still have been going"

    before = load_events(tmp_path / "events")
    kept = read_journal(tmp_path / "run.yaml")
    assert before["seq"].nunique() >= 40 and len(kept) >= 39  # at most one in flight
    assert not (tmp_path / "run.yaml").exists()  # written only at the end
    summary = subprocess.run(
        [str(CLI), "summary", str(tmp_path / "run.yaml")], env=env, capture_output=True, text=True
    )
    assert summary.returncode == 0, summary.stderr  # an interrupted run can be read as it is

    resumed = subprocess.run(
        record_args(tmp_path, "--resume"), env=env, capture_output=True, text=True, timeout=240
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "stopped:" in resumed.stdout
    events = check_whole(tmp_path)
    head = events.loc[events["seq"] < before["seq"].nunique()].reset_index(drop=True)
    # A slice keeps every label of the whole: compare the values.
    pd.testing.assert_frame_equal(head, before.reset_index(drop=True), check_categorical=False)


@pytest.mark.timeout(300)
def test_a_second_run_on_the_same_cassette_is_refused_at_start(
    tmp_path: Path, slow_env: dict[str, str]
) -> None:
    """While one run records into run.yaml, another `record` (even with --overwrite) and a
    `--resume` are refused with one line naming the run that holds it, before sending
    anything; once the holder is killed, the OS has let go and --resume carries it on."""
    env = slow_env
    first = subprocess.Popen(
        record_args(tmp_path), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: responses_on_disk(tmp_path) >= 5 or first.poll() is not None)
    assert first.poll() is None, "the first run should still be going"
    holder = read_journal(tmp_path / "run.yaml").metadata["run_id"]
    for more in ((), ("--overwrite",), ("--resume",)):
        other = tmp_path / f"other{len(more)}"
        args = record_args(tmp_path, *more)
        args[args.index("--events") + 1] = str(other)
        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"being recorded now by run {holder}" in lines[0], lines
        assert not other.exists(), "refused before recording anything"
    seen = responses_on_disk(tmp_path)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert read_journal(tmp_path / "run.yaml").metadata["run_id"] == holder  # untouched
    assert responses_on_disk(tmp_path) >= seen
    resumed = subprocess.run(
        record_args(tmp_path, "--resume"), env=env, capture_output=True, text=True, timeout=240
    )
    assert resumed.returncode == 0, resumed.stderr
    check_whole(tmp_path)


def _full_disk(limit: int) -> None:
    """In the child: files may grow to ``limit`` bytes, then writes fail as on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.timeout(300)
def test_a_full_disk_is_one_clear_error_and_corrupts_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Out of space mid-run: exit 2 with one line; what was written reads back whole, and
    the run can be resumed once there is room again."""
    failed = subprocess.run(
        record_args(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=lambda: _full_disk(60_000),
        timeout=240,
    )
    assert failed.returncode == 2, failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cfanalytics: error:"), failed.stderr
    assert "Traceback" not in failed.stderr
    assert "File too large" in lines[0] or "No space" in lines[0], lines[0]
    before = load_events(tmp_path / "events")
    assert before["seq"].nunique() > 5
    resumed = subprocess.run(
        record_args(tmp_path, "--resume"), env=env, capture_output=True, text=True, timeout=240
    )
    assert resumed.returncode == 0, resumed.stderr
    check_whole(tmp_path)


def test_resume_with_nothing_to_resume_says_so(tmp_path: Path, env: dict[str, str]) -> None:
    """--resume on a folder that never recorded: one line, exit 2."""
    result = subprocess.run(
        record_args(tmp_path, "--resume"), env=env, capture_output=True, text=True
    )
    assert result.returncode == 2 and "nothing to resume" in result.stderr


@pytest.mark.parametrize("where", ["events", "cassette"])
def test_an_unwritable_output_is_one_clear_error(
    tmp_path: Path, env: dict[str, str], where: str
) -> None:
    """Output that cannot be written (read-only for a normal user; under a file for root,
    whom permissions do not stop): exit 2, one line naming the path, nothing queued."""
    blocked = tmp_path / "blocked"
    if os.geteuid() == 0:
        blocked.write_text("a file, not a folder\n")
    else:
        blocked.mkdir(mode=0o500)
    args = record_args(tmp_path)
    flag = "--events" if where == "events" else "--cassette"
    args[args.index(flag) + 1] = str(blocked / ("events" if where == "events" else "run.yaml"))
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(blocked) in lines[0], result.stderr
    assert "Traceback" not in result.stderr and not result.stdout


def _in_process(tmp_path: Path, stop_after: int | None) -> tuple[dict[str, object], object]:
    """Options recording from an in-process simulator, and an on_progress that raises."""

    def on_progress(progress: object) -> None:
        if stop_after is not None and progress.polls >= stop_after:  # type: ignore[attr-defined]
            raise KeyboardInterrupt  # as Ctrl-C would

    options = SimRig(seed=4).record_options(rng=random.Random(1), events_dir=tmp_path / "events")
    return options, on_progress


def test_a_resume_after_ctrl_c_keeps_the_whole_run_in_its_journal(tmp_path: Path) -> None:
    """Ctrl-C writes the cassette (incomplete) and drops the journal; a resume copies the
    cassette into a new journal, so a kill during the resume still loses nothing."""
    import asyncio

    from cfanalytics.recording import Recording, RunPlan, arecord
    from cfanalytics.recording._runs import interrupted

    cassette = tmp_path / "run.yaml"
    options, stop = _in_process(tmp_path, stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(
            arecord(RunPlan(asid=1, interval=15), cassette=cassette, on_progress=stop, **options)
        )
    assert cassette.exists() and not journal_path(cassette).exists()
    first = interrupted(cassette)
    options.pop("events_dir")
    recording, prior = Recording.reopen(cassette, events_dir=tmp_path / "events", **options)
    assert recording.recorder.journal is not None
    recording.recorder.journal.close()  # killed before anything new: no close(), no cassette
    again = read_journal(cassette)
    assert again.interactions == first.interactions == prior.interactions
    assert again.metadata["transport_failures"] == first.metadata.get("transport_failures", [])
    assert recording.log is not None
    recording.log.close(compact=False)  # as the killed process's exit would close its file


def test_catch_up_rewrites_a_response_the_log_kept_only_in_part(tmp_path: Path) -> None:
    """A cut write left some rows of the last response: the resume writes them all again,
    and loading keeps each row once."""
    from cfanalytics.events import exchange_rows
    from cfanalytics.recording import EventLog
    from cfanalytics.recording._replay import in_recorded_order
    from cfanalytics.recording._runs import _catch_up
    from cfanalytics.recording._sources import exchange_of, open_cassette

    shipped = CASSETTES / "demo.yaml"
    done = list(in_recorded_order(open_cassette(shipped)))[:3]  # a listing, 2 queue answers
    log = EventLog(tmp_path, run_id="cut")
    rows = exchange_rows(exchange_of(done[0]), run_id="cut", seq=0)
    assert len(rows) > 10
    log.append(rows[: len(rows) // 2])  # the listing cut short
    log.close(compact=False)
    partial = load_events(tmp_path)
    reopened = EventLog(tmp_path, run_id="cut")
    assert reopened.next_seq == 1
    _catch_up(reopened, done, "cut")
    reopened.close()
    whole = load_events(tmp_path)
    expected = [len(exchange_rows(exchange_of(i), run_id="cut", seq=n)) for n, i in enumerate(done)]
    assert whole.groupby("seq").size().tolist() == expected
    assert len(partial) < len(whole)
