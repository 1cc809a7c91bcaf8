"""What the sync and async clients share besides the core: construction and display."""

from __future__ import annotations

import random
from typing import Any

import httpx

from ._config import resolve_config
from ._core import Call, ClientCore
from ._retry import RetryPolicy

__all__ = ["ClientBase"]


class ClientBase:
    """Resolves the configuration once, at construction, and never shows a secret."""

    _core: ClientCore

    def _configure(
        self,
        *,
        base_url: str | None,
        access_key: str | None,
        secret_key: str | None,
        timeout: float | httpx.Timeout,
        retry: RetryPolicy | None,
        rng: random.Random | None,
    ) -> None:
        config = resolve_config(
            base_url=base_url, access_key=access_key, secret_key=secret_key, timeout=timeout
        )
        self._core = ClientCore(config, retry or RetryPolicy(), rng or random.Random())

    def __repr__(self) -> str:
        credentials = self._core.config.credentials
        return f"<{type(self).__name__} base_url={str(self.base_url)!r} {credentials!r}>"

    @property
    def base_url(self) -> httpx.URL:
        """The API's base URL."""
        return self._core.config.base_url

    def _request(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        return http.build_request(call.method, call.path, params=call.params)
