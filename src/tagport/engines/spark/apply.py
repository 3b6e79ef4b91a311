"""Applying resolved records: the DuckDB loader's step 4, writing a new dataset version.

Per target user the last record carrying a key wins, even with a null (JSON lines can
leave a key out, which keeps the stored value); identity values accumulate, stored ones
first, then new ones in the order they first appear. The version's `users` are rewritten
whole, in ascending gio_id order, and `identity_map` gains the new (key, value) pairs.
"""

from __future__ import annotations

import math
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from tagport.catalog.models import CatalogEntry
from tagport.engines.base import LoadReport
from tagport.engines.spark.render import literal, quote_ident
from tagport.engines.spark.resolve import Resolved, Views
from tagport.engines.spark.store import Version, spark_type

USERS_PER_FILE = 2_000_000
IDENTITIES_PER_FILE = 8_000_000


def apply(views: Views, entries: list[CatalogEntry], resolved: Resolved,
          current: Version | None, new: Version, report: LoadReport) -> dict[str, Any]:
    """Write the new version's files; fill `report`; return the version's manifest."""
    spark = views.spark
    new_ids = views.put(_new_ids(spark), "load_new_ids")
    views.put(_changes(spark, entries), "load_change")
    flags = [f"bool_or(c{i} IS NOT NULL) AS k{i}" for i, e in enumerate(entries)
             if not e.is_identity]
    counts = spark.sql(
        "SELECT count_if(is_new) AS inserted, count_if(NOT is_new) AS updated,"
        " max(CASE WHEN is_new THEN gio_id END) AS max_new,"
        " (SELECT count(*) FROM load_new_ids) AS added,"
        # an identity key counts when the load maps a new value of it: a value it meets
        # again was mapped, and the key marked, by an earlier load (as the DuckDB engine)
        " (SELECT collect_set(id_key) FROM load_new_ids) AS identities"
        f"{''.join(', ' + f for f in flags)} FROM load_change").collect()[0]
    report.inserted, report.updated = int(counts["inserted"]), int(counts["updated"])
    report.keys_with_data = sorted(
        e.key for i, e in enumerate(entries)
        if (e.key in counts["identities"] if e.is_identity else counts[f"k{i}"]))
    before = current.manifest() if current is not None else {"users": 0, "identities": 0,
                                                             "max_gio_id": 0}
    users = int(before["users"]) + report.inserted
    _write_users(views, entries, current, new, users)
    identities_total = int(before["identities"]) + int(counts["added"])
    identity_map = resolved.identity_map.unionByName(
        new_ids.select("id_key", "id_value", "gio_id"))
    files = math.ceil(identities_total / IDENTITIES_PER_FILE)
    identity_map = identity_map.repartition(files) if files > 1 else identity_map.coalesce(1)
    identity_map.write.parquet(str(new.identity_map))
    return {"users": users, "identities": identities_total,
            "max_gio_id": max(int(before["max_gio_id"]), int(counts["max_new"] or 0))}


def _new_ids(spark: SparkSession) -> DataFrame:
    """`load_new_ids`: identity values not yet mapped, each with where it first appears."""
    return spark.sql(
        "SELECT t.gio_id, i.id_key, i.id_value, min(i.line) AS first_line,"
        " min_by(i.pos, i.line) AS first_pos"
        " FROM load_ids i JOIN load_target t ON i.line = t.line"
        " LEFT ANTI JOIN identity_map m ON i.id_key = m.id_key AND i.id_value = m.id_value"
        " GROUP BY t.gio_id, i.id_key, i.id_value")


def _changes(spark: SparkSession, entries: list[CatalogEntry]) -> DataFrame:
    """`load_change`: one row per target user: c<i> its new values, p<i> whether any
    record carried key i."""
    attrs, ids = ["t.gio_id", "bool_and(t.is_new) AS is_new"], ["gio_id"]
    for i, e in enumerate(entries):
        if e.is_identity:
            ids.append(
                "nullif(array_join(transform(array_sort(collect_list(CASE WHEN id_key ="
                f" {literal(e.key)} THEN named_struct('l', first_line, 'p', first_pos,"
                f" 'v', id_value) END)), s -> s.v), '||'), '') AS c{i}")
        else:  # the last record carrying the key wins, even with a null
            attrs += [f"max(CASE WHEN r.p{i} THEN named_struct('l', r.line, 'v', r.c{i})"
                      f" END).v AS c{i}", f"bool_or(r.p{i}) AS p{i}"]
    return spark.sql(
        f"WITH attrs AS (SELECT {', '.join(attrs)}"
        " FROM load_rec r JOIN load_target t ON r.line = t.line GROUP BY t.gio_id),"
        f" ids AS (SELECT {', '.join(ids)} FROM load_new_ids GROUP BY gio_id)"
        " SELECT * FROM attrs LEFT JOIN ids USING (gio_id)")


def _write_users(views: Views, entries: list[CatalogEntry], current: Version | None,
                 new: Version, total: int) -> None:
    spark = views.spark
    if current is not None:
        old = spark.read.parquet(str(current.users))
    else:
        old = spark.createDataFrame([], "gio_id bigint")
    views.put(old, "load_old_users", cache=False)
    old_types = {f.name: f.dataType.simpleString() for f in old.schema if f.name != "gio_id"}
    index = {e.key: i for i, e in enumerate(entries)}
    keys = list(old_types) + [e.key for e in entries if e.key not in old_types]
    kept, fresh = ["u.gio_id"], ["c.gio_id"]
    for key in keys:
        col = quote_ident(key)
        if key not in index:  # untouched by this load
            kept.append(f"u.{col}")
            fresh.append(f"CAST(NULL AS {old_types[key]}) AS {col}")
            continue
        i, entry = index[key], entries[index[key]]
        want = spark_type(entry)
        # a type changes only while a key holds no data: a column of another type is all NULL
        stored = f"u.{col}" if old_types.get(key) == want else f"CAST(NULL AS {want})"
        if entry.is_identity:  # values accumulate: stored ones first, then the new
            kept.append(f"CASE WHEN c.c{i} IS NULL THEN {stored}"
                        f" ELSE concat_ws('||', {stored}, c.c{i}) END AS {col}")
        else:  # a key no record carried keeps its stored value
            kept.append(f"CASE WHEN c.p{i} THEN c.c{i} ELSE {stored} END AS {col}")
        fresh.append(f"CAST(c.c{i} AS {want}) AS {col}")
    users = spark.sql(
        f"SELECT {', '.join(kept)} FROM load_old_users u"
        " LEFT JOIN (SELECT * FROM load_change WHERE NOT is_new) c ON u.gio_id = c.gio_id"
        f" UNION ALL SELECT {', '.join(fresh)} FROM load_change c WHERE c.is_new")
    files = math.ceil(total / USERS_PER_FILE)
    # one file needs no range sampling: a single sorted task
    users = users.repartitionByRange(files, "gio_id") if files > 1 else users.coalesce(1)
    users.sortWithinPartitions("gio_id").write.parquet(str(new.users))
