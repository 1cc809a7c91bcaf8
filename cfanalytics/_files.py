"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from pathlib import Path

__all__ = ["drop_partial_line", "write_atomically"]


def write_atomically(path: Path, text: str, *, what: str, error: type[Exception]) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``.

    An ``OSError`` becomes ``error`` naming ``what`` was written; the old file, if any, is
    left as it was.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise error(f"cannot write {what} {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise error(f"cannot write {what} {path}: {exc.strerror or exc}") from exc
        raise


def drop_partial_line(path: Path) -> None:
    """Cut a last line a crash left half written, so appending starts on a fresh line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        with path.open("r+b") as file:
            file.truncate(data.rfind(b"\n") + 1)
