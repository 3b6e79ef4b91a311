"""A user as a JSON line in Spark SQL, for the pages of a tag's users and the one-user
lookup (query.py): each value rendered as the DuckDB engine's JSON (render.py).

Exports do not use it: their executors render with the DuckDB engine's own rendering
(parts.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from tagport.catalog.models import CatalogEntry, ValueType
from tagport.engines.spark.render import DUCKDB_JSON, double_text, let, literal, quote_ident
from tagport.engines.spark.store import spark_type


def _json_string(text: str) -> str:
    # Spark's JSON generator escapes exactly as DuckDB's does; most strings need none
    return (f"CASE WHEN {text} RLIKE '[\\\\x00-\\\\x1f\"\\\\\\\\]'"
            f" THEN {let(f'to_json(array({text}))', lambda v: f'substr({v}, 2, length({v}) - 2)')}"
            f" ELSE concat('\"', {text}, '\"') END")


def json_value(entry: CatalogEntry, col: str) -> str:
    """SQL: the JSON text of `col` (`null` for NULL)."""
    vt = entry.value_type
    if entry.is_identity or (vt is ValueType.STRING and not entry.is_array):
        value = _json_string(col)
    elif entry.is_array and vt is ValueType.DOUBLE:
        value = (f"concat('[', array_join(transform({col},"
                 f" e -> {double_text('e', DUCKDB_JSON)}), ','), ']')")
    elif entry.is_array and vt is ValueType.DATETIME:
        value = f"to_json(cast({col} AS array<string>))"
    elif entry.is_array:
        value = f"to_json({col})"
    elif vt is ValueType.DOUBLE:
        value = double_text(col, DUCKDB_JSON)
    elif vt in (ValueType.INT, ValueType.BOOL):
        value = f"cast({col} AS string)"
    else:  # dates and datetimes
        value = f"concat('\"', cast({col} AS string), '\"')"
    return f"coalesce({value}, 'null')"


def stored_column(entry: CatalogEntry, stored: dict[str, str]) -> str | None:
    """The column holding `entry`, or None when no load brought it with its current type
    (a type changes only while the key holds no data, so such a column is all NULL)."""
    if stored.get(entry.key) == spark_type(entry):
        return quote_ident(entry.key)
    return None


def _json_object(entries: list[CatalogEntry], stored: dict[str, str]) -> list[str]:
    parts: list[str] = []
    for i, entry in enumerate(entries):
        col = stored_column(entry, stored)
        key = ("," if i else "") + json.dumps(entry.key, ensure_ascii=False) + ":"
        parts += [literal(key), json_value(entry, col) if col else "'null'"]
    return parts


def user_json(entries: Sequence[CatalogEntry], stored: dict[str, str]) -> str:
    """SQL: a user as a line of the JSON export (gio_id, identifications, properties)."""
    identities = [e for e in entries if e.is_identity]
    properties = [e for e in entries if not e.is_identity]
    parts = ["'{\"gio_id\":'", "cast(gio_id AS string)", "',\"identifications\":{'",
             *_json_object(identities, stored), "'},\"properties\":{'",
             *_json_object(properties, stored), "'}}'"]
    return f"concat({', '.join(parts)})"
