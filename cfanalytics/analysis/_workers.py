"""Worker processes of the embedded engine: ``python -m cfanalytics.analysis``.

Each worker is a fresh interpreter started with the package's own entry point, so it never
runs the caller's ``__main__`` (a script needs no ``if __name__ == "__main__"`` guard) and is
never forked from a notebook kernel and its threads. Over its stdin and stdout it takes
``(task, arguments)`` and gives back ``(ok, result or exception)``, each a length-prefixed
pickle; a task is a module-level function, pickled by name.
"""

from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from typing import IO, Any, TypeVar

__all__ = ["WorkerError", "Workers", "serve"]

_T = TypeVar("_T")
_SIZE = struct.Struct("!Q")
_STOP = None


class WorkerError(RuntimeError):
    """A worker process ended without an answer (killed, out of memory)."""


class Workers:
    """``count`` worker processes for the span of a ``with`` block."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Workers:
        command = [sys.executable, "-m", __name__.rpartition(".")[0]]  # its __main__: serve()
        for _ in range(self.count):
            self._processes.append(
                subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process in self._processes:
            if process.stdin is not None:
                with suppress(OSError):
                    process.stdin.close()  # end of input: the worker leaves its loop
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        self._processes.clear()

    def map(self, task: Callable[..., _T], arguments: Sequence[tuple[Any, ...]]) -> Iterator[_T]:
        """``task(*args)`` for each of ``arguments`` on the workers; results in order."""
        todo: queue.SimpleQueue[tuple[int, tuple[Any, ...]] | None] = queue.SimpleQueue()
        for index, args in enumerate(arguments):
            todo.put((index, args))
        done: dict[int, tuple[bool, Any]] = {}
        ready = threading.Condition()
        threads = [
            threading.Thread(target=_feed, args=(process, task, todo, done, ready), daemon=True)
            for process in self._processes
        ]
        for thread in threads:
            todo.put(_STOP)
            thread.start()
        try:
            for index in range(len(arguments)):
                with ready:
                    ready.wait_for(lambda i=index: i in done)  # type: ignore[misc]
                    ok, value = done.pop(index)
                if not ok:
                    raise value
                yield value
        finally:
            while True:  # a reader that stopped early: the rest is not started
                try:
                    todo.get_nowait()
                except queue.Empty:
                    break
            for thread in threads:
                thread.join()


def _feed(
    process: subprocess.Popen[bytes],
    task: Callable[..., Any],
    todo: queue.SimpleQueue[tuple[int, tuple[Any, ...]] | None],
    done: dict[int, tuple[bool, Any]],
    ready: threading.Condition,
) -> None:
    """One worker's loop: take a task, send it, wait for its answer; stop at the marker."""
    while (item := _next(todo)) is not None:
        index, args = item
        try:
            assert process.stdin is not None and process.stdout is not None
            _send(process.stdin, (task, args))
            answer = _receive(process.stdout)
        except (OSError, EOFError, pickle.PickleError) as exc:
            answer = (False, WorkerError(f"a worker process ended without an answer: {exc}"))
        with ready:
            done[index] = answer
            ready.notify_all()
        if not answer[0] and isinstance(answer[1], WorkerError):
            return


def _next(todo: queue.SimpleQueue[tuple[int, tuple[Any, ...]] | None]) -> Any:
    try:
        return todo.get_nowait()
    except queue.Empty:
        return None


def _send(stream: IO[bytes], value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_SIZE.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(_SIZE.size)
    if len(head) < _SIZE.size:
        raise EOFError("no answer")
    (size,) = _SIZE.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("a cut answer")
    return pickle.loads(data)


def serve() -> None:
    """Be a worker: answer each ``(task, args)`` on stdin until it ends. The protocol owns the
    real stdout; anything printed goes to stderr instead."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _serve(sys.stdin.buffer, answers)


def _serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """Answer each ``(task, args)`` until the input ends."""
    while True:
        try:
            task, args = _receive(requests)
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, task(*args))
        except Exception as exc:
            answer = (False, exc)
        try:
            _send(answers, answer)
        except pickle.PicklingError as exc:
            _send(answers, (False, RuntimeError(f"an answer that cannot be sent back: {exc}")))
