"""The select lists of the text formats, in DuckDB SQL over a relation of stored columns.

The relation has `gio_id` and a column per stored key: identities as `||`-joined text,
scalars in their DuckDB type, array tags as a list or as JSON text (the DuckDB store's
form; both cast and render alike). `columns` holds the keys the relation has; a key it
lacks is a typed NULL.

CSV: dates, datetimes and arrays are rendered as text so that pyarrow's CSV writer quotes
them; the rest keeps its type (numbers and booleans bare, strings quoted). JSON: DuckDB's
`to_json` of nested structs (compact, keys in catalog order, `null` kept, UTF-8
unescaped: the bytes of its `COPY ... (FORMAT JSON)`), newline included.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from tagport.catalog.models import CatalogEntry, ValueType
from tagport.engines.staging.sql import SQL_TYPES, ident
from tagport.exports.plan import ExportPlan

_AS_TEXT_IN_CSV = {ValueType.DATE, ValueType.DATETIME}


def column(entry: CatalogEntry, columns: Collection[str]) -> str:
    """The stored column, or a typed NULL when no load has brought this key yet."""
    if entry.key in columns:
        return ident(entry.key)
    if entry.is_identity:
        return "CAST(NULL AS VARCHAR)"
    scalar = SQL_TYPES[entry.value_type]
    return f"CAST(NULL AS {scalar}[])" if entry.is_array else f"CAST(NULL AS {scalar})"


def csv_expression(entry: CatalogEntry, columns: Collection[str]) -> str:
    col = column(entry, columns)
    if entry.is_array:
        return f"array_to_string(CAST({col} AS VARCHAR[]), '||')"
    if entry.value_type in _AS_TEXT_IN_CSV:
        return f"CAST({col} AS VARCHAR)"
    return col


def json_expression(entry: CatalogEntry, columns: Collection[str]) -> str:
    return column(entry, columns)


def csv_query(plan: ExportPlan, columns: Collection[str], relation: str) -> str:
    """gio_id and the plan's columns of `relation` (a table, with a WHERE clause if need
    be), each ready for pyarrow's CSV writer."""
    selected = ["gio_id"] + [f"{csv_expression(e, columns)} AS {ident(e.key)}"
                             for e in plan.columns]
    return f"SELECT {', '.join(selected)} FROM {relation}"


def _struct(entries: Sequence[CatalogEntry], columns: Collection[str]) -> str:
    if not entries:
        return "'{}'::JSON"
    fields = ", ".join(f"{ident(e.key)} := {json_expression(e, columns)}" for e in entries)
    return f"struct_pack({fields})"


def json_lines_query(plan: ExportPlan, columns: Collection[str], relation: str) -> str:
    """One column: each user of `relation` as a JSON line (gio_id, identifications,
    properties), newline included."""
    identities = [e for e in plan.columns if e.is_identity]
    properties = [e for e in plan.columns if not e.is_identity]
    line = (f"SELECT gio_id, {_struct(identities, columns)} AS identifications,"
            f" {_struct(properties, columns)} AS properties FROM {relation}")
    return f"SELECT to_json(line)::VARCHAR || chr(10) FROM ({line}) line"
