"""Applying resolved records: the DuckDB loader's step 4, writing a new dataset version.

Per target user the last record carrying a key wins, even with a null (JSON lines can
leave a key out, which keeps the stored value); identity values accumulate, stored ones
first, then new ones in the order they first appear.

The new version costs what the load changes (store.py): only the buckets holding a
changed or created user are read, merged and written; the others are linked from the
current version. `identity_map` gains one file of the new (key, value) pairs beside the
current files, linked. A load that adds a column or changes a column's type rewrites
every bucket (all files of a version share one schema, so Spark and DuckDB read them as
one table), as does the first load on a dataset written before buckets.

Merge-on-read (store.py, `DeltaPolicy`): a load whose changed users are few beside the
rows of the buckets they fall in (a spread daily load) writes their complete new rows as
one delta file instead, and links every bucket; past the deltas' bounds it compacts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tagport.catalog.models import CatalogEntry
from tagport.engines.base import LoadReport
from tagport.engines.spark.deltas import write_delta, write_rows_of
from tagport.engines.spark.render import literal, quote_ident
from tagport.engines.spark.resolve import Resolved, Views, empty_frame
from tagport.engines.spark.store import (
    IDENTITY_FILES_MAX,
    Buckets,
    Delta,
    Version,
    link_files,
    merge_deltas,
    spark_type,
    write_user_buckets,
)

IDENTITIES_PER_FILE = 8_000_000


def apply(views: Views, entries: list[CatalogEntry], resolved: Resolved,
          current: Version | None, new: Version, report: LoadReport) -> dict[str, Any]:
    """Write the new version's files; fill `report`; return the version's manifest."""
    spark = views.spark
    new_ids = _compute_changes(views, entries, resolved)
    buckets = current.buckets() if current is not None else None
    size = buckets.size if buckets is not None else new.users_per_bucket
    flags = [f"bool_or(c{i} IS NOT NULL) AS k{i}" for i, e in enumerate(entries)
             if not e.is_identity]
    # one pass over the computed changes: the report's counts and the touched buckets
    counts = spark.sql(
        "SELECT count_if(is_new) AS inserted, count_if(NOT is_new) AS updated,"
        " max(CASE WHEN is_new THEN gio_id END) AS max_new,"
        f" collect_set((gio_id - 1) DIV {int(size)}) AS buckets,"
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
    deltas = _write_users(views, entries, current, buckets, new,
                          {int(b) for b in counts["buckets"]},
                          report.inserted + report.updated, users, resolved.updated)
    identities_total = int(before["identities"]) + int(counts["added"])
    _write_identity_map(resolved.identity_map, new_ids.select("id_key", "id_value", "gio_id"),
                        int(counts["added"]), identities_total, current, new)
    manifest = {"users": users, "identities": identities_total,
                "max_gio_id": max(int(before["max_gio_id"]), int(counts["max_new"] or 0))}
    return {**manifest, "deltas": deltas} if deltas else manifest


def _compute_changes(views: Views, entries: list[CatalogEntry],
                     resolved: Resolved) -> DataFrame:
    """`load_new_ids` and `load_change`, each computed once; the new identity values.
    A load of new users only (resolve.py: `all_new`) takes both from its records and
    values as they are, numbered: no join, nothing to compute ahead."""
    if resolved.all_new:
        first = int(resolved.max_gio_id)
        new_ids = views.put(views.spark.sql(
            f"SELECT {first} + seq AS gio_id, id_key, id_value, line AS first_line,"
            " pos AS first_pos, true AS simple FROM load_ids"), "load_new_ids", cache=False)
        views.put(views.spark.sql(
            f"SELECT {first} + r.seq AS gio_id, true AS is_new,"
            f" {', '.join(_simple_columns(entries))} FROM load_rec r"),
            "load_change", cache=False)
        return new_ids
    new_ids = views.put(_new_ids(views.spark), "load_new_ids")
    views.put(_changes(views.spark, entries), "load_change")
    return new_ids


def _simple_columns(entries: list[CatalogEntry]) -> list[str]:
    """A simple target's change columns (c<i>, and p<i> for attributes): its record's."""
    columns = []
    for i, e in enumerate(entries):
        if e.is_identity:
            columns.append(f"nullif(array_join(array_distinct(r.c{i}), '||'), '') AS c{i}")
        else:
            columns += [f"CASE WHEN r.p{i} THEN r.c{i} END AS c{i}", f"r.p{i} AS p{i}"]
    return columns


def _new_ids(spark: SparkSession) -> DataFrame:
    """`load_new_ids`: identity values not yet mapped, each with where it first appears.
    A simple target's values (resolve.py: one record, no value mapped) are its record's;
    the others' are grouped, a value mapped when it is in `load_hits` (the load's values
    found in the identity map): the map is not read again."""
    return spark.sql(
        "SELECT t.gio_id, i.id_key, i.id_value, i.line AS first_line, i.pos AS first_pos,"
        " true AS simple FROM load_ids i JOIN load_target t ON i.line = t.line WHERE t.simple"
        " UNION ALL"
        " SELECT t.gio_id, i.id_key, i.id_value, min(i.line), min_by(i.pos, i.line), false"
        " FROM load_ids i JOIN load_target t ON i.line = t.line AND NOT t.simple"
        " LEFT ANTI JOIN load_hits m ON i.id_key = m.id_key AND i.id_value = m.id_value"
        " GROUP BY t.gio_id, i.id_key, i.id_value")


def _changes(spark: SparkSession, entries: list[CatalogEntry]) -> DataFrame:
    """`load_change`: one row per target user: c<i> its new values, p<i> whether any
    record carried key i. A simple target's row is its record's (the one record carrying
    a key sets it; its new identity values are its own, first places first); the others
    are aggregated."""
    attrs, ids = ["t.gio_id", "bool_and(t.is_new) AS is_new"], ["gio_id"]
    simple = ["t.gio_id", "t.is_new", *_simple_columns(entries)]
    columns = ["gio_id", "is_new"]
    for i, e in enumerate(entries):
        if e.is_identity:
            ids.append(
                "nullif(array_join(transform(array_sort(collect_list(CASE WHEN id_key ="
                f" {literal(e.key)} THEN named_struct('l', first_line, 'p', first_pos,"
                f" 'v', id_value) END)), s -> s.v), '||'), '') AS c{i}")
            columns.append(f"c{i}")
        else:  # the last record carrying the key wins, even with a null
            attrs += [f"max(CASE WHEN r.p{i} THEN named_struct('l', r.line, 'v', r.c{i})"
                      f" END).v AS c{i}", f"bool_or(r.p{i}) AS p{i}"]
            columns += [f"c{i}", f"p{i}"]
    return spark.sql(
        f"WITH attrs AS (SELECT {', '.join(attrs)}"
        " FROM load_rec r JOIN load_target t ON r.line = t.line AND NOT t.simple"
        " GROUP BY t.gio_id),"
        f" ids AS (SELECT {', '.join(ids)} FROM load_new_ids WHERE NOT simple"
        "  GROUP BY gio_id)"
        f" SELECT {', '.join(simple)} FROM load_rec r JOIN load_target t"
        "  ON r.line = t.line AND t.simple"
        f" UNION ALL SELECT {', '.join(columns)} FROM attrs LEFT JOIN ids USING (gio_id)")


def _write_identity_map(stored: DataFrame, added: DataFrame, count: int, total: int,
                        current: Version | None, new: Version) -> None:
    """The current files linked and one file of the `count` new pairs beside them; all
    rewritten together once there would be more than IDENTITY_FILES_MAX files."""
    old = sorted(current.identity_map.glob("*.parquet")) if current is not None else []
    if len(old) + 1 > IDENTITY_FILES_MAX:
        files = math.ceil(total / IDENTITIES_PER_FILE)
        whole = stored.unionByName(added)
        whole = whole.repartition(files) if files > 1 else whole.coalesce(1)
        _write_named(whole, new.identity_map, new.name)
        return
    new.identity_map.mkdir()
    link_files(old, new.identity_map)
    if count:
        files = math.ceil(count / IDENTITIES_PER_FILE)
        _write_named(added.repartition(files) if files > 1 else added.coalesce(1),
                     new.identity_map, new.name)


def _write_named(df: DataFrame, target: Path, prefix: str) -> None:
    """Spark's Parquet files of `df` in `target`, named `<prefix>-00000.parquet`, ..."""
    scratch = target.parent / f".write-{target.name}"
    df.write.parquet(str(scratch))
    target.mkdir(exist_ok=True)
    for n, part in enumerate(sorted(scratch.glob("part-*.parquet"))):
        part.replace(target / f"{prefix}-{n:05d}.parquet")
    for leftover in scratch.iterdir():
        leftover.unlink()
    scratch.rmdir()


def _write_users(views: Views, entries: list[CatalogEntry], current: Version | None,
                 buckets: Buckets | None, new: Version, touched: set[int], changed: int,
                 users: int, updated: Path | None) -> list[dict[str, Any]]:
    """The load's users written: a delta of the `changed` rows, or the buckets it touches
    (`touched`) merged and written, the others linked (`buckets`: the current version's);
    the new version's deltas (manifest entries). `users`: the users after the load;
    `updated`: the gio_ids of the stored users it updates, when the driver knows them."""
    spark = views.spark
    plain = (spark.read.parquet(str(current.users)) if current is not None
             else empty_frame(spark, "gio_id bigint"))
    old_types = {f.name: f.dataType.simpleString() for f in plain.schema if f.name != "gio_id"}
    deltas = current.deltas() if current is not None else []
    size = buckets.size if buckets is not None else new.users_per_bucket
    if buckets is None or not all(old_types.get(e.key) == spark_type(e) for e in entries):
        # every bucket rewritten (a new schema, or the first bucketed version): deltas folded
        views.put(merge_deltas(spark, plain, [d.path for d in deltas]), "load_old_users",
                  cache=False)
        write_user_buckets(_merged(views, entries, old_types, "LEFT"), new.users, size)
        return []
    policy = new.delta_policy
    if current is not None and _touched_rows(buckets, touched) > policy.factor * changed:
        if (len(deltas) + 1 <= policy.max_files
                and sum(d.rows for d in deltas) + changed <= policy.max_share * users):
            return _write_as_delta(views, entries, old_types, plain, current, deltas,
                                   touched, new, updated)
        touched = touched.union(*(d.buckets for d in deltas))  # compact: no delta left
    return _rewrite_buckets(views, entries, old_types, plain, buckets, deltas, touched, new)


def _touched_rows(buckets: Buckets, touched: set[int]) -> int:
    """The rows of the touched buckets' files (their footers, read on the driver): what
    rewriting them costs, against a delta's changed rows (DeltaPolicy.factor)."""
    return sum(pq.ParquetFile(f).metadata.num_rows for b in touched
               for f in buckets.files.get(b, []))


def _write_as_delta(views: Views, entries: list[CatalogEntry], old_types: dict[str, str],
                    plain: DataFrame, current: Version, deltas: list[Delta], touched: set[int],
                    new: Version, updated: Path | None) -> list[dict[str, Any]]:
    """The changed users' complete new rows as one delta; buckets and deltas linked.
    `updated`: the gio_ids of the stored users changed, whose rows DuckDB on the driver
    then reads (deltas.py: `write_rows_of`), else Spark reads the touched buckets."""
    spark = views.spark
    buckets = current.buckets()
    assert buckets is not None
    if updated is not None:
        rows = write_rows_of(current, updated, updated.with_name("updated-rows.parquet"))
        old = spark.read.schema(plain.schema).parquet(str(rows))
    else:
        read = [str(f) for b in sorted(touched) for f in buckets.files.get(b, [])]
        old = spark.read.schema(plain.schema).parquet(*read)  # the touched buckets hold rows
        overlapping = [d.path for d in deltas if d.buckets & touched]
        # only the changed users' rows go on (the touched buckets are read, not shuffled):
        # their gio_ids, a small share of the users, are sent to every task
        changed = F.broadcast(spark.table("load_change").where("NOT is_new").select("gio_id"))
        old = merge_deltas(spark, old, overlapping).join(changed, "gio_id", "left_semi")
    views.put(old, "load_old_users", cache=False)
    new.users.mkdir()
    link_files(sorted(current.users.iterdir()), new.users)
    new.users_delta.mkdir()
    link_files([d.path for d in deltas], new.users_delta)
    delta = write_delta(_merged(views, entries, old_types, "INNER"), new, buckets.size)
    return [*(d.entry() for d in deltas), delta.entry()]


def _rewrite_buckets(views: Views, entries: list[CatalogEntry], old_types: dict[str, str],
                     plain: DataFrame, buckets: Buckets, deltas: list[Delta], touched: set[int],
                     new: Version) -> list[dict[str, Any]]:
    """The touched buckets merged (their deltas' rows folded in) and written, the others
    linked; a delta holding rows of them is written again without those rows."""
    spark = views.spark
    read = [str(f) for b in sorted(touched) for f in buckets.files.get(b, [])]
    kept = [f for b, files in buckets.files.items() if b not in touched for f in files]
    old = (spark.read.schema(plain.schema).parquet(*read) if read
           else spark.createDataFrame([], plain.schema))
    overlapping = [d for d in deltas if d.buckets & touched]
    inside = f"{buckets.expression()} IN ({', '.join(str(b) for b in sorted(touched))})"
    merged = merge_deltas(spark, old, [d.path for d in overlapping])
    views.put(merged.where(inside) if overlapping else merged, "load_old_users", cache=False)
    new.users.mkdir()
    link_files(kept, new.users)
    write_user_buckets(_merged(views, entries, old_types, "LEFT"), new.users, buckets.size)
    if not deltas:
        return []
    new.users_delta.mkdir()
    entries_out = []
    for d in deltas:
        if not d.buckets & touched:
            link_files([d.path], new.users_delta)
            entries_out.append(d.entry())
        elif d.buckets - touched:
            rest = spark.read.schema(plain.schema).parquet(str(d.path)).where(f"NOT ({inside})")
            entries_out.append(write_delta(rest, new, buckets.size).entry())
    return entries_out


def _merged(views: Views, entries: list[CatalogEntry], old_types: dict[str, str],
            join: str) -> DataFrame:
    """`load_old_users` with the load's changes applied (`join` LEFT: every old row, the
    changed ones updated; INNER: the changed ones only) and the new users."""
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
    return views.spark.sql(
        f"SELECT {', '.join(kept)} FROM load_old_users u"
        f" {join} JOIN (SELECT * FROM load_change WHERE NOT is_new) c ON u.gio_id = c.gio_id"
        f" UNION ALL SELECT {', '.join(fresh)} FROM load_change c WHERE c.is_new")
