"""run_sync: the sync API's way to run a coroutine, also where an event loop already runs."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cfanalytics.recording._sync import run_sync

SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


def in_a_running_loop(call: Callable[[], Any], *, style: str = "kernel") -> Any:
    """``call()`` from inside a running event loop: a kernel's (Jupyter's loop keeps Python's
    own SIGINT handler) or one under ``asyncio.run`` (which installs its own)."""

    async def cell() -> Any:
        return call()

    if style == "asyncio.run":
        return asyncio.run(cell())
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(cell())
    finally:
        loop.close()


@pytest.fixture
def interruptible() -> Iterator[None]:
    """SIGINT raising KeyboardInterrupt, as Python sets it up unless it started with SIGINT
    ignored (under nohup, or as a background job of a shell without job control)."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("interruptible")
@pytest.mark.parametrize("style", ["kernel", "asyncio.run"])
def test_ctrl_c_cancels_the_run_and_is_raised_only_once_it_wound_down(style: str) -> None:
    """A kernel interrupt reaches the waiting thread: the run is cancelled in its own loop,
    its clean-up finishes, and only then does KeyboardInterrupt reach the caller."""
    log: list[str] = []

    async def rollout() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)  # clean-up that takes a while (writing a cassette)
            log.append("wound down")
            raise

    main = threading.main_thread().ident
    assert main is not None
    # A real SIGINT to the main thread, as Ctrl-C or a kernel interrupt sends.
    threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        in_a_running_loop(lambda: run_sync(rollout()), style=style)
    log.append("raised")
    assert log == ["wound down", "raised"]
    assert not [t for t in threading.enumerate() if t.name == "cfanalytics-run"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_errors_and_context_reach_across_the_thread() -> None:
    """What the run raises is raised to the caller as itself; context variables set by the
    caller are seen inside the run."""

    async def fails() -> None:
        raise LookupError(SEEN.get())

    SEEN.set("from the cell")
    with pytest.raises(LookupError, match="from the cell"):
        in_a_running_loop(lambda: run_sync(fails()))


def test_a_run_can_start_another_from_its_callbacks() -> None:
    """The sync API called inside a run's callback (itself on a running loop) still works."""

    async def inner() -> str:
        return "inner"

    async def outer() -> str:
        return run_sync(inner()) + " in outer"

    assert in_a_running_loop(lambda: run_sync(outer())) == "inner in outer"
    assert run_sync(outer()) == "inner in outer"  # and with no loop running at all


def test_a_runner_refuses_run_sync_where_a_loop_runs() -> None:
    """A runner's client belongs to the loop that made it: where one runs, run_sync says to
    await run() instead of running the client on another loop."""
    from cfanalytics import AsyncClient
    from cfanalytics.recording import RolloutRunner

    def make_and_run() -> None:
        client = AsyncClient(base_url="http://sim.localhost", access_key="k", secret_key="s")
        RolloutRunner(client, 1).run_sync()

    with pytest.raises(RuntimeError, match=r"await runner\.run"):
        in_a_running_loop(make_and_run)
