"""DuckDB, the embedded default engine: one file, one writer process, many readers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tagport.exports.capabilities import EngineCapabilities
from tagport.exports.formats import Charset, Compression, FileFormat

if TYPE_CHECKING:
    from tagport.config import Settings
    from tagport.engines.duckdb.engine import DuckDBEngine

CAPABILITIES = EngineCapabilities(
    engine="duckdb",
    file_formats=frozenset(FileFormat),
    compressions=frozenset(Compression),
    charsets=frozenset(Charset),
    split_parts=False,
    single_writer=True,
)


def open_engine(settings: Settings, *, read_only: bool = False) -> DuckDBEngine:
    from tagport.engines.duckdb.engine import DuckDBEngine

    return DuckDBEngine.from_settings(settings, read_only=read_only)
