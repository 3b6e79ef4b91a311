"""Data engines behind one interface (engines.base.Engine)."""

from __future__ import annotations

from tagport.config import Settings
from tagport.engines.base import Engine
from tagport.errors import NotImplementedYet


def open_engine(settings: Settings, *, read_only: bool = False) -> Engine:
    """The engine the settings name, opened on the data dir; `read_only` for processes
    that only export (`tagport worker`), which DuckDB lets several of share the file."""
    if settings.engine == "duckdb":
        from tagport.engines.duckdb.engine import DuckDBEngine

        return DuckDBEngine.from_settings(settings, read_only=read_only)
    if settings.engine == "spark":
        from tagport.engines.spark.engine import SparkEngine

        return SparkEngine.from_settings(settings, read_only=read_only)
    raise NotImplementedYet(f"unknown engine {settings.engine!r}; use 'duckdb' or 'spark'")
