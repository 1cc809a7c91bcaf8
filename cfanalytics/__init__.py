"""cfanalytics: study Multiplay Clanforge image rollouts in Jupyter.

The public API is what ``__all__`` lists; everything else is private or a submodule
(``cfanalytics.simulator`` for the embedded Clanforge simulator, ``cfanalytics.widgets`` for
the Jupyter widgets).
"""

from ._version import __version__
from .analysis._completion import completion_curve, time_to_fraction
from .analysis._failures import api_errors, classify_error, failure_rates, failures, polling_gaps
from .analysis._fleet import fleet_states, progress_curves, state_intervals, stragglers
from .analysis._rollout import rollout_metrics
from .analysis._summary import job_summary
from .analysis._timeline import FleetTimeline, fleet_at
from .analysis._timing import error_by, eta_errors, job_eta_metrics
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
    CassetteError,
    CfAnalyticsError,
    ConfigurationError,
    ConnectError,
    CredentialsError,
    EventLogError,
    HTTPStatusError,
    InsecureTransportError,
    NotFoundError,
    RateLimitedError,
    RecordingError,
    ReplayExhaustedError,
    ReportError,
    RequestTimeoutError,
    ResponseError,
    ResponseFormatError,
    SchemaError,
    ServerError,
    TransportError,
)
from .live._session import LiveSession
from .recording._eventlog import EventLog, load_events
from .recording._recorder import Recorder
from .recording._runner import RolloutProgress, RolloutRunner
from .recording._runs import RecordedRun, RunPlan, events_from_cassette, load_source, record, replay
from .report import write_report

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "CassetteError",
    "CfAnalyticsError",
    "Client",
    "ConfigurationError",
    "ConnectError",
    "CredentialsError",
    "EventLog",
    "EventLogError",
    "FleetTimeline",
    "HTTPStatusError",
    "ImageStatus",
    "InsecureTransportError",
    "InstallJob",
    "InstallStatus",
    "JobState",
    "LiveSession",
    "NotFoundError",
    "QueueResult",
    "RateLimitedError",
    "RawResponse",
    "RecordedRun",
    "Recorder",
    "RecordingError",
    "ReplayExhaustedError",
    "ReportError",
    "RequestTimeoutError",
    "ResponseError",
    "ResponseFormatError",
    "RetryPolicy",
    "RolloutProgress",
    "RolloutRunner",
    "RunPlan",
    "SchemaError",
    "ServerError",
    "TransportError",
    "__version__",
    "api_errors",
    "classify_error",
    "completion_curve",
    "error_by",
    "eta_errors",
    "events_from_cassette",
    "failure_rates",
    "failures",
    "fleet_at",
    "fleet_states",
    "job_eta_metrics",
    "job_summary",
    "load_events",
    "load_source",
    "polling_gaps",
    "progress_curves",
    "record",
    "replay",
    "rollout_metrics",
    "state_intervals",
    "stragglers",
    "time_to_fraction",
    "write_report",
]
