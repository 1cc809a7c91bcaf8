"""cfanalytics: study Multiplay Clanforge image rollouts in Jupyter.

The public API is what ``__all__`` lists; the layers are subpackages, each with its own
``__all__``: :mod:`cfanalytics.client` (the fetch layer), :mod:`cfanalytics.simulator`,
:mod:`cfanalytics.events` (the one schema), :mod:`cfanalytics.recording`,
:mod:`cfanalytics.analysis`, :mod:`cfanalytics.plots`, :mod:`cfanalytics.report`,
:mod:`cfanalytics.live`, :mod:`cfanalytics.widgets` and :mod:`cfanalytics.cli`.

``import cfanalytics`` is light: the exceptions load now, every other name on first use
(module ``__getattr__``, as Scientific Python's SPEC 1 describes), so the command line starts
fast and matplotlib, ipywidgets, vcrpy and the simulator's server load only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _moved
from ._version import __version__
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
    HistoryError,
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
    RolloutError,
    SchemaError,
    ServerError,
    TransportError,
)

if TYPE_CHECKING:
    from . import analysis as analysis
    from . import cli as cli
    from . import client as client
    from . import events as events
    from . import live as live
    from . import plots as plots
    from . import recording as recording
    from . import report as report
    from . import simulator as simulator
    from . import widgets as widgets
    from .analysis import (
        FleetTimeline,
        History,
        api_errors,
        backtest,
        classify_error,
        compare,
        completion_curve,
        error_by,
        eta_errors,
        failure_rates,
        failures,
        fleet_at,
        fleet_states,
        forecast,
        job_eta_metrics,
        job_summary,
        machine_history,
        open_history,
        polling_gaps,
        progress_curves,
        queue_refusals,
        refusal_reasons,
        rollout_metrics,
        state_intervals,
        stragglers,
        time_to_fraction,
        trend,
    )
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
    from .events import rollout_events, rollouts
    from .live import LiveSession
    from .recording import (
        EventLog,
        HistoryStore,
        RecordedRun,
        Recorder,
        RolloutProgress,
        RolloutRunner,
        RunPlan,
        arecord,
        areplay,
        aresume,
        events_from_cassette,
        load_events,
        load_source,
        record,
        replay,
        resume,
    )
    from .report import write_report

#: Where each lazily loaded name lives (a test holds this to the imports above and to __all__).
_LAZY: dict[str, tuple[str, ...]] = {
    "analysis": (
        "FleetTimeline",
        "History",
        "api_errors",
        "backtest",
        "classify_error",
        "compare",
        "completion_curve",
        "error_by",
        "eta_errors",
        "failure_rates",
        "failures",
        "fleet_at",
        "fleet_states",
        "forecast",
        "job_eta_metrics",
        "job_summary",
        "machine_history",
        "open_history",
        "polling_gaps",
        "progress_curves",
        "queue_refusals",
        "refusal_reasons",
        "rollout_metrics",
        "state_intervals",
        "stragglers",
        "time_to_fraction",
        "trend",
    ),
    "client": (
        "AsyncClient",
        "Client",
        "ImageStatus",
        "InstallJob",
        "InstallStatus",
        "JobState",
        "QueueResult",
        "RawResponse",
        "RetryPolicy",
    ),
    "events": ("rollout_events", "rollouts"),
    "live": ("LiveSession",),
    "recording": (
        "EventLog",
        "HistoryStore",
        "RecordedRun",
        "Recorder",
        "RolloutProgress",
        "RolloutRunner",
        "RunPlan",
        "arecord",
        "areplay",
        "aresume",
        "events_from_cassette",
        "load_events",
        "load_source",
        "record",
        "replay",
        "resume",
    ),
    "report": ("write_report",),
}
_HOME = {name: package for package, names in _LAZY.items() for name in names}
_SUBPACKAGES = frozenset(
    {
        "analysis",
        "cli",
        "client",
        "events",
        "live",
        "plots",
        "recording",
        "report",
        "simulator",
        "widgets",
    }
)

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
    "History",
    "HistoryError",
    "HistoryStore",
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
    "RolloutError",
    "RolloutProgress",
    "RolloutRunner",
    "RunPlan",
    "SchemaError",
    "ServerError",
    "TransportError",
    "__version__",
    "api_errors",
    "arecord",
    "areplay",
    "aresume",
    "backtest",
    "classify_error",
    "compare",
    "completion_curve",
    "error_by",
    "eta_errors",
    "events_from_cassette",
    "failure_rates",
    "failures",
    "fleet_at",
    "fleet_states",
    "forecast",
    "job_eta_metrics",
    "job_summary",
    "load_events",
    "load_source",
    "machine_history",
    "open_history",
    "polling_gaps",
    "progress_curves",
    "queue_refusals",
    "record",
    "refusal_reasons",
    "replay",
    "resume",
    "rollout_events",
    "rollout_metrics",
    "rollouts",
    "state_intervals",
    "stragglers",
    "time_to_fraction",
    "trend",
    "write_report",
]


_moved.register()  # the 0.1 module paths, for one more release


if not TYPE_CHECKING:  # type checkers see the imports above, and flag a misspelt name

    def __getattr__(name: str) -> Any:
        """Load a public name, a layer's subpackage, or a 0.1 module path, on first use."""
        if name in _SUBPACKAGES or (name in _moved.MOVED and name not in _HOME):
            return importlib.import_module(f"{__name__}.{name}")
        package = _HOME.get(name)
        if package is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{package}"), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBPACKAGES})
