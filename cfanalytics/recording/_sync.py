"""Run a coroutine to the end from plain code, whether or not an event loop runs here.

``asyncio.run`` refuses to start inside a running loop, and Jupyter and IPython run one in
the main thread, so the sync API (``record``, ``replay``, ``resume``) would fail exactly
where this toolkit is used most. When a loop runs, the coroutine runs in a fresh loop on a
worker thread (with a copy of the caller's context variables) and this thread waits; Ctrl-C
(a kernel interrupt) cancels it there and is raised here only once it has wound down, so a
run is never left going in the background.

The coroutine must own its asyncio objects: a client, transport or sleep made on the
caller's loop cannot be used from the worker's (``record`` and friends build their own).
"""

from __future__ import annotations

import asyncio
import contextvars
import signal
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["loop_running", "run_sync"]

T = TypeVar("T")


def loop_running() -> bool:
    """Whether an event loop runs in this thread (as in Jupyter and IPython)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_sync(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, also from inside a running event loop (Jupyter, IPython)."""
    if not loop_running():
        return asyncio.run(main)
    return _Hosted(main).run()


@dataclass
class _Hosted(Generic[T]):
    """One coroutine on a worker thread's own loop; what it returned or raised."""

    main: Coroutine[Any, Any, T]
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    loop: asyncio.AbstractEventLoop | None = None
    task: asyncio.Task[T] | None = None
    result: T | None = None
    error: BaseException | None = None

    def run(self) -> T:
        thread = threading.Thread(target=self._target, name="cfanalytics-run", daemon=True)
        try:
            thread.start()
        except BaseException:
            self.main.close()  # never awaited: say so quietly, not as a RuntimeWarning
            raise
        try:
            with _ctrl_c_raises():
                self.done.wait()  # an Event, not join(): an interrupted join() forgets the thread
        except KeyboardInterrupt:
            self._cancel()
            self.done.wait()  # raise only once the run has wound down
            raise
        finally:
            thread.join()
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set whenever error is not

    def _cancel(self) -> None:
        self.started.wait()
        if self.loop is not None and self.task is not None:
            with suppress(RuntimeError):  # the loop closed meanwhile: nothing left to cancel
                self.loop.call_soon_threadsafe(self.task.cancel)

    def _target(self) -> None:
        try:
            self.result = self.context.run(asyncio.run, self._host())
        except BaseException as exc:  # handed to the waiting thread, which raises it
            self.error = exc
        finally:
            self.started.set()
            self.done.set()

    async def _host(self) -> T:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.started.set()
        return await self.main


@contextmanager
def _ctrl_c_raises() -> Iterator[None]:
    """While the main thread waits, Ctrl-C raises KeyboardInterrupt in it: under
    ``asyncio.run`` the loop's own handler would only cancel a task of the loop this very
    wait blocks, so the interrupt would wait for the whole run."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
