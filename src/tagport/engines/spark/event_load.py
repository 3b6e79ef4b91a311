"""Load a file of events into the Spark engine's events dataset (layout: events.py).

1. stage, check and skip duplicates on the driver with the staging both engines share
   (engines/staging/events.py, DuckDB as the parser): the same messages and lines as the
   DuckDB engine. The stored ids it checks are read from the committed files of the days
   the file covers only. The valid events go to `<staging>/events.parquet`, their
   identities (as user records) to `<staging>/records.parquet`.
2. resolve the identities with the user loader's Spark joins (resolve.py); with
   `known_users_only` the events of new users are rejected.
3. apply: new users and identity values as a user load (apply.py) writes them, or, when
   there are none, the new version links the current users and identity map unchanged;
   the events are written by day, moved into `events/dt=.../` and listed in the new
   version's manifest, which `before_commit` precedes and CURRENT's switch commits.
`seq` = the highest committed seq + the event's line, as on the DuckDB engine.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any

import duckdb
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from tagport.catalog.models import CatalogEntry, EventDefinition, ValueType
from tagport.durable import fsync_path
from tagport.engines.base import EventLoadReport, InputFormat, LoadReport, Reject
from tagport.engines.spark import apply, resolve
from tagport.engines.spark.events import committed, events_root, files_of
from tagport.engines.spark.load import (
    NUMBERED_RECORDS,
    DuckDBOptions,
    commit_load,
    number_records,
    sorted_rejects,
)
from tagport.engines.spark.render import quote_ident
from tagport.engines.spark.store import SPARK_TYPES, NewVersion, ProfileStore, Version
from tagport.engines.staging.events import (
    UNKNOWN_USER,
    AttributeColumn,
    StagedEvents,
    covered_days,
    identity_records,
    mark_duplicates,
    prepare_events,
    stage_events,
)
from tagport.engines.staging.parse import file_state, unchanged_since
from tagport.engines.staging.sql import ident
from tagport.engines.staging.sql import literal as sql_literal
from tagport.engines.staging.validate import NOT_REJECTED, prepare, rejects_report
from tagport.errors import InvalidInput


@dataclass(frozen=True)
class Staged:
    staged: StagedEvents
    report: EventLoadReport
    folder: Path | None  # records.parquet and events.parquet; None: the file is refused


def load_events(
    spark: Any, store: ProfileStore, path: Path, input_format: InputFormat,
    catalog: dict[str, CatalogEntry], events: Mapping[str, EventDefinition], *,
    zone: tzinfo, known_users_only: bool = False, skip_invalid: bool = False,
    before_commit: Callable[[EventLoadReport], None] | None = None,
    duckdb_options: DuckDBOptions = DuckDBOptions(),
) -> EventLoadReport:
    """Resolve and append a file of events: all or nothing, or the valid ones only."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InvalidInput(f"{path}: the file is empty")
    with store.writing() as new:
        staging = store.root / ".staging" / uuid.uuid4().hex
        staging.mkdir(parents=True)
        views = resolve.Views(spark)
        try:
            current = store.current()
            stored = committed(store)
            staged = _stage(store, path, input_format, catalog, dict(events), zone, stored,
                            staging, duckdb_options)
            if staged.folder is None:
                return staged.report
            report = staged.report
            columns = _columns(stored, staged.staged.attributes)
            identities = staged.staged.identities
            records = _typed_records(spark.read.parquet(str(staged.folder / "records.parquet")),
                                     identities)
            resolved = resolve.resolve(views, records, identities, current)
            unknown = _reject_new_users(views) if known_users_only else []
            if unknown:  # load_target lost the new users: it is no longer load_rec numbered
                resolved = dataclasses.replace(resolved, all_new=False)
            more = resolved.rejects + unknown
            _merge_rejects(report, more)
            if report.rejects and not skip_invalid:
                return report
            target = spark.table("load_target")
            if target.isEmpty():
                report.applied = True
                return report
            manifest = _apply_users(views, identities, resolved, current, new, report)
            manifest["events"] = _write_events(spark, store, new, staged, target, stored,
                                               columns, report)
            commit_load(new, manifest, report, before_commit)
            return report
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            views.drop()


def _merge_rejects(report: EventLoadReport, more: list[Reject]) -> None:
    rejects = sorted_rejects(report.rejects + more)
    report.rejects, report.rejected = rejects, len({r.line for r in rejects})


def _columns(stored: dict[str, Any] | None,
             attributes: list[AttributeColumn]) -> dict[str, str]:
    """The attribute columns after this load; a stored column of another type refuses it."""
    columns = dict(stored["columns"]) if stored else {}
    for a in attributes:
        want, have = SPARK_TYPES[a.value_type], columns.get(a.key)
        if have is not None and have != want:
            raise InvalidInput(
                f"event attribute {a.key!r} is stored as {have}, but the event catalog now"
                f" says {a.value_type.value}: an attribute's type cannot change once a load"
                " has brought it")
        columns[a.key] = want
    return columns


# --- 1. stage, check and skip duplicates (engines/staging) ---------------------------------


def _stage(store: ProfileStore, path: Path, input_format: InputFormat,
           catalog: dict[str, CatalogEntry], events: dict[str, EventDefinition], zone: tzinfo,
           stored: dict[str, Any] | None, staging: Path, options: DuckDBOptions) -> Staged:
    config: dict[str, str | int] = {"threads": options.threads,
                                    "memory_limit": options.memory_limit}
    if options.temp_directory is not None:
        options.temp_directory.mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(options.temp_directory)
    con = duckdb.connect(config=config)
    state = file_state(path)
    try:
        con.execute("SET preserve_insertion_order = true")  # line numbers: the scan order
        prepare(con)
        prepare_events(con, events, zone)
        staged = stage_events(con, path, input_format, catalog, events)
        if staged.file_rejects:
            return Staged(staged, EventLoadReport(rejected=staged.records,
                                                  rejects=staged.file_rejects), None)
        duplicates = mark_duplicates(con, _stored_ids(store, stored, covered_days(con)))
        identity_records(con, staged.identities)
        found = rejects_report(con)
        report = EventLoadReport(duplicates=duplicates, rejected=found.rejected,
                                 rejects=found.rejects)
        number_records(con)
        _copy(con, _records_query(staged.identities), staging / "records.parquet")
        _copy(con, _events_query(staged), staging / "events.parquet")
        unchanged_since(path, state)  # a Parquet file is read more than once
    finally:
        con.close()
    return Staged(staged, report, staging)


def _stored_ids(store: ProfileStore, stored: dict[str, Any] | None, days: list) -> str | None:
    """The committed events' (dt, id) of `days`, read from those days' files only."""
    files = files_of(store, stored, set(days)) if stored and days else []
    if not files:
        return None
    listed = ", ".join(sql_literal(str(f)) for f in files)
    return (f"(SELECT CAST(dt AS DATE) AS dt, id FROM read_parquet([{listed}],"
            " hive_partitioning=true, union_by_name=true) WHERE id IS NOT NULL)")


def _copy(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    con.execute(f"COPY ({query}) TO {sql_literal(str(target))} (FORMAT PARQUET)")


def _records_query(identities: list[CatalogEntry]) -> str:
    """The identity records to resolve, renamed c<i>/p<i> as the user loader's."""
    select = ["line", "CAST(gio_id AS BIGINT) AS gio_id", "seq"]
    for i, e in enumerate(identities):
        select += [f"{ident(e.key)} AS c{i}", f"{ident(e.key + '?')} AS p{i}"]
    return f"SELECT {', '.join(select)} FROM {NUMBERED_RECORDS}"


def _events_query(staged: StagedEvents) -> str:
    """The valid, new events; times as text, so Spark reads them without a zone between."""
    select = ["line", "event", 'CAST("time" AS VARCHAR) AS "time"', "dt", "id"]
    for a in staged.attributes:
        value = (f"CAST({a.column} AS VARCHAR)" if a.value_type is ValueType.DATETIME
                 else a.column)
        select.append(f"{value} AS {a.column}")
    return (f"SELECT {', '.join(select)} FROM {staged.rows()} WHERE {NOT_REJECTED}"
            " AND line NOT IN (SELECT line FROM event_dup)")


def _typed_records(records: DataFrame, identities: list[CatalogEntry]) -> DataFrame:
    columns = ["line", "gio_id", "seq"]
    for i in range(len(identities)):
        columns += [f"cast(c{i} AS array<string>) AS c{i}", f"p{i}"]
    return records.selectExpr(*columns)


# --- 2. resolve -----------------------------------------------------------------------------


def _reject_new_users(views: resolve.Views) -> list[Reject]:
    """Known users only: the events of new users are rejected and leave the targets."""
    spark = views.spark
    rejects = [Reject(int(row[0]), None, UNKNOWN_USER) for row in
               spark.sql("SELECT line FROM load_target WHERE is_new").collect()]
    if rejects:
        views.put(spark.sql("SELECT * FROM load_target WHERE NOT is_new"), "load_target")
    return rejects


# --- 3. apply --------------------------------------------------------------------------------


def _apply_users(views: resolve.Views, identities: list[CatalogEntry],
                 resolved: resolve.Resolved, current: Version | None, new: NewVersion,
                 report: EventLoadReport) -> dict[str, Any]:
    """New users and identity values into the new version, or the current ones linked."""
    spark = views.spark
    new_values = spark.sql(
        "SELECT 1 FROM load_ids i JOIN load_target t ON i.line = t.line LEFT ANTI JOIN"
        " load_hits m ON i.id_key = m.id_key AND i.id_value = m.id_value")
    if current is not None and not spark.sql(
            "SELECT 1 FROM load_target WHERE is_new").take(1) and not new_values.take(1):
        return new.link_profiles(current)
    users = LoadReport()
    manifest = apply.apply(views, identities, resolved, current, new.version, users)
    report.users_created, report.keys_with_data = users.inserted, users.keys_with_data
    return manifest


def _write_events(spark: Any, store: ProfileStore, new: NewVersion, staged: Staged,
                  target: DataFrame, stored: dict[str, Any] | None, columns: dict[str, str],
                  report: EventLoadReport) -> dict[str, Any]:
    """Write the events by day, move them into `events/`; their manifest entry."""
    assert staged.folder is not None
    base = int(stored["max_seq"]) if stored else 0
    rec = spark.read.parquet(str(staged.folder / "events.parquet"))
    select = ["CAST(t.gio_id AS bigint) AS gio_id", "r.event",
              "CAST(r.`time` AS timestamp_ntz) AS `time`", "r.dt", "r.id",
              f"CAST({base} + r.line AS bigint) AS seq"]
    select += [f"CAST(r.{a.column} AS {columns[a.key]}) AS {quote_ident(a.key)}"
               for a in staged.staged.attributes]
    rec.createOrReplaceTempView("load_event_rec")
    target.createOrReplaceTempView("load_event_target")
    frame = spark.sql(f"SELECT {', '.join(select)} FROM load_event_rec r"
                      " JOIN load_event_target t ON r.line = t.line")
    written = staged.folder / "events"
    (frame.repartition("dt").sortWithinPartitions("dt", "time", "seq")
     .write.partitionBy("dt").parquet(str(written)))
    counts = frame.agg(F.count("*").alias("n"), F.max("seq").alias("top")).collect()[0]
    report.appended = int(counts["n"])
    files = _move_into_place(written, events_root(store), new.name)
    spark.catalog.dropTempView("load_event_rec")
    spark.catalog.dropTempView("load_event_target")
    return {"files": (stored["files"] if stored else []) + files, "columns": columns,
            "max_seq": max(base, int(counts["top"] or 0)),
            "rows": (int(stored["rows"]) if stored else 0) + report.appended}


def _move_into_place(written: Path, root: Path, version: str) -> list[str]:
    """Each `dt=<day>/part-*.parquet` to `<root>/dt=<day>/<version>-<n>.parquet`; the
    moved files, relative to the profile path, by day."""
    moved = []
    for day in sorted(p for p in written.iterdir() if p.name.startswith("dt=")):
        (root / day.name).mkdir(parents=True, exist_ok=True)
        for n, part in enumerate(sorted(day.glob("part-*.parquet"))):
            name = f"{version}-{n:05d}.parquet"
            part.replace(root / day.name / name)
            with open(root / day.name / name, "rb") as f:
                os.fsync(f.fileno())
            moved.append(f"{root.name}/{day.name}/{name}")
        fsync_path(root / day.name)
    fsync_path(root)
    return moved

