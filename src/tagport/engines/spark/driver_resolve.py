"""A small load onto a stored dataset, resolved on the driver by the staging's DuckDB.

Resolving with Spark joins (resolve.py) runs some thirty Spark jobs and a scan of the
whole identity map; for a load of a few records onto a large dataset those jobs, not the
rows, are the cost (a 1% load on 10M users: 12.7 s of its 26 s, bench/spark_bench.py).
The staging DuckDB already holds the load's records, so it resolves them with the
resolution the DuckDB engine runs (engines/staging/resolve.py), reading the current
version's `identity_map` files where they lie: the same targets, groups and rejects on
both engines, by construction. Spark gets the outcome as three small Parquet files
(its views `load_target`, `load_ids`, `load_hits`) and applies them (apply.py) as it
applies its own resolution; with the gio_ids of the stored users the load updates, whose
rows a delta then takes from DuckDB too (deltas.py: `write_rows_of`).

Only a load of at most DRIVER_RESOLVE_MAX_RECORDS records takes this road: the driver
holds its values in memory and reads the identity map once; a larger one is resolved by
the executors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
from pyspark.sql import DataFrame

from tagport.catalog.models import CatalogEntry
from tagport.engines.spark.resolve import Resolved, Views
from tagport.engines.spark.store import Version
from tagport.engines.staging.resolve import resolve_identities
from tagport.engines.staging.sql import literal

# the records of a load resolved on the driver, at most: the values of 1M records in a
# DuckDB hash table are a few hundred MB; above that, executors scale and a driver does not
DRIVER_RESOLVE_MAX_RECORDS = 1_000_000


@dataclass(frozen=True)
class DriverResolved:
    """Where the driver's resolution is: the Parquet files of its three views."""

    target: Path  # line, gio_id, is_new, simple
    ids: Path  # line, seq, id_key, id_value, pos
    hits: Path  # line, id_key, id_value, gio_id
    updated: Path  # gio_id: the stored users the load updates
    max_gio_id: int


def resolve_on_driver(con: duckdb.DuckDBPyConnection, entries: list[CatalogEntry],
                      current: Version) -> int:
    """Resolve `load_rec` against `current`'s identity map in `con`: `load_target` and
    the conflicts in `load_rejects` (read with the other rejects); returns the highest
    gio_id so far, after which new users are numbered."""
    files = sorted(current.identity_map.glob("*.parquet"))
    if files:
        paths = ", ".join(literal(str(f)) for f in files)
        con.execute("CREATE TEMP VIEW identity_map AS SELECT id_key, id_value,"
                    f" CAST(gio_id AS UBIGINT) AS gio_id FROM read_parquet([{paths}])")
    else:
        con.execute("CREATE TEMP TABLE identity_map"
                    " (id_key VARCHAR, id_value VARCHAR, gio_id UBIGINT)")
    last = int(current.manifest()["max_gio_id"])
    resolve_identities(con, [e for e in entries if e.is_identity], last_gio_id=last)
    return last


def write_resolution(con: duckdb.DuckDBPyConnection, staging: Path,
                     max_gio_id: int) -> DriverResolved:
    """The driver's resolution as Parquet, in the forms resolve.py's views have: a
    record's value once (at its first place), `simple` for the only record of a target
    none of whose values is mapped yet. After `number_records` (`load_seq`)."""
    out = DriverResolved(staging / "target.parquet", staging / "ids.parquet",
                         staging / "hits.parquet", staging / "updated.parquet", max_gio_id)
    con.execute(
        "COPY (SELECT t.line, CAST(t.gio_id AS BIGINT) AS gio_id, t.is_new,"
        " h.line IS NULL AND count(*) OVER (PARTITION BY t.gio_id) = 1 AS simple"
        " FROM load_target t LEFT JOIN (SELECT DISTINCT line FROM load_hits) h USING (line))"
        f" TO {literal(str(out.target))} (FORMAT PARQUET)")
    con.execute(
        "COPY (SELECT i.line, s.seq, i.id_key, i.id_value, CAST(min(i.pos) AS INTEGER) AS pos"
        " FROM load_ids i JOIN load_seq s USING (line) GROUP BY ALL)"
        f" TO {literal(str(out.ids))} (FORMAT PARQUET)")
    con.execute(
        "COPY (SELECT DISTINCT line, id_key, id_value, CAST(gio_id AS BIGINT) AS gio_id"
        f" FROM load_hits) TO {literal(str(out.hits))} (FORMAT PARQUET)")
    con.execute("COPY (SELECT DISTINCT CAST(gio_id AS BIGINT) AS gio_id FROM load_target"
                f" WHERE NOT is_new ORDER BY gio_id) TO {literal(str(out.updated))}"
                " (FORMAT PARQUET)")
    return out


def resolved_views(views: Views, records: DataFrame, identity_map: DataFrame,
                   resolved: DriverResolved) -> Resolved:
    """resolve.py's views over the driver's files, for apply.py."""
    spark = views.spark
    rec = views.put(records, "load_rec", cache=False)
    views.put(identity_map, "identity_map", cache=False)
    target = views.put(spark.read.parquet(str(resolved.target)), "load_target", cache=False)
    ids = views.put(spark.read.parquet(str(resolved.ids)), "load_ids", cache=False)
    views.put(spark.read.parquet(str(resolved.hits)), "load_hits", cache=False)
    return Resolved([], rec, target, ids, identity_map, resolved.max_gio_id,
                    updated=resolved.updated)
