"""An embedded simulator of the Multiplay Clanforge image-install API.

Use it in-process through httpx, or over loopback HTTP::

    sim = Simulator(seed=1, clock=ManualClock(default_scenario().start),
                    access_key="k", secret_key="s")
    client = httpx.Client(transport=SimTransport(sim), base_url="http://sim")
    with serve(sim) as server:  # server.url -> "http://127.0.0.1:<port>"
        ...

The state model (:mod:`._model`) knows nothing of HTTP; :class:`Simulator` (:mod:`._app`) is the
HTTP surface as a function; :mod:`._transport` and :mod:`._server` adapt it. The simulator never
imports the client.
"""

from ._app import SimResponse, Simulator
from ._clock import Clock, ManualClock, ScaledClock
from ._keys import throwaway_keys
from ._model import ApplicationError, Job, Model, Snapshot, State, Version
from ._scenario import (
    FAILURE_CAUSES,
    FAULT_KINDS,
    DiffLock,
    Hotspot,
    Image,
    Location,
    RateLimit,
    Rollout,
    Scenario,
    default_scenario,
)
from ._server import SimServer, serve
from ._transport import SimTransport

__all__ = [
    "FAILURE_CAUSES",
    "FAULT_KINDS",
    "ApplicationError",
    "Clock",
    "DiffLock",
    "Hotspot",
    "Image",
    "Job",
    "Location",
    "ManualClock",
    "Model",
    "RateLimit",
    "Rollout",
    "ScaledClock",
    "Scenario",
    "SimResponse",
    "SimServer",
    "SimTransport",
    "Simulator",
    "Snapshot",
    "State",
    "Version",
    "default_scenario",
    "serve",
    "throwaway_keys",
]
