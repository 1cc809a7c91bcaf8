"""The fetch layer: a thin httpx client for the Clanforge image-install endpoints.

Knows nothing of pandas or files. :class:`Client` and :class:`AsyncClient` send requests and
return typed results that keep the raw response, so the recorder sees every byte.
:func:`route` and :func:`read_response` read a recorded answer by the live client's own rules.
:data:`FIELDS` is the one table of how each field is read (its type and bounds); the events
readers take their rules from it (:data:`STATUS_FIELDS`, :class:`FieldRule`).
"""

from ._async import AsyncClient
from ._config import (
    DEFAULT_BASE_URL,
    ENV_ACCESS_KEY,
    ENV_BASE_URL,
    ENV_SECRET_KEY,
    Credentials,
    resolve_credentials,
)
from ._core import read_response
from ._fields import FIELDS, STATUS_FIELDS, FieldRule, FieldType, state_id_of
from ._results import (
    ImageStatus,
    InstallJob,
    InstallStatus,
    JobFields,
    JobState,
    QueueResult,
    RawResponse,
)
from ._retry import RETRY_LOGGER, RetryPolicy, may_have_acted, refused_unacted
from ._routes import Endpoint, Route, route
from ._secrets import FILTERED, MIN_KEY_LENGTH, scrub, scrub_bytes, scrubbable, unsafe_reason
from ._sync import Client

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_ACCESS_KEY",
    "ENV_BASE_URL",
    "ENV_SECRET_KEY",
    "FIELDS",
    "FILTERED",
    "MIN_KEY_LENGTH",
    "RETRY_LOGGER",
    "STATUS_FIELDS",
    "AsyncClient",
    "Client",
    "Credentials",
    "Endpoint",
    "FieldRule",
    "FieldType",
    "ImageStatus",
    "InstallJob",
    "InstallStatus",
    "JobFields",
    "JobState",
    "QueueResult",
    "RawResponse",
    "RetryPolicy",
    "Route",
    "may_have_acted",
    "read_response",
    "refused_unacted",
    "resolve_credentials",
    "route",
    "scrub",
    "scrub_bytes",
    "scrubbable",
    "state_id_of",
    "unsafe_reason",
]
