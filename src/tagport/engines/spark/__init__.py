"""Apache Spark as an engine: a versioned Parquet dataset that many processes share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tagport.errors import ConfigError
from tagport.exports.capabilities import EngineCapabilities
from tagport.exports.formats import Charset, Compression, FileFormat

if TYPE_CHECKING:
    from tagport.config import Settings
    from tagport.engines.spark.engine import SparkEngine

CAPABILITIES = EngineCapabilities(
    engine="spark",
    file_formats=frozenset(FileFormat),
    compressions=frozenset(Compression),
    charsets=frozenset(Charset),
    split_parts=True,  # TAGPORT_MAX_ROWS_PER_FILE
    single_writer=False,  # Parquet versions: readers never block, a load takes a lock
)


def open_engine(settings: Settings, *, read_only: bool = False) -> SparkEngine:
    """`read_only` is never asked of it (it is not a single-writer engine). Without
    pyspark or Java, a ConfigError says what to install, in one line."""
    try:
        from tagport.engines.spark.engine import SparkEngine
    except ModuleNotFoundError as exc:
        if exc.name != "pyspark" and not (exc.name or "").startswith("pyspark."):
            raise
        raise ConfigError("the Spark engine needs pyspark: pip install 'tagport[spark]'"
                          " (and Java 17)", code="ENGINE_UNAVAILABLE") from exc
    return SparkEngine.from_settings(settings)
