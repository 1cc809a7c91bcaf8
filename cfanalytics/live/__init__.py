"""Live control without widgets: sessions, queueing and monitoring as plain classes.

The widgets in :mod:`cfanalytics.widgets` are thin views over these; everything here is
usable and tested without Jupyter.
"""

from ._monitor import FLEET_FORECAST_SCHEMA, FleetHeader, Monitor, Throttle
from ._queueing import JOB_COLUMNS, QueueController, QueueOutcome
from ._session import SOURCES, LiveSession

__all__ = [
    "FLEET_FORECAST_SCHEMA",
    "JOB_COLUMNS",
    "SOURCES",
    "FleetHeader",
    "LiveSession",
    "Monitor",
    "QueueController",
    "QueueOutcome",
    "Throttle",
]
