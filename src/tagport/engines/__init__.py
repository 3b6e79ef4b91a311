"""Data engines behind one interface (engines.base.Engine), found by name.

Each engine is a package that declares `CAPABILITIES` (exports.capabilities) and
`open_engine(settings, read_only)`; its heavy modules are imported only when it opens, so
the API can check a request against an engine's capabilities without starting it.
Adding an engine is one folder plus one line here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tagport.config import Settings
from tagport.engines.base import Engine
from tagport.errors import NotImplementedYet
from tagport.exports.capabilities import EngineCapabilities

ENGINES = {
    "duckdb": "tagport.engines.duckdb",
    "spark": "tagport.engines.spark",
}


def _package(name: str) -> ModuleType:
    if name not in ENGINES:
        raise NotImplementedYet(
            f"unknown engine {name!r}; use one of: {', '.join(ENGINES)}")
    return importlib.import_module(ENGINES[name])


def capabilities(name: str) -> EngineCapabilities:
    """What the engine `name` can do, without opening it."""
    caps: EngineCapabilities = _package(name).CAPABILITIES
    return caps


def open_engine(settings: Settings, *, read_only: bool = False) -> Engine:
    """The engine the settings name, opened on the data dir; `read_only` for processes
    that only export (`tagport worker`, `serve --no-worker`): a single-writer engine
    (DuckDB) then opens its store read-only, which several processes may share."""
    package = _package(settings.engine)
    engine: Engine = package.open_engine(
        settings, read_only=read_only and package.CAPABILITIES.single_writer)
    return engine
