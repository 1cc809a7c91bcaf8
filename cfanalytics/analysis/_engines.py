"""Where a history's per-rollout work runs: in worker processes here, or on a Dask cluster.

An engine maps one task (a module-level function of :mod:`._digest`, given the store's path
and a rollout) over many rollouts and gives the results back in order, as they come. Each
task reads its own rollout from the store and returns a small result, so memory is set by
the largest rollout, not by the history. The tasks are the same functions whatever the
engine: no rule is written twice, and the engines' results are equal.

- :class:`Embedded` (the default): processes on this machine, one rollout each at a time
  (``workers``: the cores; 1 runs in this process), fresh interpreters started for each
  map and gone after it (:mod:`._workers`);
- :class:`Dask`: ``dask.distributed`` workers, a ``LocalCluster`` of ``workers`` processes by
  default, or the cluster at ``scheduler``; they need the package and read access to the
  store's path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from ..exceptions import ConfigurationError
from ._workers import Workers

__all__ = ["ENGINES", "Dask", "Embedded", "Engine", "engine_of"]

_T = TypeVar("_T")
#: The engines by name, as ``engine=`` and ``--engine`` take them.
ENGINES = ("embedded", "dask")
# Fewer tasks than this run in this process: starting workers would cost more.
_INLINE_BELOW = 3


class Engine(Protocol):
    """Runs ``task(*arguments)`` for each tuple of ``arguments``; yields the results in the
    same order, each as soon as it and those before it are done."""

    def map(
        self, task: Callable[..., _T], arguments: Sequence[tuple[Any, ...]]
    ) -> Iterator[_T]: ...

    def close(self) -> None: ...


class Embedded:
    """Worker processes on this machine (``workers``: default the number of cores)."""

    def __init__(self, *, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.workers = workers or os.cpu_count() or 1

    def __repr__(self) -> str:
        return f"Embedded(workers={self.workers})"

    def map(self, task: Callable[..., _T], arguments: Sequence[tuple[Any, ...]]) -> Iterator[_T]:
        if self.workers == 1 or len(arguments) < _INLINE_BELOW:
            yield from (task(*args) for args in arguments)
            return
        with Workers(min(self.workers, len(arguments))) as workers:  # gone after the map
            yield from workers.map(task, arguments)

    def close(self) -> None:
        """Nothing to stop: each map's processes end with it."""


class Dask:
    """``dask.distributed`` workers: the cluster at ``scheduler`` (an address such as
    ``tcp://10.0.0.5:8786``), else a ``LocalCluster`` of ``workers`` processes started on
    first use and stopped by :meth:`close`."""

    def __init__(self, *, scheduler: str | None = None, workers: int = 2) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.scheduler, self.workers = scheduler, workers
        self._client: Any = None
        self._cluster: Any = None

    def __repr__(self) -> str:
        where = self.scheduler or f"a LocalCluster of {self.workers} workers"
        return f"Dask({where})"

    def map(self, task: Callable[..., _T], arguments: Sequence[tuple[Any, ...]]) -> Iterator[_T]:
        if not arguments:
            return
        client = self._connect()
        futures = client.map(task, *zip(*arguments, strict=True), pure=False)
        try:
            for future in futures:
                yield future.result()
        finally:  # a reader that stopped early: the rest is not needed
            client.cancel([future for future in futures if not future.done()])

    def close(self) -> None:
        """Disconnect; stop the LocalCluster this engine started."""
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def _connect(self) -> Any:
        if self._client is None:
            try:
                from distributed import Client, LocalCluster
            except ImportError as exc:
                raise ConfigurationError(
                    "engine='dask' needs dask.distributed: pip install 'cfanalytics[dask]'"
                ) from exc
            if self.scheduler is None:
                self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # no fixed port: clusters side by side
                    silence_logs=logging.ERROR,
                )
            self._client = Client(self.scheduler or self._cluster)  # type: ignore[no-untyped-call]
        return self._client


def engine_of(
    engine: str | Engine | None, *, workers: int | None = None, scheduler: str | None = None
) -> Engine:
    """An engine from its name (:data:`ENGINES`; None: embedded), or ``engine`` itself."""
    if engine is None or engine == "embedded":
        if scheduler is not None:
            raise ValueError("a scheduler address is for engine='dask'")
        return Embedded(workers=workers)
    if engine == "dask":
        return Dask(scheduler=scheduler, workers=workers or 2)
    if isinstance(engine, str):
        raise ValueError(f"no engine {engine!r}; choose from {', '.join(ENGINES)}")
    return engine
