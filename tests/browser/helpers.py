"""Shared by the browser tests besides fixtures: skipping, the page's log, whole-page pictures."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page


def unavailable(reason: str) -> NoReturn:
    """Skip on a developer's machine, but fail in CI: there a missing browser is a broken setup."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason, allow_module_level=True)


@dataclass
class PageLog:
    """What the page did besides rendering: blocked requests for other hosts, uncaught JS errors."""

    blocked: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


def screenshot(page: Page, path: Path) -> Path:
    """The whole page as a picture, including what Voila's own scrolling box hides.

    Voila scrolls ``#rendered_cells``, not the document, so ``full_page`` alone stops at the
    window's height: the window is first made as tall as the content.
    """
    height = page.evaluate(
        """() => Math.max(document.documentElement.scrollHeight,
            ...Array.from(document.querySelectorAll('#rendered_cells'), (e) => e.scrollHeight))"""
    )
    width = (page.viewport_size or {"width": 1400})["width"]
    page.set_viewport_size({"width": width, "height": min(int(height) + 40, 20_000)})
    page.screenshot(path=path, full_page=True)
    return path
