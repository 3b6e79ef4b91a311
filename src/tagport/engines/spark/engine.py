"""Apache Spark as a tagport engine: a Parquet dataset, exports and loads as Spark jobs.

`TAGPORT_SPARK_MASTER` is any Spark master URL (`local[2]`, `spark://host:7077`);
the profile dataset (`TAGPORT_PROFILE_PATH`) and the result dir must be paths that the
driver and every executor see alike (a shared mount). See store.py for the dataset's
layout, export.py for the bytes, load.py for loading.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import date, tzinfo
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from tagport.catalog.models import (
    CatalogEntry,
    Distribution,
    EventDefinition,
    MembersReport,
    Portrait,
)
from tagport.computes import Definition
from tagport.conditions import Condition
from tagport.config import Settings
from tagport.engines.base import (
    EventLoadHook,
    EventLoadReport,
    InputFormat,
    LoadHook,
    LoadReport,
    TagCoverage,
)
from tagport.engines.spark import CAPABILITIES, query, segments
from tagport.engines.spark import export as export_plan
from tagport.engines.spark.compute import EventsSource, compute_tag
from tagport.engines.spark.driver_resolve import DRIVER_RESOLVE_MAX_RECORDS
from tagport.engines.spark.event_load import load_events
from tagport.engines.spark.events import events_or_empty
from tagport.engines.spark.load import DuckDBOptions, load_file
from tagport.engines.spark.store import ProfileStore
from tagport.errors import ConfigError
from tagport.exports.plan import ExportOutput, ExportPlan

_session: SparkSession | None = None
_session_lock = threading.Lock()


def spark_session(master: str, driver_memory: str | None = None) -> SparkSession:
    """The process's Spark session (Spark allows one), created on first use and kept
    until the process exits: engines come and go (a worker opens one per burst of
    exports), and a session takes seconds to start. `driver_memory` (`8g`) is the
    driver JVM's heap, which only a session's start can set."""
    global _session
    with _session_lock:
        if _session is None:
            _session = _new_session(master, driver_memory)
        return _session


def _new_session(master: str, driver_memory: str | None) -> SparkSession:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ConfigError("the Spark engine needs Java 17: install it (Debian: apt-get install"
                          " openjdk-17-jre-headless) or set JAVA_HOME", code="ENGINE_UNAVAILABLE")
    # the executors' Python (they render the text exports: engines/spark/parts.py) is
    # this one, unless the deployment names another; PySpark reads it from the variable
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (SparkSession.builder.master(master).appName("tagport")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.showConsoleProgress", "false")
               # datetimes are TIMESTAMP_NTZ, as the DuckDB engine's TIMESTAMP
               .config("spark.sql.parquet.inferTimestampNTZ.enabled", "true"))
    if master.startswith("local"):
        builder = builder.config("spark.ui.enabled", "false")
    if driver_memory:  # read by spark-submit as it starts the JVM
        builder = builder.config("spark.driver.memory", driver_memory)
    spark = builder.getOrCreate()
    atexit.register(spark.stop)  # the application ends cleanly on the cluster
    return spark


class SparkEngine:
    name = "spark"
    capabilities = CAPABILITIES

    def __init__(self, spark: SparkSession, store: ProfileStore, *,
                 max_rows_per_file: int | None = None,
                 duckdb_options: DuckDBOptions = DuckDBOptions(),
                 events: EventsSource | None = None,
                 driver_resolve_max_records: int = DRIVER_RESOLVE_MAX_RECORDS) -> None:
        """`events`: the events relation computed tags read (a DataFrame of (gio_id, event,
        time, dt, id, seq, <attributes>)), asked for at each computation.
        `driver_resolve_max_records`: a load onto a stored dataset of at most this many
        records is resolved on the driver (driver_resolve.py), a larger one by Spark."""
        self.spark = spark
        self.store = store
        self.max_rows_per_file = max_rows_per_file
        self._duckdb_options = duckdb_options
        self._driver_resolve_max_records = driver_resolve_max_records
        # by default the committed events of this store (events.py)
        self._events = events or (lambda: events_or_empty(spark, store))

    @classmethod
    def from_settings(cls, settings: Settings) -> SparkEngine:
        """Parquet versions are read by any number of processes, and a load takes the
        dataset's write lock: there is no read-only opening."""
        return cls(
            spark_session(settings.spark_master, settings.driver_memory),
            ProfileStore(settings.profile_dataset_path),
            max_rows_per_file=settings.max_rows_per_file,
            duckdb_options=DuckDBOptions(settings.duckdb_threads, settings.load_memory_limit,
                                         settings.spill_path),
        )

    def export(self, plan: ExportPlan, work_dir: Path, file_name: str,
               stop: threading.Event | None = None) -> ExportOutput:
        return export_plan.export(self.spark, self.store, plan, work_dir, file_name,
                                  self.max_rows_per_file, stop)

    def load(
        self,
        path: Path,
        input_format: InputFormat,
        catalog: dict[str, CatalogEntry],
        *,
        skip_invalid: bool = False,
        before_commit: LoadHook | None = None,
    ) -> LoadReport:
        return load_file(self.spark, self.store, path, input_format, catalog,
                         skip_invalid=skip_invalid, before_commit=before_commit,
                         duckdb_options=self._duckdb_options,
                         driver_resolve_max_records=self._driver_resolve_max_records)

    def load_events(
        self,
        path: Path,
        input_format: InputFormat,
        catalog: dict[str, CatalogEntry],
        events_catalog: Mapping[str, EventDefinition],
        *,
        zone: tzinfo,
        known_users_only: bool = False,
        skip_invalid: bool = False,
        before_commit: EventLoadHook | None = None,
    ) -> EventLoadReport:
        return load_events(self.spark, self.store, path, input_format, catalog, events_catalog,
                           zone=zone, known_users_only=known_users_only,
                           skip_invalid=skip_invalid, before_commit=before_commit,
                           duckdb_options=self._duckdb_options)

    def compute_tag(self, tag: CatalogEntry, definition: Definition, *, as_of: date,
                    stop: threading.Event | None = None) -> int:
        return compute_tag(self.spark, self.store, self._events, tag, definition,
                           as_of=as_of, stop=stop)

    def replace_members(self, segment: CatalogEntry, identity_key: str,
                        path: Path) -> MembersReport:
        return segments.replace_members(self.spark, self.store, segment, identity_key, path)

    def count_members(self, condition: Condition, *, as_of: date,
                      sample: float | None = None) -> int:
        return segments.count_members(self.spark, self.store, self._events, condition,
                                      as_of=as_of, sample=sample)

    def portrait(self, entry: CatalogEntry, among: CatalogEntry, *, top: int = 20,
                 bins: int = 10) -> Portrait:
        return segments.portrait(self.spark, self.store, entry, among, top=top, bins=bins)

    def user_count(self) -> int:
        with self.store.reading() as version:
            return int(version.manifest()["users"]) if version is not None else 0

    def tag_coverage(self, tags: Sequence[CatalogEntry]) -> TagCoverage:
        return query.tag_coverage(self.spark, self.store, tags)

    def distribution(self, entry: CatalogEntry, *, top: int = 20,
                     bins: int = 10) -> Distribution:
        return query.distribution(self.spark, self.store, entry, top, bins)

    def tag_users(self, plan: ExportPlan, limit: int, offset: int) -> list[dict[str, Any]]:
        return query.tag_users(self.spark, self.store, plan, limit, offset)

    def find_user(
        self, identity_key: str, value: str, entries: Sequence[CatalogEntry]
    ) -> dict[str, Any] | None:
        return query.find_user(self.spark, self.store, identity_key, value, entries)

    def recent_events(self, gio_id: int, limit: int) -> list[dict[str, Any]]:
        return query.recent_events(self.spark, self.store, gio_id, limit)

    def ping(self) -> None:
        self.spark.sql("SELECT 1").collect()
        self.store.current()  # the dataset's path answers

    def close(self) -> None:
        """The Spark session stays: it is the process's, shared with other engines."""
