"""cfanalytics: study Multiplay Clanforge image rollouts in Jupyter.

The public API is what ``__all__`` lists; everything else is private or a submodule
(``cfanalytics.simulator`` for the embedded Clanforge simulator).
"""

from ._version import __version__
from .client import (
    AsyncClient,
    Client,
    ImageStatus,
    InstallJob,
    InstallStatus,
    JobState,
    QueueResult,
    RawResponse,
    RetryPolicy,
)
from .exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CfAnalyticsError,
    ConfigurationError,
    ConnectError,
    CredentialsError,
    HTTPStatusError,
    InsecureTransportError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "CfAnalyticsError",
    "Client",
    "ConfigurationError",
    "ConnectError",
    "CredentialsError",
    "HTTPStatusError",
    "ImageStatus",
    "InsecureTransportError",
    "InstallJob",
    "InstallStatus",
    "JobState",
    "NotFoundError",
    "QueueResult",
    "RateLimitedError",
    "RawResponse",
    "RequestTimeoutError",
    "ResponseError",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerError",
    "TransportError",
    "__version__",
]
