"""Client configuration: base URL, credentials and timeouts, resolved once at construction."""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from .._version import __version__
from ..exceptions import CredentialsError, InsecureTransportError
from ._secrets import scrubbable

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_ACCESS_KEY",
    "ENV_BASE_URL",
    "ENV_SECRET_KEY",
    "ClientConfig",
    "Credentials",
    "resolve_config",
]

DEFAULT_BASE_URL = "https://api.multiplay.co.uk"
ENV_BASE_URL = "CLANFORGE_BASE_URL"
ENV_ACCESS_KEY = "CLANFORGE_ACCESS_KEY"
ENV_SECRET_KEY = "CLANFORGE_SECRET_KEY"
USER_AGENT = f"cfanalytics/{__version__} httpx/{httpx.__version__}"
# The docs ask for this content type even on GET requests.
CONTENT_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A Clanforge access key and secret key. Neither is ever shown in full."""

    access_key: str
    secret_key: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credentials(access_key='***', secret_key='***')"

    def auth(self) -> httpx.BasicAuth:
        """Basic auth for httpx: the only place the Authorization header is made."""
        return httpx.BasicAuth(self.access_key, self.secret_key)

    def check_scrubbable(self) -> None:
        """Refuse keys too short or too common to blank out of a recording (one line naming
        the key, never showing it): checked before a recording sends anything."""
        scrubbable(
            {
                f"the access key ({ENV_ACCESS_KEY})": self.access_key,
                f"the secret key ({ENV_SECRET_KEY})": self.secret_key,
            }
        )

    def secrets(self) -> tuple[str, ...]:
        """Every string that must never be written anywhere (keys and their Basic token)."""
        token = base64.b64encode(f"{self.access_key}:{self.secret_key}".encode()).decode()
        return (self.access_key, self.secret_key, token)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything a client needs, checked: safe URL, credentials, timeout."""

    base_url: httpx.URL
    credentials: Credentials
    timeout: httpx.Timeout


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(value: str) -> httpx.URL:
    """The base URL, refusing plain HTTP to anything but loopback (credentials ride along)."""
    url = httpx.URL(value)
    if url.scheme not in ("http", "https") or not url.host:
        raise InsecureTransportError(
            f"Base URL {value!r} is not an http(s) URL; use e.g. {DEFAULT_BASE_URL}."
        )
    if url.scheme == "http" and not _is_loopback(url.host):
        raise InsecureTransportError(
            f"Refusing to send Clanforge credentials over plain HTTP to {url.host}; "
            f"use https:// (plain http is allowed only for loopback hosts such as the simulator)."
        )
    return url


def resolve_credentials(
    access_key: str | None, secret_key: str | None, environ: Mapping[str, str]
) -> Credentials:
    """Explicit keys, else the environment, else one error naming both variables."""
    access = access_key or environ.get(ENV_ACCESS_KEY)
    secret = secret_key or environ.get(ENV_SECRET_KEY)
    if not access or not secret:
        missing = [
            name
            for name, value in ((ENV_ACCESS_KEY, access), (ENV_SECRET_KEY, secret))
            if not value
        ]
        raise CredentialsError(
            f"No Clanforge credentials: set {' and '.join(missing)} (Clanforge > Auth Keys), "
            "or pass access_key= and secret_key= in Python"
        )
    return Credentials(access, secret)


def resolve_config(
    *,
    base_url: str | None,
    access_key: str | None,
    secret_key: str | None,
    timeout: float | httpx.Timeout,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Resolve arguments against the environment; raises a ConfigurationError on bad set-up."""
    env = os.environ if environ is None else environ
    return ClientConfig(
        base_url=check_base_url(base_url or env.get(ENV_BASE_URL) or DEFAULT_BASE_URL),
        credentials=resolve_credentials(access_key, secret_key, env),
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
    )
