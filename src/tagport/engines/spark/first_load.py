"""A first load of new users only: a task per file, each DuckDB on an executor.

A load onto an empty dataset whose valid records share no identity value (a first import
of the users, one record each: the most common full load) needs no resolution: each
valid record is a new user, its gio_id its `seq` (load.py numbers the valid records 1, 2,
... in line order, the gio_ids resolve.py gives them), its row its record's values. So
instead of resolve.py's and apply.py's Spark SQL (shuffles of the records, the identity
values and the users), the driver's staging checks that nothing repeats (`first_load_facts`,
in its DuckDB), and one Spark task per file then reads its seq range of the staged records
(`records.parquet`, in seq order) with an in-memory DuckDB of one thread and writes the
file in the store's layout (store.py): a task per bucket of users, and a task per
identity map file of the pairs. Nothing is shuffled and no row crosses the JVM.

The rows, columns and types are apply.py's for the same records (tested against it):
identities joined by `||` (their values distinct and non-empty already, validate.py),
attributes as their records carry them, Spark's types (BIGINT, DOUBLE, BOOLEAN, DATE,
TIMESTAMP without time zone, VARCHAR, lists of them), each bucket in gio_id order.

A task writes under a hidden name of its own and renames the file when complete, so a
failed attempt leaves nothing Spark or DuckDB would read; the driver removes the hidden
leftovers. The version is committed by load.py as any other, all or nothing.

The executors import this module (as parts.py): they need tagport's Python environment and
the staged records at the path the driver sees, the store's shared path.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from pyspark.sql import SparkSession

from tagport.catalog.models import CatalogEntry
from tagport.engines.base import LoadReport
from tagport.engines.spark.store import BUCKETS_FILE, Version
from tagport.engines.staging.sql import SQL_TYPES, ident, literal

# the identity map's pairs per file (apply.py writes as many per file)
IDENTITIES_PER_FILE = 8_000_000


@dataclass(frozen=True)
class FirstLoadFacts:
    """What the staging found of the valid records, for a first load of new users."""

    rows: int  # the valid records: the new users
    pairs: int  # their identity values, one pair (key, value) each
    keys_with_data: list[str]  # the keys some record gives a value


def first_load_facts(con: duckdb.DuckDBPyConnection, entries: list[CatalogEntry],
                     valid: str) -> FirstLoadFacts | None:
    """In the staging's DuckDB (`load_rec`, its valid records where `valid` holds): the
    facts when no identity value is carried by two records, else None (the load is
    resolved by resolve.py). Values are compared by a 64-bit hash: two values with the
    same hash send the load to the general path, which is right for any input."""
    identities = [e for e in entries if e.is_identity]
    values = " UNION ALL ".join(
        f"SELECT hash({literal(e.key)}, unnest({ident(e.key)})) AS h FROM load_rec"
        f" WHERE {valid} AND {ident(e.key)} IS NOT NULL" for e in identities)
    if values:
        pairs, distinct = con.execute(
            f"SELECT count(*), count(DISTINCT h) FROM ({values})").fetchall()[0]
        if pairs != distinct:
            return None
    else:
        pairs = 0
    flags = [f"bool_or({ident(e.key)} IS NOT NULL"
             f"{'' if e.is_identity else f' AND {ident(e.key + chr(63))}'})" for e in entries]
    row = con.execute(f"SELECT count(*){''.join(', ' + f for f in flags)}"
                      f" FROM load_rec WHERE {valid}").fetchall()[0]
    if row[0] == 0:
        return None
    return FirstLoadFacts(int(row[0]), int(pairs),
                          [e.key for e, flag in zip(entries, row[1:], strict=True) if flag])


@dataclass(frozen=True)
class FileTask:
    """One file of the new version: the DuckDB query of its rows, and where it goes."""

    sql: str
    target: str


def write_file(task: FileTask) -> int:
    """On an executor: write the task's rows as its Parquet file; the rows written."""
    target = Path(task.target)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    with duckdb.connect(config={"threads": 1}) as con:
        rows = con.execute(f"COPY ({task.sql}) TO {literal(str(tmp))} (FORMAT PARQUET)"
                           ).fetchall()[0][0]
    os.replace(tmp, target)
    return int(rows)


def write_first_load(spark: SparkSession, records: Path, entries: list[CatalogEntry],
                     facts: FirstLoadFacts, new: Version, report: LoadReport) -> dict[str, Any]:
    """Write the new version's users and identity map from the staged `records` (in seq
    order); fill `report`; return the version's manifest."""
    size = new.users_per_bucket
    new.users.mkdir()
    new.identity_map.mkdir()
    source = f"read_parquet({literal(str(records))})"
    tasks = [FileTask(_identities_sql(source, entries, low, high),
                      str(new.identity_map / f"{new.name}-{n:05d}.parquet"))
             for n, (low, high) in enumerate(_ranges(facts.rows,
                                                     math.ceil(facts.pairs / IDENTITIES_PER_FILE)))]
    tasks += [FileTask(_users_sql(source, entries, n * size + 1, (n + 1) * size),
                       str(new.users / f"b{n:06d}.parquet"))
              for n in range(math.ceil(facts.rows / size))]
    try:
        written = spark.sparkContext.parallelize(tasks, len(tasks)).map(write_file).collect()
    finally:
        for folder in (new.users, new.identity_map):
            for leftover in folder.glob(".*"):
                leftover.unlink(missing_ok=True)
    users = sum(n for task, n in zip(tasks, written, strict=True)
                if Path(task.target).parent == new.users)
    if users != facts.rows:  # the staged records are the load's: anything else is a fault
        raise RuntimeError(f"the first load wrote {users} users of {facts.rows} records")
    (new.users / BUCKETS_FILE).write_text(f'{{"users_per_bucket": {int(size)}}}',
                                          encoding="utf-8")
    report.inserted, report.updated = facts.rows, 0
    report.keys_with_data = sorted(facts.keys_with_data)
    return {"users": facts.rows, "identities": facts.pairs, "max_gio_id": facts.rows}


def _ranges(rows: int, parts: int) -> list[tuple[int, int]]:
    """`parts` seq ranges covering 1..rows (none for no part)."""
    step = math.ceil(rows / parts) if parts else 0
    return [(k * step + 1, min(rows, (k + 1) * step)) for k in range(parts)]


def duckdb_type(entry: CatalogEntry) -> str:
    """The DuckDB type of an attribute's column: its value type's (staging's SQL_TYPES, the
    types store.spark_type maps to Spark's), a list of them for a list attribute."""
    scalar = SQL_TYPES[entry.value_type]
    return f"{scalar}[]" if entry.is_array else scalar


def _users_sql(source: str, entries: list[CatalogEntry], low: int, high: int) -> str:
    """The users of gio_ids `low`..`high`, in gio_id order: the records of those seqs."""
    columns = ["CAST(seq AS BIGINT) AS gio_id"]
    for i, e in enumerate(entries):
        if e.is_identity:
            columns.append(f"array_to_string(c{i}, '||') AS {ident(e.key)}")
        else:  # a key its record does not carry (JSON lines) has no value yet
            columns.append(f"CAST(CASE WHEN p{i} THEN c{i} END AS {duckdb_type(e)})"
                           f" AS {ident(e.key)}")
    return (f"SELECT {', '.join(columns)} FROM {source}"
            f" WHERE seq BETWEEN {int(low)} AND {int(high)} ORDER BY seq")


def _identities_sql(source: str, entries: list[CatalogEntry], low: int, high: int) -> str:
    """The identity map's pairs of the records of seqs `low`..`high`."""
    return " UNION ALL ".join(
        f"SELECT {literal(e.key)} AS id_key, unnest(c{i}) AS id_value,"
        f" CAST(seq AS BIGINT) AS gio_id FROM {source}"
        f" WHERE seq BETWEEN {int(low)} AND {int(high)} AND c{i} IS NOT NULL"
        for i, e in enumerate(entries) if e.is_identity)
