"""Merge-on-read's files (store.py): writing a delta, and the merge in DuckDB's SQL.

`store.read_users` is the one Spark reader of a version's users; `duckdb_users_sql` is
the same merge for DuckDB on the driver (the load's staging) or any reader of the files.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import duckdb
from pyspark.sql import DataFrame

from tagport.engines.spark.store import Delta, Version


def duckdb_users_sql(version: Version, columns: str = "*") -> str:
    """The DuckDB query of `read_users`: the buckets' rows whose gio_id no delta holds,
    and each gio_id's row of the newest delta holding it."""
    literal = _sql_string
    buckets = f"read_parquet({literal(str(version.users / '*.parquet'))})"
    deltas = version.deltas()
    if not deltas:
        return f"SELECT {columns} FROM {buckets}"
    files = ", ".join(literal(str(d.path)) for d in deltas)
    newest = (f"SELECT * EXCLUDE (_delta) FROM (SELECT *, list_position([{files}], filename)"
              f" AS _delta FROM read_parquet([{files}], filename = true))"
              " QUALIFY row_number() OVER (PARTITION BY gio_id ORDER BY _delta DESC) = 1")
    return (f"WITH d AS ({newest}) SELECT {columns} FROM (SELECT * EXCLUDE (filename) FROM d"
            f" UNION ALL BY NAME SELECT * FROM {buckets} WHERE gio_id NOT IN"
            " (SELECT gio_id FROM d))")


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def write_delta(users: DataFrame, version: Version, size: int) -> Delta:
    """Write `users` (changed rows, one per user) as one new delta file of `version`,
    in gio_id order."""
    scratch = version.path / f".delta-{uuid.uuid4().hex}"
    version.users_delta.mkdir(exist_ok=True)
    target = version.users_delta / f"{version.name}-{uuid.uuid4().hex[:8]}.parquet"
    try:
        users.coalesce(1).sortWithinPartitions("gio_id").write.parquet(str(scratch))
        [part] = sorted(scratch.glob("part-*.parquet"))
        part.replace(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _delta_of(target, size)


def _delta_of(path: Path, size: int) -> Delta:
    """A written delta file's rows and buckets, from the file (DuckDB on the driver)."""
    [(rows, buckets)] = duckdb.sql(
        f"SELECT count(*), list(DISTINCT (gio_id - 1) // {int(size)}) FROM"
        f" read_parquet({_sql_string(str(path))})").fetchall()
    return Delta(path, int(rows), frozenset(int(b) for b in buckets or []))
