"""Segments on the DuckDB store: a members upload, a live count, a portrait.

A segment's membership is a BOOLEAN column of `users` named by its key (TRUE for members,
NULL for everyone else), written like a computed tag's (compute.py): under the store's
write lock, on one cursor, in one transaction, one UPDATE of every user, so a reader sees
the old members or the new.

- `replace_members`: DuckDB streams the CSV (`read_csv`) into the distinct values, which
  are matched against `identity_map` (one row per identity value, so a multi-valued
  identity matches on any of its values); nothing of the file passes through Python but
  its header line (staging/members.py).
- `count_members`: one `count(*)` of the compiled condition. With a sample, only users
  whose bucket `gio_id % 10007` (a prime, so that no round-number pattern of gio_ids
  skews it) is below the sample's share of 10007 count, and the `did` subqueries read
  only those users' events; the count is scaled by all users / sampled users. One
  modulo is the cheapest filter of the events scan, which is most of an estimate's cost
  (half of that of a hash). The buckets are the Spark engine's: both pick the same users.
- `portrait`: query.value_spread, the distribution's own counts, with the group's beside.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
from sqlglot import exp

from tagport.catalog.models import CatalogEntry, MembersReport, Portrait
from tagport.conditions import Condition, compile_condition
from tagport.engines.duckdb.compute import EVENTS, replace_values, rollback
from tagport.engines.duckdb.conditions import DuckDBValues
from tagport.engines.duckdb.query import value_spread
from tagport.engines.duckdb.store import DuckDBStore
from tagport.engines.staging.members import members_header, too_many_fields
from tagport.engines.staging.parse import csv_source
from tagport.engines.staging.sql import ident
from tagport.errors import InvalidInput

BUCKETS = 10_007  # a prime: a sample is a whole number of these buckets of users
_BUCKET = f"gio_id % {BUCKETS}"  # a user's bucket (one modulo: the cheapest filter)
_LINE = re.compile(r"CSV Error on Line: (\d+)")
_FIELDS = re.compile(r"Expected Number of Columns: \d+ Found: (\d+)")


def replace_members(store: DuckDBStore, segment: CatalogEntry, identity_key: str,
                    path: Path) -> MembersReport:
    """Exactly the users holding a value of `path` become `segment`'s members."""
    has_rows = members_header(path, identity_key)
    with store.write_lock, store.load_memory():
        cur = store.cursor()
        try:
            cur.execute("BEGIN")
            try:
                report = _replace(store, cur, segment, identity_key, path, has_rows)
                cur.execute("COMMIT")
            except BaseException:
                rollback(cur)
                raise
            return report
        finally:
            cur.close()


def _replace(store: DuckDBStore, cur: duckdb.DuckDBPyConnection, segment: CatalogEntry,
             identity_key: str, path: Path, has_rows: bool) -> MembersReport:
    col = ident(identity_key)
    if has_rows:
        source = (f"(SELECT {col} AS v FROM {csv_source(path, [identity_key])}"
                  f" WHERE {col} <> '')")
    else:
        source = "(SELECT NULL::VARCHAR AS v WHERE false)"
    try:
        cur.execute(f"CREATE TEMP TABLE members_values AS SELECT DISTINCT v FROM {source}")
    except (duckdb.InvalidInputException, duckdb.IOException) as exc:  # the file's fault
        raise _unreadable(path, identity_key, exc) from exc
    cur.execute("CREATE TEMP TABLE compute_result AS SELECT DISTINCT m.gio_id,"
                " TRUE AS tag_value FROM identity_map m JOIN members_values f"
                " ON m.id_value = f.v WHERE m.id_key = ?", [identity_key])
    values, known = cur.execute(
        "SELECT (SELECT count(*) FROM members_values), (SELECT count(DISTINCT id_value)"
        " FROM identity_map WHERE id_key = ? AND id_value IN (SELECT v FROM members_values))",
        [identity_key]).fetchall()[0]
    store.ensure_columns(cur, [segment])
    members = replace_values(cur, segment)
    return MembersReport(values=int(values), members=members, unknown=int(values - known))


def _unreadable(path: Path, identity_key: str, exc: Exception) -> InvalidInput:
    text = str(exc)
    line = _LINE.search(text)
    if line and _FIELDS.search(text):
        return too_many_fields(path, int(line.group(1)), identity_key)
    reason = next((r for r in text.splitlines()[1:] if r and not r.startswith("Original")),
                  text.splitlines()[0] if text else type(exc).__name__)
    if line:
        return InvalidInput(f"{path}: line {line.group(1)}: {reason.strip()}")
    return InvalidInput(f"{path}: not a readable csv file: {reason.strip()}")


def sample_buckets(sample: float) -> int:
    """How many of the BUCKETS a sample of `sample` (0 < sample < 1) takes (at least 1)."""
    if not 0 < sample < 1:
        raise ValueError(f"sample {sample!r}: a share of the users, 0 < sample < 1")
    return max(1, round(sample * BUCKETS))


def count_members(store: DuckDBStore, condition: Condition, *, as_of: date,
                  sample: float | None = None) -> int:
    """The users `condition` holds for on `as_of`, exactly or estimated from a sample."""
    cur = store.cursor()
    try:
        reader = DuckDBValues(store.user_columns(cur))
        if sample is None:
            predicate = compile_condition(condition, reader, as_of=as_of)
            return int(cur.execute(
                f"SELECT count(*) FROM users u WHERE {predicate.sql('duckdb')}").fetchall()[0][0])
        sampled = f"{_BUCKET} < {sample_buckets(sample)}"
        events = exp.select("*").from_(EVENTS).where(sampled).subquery()
        predicate = compile_condition(condition, reader, as_of=as_of, events=events)
        hits, users = cur.execute(
            f"SELECT count(*) FILTER (WHERE {predicate.sql('duckdb')}), count(*)"
            f" FROM (SELECT * FROM users WHERE {sampled}) u").fetchall()[0]
        if not users:
            return 0
        total = cur.execute("SELECT count(*) FROM users").fetchall()[0][0]
        return round(hits * total / users)
    finally:
        cur.close()


def portrait(store: DuckDBStore, entry: CatalogEntry, among: CatalogEntry, *, top: int,
             bins: int) -> Portrait:
    """`entry`'s values among the users holding a value in `among`'s column, and all."""
    cur = store.cursor()
    try:
        columns = store.user_columns(cur)
        group = f"{ident(among.key)} IS NOT NULL" if among.key in columns else "FALSE"
        counts = [f"count(*) FILTER (WHERE {group})", "count(*)"]
        if entry.key in columns:
            col = ident(entry.key)
            counts += [f"count({col}) FILTER (WHERE {group})", f"count({col})"]
        group_users, all_users, *covered = cur.execute(
            f"SELECT {', '.join(counts)} FROM users").fetchall()[0]
        if entry.key not in columns:
            return Portrait(int(group_users), int(all_users), 0, 0, [], [])
        values, binned = value_spread(cur, entry, top, bins, group)
        return Portrait(int(group_users), int(all_users), int(covered[0]), int(covered[1]),
                        [(v, gn, n) for v, n, gn in values],
                        [(lo, hi, gn, n) for lo, hi, n, gn in binned])
    finally:
        cur.close()
