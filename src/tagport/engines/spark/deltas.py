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


def duckdb_bucket_sql(files: list[Path], deltas: list[Path], low: int, high: int,
                      columns: list[str], where: str) -> str:
    """The DuckDB query of one bucket's users (gio_ids `low`..`high`) for which `where`
    holds, in gio_id order: the bucket's files (each in gio_id order, in name order) with
    the rows of `deltas` (oldest first, the version's that hold rows of this bucket) put
    over them, as `duckdb_users_sql` does for the whole version. `columns`: SQL of the
    columns to select (gio_id first)."""
    literal = _sql_string
    select = ", ".join(columns)
    buckets = f"read_parquet([{', '.join(literal(str(f)) for f in files)}])"
    assert files or deltas, "a bucket with no file and no delta holds no user"
    if not deltas:
        order = "" if len(files) == 1 else " ORDER BY gio_id"  # one file is in order
        return f"SELECT {select} FROM {buckets} WHERE {where}{order}"
    names = ", ".join(literal(str(d)) for d in deltas)
    newest = (f"SELECT * EXCLUDE (_delta, filename) FROM (SELECT *,"
              f" list_position([{names}], filename) AS _delta FROM read_parquet([{names}],"
              f" filename = true) WHERE gio_id BETWEEN {int(low)} AND {int(high)})"
              " QUALIFY row_number() OVER (PARTITION BY gio_id ORDER BY _delta DESC) = 1")
    rows = ("SELECT * FROM d" if not files else f"SELECT * FROM d UNION ALL BY NAME"
            f" SELECT * FROM {buckets} WHERE gio_id NOT IN (SELECT gio_id FROM d)")
    return f"WITH d AS ({newest}) SELECT {select} FROM ({rows}) WHERE {where} ORDER BY gio_id"


def write_rows_of(version: Version, gio_ids: Path, out: Path) -> Path:
    """The rows of `version` (its deltas merged) of the users whose gio_ids are in
    `gio_ids` (a Parquet file of `gio_id`), written to `out` by DuckDB on the driver: what
    a delta needs of the users a small load updates (apply.py), without Spark reading
    every bucket they fall in (a spread 1% load on 10M users: 1.5 s, against ~8 s)."""
    ids = f"read_parquet({_sql_string(str(gio_ids))})"
    con = duckdb.connect(config={"threads": 2})
    try:
        con.execute(f"COPY (SELECT * FROM ({duckdb_users_sql(version)}) u SEMI JOIN {ids} i"
                    f" USING (gio_id)) TO {_sql_string(str(out))} (FORMAT PARQUET)")
    finally:
        con.close()
    return out


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
