"""Load a file of user records into the Parquet dataset: DuckDB stages, Spark resolves.

1. stage and validate on the driver with the staging both engines share (engines/staging:
   parse.py and validate.py, DuckDB as the parser), so both engines parse CSV, JSON lines
   and Parquet alike, number lines alike and reject the same values with the same
   messages. The valid typed records go to `<profile path>/.staging/<id>/records.parquet`.
2. resolve with Spark joins (resolve.py): identity values against the current version's
   `identity_map`, records sharing values grouped by label propagation, conflicts
   rejected, each group's target gio_id chosen (new ones ascending in load order).
   A load of at most `driver_resolve_max_records` records onto a stored dataset is
   resolved by the staging instead, on the driver, with the DuckDB engine's resolution
   (driver_resolve.py): the same targets and rejects without some thirty Spark jobs.
3. apply with Spark (apply.py): per user the last record carrying a key wins, identity
   values accumulate, and a new version is written (the touched buckets rewritten, or a
   delta of the changed users: merge-on-read, store.py), which becomes current only after
   `before_commit` has run.

A first load of new users only (an empty dataset, no identity value carried by two
records: the staging checks it) skips 2 and 3: a task per file writes the version with
DuckDB on the executors (first_load.py), the same files 3 would write.

All or nothing: nothing is visible until CURRENT switches; with `skip_invalid` the valid
records are applied and the rest reported.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from tagport.catalog.models import CatalogEntry, ValueType
from tagport.engines.base import EventLoadReport, InputFormat, LoadReport, Reject
from tagport.engines.spark import apply, driver_resolve, resolve
from tagport.engines.spark.deltas import duckdb_users_sql
from tagport.engines.spark.driver_resolve import DRIVER_RESOLVE_MAX_RECORDS
from tagport.engines.spark.first_load import FirstLoadFacts, first_load_facts, write_first_load
from tagport.engines.spark.store import ProfileStore, Version, spark_type
from tagport.engines.staging.parse import file_state, stage_file, unchanged_since
from tagport.engines.staging.sql import ident, literal
from tagport.engines.staging.validate import NOT_REJECTED, prepare, rejects_report, validate
from tagport.errors import InvalidInput

R = TypeVar("R", LoadReport, EventLoadReport)


@dataclass(frozen=True)
class Staged:
    """The valid typed records (`records`: line, gio_id, c<i>, p<i>) and the rejects."""

    entries: list[CatalogEntry]
    records: DataFrame | None
    report: LoadReport
    rows: int = 0  # the valid records
    path: Path | None = None  # the staged Parquet file of `records`
    # a first load of new users only (first_load.py): what the staging found
    first: FirstLoadFacts | None = None
    # a small load onto a stored dataset: resolved by the staging (driver_resolve.py)
    driver: driver_resolve.DriverResolved | None = None


@dataclass(frozen=True)
class DuckDBOptions:
    threads: int = 2
    memory_limit: str = "2GB"
    temp_directory: Path | None = None


def load_file(
    spark: SparkSession, store: ProfileStore, path: Path, input_format: InputFormat,
    catalog: dict[str, CatalogEntry], *, skip_invalid: bool = False,
    before_commit: Callable[[LoadReport], None] | None = None,
    duckdb_options: DuckDBOptions = DuckDBOptions(),
    driver_resolve_max_records: int = DRIVER_RESOLVE_MAX_RECORDS,
) -> LoadReport:
    """Resolve and apply a file of user records: all or nothing, or the valid ones only.
    A load onto a stored dataset of at most `driver_resolve_max_records` valid records is
    resolved by the staging on the driver (driver_resolve.py)."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InvalidInput(f"{path}: the file is empty")
    spark = load_session(spark)
    with store.writing() as new:
        staging = store.root / ".staging" / uuid.uuid4().hex
        staging.mkdir(parents=True)
        views = resolve.Views(spark)
        try:
            current = store.current()
            staged = _stage(spark, path, input_format, catalog, current, staging, duckdb_options,
                            driver_resolve_max_records)
            if staged.records is None:
                return staged.report
            if staged.first is not None and (skip_invalid or not staged.report.rejects):
                assert staged.path is not None
                report = staged.report
                manifest = write_first_load(spark, staged.path, staged.entries, staged.first,
                                            new.version, report)
                commit_load(new, manifest, report, before_commit)
                return report
            size_shuffles(spark, staged.rows + (int(current.manifest()["users"])
                                                if current is not None else 0))
            if staged.driver is not None:
                resolved = driver_resolve.resolved_views(
                    views, staged.records, resolve.identity_map_of(spark, current),
                    staged.driver)
            else:
                resolved = resolve.resolve(views, staged.records, staged.entries, current)
            report = _merge_rejects(staged.report, resolved.rejects)
            if report.rejects and not skip_invalid:
                return report
            manifest = apply.apply(views, staged.entries, resolved, current, new.version, report)
            commit_load(new, manifest, report, before_commit)
            return report
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            views.drop()


# rows per shuffle partition a load aims at: Spark's default of 200 partitions made a
# 1% load on 1M users run ~4,000 tasks of a few rows each (bench/spark_bench.py)
ROWS_PER_SHUFFLE_PARTITION = 250_000
_SESSION_SETTINGS = ("spark.sql.adaptive.enabled", "spark.sql.autoBroadcastJoinThreshold",
                     "spark.sql.shuffle.partitions")


def load_session(spark: SparkSession) -> SparkSession:
    """A session of the same Spark application for one load: its own SQL settings and
    temp views, so sizing its shuffles leaves concurrent exports alone."""
    session = spark.newSession()
    for key in _SESSION_SETTINGS:
        value = spark.conf.get(key, None)
        if value is not None:
            session.conf.set(key, value)
    return session


def size_shuffles(spark: SparkSession, rows: int) -> None:
    """Shuffle partitions for `rows` (the records and the stored users): about
    ROWS_PER_SHUFFLE_PARTITION each, at least two per core, never more than configured."""
    configured = int(spark.conf.get("spark.sql.shuffle.partitions") or 200)
    wanted = max(2 * spark.sparkContext.defaultParallelism,
                 -(-rows // ROWS_PER_SHUFFLE_PARTITION))
    spark.conf.set("spark.sql.shuffle.partitions", str(min(configured, wanted)))


def commit_load(new: Any, manifest: dict[str, Any], report: R,
                before_commit: Callable[[R], None] | None) -> None:
    """Applied: run `before_commit`, then switch CURRENT to the new version (user and
    event loads alike); a failing hook leaves the report unapplied and nothing visible."""
    report.applied = True
    if before_commit is not None:
        try:
            before_commit(report)
        except BaseException:
            report.applied = False
            raise
    new.commit(manifest)


def sorted_rejects(rejects: list[Reject]) -> list[Reject]:
    """By line, a record's own reject before its fields', then by field and reason."""
    return sorted(rejects, key=lambda r: (r.line, r.field is not None, r.field or "", r.reason))


def _merge_rejects(staged: LoadReport, more: list[Reject]) -> LoadReport:
    rejects = sorted_rejects(staged.rejects + more)
    return LoadReport(rejected=len({r.line for r in rejects}), rejects=rejects)


# --- 1. stage and validate (engines/staging) ---------------------------------------------


def _stage(
    spark: SparkSession, path: Path, input_format: InputFormat,
    catalog: dict[str, CatalogEntry], current: Version | None, staging: Path,
    options: DuckDBOptions, driver_resolve_max_records: int,
) -> Staged:
    config: dict[str, str | int] = {"threads": options.threads,
                                    "memory_limit": options.memory_limit}
    if options.temp_directory is not None:
        options.temp_directory.mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(options.temp_directory)
    con = duckdb.connect(config=config)
    state = file_state(path)
    try:
        # line numbers come from the scan order
        con.execute("SET preserve_insertion_order = true")
        prepare(con)
        _users_view(con, current)
        staged = stage_file(con, path, input_format, catalog)
        if staged.file_rejects:
            report = LoadReport(rejected=staged.records, rejects=staged.file_rejects)
            return Staged([], None, report)
        validate(con, staged.entries, staged.typed)
        last_gio_id = None
        if current is not None and _valid_records(con) <= driver_resolve_max_records:
            # its rejects join the staging's
            last_gio_id = driver_resolve.resolve_on_driver(con, staged.entries, current)
        report = rejects_report(con)
        target = staging / "records.parquet"
        first = (first_load_facts(con, staged.entries, NOT_REJECTED) if current is None
                 else None)
        number_records(con)
        driver = (driver_resolve.write_resolution(con, staging, last_gio_id)
                  if last_gio_id is not None else None)
        # in seq order for a first load: its tasks each read one seq range
        order = " ORDER BY seq" if first is not None else ""
        con.execute(f"COPY ({_records_query(staged.entries)}{order}) TO"
                    f" {literal(str(target))} (FORMAT PARQUET)")
        unchanged_since(path, state)  # a Parquet file is read more than once
    finally:
        con.close()
    records = _typed_records(spark.read.parquet(str(target)), staged.entries)
    return Staged(staged.entries, records, report, pq.ParquetFile(target).metadata.num_rows,
                  target, first, driver)


def _valid_records(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute(f"SELECT count(*) FROM load_rec WHERE {NOT_REJECTED}")
               .fetchall()[0][0])


def _users_view(con: duckdb.DuckDBPyConnection, current: Version | None) -> None:
    """`users(gio_id)` for the validation of given gio_ids: the current version's users."""
    if current is None:
        con.execute("CREATE TEMP TABLE users (gio_id UBIGINT)")
        return
    con.execute("CREATE TEMP VIEW users AS SELECT CAST(gio_id AS UBIGINT) AS gio_id"
                f" FROM ({duckdb_users_sql(current, 'gio_id')})")


def _records_query(entries: list[CatalogEntry]) -> str:
    """The valid records, with columns renamed c<i>/p<i> (keys hold `$`) and datetimes as
    text, so that Spark reads them back without a time zone in between; and their `seq`
    (`number_records`)."""
    select = ["line", "CAST(gio_id AS BIGINT) AS gio_id", "seq"]
    for i, e in enumerate(entries):
        col = ident(e.key)
        if e.value_type is ValueType.DATETIME and not e.is_identity:
            col = f"CAST({col} AS VARCHAR[])" if e.is_array else f"CAST({col} AS VARCHAR)"
        select += [f"{col} AS c{i}", f"{ident(e.key + '?')} AS p{i}"]
    return f"SELECT {', '.join(select)} FROM {NUMBERED_RECORDS}"


# the valid records with their `seq` (number_records): the staged records' FROM clause
NUMBERED_RECORDS = "load_rec JOIN load_seq USING (line)"


def number_records(con: duckdb.DuckDBPyConnection) -> None:
    """`load_seq(line, seq)`: the valid records numbered 1, 2, ... in line order, the new
    gio_ids of a load of new users only (resolve.py). Sorting the lines alone and joining
    them back costs ~0.3 s per 1M records; a window over the records themselves, ~2 s."""
    con.execute("CREATE TEMP TABLE load_seq AS SELECT line, row_number() OVER"
                f" (ORDER BY line) AS seq FROM load_rec WHERE {NOT_REJECTED}")


def _typed_records(records: DataFrame, entries: list[CatalogEntry]) -> DataFrame:
    columns = ["line", "gio_id", "seq"]
    for i, e in enumerate(entries):
        want = "array<string>" if e.is_identity else spark_type(e)
        columns += [f"cast(c{i} AS {want}) AS c{i}", f"p{i}"]
    return records.selectExpr(*columns)

