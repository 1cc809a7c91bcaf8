"""Fixtures of the command line's tests."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import pytest

from cfanalytics.client import RetryPolicy

from ..conftest import ACCESS_KEY, SECRET_KEY, SimRig


@pytest.fixture
def sim_url(monkeypatch: pytest.MonkeyPatch, sim_rig: Callable[..., SimRig]) -> Iterator[str]:
    """A simulator on loopback, and the environment pointing the CLI at it."""
    with sim_rig().serve() as url:
        monkeypatch.setenv("CLANFORGE_ACCESS_KEY", ACCESS_KEY)
        monkeypatch.setenv("CLANFORGE_SECRET_KEY", SECRET_KEY)
        monkeypatch.setenv("CLANFORGE_BASE_URL", url)
        yield url


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients the command line makes wait a millisecond between tries, not seconds."""
    fast = functools.partial(RetryPolicy, initial=0.001, jitter=0.0)
    monkeypatch.setattr("cfanalytics.client._base.RetryPolicy", fast)
