"""Run a coroutine to the end from plain code, whether or not an event loop runs here.

``asyncio.run`` refuses to start inside a running loop, and Jupyter and IPython run one in
the main thread, so the sync API (``record``, ``replay``, ``resume``) would fail exactly
where this toolkit is used most. When a loop runs, the coroutine runs in a fresh loop on a
worker thread and this thread waits; Ctrl-C (a kernel interrupt) cancels it there and is
raised here once it has wound down, so a run is never left going in the background.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, also from inside a running event loop (Jupyter, IPython)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main)
    return _Hosted(main).run()


@dataclass
class _Hosted(Generic[T]):
    """One coroutine on a worker thread's own loop; what it returned or raised."""

    main: Coroutine[Any, Any, T]
    started: threading.Event = field(default_factory=threading.Event)
    loop: asyncio.AbstractEventLoop | None = None
    task: asyncio.Task[T] | None = None
    result: T | None = None
    error: BaseException | None = None

    def run(self) -> T:
        thread = threading.Thread(target=self._target, name="cfanalytics-run", daemon=True)
        thread.start()
        try:
            thread.join()
        except KeyboardInterrupt:
            self.started.wait()
            if self.loop is not None and self.task is not None:
                self.loop.call_soon_threadsafe(self.task.cancel)
            thread.join()
            raise
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set whenever error is not

    def _target(self) -> None:
        try:
            self.result = asyncio.run(self._host())
        except BaseException as exc:  # handed to the waiting thread, which raises it
            self.error = exc
        finally:
            self.started.set()

    async def _host(self) -> T:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.started.set()
        return await self.main
