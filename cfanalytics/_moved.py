"""The 0.1 module paths, importable for one more release with a ``FutureWarning``.

0.1 had flat modules (``cfanalytics.summary``, ``cfanalytics.session``, ...) and public
simulator modules (``cfanalytics.simulator.scenario``, ...); 0.2 groups them by layer, behind
each layer's ``__init__``. Each old path is registered in ``sys.modules`` as a light
stand-in that imports nothing until a name is read from it, then warns and hands over the
name from its new package. Registering them up front (rather than with an import hook)
keeps ``import cfanalytics.replay`` from rebinding ``cfanalytics.replay``, the function.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import Any

__all__ = ["MOVED", "register"]

#: Old module (under ``cfanalytics.``) -> the package that now holds its public names.
MOVED = {
    **dict.fromkeys(
        ("cassette", "eventlog", "recorder", "replay", "runner", "samples", "scan", "session"),
        "recording",
    ),
    **dict.fromkeys(
        ("summary", "timing", "rollout", "completion", "fleet", "timeline", "failures"),
        "analysis",
    ),
    **dict.fromkeys(("queueing", "monitor"), "live"),
    **dict.fromkeys(
        ("simulator.app", "simulator.clock", "simulator.model", "simulator.scenario"),
        "simulator",
    ),
    **dict.fromkeys(("simulator.server", "simulator.transport"), "simulator"),
}


class MovedModule(types.ModuleType):
    """Stands in for a 0.1 module: every name read from it comes from its new package."""

    def __init__(self, old: str, new: str) -> None:
        super().__init__(f"cfanalytics.{old}", f"Moved to cfanalytics.{new} in 0.2.")
        self.__moved_to__ = f"cfanalytics.{new}"

    def __getattr__(self, name: str) -> Any:
        package = importlib.import_module(self.__moved_to__)
        if name == "__all__":  # `from cfanalytics.summary import *`
            return package.__all__
        if name.startswith("__"):
            raise AttributeError(name)
        warnings.warn(
            f"{self.__name__} is {self.__moved_to__} since cfanalytics 0.2: import {name} "
            f"from {self.__moved_to__} (or from cfanalytics); the old path goes in 0.3",
            FutureWarning,
            stacklevel=2,
        )
        return getattr(package, name)


def register() -> None:
    """Put a stand-in at each old path that nothing else holds."""
    for old, new in MOVED.items():
        sys.modules.setdefault(f"cfanalytics.{old}", MovedModule(old, new))
