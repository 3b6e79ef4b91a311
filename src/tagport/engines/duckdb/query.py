"""Read-only queries on DuckDB: tag coverage, a page of a tag's users, one user, a
user's recent events.

Rows are rendered to JSON by DuckDB's own `to_json` of the same nested struct the JSON
export writes, so a page or a user looks exactly like a line of an export file (keys in
catalog order, `null` kept, arrays as arrays, dates as strings).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb

from tagport.catalog.models import NUMERIC, CatalogEntry, Distribution, TagCoverage, bin_edges
from tagport.engines.duckdb.export import covered_filter
from tagport.engines.rendering.sql import json_expression
from tagport.engines.staging.sql import SQL_TYPES, ident
from tagport.exports.plan import ExportPlan


def tag_coverage(
    cur: duckdb.DuckDBPyConnection, tags: Sequence[CatalogEntry], columns: dict[str, str]
) -> TagCoverage:
    """One scan: `count(col)` counts non-null values, and the loader stores an empty
    array as NULL, so this is the spec's coverage."""
    loaded = [t for t in tags if t.key in columns]
    counts = ", ".join(["count(*)"] + [f"count({ident(t.key)})" for t in loaded])
    row = cur.execute(f"SELECT {counts} FROM users").fetchall()[0]
    covered = {t.key: 0 for t in tags}
    covered.update({t.key: int(n) for t, n in zip(loaded, row[1:], strict=True)})
    return TagCoverage(all_users=int(row[0]), covered=covered)


def _struct(entries: Sequence[CatalogEntry], columns: dict[str, str]) -> str:
    if not entries:
        return "'{}'::JSON"
    fields = ", ".join(f"{ident(e.key)} := {json_expression(e, columns)}" for e in entries)
    return f"struct_pack({fields})"


def _user_json(entries: Sequence[CatalogEntry], columns: dict[str, str]) -> str:
    identities = [e for e in entries if e.is_identity]
    properties = [e for e in entries if not e.is_identity]
    return (
        f"to_json(struct_pack(gio_id := gio_id,"
        f" identifications := {_struct(identities, columns)},"
        f" properties := {_struct(properties, columns)}))"
    )


def tag_users(
    cur: duckdb.DuckDBPyConnection, plan: ExportPlan, columns: dict[str, str],
    limit: int, offset: int,
) -> list[dict[str, Any]]:
    rows = cur.execute(
        f"SELECT {_user_json(plan.columns, columns)} FROM users"
        f" WHERE {covered_filter(plan, columns)} ORDER BY gio_id LIMIT ? OFFSET ?",
        [limit, offset],
    ).fetchall()
    return [json.loads(text) for (text,) in rows]


def find_user(
    cur: duckdb.DuckDBPyConnection, identity_key: str, value: str,
    entries: Sequence[CatalogEntry], columns: dict[str, str],
) -> dict[str, Any] | None:
    rows = cur.execute(
        f"SELECT {_user_json(entries, columns)} FROM users WHERE gio_id IN"
        " (SELECT gio_id FROM identity_map WHERE id_key = ? AND id_value = ?)",
        [identity_key, value],
    ).fetchall()
    return json.loads(rows[0][0]) if rows else None


def distribution(cur: duckdb.DuckDBPyConnection, entry: CatalogEntry, columns: dict[str, str],
                 top: int, bins: int) -> Distribution:
    """`entry`'s values over the users in at most three scans of one column: counts per
    value (the `top` most common), or `bins` equal-width bins for numbers."""
    all_users = cur.execute("SELECT count(*) FROM users").fetchall()[0][0]
    if entry.key not in columns:
        return Distribution(int(all_users), 0, [], [])
    col = ident(entry.key)
    covered = cur.execute(f"SELECT count({col}) FROM users").fetchall()[0][0]
    values, binned = value_spread(cur, entry, top, bins)
    return Distribution(int(all_users), int(covered), [(v, n) for v, n, _ in values],
                        [(lo, hi, n) for lo, hi, n, _ in binned])


def value_spread(cur: duckdb.DuckDBPyConnection, entry: CatalogEntry, top: int, bins: int,
                 group: str | None = None,
                 ) -> tuple[list[tuple[Any, int, int]], list[tuple[float, float, int, int]]]:
    """The spread of `entry`'s values (its column exists): the `top` most common values,
    each (value, users, group users), or for numbers `bins` equal-width bins between all
    users' smallest and largest value, each (low, high, users, group users), the last bin
    closed; a user counts once per distinct element of an array. `group`: SQL over
    `users` true for the users of a group; then the values are the group's most common
    (held by one group user at least). Without it, the group counts are 0."""
    col = ident(entry.key)
    g = group if group is not None else "FALSE"
    value = f"unnest(CAST({col} AS {SQL_TYPES[entry.value_type]}[]))" if entry.is_array else col
    elements = (f"(SELECT DISTINCT gio_id, {value} AS v, {g} AS g FROM users"
                f" WHERE {col} IS NOT NULL)" if entry.is_array
                else f"(SELECT gio_id, {col} AS v, {g} AS g FROM users)")
    grouped = "count(DISTINCT gio_id) FILTER (WHERE g)" if group is not None else "0"
    counts = f"count(DISTINCT gio_id) AS n, {grouped} AS gn"
    if entry.value_type not in NUMERIC:
        having, order = ("HAVING gn > 0", "gn DESC") if group is not None else ("", "n DESC")
        rows = cur.execute(f"SELECT v, {counts} FROM {elements} WHERE v IS NOT NULL"
                           f" GROUP BY v {having} ORDER BY {order}, v LIMIT ?", [top]).fetchall()
        return [(v, int(n), int(gn)) for v, n, gn in rows], []
    low, high = cur.execute(f"SELECT min(v), max(v) FROM {elements}").fetchall()[0]
    if low is None:
        return [], []
    edges = bin_edges(float(low), float(high), bins)
    width = (float(high) - float(low)) / bins if high > low else 1.0
    found = {b: (int(n), int(gn)) for b, n, gn in cur.execute(
        f"SELECT least(CAST(floor((v - ?) / ?) AS BIGINT), ?) AS b, {counts}"
        f" FROM {elements} WHERE v IS NOT NULL GROUP BY b",
        [float(low), width, len(edges) - 1]).fetchall()}
    return [], [(lo, hi, *found.get(i, (0, 0))) for i, (lo, hi) in enumerate(edges)]


EVENT_FIELDS = ("event", "time", "dt", "id", "seq")


def recent_events(cur: duckdb.DuckDBPyConnection, gio_id: int, limit: int,
                  columns: dict[str, str]) -> list[dict[str, Any]]:
    """The user's `limit` newest events by (time, seq), each with its non-null
    attributes. The table is laid out by day, not by user: this scans its `gio_id`
    column (fine for one user looked up in the console)."""
    if not columns:
        return []
    attributes = [c for c in columns if c not in ("gio_id", *EVENT_FIELDS)]
    names = [*EVENT_FIELDS, *attributes]
    rows = cur.execute(
        f"SELECT {', '.join(ident(c) for c in names)} FROM events WHERE gio_id = ?"
        ' ORDER BY "time" DESC, seq DESC LIMIT ?', [gio_id, limit]).fetchall()
    return [event_document(dict(zip(names, row, strict=True)), attributes) for row in rows]


def event_document(row: dict[str, Any], attributes: Sequence[str]) -> dict[str, Any]:
    """A stored event row as `Engine.recent_events` gives it."""
    doc = {name: row[name] for name in EVENT_FIELDS}
    doc["attributes"] = {a: row[a] for a in attributes if row[a] is not None}
    return doc
