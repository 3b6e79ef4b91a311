"""Read-only queries on the Spark dataset: tag coverage, a page of a tag's users, one user,
a user's recent events.

Rows are rendered by the JSON export's own SQL (export.py), so a page or a user reads
exactly like a line of an export file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tagport.catalog.models import NUMERIC, CatalogEntry, Distribution, TagCoverage, bin_edges
from tagport.engines.spark.events import EVENT_COLUMNS, read_events
from tagport.engines.spark.lines import stored_column, user_json
from tagport.engines.spark.render import literal
from tagport.engines.spark.store import ProfileStore, read_users
from tagport.exports.plan import ExportPlan


def _users(spark: SparkSession, store: ProfileStore, version) -> tuple[DataFrame, dict[str, str]]:  # type: ignore[no-untyped-def]
    users = read_users(spark, version)
    return users, {f.name: f.dataType.simpleString() for f in users.schema}


def tag_coverage(spark: SparkSession, store: ProfileStore,
                 tags: Sequence[CatalogEntry]) -> TagCoverage:
    """One scan: count(col) counts non-null values (an empty array is stored as NULL)."""
    covered = {t.key: 0 for t in tags}
    with store.reading() as version:
        if version is None:
            return TagCoverage(all_users=0, covered=covered)
        users, stored = _users(spark, store, version)
        loaded = [(t, col) for t in tags if (col := stored_column(t, stored))]
        row = users.selectExpr("count(*)", *[f"count({col})" for _, col in loaded]).collect()[0]
    covered.update({t.key: int(n) for (t, _), n in zip(loaded, row[1:], strict=True)})
    return TagCoverage(all_users=int(row[0]), covered=covered)


def tag_users(spark: SparkSession, store: ProfileStore, plan: ExportPlan, limit: int,
              offset: int) -> list[dict[str, Any]]:
    with store.reading() as version:
        if version is None:
            return []
        users, stored = _users(spark, store, version)
        tag = stored_column(plan.selection.column, stored)
        if tag is None:
            return []
        rows = (users.where(f"{tag} IS NOT NULL").orderBy("gio_id").offset(offset)
                .limit(limit).selectExpr(user_json(plan.columns, stored)).collect())
    return [json.loads(r[0]) for r in rows]


def find_user(spark: SparkSession, store: ProfileStore, identity_key: str, value: str,
              entries: Sequence[CatalogEntry]) -> dict[str, Any] | None:
    with store.reading() as version:
        if version is None:
            return None
        users, stored = _users(spark, store, version)
        ids = spark.read.parquet(str(version.identity_map)).where(
            f"id_key = {literal(identity_key)} AND id_value = {literal(value)}")
        rows = (users.join(ids.select("gio_id"), "gio_id", "left_semi")
                .selectExpr(user_json(entries, stored)).collect())
    return json.loads(rows[0][0]) if rows else None


def distribution(spark: SparkSession, store: ProfileStore, entry: CatalogEntry, top: int,
                 bins: int) -> Distribution:
    """As the DuckDB engine's: counts per value (the `top` most common), or `bins`
    equal-width bins for numbers; each user once per distinct element of an array."""
    with store.reading() as version:
        if version is None:
            return Distribution(0, 0, [], [])
        users, stored = _users(spark, store, version)
        col = stored_column(entry, stored)
        if col is None:
            return Distribution(users.count(), 0, [], [])
        all_users, covered = users.selectExpr("count(*)", f"count({col})").collect()[0]
        values, binned = value_spread(users, entry, col, top, bins)
    return Distribution(int(all_users), int(covered), [(v, n) for v, n, _ in values],
                        [(lo, hi, n) for lo, hi, n, _ in binned])


def value_spread(users: DataFrame, entry: CatalogEntry, col: str, top: int, bins: int,
                 group: str | None = None,
                 ) -> tuple[list[tuple[Any, int, int]], list[tuple[float, float, int, int]]]:
    """The spread of `entry`'s values in `col` of `users`: the `top` most common values,
    each (value, users, group users), or for numbers `bins` equal-width bins between all
    users' smallest and largest value, each (low, high, users, group users), the last bin
    closed; a user counts once per distinct element of an array. `group`: SQL over `users`
    true for the users of a group; then the values are the group's most common (held by
    one group user at least). Without it, the group counts are 0 (the DuckDB engine's
    query.value_spread)."""
    value = f"explode(array_distinct({col}))" if entry.is_array else col
    elements = users.selectExpr("gio_id", f"{value} AS v",
                                f"{group or 'false'} AS g").where("v IS NOT NULL")
    counts = [F.countDistinct("gio_id").alias("n"),
              (F.countDistinct(F.when(F.col("g"), F.col("gio_id"))) if group is not None
               else F.lit(0)).alias("gn")]
    if entry.value_type not in NUMERIC:
        spread = elements.groupBy("v").agg(*counts)
        if group is not None:
            spread = spread.where("gn > 0")
        rows = spread.orderBy(F.desc("gn" if group is not None else "n"), "v").limit(top).collect()
        return [(r["v"], int(r["n"]), int(r["gn"])) for r in rows], []
    low, high = elements.selectExpr("min(v)", "max(v)").collect()[0]
    if low is None:
        return [], []
    edges = bin_edges(float(low), float(high), bins)
    width = (float(high) - float(low)) / bins if high > low else 1.0
    b = f"least(cast(floor((v - {float(low)!r}) / {width!r}) AS bigint), {len(edges) - 1})"
    found = {r["b"]: (int(r["n"]), int(r["gn"])) for r in elements.selectExpr(
        "gio_id", "g", f"{b} AS b").groupBy("b").agg(*counts).collect()}
    return [], [(lo, hi, *found.get(i, (0, 0))) for i, (lo, hi) in enumerate(edges)]


def recent_events(spark: SparkSession, store: ProfileStore, gio_id: int,
                  limit: int) -> list[dict[str, Any]]:
    """As the DuckDB engine's: the user's `limit` newest events by (time, seq), each with
    its non-null attributes (the committed event files, every day of them)."""
    frame = read_events(spark, store)
    if frame is None:
        return []
    rows = (frame.where(F.col("gio_id") == F.lit(int(gio_id)))
            .orderBy(F.desc("time"), F.desc("seq")).limit(limit).collect())
    attributes = [c for c in frame.columns if c not in EVENT_COLUMNS]
    fields = [c for c in EVENT_COLUMNS if c != "gio_id"]
    return [{**{name: row[name] for name in fields},
             "attributes": {a: row[a] for a in attributes if row[a] is not None}}
            for row in rows]
