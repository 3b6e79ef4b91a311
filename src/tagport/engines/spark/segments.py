"""Segments on the Spark dataset: a members upload, a live count, a portrait.

A segment's membership is a boolean column of `users` named by its key (TRUE for members,
NULL for everyone else), written like a computed tag's (compute.py): under the dataset's
write lock a new version whose `users` has the column replaced, CURRENT switched once every
file is written, so a reader sees the old members or the new.

- `replace_members`: Spark reads the CSV (`spark.read.csv`, one column and a spare one
  that catches a line with more fields) into its distinct values, staged as Parquet beside
  the dataset and matched against the version's `identity_map` (one row per identity
  value: a multi-valued identity matches on any); only the header line passes through
  Python (staging/members.py).
- `count_members`: one count of the compiled condition over temp views of the version's
  users and the events. With a sample, users whose bucket `gio_id % 10007` (a prime, so
  that no round-number pattern of gio_ids skews it) is below the sample's share of 10007
  (the DuckDB engine's buckets: both pick the same users), with the events of those users
  only; scaled by all users / sampled users.
- `portrait`: query.value_spread, the distribution's own counts, with the group's beside.
"""

from __future__ import annotations

import csv
import shutil
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tagport.catalog.models import CatalogEntry, MembersReport, Portrait
from tagport.conditions import Condition, compile_condition
from tagport.engines.spark.compute import write_version
from tagport.engines.spark.conditions import SparkValues
from tagport.engines.spark.lines import stored_column
from tagport.engines.spark.query import value_spread
from tagport.engines.spark.render import literal
from tagport.engines.spark.store import ProfileStore, folded, read_users
from tagport.engines.staging.members import members_header, too_many_fields
from tagport.errors import InvalidInput

BUCKETS = 10_007  # a prime: a sample is a whole number of these buckets of users
_BUCKET = f"gio_id % {BUCKETS}"  # a user's bucket (one modulo: the cheapest filter)
_NO_NULL = "\u0000"  # no field reads as NULL: a missing field is NULL, an empty one ''
# A line's fields after the first must be empty (a trailing comma is tolerated, as DuckDB's
# reader tolerates it): Spark reads that many spare fields and drops any further ones.
_SPARE = 7
# what Spark's UTF-8 decoding puts for bytes that are not UTF-8 (a value holding it is
# refused: it cannot be told from such bytes)
_NOT_UTF8 = "\ufffd"


def _view(spark: SparkSession, df: DataFrame, prefix: str, views: list[str]) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    df.createOrReplaceTempView(name)
    views.append(name)
    return name


def _drop(spark: SparkSession, views: list[str]) -> None:
    for name in views:
        spark.catalog.dropTempView(name)


def replace_members(spark: SparkSession, store: ProfileStore, segment: CatalogEntry,
                    identity_key: str, path: Path) -> MembersReport:
    """Exactly the users holding a value of `path` become `segment`'s members."""
    has_rows = members_header(path, identity_key)
    staging = store.root / ".staging" / uuid.uuid4().hex
    views: list[str] = []
    with store.writing() as new:
        try:
            current = store.current()
            values = _stage_values(spark, path, identity_key, has_rows, staging)
            count = values.count()
            if current is None:  # no users: every value is unknown
                return MembersReport(values=count, members=0, unknown=count)
            ids = (spark.read.parquet(str(current.identity_map))
                   .where(f"id_key = {literal(identity_key)}"))
            known = ids.join(values, ids["id_value"] == values["v"], "left_semi")
            known_values = known.select("id_value").distinct().count()
            result = _view(spark, known.selectExpr("gio_id", "true AS tag_value").distinct(),
                           "members_result", views)
            members = write_version(spark, current, new, segment, result, views)
        finally:
            _drop(spark, views)
            shutil.rmtree(staging, ignore_errors=True)
        new.commit(folded(current.manifest()))
    return MembersReport(values=count, members=members, unknown=count - known_values)


def _stage_values(spark: SparkSession, path: Path, identity_key: str, has_rows: bool,
                  staging: Path) -> DataFrame:
    """The file's distinct non-empty values, `v`, written to `staging` and read back;
    InvalidInput naming the first line with more than one field."""
    if not has_rows:
        return spark.createDataFrame([], "v string")
    try:
        return _read_values(spark, path, identity_key, staging)
    except (PySparkException, Py4JJavaError) as exc:
        raise InvalidInput(f"{path}: not a readable csv file: {_first_message(exc)}") from exc


def _read_values(spark: SparkSession, path: Path, identity_key: str,
                 staging: Path) -> DataFrame:
    spare = [f"more{i}" for i in range(1, _SPARE + 1)]
    raw = (spark.read.schema(", ".join(f"{c} string" for c in ["v", *spare]))
           .option("header", "true").option("mode", "PERMISSIVE").option("quote", '"')
           .option("escape", '"').option("nullValue", _NO_NULL).option("encoding", "UTF-8")
           .csv(str(path)))
    wide = F.expr(" OR ".join(f"{c} <> ''" for c in spare))
    bad = (raw.where(wide | (F.instr("v", _NOT_UTF8) > 0)).select(wide.alias("wide"))
           .limit(1).collect())
    if bad and bad[0]["wide"]:
        raise too_many_fields(path, _first_line(spark, path, _wide), identity_key)
    if bad:
        line = _first_line(spark, path, _not_utf8)
        raise InvalidInput(f"{path}: {f'line {line}' if line else 'a line'}: not UTF-8")
    raw.where("v IS NOT NULL AND v <> ''").select("v").distinct().write.parquet(str(staging))
    return spark.read.parquet(str(staging))


def _wide(text: str) -> bool:
    """A line with a non-empty field after its first."""
    try:
        return any(next(csv.reader([text]), [])[1:])
    except csv.Error:
        return False


def _not_utf8(text: str) -> bool:
    return _NOT_UTF8 in text


def _first_line(spark: SparkSession, path: Path, test: Callable[[str], bool]) -> int | None:
    """The first line (1-based, as a person counts) that passes `test`, read line by line
    on the executors (None when a quoted line break hides it from such a reading)."""
    found = (spark.read.text(str(path)).rdd.zipWithIndex()
             .filter(lambda row: test(row[0][0])).map(lambda row: row[1] + 1).take(1))
    return found[0] if found else None


def sample_buckets(sample: float) -> int:
    """How many of the BUCKETS a sample of `sample` (0 < sample < 1) takes (at least 1)."""
    if not 0 < sample < 1:
        raise ValueError(f"sample {sample!r}: a share of the users, 0 < sample < 1")
    return max(1, round(sample * BUCKETS))


def count_members(spark: SparkSession, store: ProfileStore, events: Callable[[], DataFrame],
                  condition: Condition, *, as_of: date, sample: float | None = None) -> int:
    """The users `condition` holds for on `as_of`, exactly or estimated from a sample."""
    with store.reading() as version:
        if version is None:
            return 0
        users = read_users(spark, version)
        reader = SparkValues({f.name: f.dataType.simpleString() for f in users.schema})
        rows = events()
        if sample is not None:
            sampled = f"{_BUCKET} < {sample_buckets(sample)}"
            users, rows = users.where(sampled), rows.where(sampled)
        views: list[str] = []
        try:
            users_view = _view(spark, users, "members_users", views)
            events_view = _view(spark, rows, "members_events", views)
            predicate = compile_condition(condition, reader, as_of=as_of, events=events_view)
            hits = spark.sql(f"SELECT count(*) FROM {users_view} u"
                             f" WHERE {predicate.sql('spark')}").collect()[0][0]
            if sample is None:
                return int(hits)
            sampled_users = users.count()
        finally:
            _drop(spark, views)
        total = int(version.manifest()["users"])
    return round(hits * total / sampled_users) if sampled_users else 0


def portrait(spark: SparkSession, store: ProfileStore, entry: CatalogEntry,
             among: CatalogEntry, *, top: int, bins: int) -> Portrait:
    """`entry`'s values among the users holding a value in `among`'s column, and all."""
    with store.reading() as version:
        if version is None:
            return Portrait(0, 0, 0, 0, [], [])
        users = read_users(spark, version)
        stored = {f.name: f.dataType.simpleString() for f in users.schema}
        among_col = stored_column(among, stored)
        group = f"{among_col} IS NOT NULL" if among_col is not None else "false"
        col = stored_column(entry, stored)
        counts = [f"count_if({group})", "count(*)"]
        if col is not None:
            counts += [f"count(CASE WHEN {group} THEN {col} END)", f"count({col})"]
        group_users, all_users, *covered = users.selectExpr(*counts).collect()[0]
        if col is None:
            return Portrait(int(group_users), int(all_users), 0, 0, [], [])
        values, binned = value_spread(users, entry, col, top, bins, group)
    return Portrait(int(group_users), int(all_users), int(covered[0]), int(covered[1]),
                    [(v, gn, n) for v, n, gn in values],
                    [(lo, hi, gn, n) for lo, hi, n, gn in binned])


def _first_message(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
