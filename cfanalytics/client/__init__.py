"""The fetch layer: a thin httpx client for the Clanforge image-install endpoints.

Knows nothing of pandas or files. :class:`Client` and :class:`AsyncClient` send what
:class:`~cfanalytics.client._core.ClientCore` builds and return typed results that keep the
raw response, so the recorder sees every byte.
"""

from ._async import AsyncClient
from ._config import DEFAULT_BASE_URL, ENV_ACCESS_KEY, ENV_BASE_URL, ENV_SECRET_KEY, Credentials
from ._results import (
    ImageStatus,
    InstallJob,
    InstallStatus,
    JobFields,
    JobState,
    QueueResult,
    RawResponse,
)
from ._retry import RetryPolicy
from ._sync import Client

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_ACCESS_KEY",
    "ENV_BASE_URL",
    "ENV_SECRET_KEY",
    "AsyncClient",
    "Client",
    "Credentials",
    "ImageStatus",
    "InstallJob",
    "InstallStatus",
    "JobFields",
    "JobState",
    "QueueResult",
    "RawResponse",
    "RetryPolicy",
]
