"""The SQL of one output line on Spark: each value rendered as the DuckDB engine's bytes.

A CSV line or a JSON line is built as one string column (values rendered by render.py),
so the executors write text and the driver only assembles files (export.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from tagport.catalog.models import CatalogEntry, ValueType
from tagport.engines.spark.render import (
    ARROW_CSV,
    DUCKDB_JSON,
    PYTHON_REPR,
    DoubleStyle,
    double_from_digits,
    double_text,
    let,
    literal,
    quote_ident,
    shortest_digits,
)
from tagport.engines.spark.store import spark_type
from tagport.exports.plan import ExportPlan

# --- rendering one value ----------------------------------------------------------------


def _csv_quoted(text: str) -> str:
    return f"concat('\"', replace({text}, '\"', '\"\"'), '\"')"


def _double(col: str, digits: str | None, style: DoubleStyle) -> str:
    """`digits` is the column of shortest_digits(col), when the query computed one."""
    return double_from_digits(col, digits, style) if digits else double_text(col, style)


def csv_cell(entry: CatalogEntry, col: str, digits: str | None = None) -> str:
    """SQL: the CSV field of `col` (quoted strings, bare numbers, NULL as empty)."""
    vt = entry.value_type
    if entry.is_identity:
        cell = _csv_quoted(col)
    elif entry.is_array and vt is ValueType.DOUBLE:
        # DuckDB's VARCHAR cast of each element (Python's repr)
        joined = f"array_join(transform({col}, e -> {double_text('e', PYTHON_REPR)}), '||')"
        cell = _csv_quoted(joined)
    elif entry.is_array:
        cell = _csv_quoted(f"array_join(cast({col} AS array<string>), '||')")
    elif vt is ValueType.DOUBLE:
        cell = _double(col, digits, ARROW_CSV)
    elif vt in (ValueType.INT, ValueType.BOOL):
        cell = f"cast({col} AS string)"
    else:  # strings, dates and datetimes are quoted
        cell = _csv_quoted(f"cast({col} AS string)")
    return f"coalesce({cell}, '')"


def _json_string(text: str) -> str:
    # Spark's JSON generator escapes exactly as DuckDB's does; most strings need none
    return (f"CASE WHEN {text} RLIKE '[\\\\x00-\\\\x1f\"\\\\\\\\]'"
            f" THEN {let(f'to_json(array({text}))', lambda v: f'substr({v}, 2, length({v}) - 2)')}"
            f" ELSE concat('\"', {text}, '\"') END")


def json_value(entry: CatalogEntry, col: str, digits: str | None = None) -> str:
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
        value = _double(col, digits, DUCKDB_JSON)
    elif vt in (ValueType.INT, ValueType.BOOL):
        value = f"cast({col} AS string)"
    else:  # dates and datetimes
        value = f"concat('\"', cast({col} AS string), '\"')"
    return f"coalesce({value}, 'null')"


# --- one line --------------------------------------------------------------------------


def stored_column(entry: CatalogEntry, stored: dict[str, str]) -> str | None:
    """The column holding `entry`, or None when no load brought it with its current type
    (a type changes only while the key holds no data, so such a column is all NULL)."""
    if stored.get(entry.key) == spark_type(entry):
        return quote_ident(entry.key)
    return None


def digit_columns(entries: Sequence[CatalogEntry], stored: dict[str, str]) -> dict[str, str]:
    """key -> SQL of shortest_digits(column) for the scalar double columns: computed as
    columns of their own before the line, which reads each several times."""
    return {e.key: shortest_digits(col) for e in entries
            if e.value_type is ValueType.DOUBLE and not e.is_array
            and (col := stored_column(e, stored))}


def digits_name(key: str) -> str:
    return quote_ident(f"__digits_{key}")


def csv_line(plan: ExportPlan, stored: dict[str, str], digits: dict[str, str]) -> str:
    """SQL: the CSV line of a user, fields separated by the charset's delimiter."""
    cells = ["cast(gio_id AS string)"]
    for entry in plan.columns:
        col = stored_column(entry, stored)
        d = digits_name(entry.key) if entry.key in digits else None
        cells.append(csv_cell(entry, col, d) if col else "''")
    return f"concat_ws({literal(plan.output.encoding.delimiter)}, {', '.join(cells)})"


def _json_object(entries: list[CatalogEntry], stored: dict[str, str],
                 digits: dict[str, str]) -> list[str]:
    parts: list[str] = []
    for i, entry in enumerate(entries):
        col = stored_column(entry, stored)
        d = digits_name(entry.key) if entry.key in digits else None
        key = ("," if i else "") + json.dumps(entry.key, ensure_ascii=False) + ":"
        parts += [literal(key), json_value(entry, col, d) if col else "'null'"]
    return parts


def json_line(plan: ExportPlan, stored: dict[str, str], digits: dict[str, str]) -> str:
    return user_json(plan.columns, stored, digits)


def user_json(entries: Sequence[CatalogEntry], stored: dict[str, str],
              digits: dict[str, str] | None = None) -> str:
    """SQL: a user as a line of the JSON export (gio_id, identifications, properties);
    `digits`: the digit_columns the query computed beforehand."""
    digits = digits or {}
    identities = [e for e in entries if e.is_identity]
    properties = [e for e in entries if not e.is_identity]
    parts = ["'{\"gio_id\":'", "cast(gio_id AS string)", "',\"identifications\":{'",
             *_json_object(identities, stored, digits), "'},\"properties\":{'",
             *_json_object(properties, stored, digits), "'}}'"]
    return f"concat({', '.join(parts)})"


def header(plan: ExportPlan) -> bytes:
    """The header line, in UTF-8, for formats that have one (every cell quoted, as
    pyarrow's CSV writer does); empty for the others."""
    if not plan.output.info.header:
        return b""
    cells = ['"' + n.replace('"', '""') + '"' for n in plan.header_names()]
    return (plan.output.encoding.delimiter.join(cells) + "\n").encode("utf-8")
