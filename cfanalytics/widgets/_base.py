"""What every widget here shares: work on the kernel's event loop, and errors shown in place.

A callback's exception would otherwise vanish into the kernel's log (a widget callback has
no cell to print to). :class:`Tasks` runs callbacks and their coroutines, shows any error in
an HTML pane of the widget, logs it, and keeps it in :attr:`Tasks.errors`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import ipywidgets as widgets
import pandas as pd

from ..exceptions import CfAnalyticsError
from ..report import NA, escape

__all__ = ["TABLE_CSS", "Tasks", "bar", "cells", "classed", "clock", "html_table", "message"]

log = logging.getLogger("cfanalytics.widgets")

W = TypeVar("W", bound=widgets.DOMWidget)

#: Inline styles, so the widgets look the same in JupyterLab, Notebook and Voila.
STYLE = {
    "error": "color:#a40000;background:#fdecea;border-left:4px solid #D55E00;padding:.3em .6em",
    "note": "color:#555",
    "warning": "color:#6b4400;background:#fff4e0;border-left:4px solid #E69F00;padding:.3em .6em",
}


#: Compact tables for the HTML widgets that carry the class ``cfa-table``.
TABLE_CSS = (
    "<style>.cfa-table table{border-collapse:collapse;font-size:12px;width:100%}"
    ".cfa-table th,.cfa-table td{padding:2px 8px;border-bottom:1px solid #e3e3e3;"
    "text-align:left;white-space:nowrap}.cfa-table progress{width:110px}"
    ".cfa-flag{color:#a40000;font-weight:bold}</style>"
)


def classed(widget: W, *names: str) -> W:
    """``widget`` with CSS classes added: stable hooks for styling and browser tests."""
    for name in names:
        widget.add_class(name)
    return widget


def message(text: str, kind: str = "note") -> str:
    """A line of escaped text in one of :data:`STYLE`'s looks."""
    return f'<div style="{STYLE[kind]}">{escape(text)}</div>'


def cells(values: Iterable[Any]) -> str:
    """Table cells of escaped values; missing ones as a dash."""
    return "".join(f"<td>{escape(NA if _missing(v) else v)}</td>" for v in values)


def bar(progress: Any, css: str = "") -> str:
    """A progress bar (0-100 %) and its number, as HTML."""
    value = 0 if _missing(progress) else int(progress)
    klass = f' class="{css}"' if css else ""
    return f'<progress{klass} value="{value}" max="100"></progress> {value} %'


def clock(moment: Any) -> str:
    """A timestamp as ``HH:MM:SS`` (UTC), or a dash."""
    return NA if _missing(moment) else pd.Timestamp(moment).strftime("%H:%M:%S")


def html_table(headers: Iterable[str], rows: list[str], total: int) -> str:
    """A table of pre-rendered ``rows``, saying how many of ``total`` were left out."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    more = total - len(rows)
    tail = f"<p>and {more} more jobs</p>" if more > 0 else ""
    body = "".join(rows)
    return f"{TABLE_CSS}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{tail}"


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def describe(exc: BaseException) -> str:
    """An exception as one readable line: our errors say what to do; others name their type."""
    if isinstance(exc, CfAnalyticsError | ValueError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class Tasks:
    """Runs a widget's callbacks and coroutines; shows what went wrong in :attr:`pane`."""

    def __init__(self) -> None:
        self.pane = classed(widgets.HTML(), "cfa-error")
        self.errors: list[BaseException] = []
        self._running: set[asyncio.Task[Any]] = set()

    def show(self, exc: BaseException, what: str) -> None:
        """Show ``exc`` in the pane (escaped, one line) and log it with its traceback."""
        self.errors.append(exc)
        log.error("%s failed", what, exc_info=exc)
        self.pane.value = message(f"{what} failed: {describe(exc)}", "error")

    def clear(self) -> None:
        """Take the last error off the pane (it stays in :attr:`errors`)."""
        self.pane.value = ""

    def guard(self, what: str, callback: Callable[..., object]) -> Callable[..., None]:
        """``callback`` wrapped so that an exception is shown, never lost."""

        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception as exc:  # shown and logged: a callback has nowhere else to raise
                self.show(exc, what)

        return guarded

    def button(self, label: str, css: str, handler: Callable[..., object], **options: Any) -> Any:
        """A button (class ``css``) whose clicks run ``handler``, errors shown here."""
        button = classed(widgets.Button(description=label, **options), css)
        button.on_click(self.guard(label, handler))
        return button

    def spawn(self, what: str, coroutine: Coroutine[Any, Any, object]) -> asyncio.Task[Any] | None:
        """Run ``coroutine`` as a task on the running loop (the kernel's, in Jupyter)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError as exc:
            coroutine.close()
            self.show(RuntimeError("this needs a running event loop, as in Jupyter"), what)
            log.debug("no running loop", exc_info=exc)
            return None
        task = loop.create_task(coroutine, name=f"cfanalytics: {what}")
        self._running.add(task)
        task.add_done_callback(lambda done: self._finished(done, what))
        return task

    def _finished(self, task: asyncio.Task[Any], what: str) -> None:
        self._running.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.show(exc, what)

    @property
    def busy(self) -> bool:
        """Whether a task is still running."""
        return bool(self._running)

    async def idle(self) -> None:
        """Wait until every task started here has finished (tests, and ``await`` in cells)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
