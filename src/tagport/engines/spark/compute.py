"""Computing a tag on the Spark dataset: one query, then a new version, switched at once.

Under the dataset's write lock (`ProfileStore.writing`), the definition's query runs over
temp views of the current version's `users` and of the events relation; the new version's
`users` is the current one with the tag's column replaced (NULL for users without a
value; an empty array NULL): every bucket rewritten, in gio_id order (store.py); its
`identity_map` is the current one's files, hard-linked (they never change). CURRENT
switches only after every file is written, as a load's does: a reader sees the old values
or the new ones. A failing query raises before anything is written, and the unfinished
version is removed.

A SQL tag's query reads only temp views: its checks (computes/sql.py) refuse every
other table, file readers and functions that reach the host (`reflect`, `java_method`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from threading import Event

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tagport.catalog.models import CatalogEntry
from tagport.computes import (
    ComputeFailed,
    ComputeStopped,
    Definition,
    Relations,
    SqlQuery,
    SqlRefused,
    compile_definition,
    missing_columns,
    one_row_per_user,
    translate,
)
from tagport.computes.reads import event_attributes
from tagport.engines.spark.conditions import SparkValues
from tagport.engines.spark.render import quote_ident
from tagport.engines.spark.store import (
    SPARK_TYPES,
    NewVersion,
    ProfileStore,
    Version,
    folded,
    read_users,
    spark_type,
    write_user_buckets,
)

# the events relation: (gio_id, event, time, dt, id, seq, <one column per attribute>)
EventsSource = Callable[[], DataFrame]
_EVENT_ONLY = ("id", "seq")  # left out of the SQL type's `event` relation


def compute_tag(spark: SparkSession, store: ProfileStore, events: EventsSource,
                tag: CatalogEntry, definition: Definition, *, as_of: date,
                stop: Event | None = None) -> int:
    """Replace `tag`'s values with the definition's on `as_of`; the users that got one."""
    with store.writing() as new:
        current = store.current()
        if current is None:
            return 0  # no users yet: nothing to give a value
        views: list[str] = []
        try:
            result = _result(spark, current, events, tag, definition, as_of, views)
            covered = write_version(spark, current, new, tag, result, views)
        except (PySparkException, Py4JJavaError) as exc:
            raise ComputeFailed(f"{tag.key}: {_first_line(exc)}") from exc
        finally:
            for name in views:
                spark.catalog.dropTempView(name)
        if stop is not None and stop.is_set():
            raise ComputeStopped(f"{tag.key}: the computation was stopped")
        new.commit(folded(current.manifest()))
        return covered


def _view(df: DataFrame, prefix: str, views: list[str]) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    df.createOrReplaceTempView(name)
    views.append(name)
    return name


def _result(spark: SparkSession, current: Version, events: EventsSource, tag: CatalogEntry,
            definition: Definition, as_of: date, views: list[str]) -> str:
    """The view of (gio_id, tag_value), one row per user with a value."""
    users = read_users(spark, current)
    users_view = _view(users, "compute_users", views)
    if isinstance(definition, SqlQuery):
        return _view(_sql_result(spark, events(), users_view, tag, definition, as_of, views),
                     "compute_result", views)
    stored = {f.name: f.dataType.simpleString() for f in users.schema}
    relations = Relations(_view(_with_absent_attributes(events(), definition),
                                "compute_events", views), users_view)
    query = compile_definition(definition, as_of=as_of, reader=SparkValues(stored),
                               relations=relations)
    return _view(spark.sql(query.sql("spark")), "compute_result", views)


def _with_absent_attributes(events: DataFrame, definition: Definition) -> DataFrame:
    """`events` with a typed NULL column for each attribute the definition reads that no
    load has brought yet (so it computes as if every value were null)."""
    absent = {k: t for k, t in event_attributes(definition).items() if k not in events.columns}
    if not absent:
        return events
    return events.withColumns({k: F.lit(None).cast(SPARK_TYPES[t]) for k, t in absent.items()})


def _sql_result(spark: SparkSession, events: DataFrame, users_view: str, tag: CatalogEntry,
                definition: SqlQuery, as_of: date, views: list[str]) -> DataFrame:
    columns = [quote_ident(c) for c in events.columns if c not in _EVENT_ONLY]
    event = events.selectExpr(*columns, "event AS event_key")
    try:
        query = translate(definition, as_of=as_of, event=_view(event, "compute_event", views),
                          user=users_view)
    except SqlRefused as exc:
        raise ComputeFailed(f"{tag.key}: compute.sql: {exc}") from None
    rows = spark.sql(query.sql("spark"))
    if problem := missing_columns(rows.columns):
        raise ComputeFailed(f"{tag.key}: {problem}")
    typed = rows.selectExpr("CAST(gio_id AS BIGINT) AS gio_id",
                            f"CAST(tag_value AS {spark_type(tag)}) AS tag_value"
                            ).where("gio_id IS NOT NULL").cache()
    repeated = [] if one_row_per_user(query) else (
        typed.groupBy("gio_id").count().where("count > 1").orderBy("gio_id").limit(1).collect())
    if repeated:
        typed.unpersist()
        raise ComputeFailed(f"{tag.key}: the query yields gio_id {repeated[0]['gio_id']} more"
                            " than once (one row per user)")
    return typed


def write_version(spark: SparkSession, current: Version, new: NewVersion, tag: CatalogEntry,
                   result: str, views: list[str]) -> int:
    users = read_users(spark, current)  # every bucket rewritten: the deltas folded in
    col = quote_ident(tag.key)
    value = "r.tag_value"
    if tag.is_array:  # an empty array is stored as NULL
        value = f"CASE WHEN size({value}) > 0 THEN {value} END"
    value = f"CAST({value} AS {spark_type(tag)}) AS {col}"
    names = [f.name for f in users.schema]
    select = [value if name == tag.key else f"u.{quote_ident(name)}" for name in names]
    if tag.key not in names:
        select.append(value)
    users_view = _view(users, "compute_old_users", views)
    rows = spark.sql(f"SELECT {', '.join(select)} FROM {users_view} u"
                     f" LEFT JOIN {result} r ON u.gio_id = r.gio_id")
    buckets = current.buckets()
    write_user_buckets(rows, new.version.users,
                       buckets.size if buckets is not None else new.version.users_per_bucket)
    _link_tree(current.identity_map, new.version.identity_map)
    written = spark.read.parquet(str(new.version.users))
    return int(written.selectExpr(f"count({col})").collect()[0][0])


def _link_tree(source: Path, target: Path) -> None:
    """The identity map's files in the new version: hard links (copies where the file
    system has none); versions never change a file once written."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
