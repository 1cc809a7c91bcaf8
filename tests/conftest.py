"""Shared fixtures: a clean environment for every test, and well-known fake credentials."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Fake keys, long and distinctive so a leak scan can find them anywhere.
ACCESS_KEY = "AKTESTACCESS0123456789"
SECRET_KEY = "SKTESTSECRET9876543210zyxw"


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """Tests never see the developer's real Clanforge settings, and leave none behind."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("CLANFORGE_"):
            del os.environ[name]
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def keys() -> dict[str, str]:
    """Keyword arguments giving a client or simulator the fake credentials."""
    return {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}
