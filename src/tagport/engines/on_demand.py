"""Opening the data engine only while it is used, for processes that share the profile
store with others (`tagport worker`, `tagport serve --no-worker`).

DuckDB lets one process write its file or several read it; a reader that keeps the file
open between uses would lock out every load. These open the engine read-only when a use
begins and close it when the last concurrent use ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from tagport.engines.base import Engine


class EngineSource(Protocol):
    """Where a worker gets the engine for one export: `with source.use() as engine`."""

    def use(self) -> AbstractContextManager[Engine]: ...


class HeldEngine:
    """An engine that stays open (the server's DuckDB writer, the CLI's engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def use(self) -> Iterator[Engine]:
        yield self.engine


def engine_source(engine: Engine | EngineSource) -> EngineSource:
    """`engine` as a source: a source as it is, an open engine held. A source is what
    has a `use` method of its class (EnginePerCall answers any name, but is an engine)."""
    if callable(getattr(type(engine), "use", None)):
        return engine  # type: ignore[return-value]
    return HeldEngine(engine)  # type: ignore[arg-type]


class EngineOnDemand:
    """The engine, opened for the first of concurrent uses and closed after the last.
    Opening raises StoreBusy while another process writes the store."""

    def __init__(self, open_engine: Callable[[], Engine]) -> None:
        self._open = open_engine
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._users = 0

    @contextmanager
    def use(self) -> Iterator[Engine]:
        with self._lock:
            if self._engine is None:
                self._engine = self._open()
            self._users += 1
            engine = self._engine
        try:
            yield engine
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._engine is not None:
                    self._engine.close()
                    self._engine = None


class EnginePerCall:
    """An Engine whose every method call is one use of an EngineOnDemand (for the
    profile lookups of an API-only node)."""

    name = "on-demand"

    def __init__(self, source: EngineOnDemand) -> None:
        self._source = source

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self._source.use() as engine:
                return getattr(engine, method)(*args, **kwargs)

        return call

    def close(self) -> None:
        """Nothing stays open between calls."""
