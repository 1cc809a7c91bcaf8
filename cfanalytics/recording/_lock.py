"""One recording per cassette path: a lock held while a run records into it.

Two runs given the same cassette would both queue every job and then write over each other's
cassette at the end, losing one run without a word. So a run holds an OS lock on
``<cassette>.lock`` from start to close, and a second run is refused at start, told which
run holds the path. The OS drops the lock when the holder dies, so a killed run leaves no
stale lock behind: ``--resume`` takes it over.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import suppress
from pathlib import Path

from ..exceptions import CassetteError

try:  # POSIX
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

except ImportError:  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True


__all__ = ["RecordingLock", "lock_path"]

log = logging.getLogger("cfanalytics.recording")


def lock_path(cassette: str | os.PathLike[str]) -> Path:
    """Where the lock of ``cassette`` lives: beside it, ``.lock`` appended."""
    path = Path(cassette)
    return path.with_name(path.name + ".lock")


class RecordingLock:
    """Held by the run recording into ``cassette``; raises :class:`CassetteError` when
    another live run holds it, naming that run."""

    def __init__(self, cassette: str | os.PathLike[str], run_id: str) -> None:
        self.path = lock_path(cassette)
        self.cassette = Path(cassette)
        self._fd = self._acquire(run_id)

    def __repr__(self) -> str:
        state = "held" if self._fd is not None else "released"
        return f"RecordingLock({str(self.path)!r}, {state})"

    def _acquire(self, run_id: str) -> int | None:
        for _ in range(3):  # the holder may remove the file between our open and our lock
            fd = self._open()
            try:
                locked = _try_lock(fd)
            except OSError as exc:  # a file system without locks (some network mounts)
                os.close(fd)
                log.warning("cannot lock %s (%s): recording without a lock", self.path, exc)
                return None
            if not locked:
                holder = _holder(fd)
                os.close(fd)
                raise CassetteError(
                    f"cassette {self.cassette} is being recorded now by {holder}: give this "
                    "run another --cassette, or wait for that one to end"
                )
            if _same_file(fd, self.path):
                _write_holder(fd, run_id)
                return fd
            os.close(fd)  # locked a file its holder had just removed: try the new one
        raise CassetteError(f"cannot take the lock {self.path}: it keeps being replaced")

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise CassetteError(f"cannot lock the cassette {self.cassette}: {exc}") from exc

    def note(self, run_id: str) -> None:
        """Name the holding run (a resumed run learns its id after taking the lock)."""
        if self._fd is not None:
            _write_holder(self._fd, run_id)

    def release(self) -> None:
        """Remove the lock file and let go (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if _same_file(fd, self.path):  # never another run's lock file (ours was removed)
            with suppress(OSError):
                self.path.unlink()  # first: a run waiting on this inode sees it is gone
        os.close(fd)


def _holder(fd: int) -> str:
    """Who holds the lock, as its file says (it may be mid-write: then say less)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096))
        return f"run {data['run_id']} (process {data['pid']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another run"


def _write_holder(fd: int, run_id: str) -> None:
    with suppress(OSError):  # the lock is what counts; the note only names the holder
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps({"run_id": run_id, "pid": os.getpid()}).encode())


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except OSError:
        return False
