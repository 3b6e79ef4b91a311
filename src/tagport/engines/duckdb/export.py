"""The export plan on DuckDB: one query; CSV through pyarrow's writer, JSON by COPY.

The query has no ORDER BY: the store keeps `users` in ascending gio_id order (see
store.py) and DuckDB preserves insertion order in a scan, so rows come out ordered
without a sort (a sort of 10M wide rows costs about as much as the export itself and
holds the rows in memory).

CSV: DuckDB streams Arrow record batches into `pyarrow.csv.CSVWriter`, whose default
quoting is the spec's: header cells and strings quoted, numbers and booleans bare, null
an empty field. Dates, datetimes, identities and arrays are rendered as strings in SQL
so that they are quoted. JSON: DuckDB's own `COPY ... (FORMAT JSON)` of nested structs
writes compact lines with keys in select order, `null` kept and UTF-8 unescaped.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from tagport.catalog.models import CatalogEntry, ValueType
from tagport.engines.base import ExportPlan, FileFormat, HeaderType
from tagport.engines.duckdb.store import ident, literal, sql_type

BATCH_ROWS = 128 * 1024
_AS_TEXT_IN_CSV = {ValueType.DATE, ValueType.DATETIME}


def _column(entry: CatalogEntry, columns: dict[str, str]) -> str:
    """The stored column, or a typed NULL when no load has brought this key yet."""
    if entry.key in columns:
        return ident(entry.key)
    return f"CAST(NULL AS {sql_type(entry)})"


def csv_expression(entry: CatalogEntry, columns: dict[str, str]) -> str:
    col = _column(entry, columns)
    if entry.is_array:
        return f"array_to_string(CAST({col} AS VARCHAR[]), '||')"
    if entry.value_type in _AS_TEXT_IN_CSV:
        return f"CAST({col} AS VARCHAR)"
    return col


def json_expression(entry: CatalogEntry, columns: dict[str, str]) -> str:
    return _column(entry, columns)


def covered_filter(plan: ExportPlan, columns: dict[str, str]) -> str:
    """Users whose value for the tag is not null (an empty array counts as null)."""
    if plan.tag.key not in columns:
        return "false"
    col = ident(plan.tag.key)
    return f"{col} IS NOT NULL"  # the loader stores an empty array as NULL


def csv_query(plan: ExportPlan, columns: dict[str, str]) -> str:
    selected = ["gio_id"] + [
        f"{csv_expression(e, columns)} AS {ident(e.key)}" for e in plan.columns
    ]
    return (
        f"SELECT {', '.join(selected)} FROM users"
        f" WHERE {covered_filter(plan, columns)}"
    )


def _struct(entries: list[CatalogEntry], columns: dict[str, str]) -> str:
    if not entries:
        return "'{}'::JSON"
    fields = ", ".join(f"{ident(e.key)} := {json_expression(e, columns)}" for e in entries)
    return f"struct_pack({fields})"


def json_query(plan: ExportPlan, columns: dict[str, str]) -> str:
    identities = [e for e in plan.columns if e.is_identity]
    properties = [e for e in plan.columns if not e.is_identity]
    return (
        f"SELECT gio_id, {_struct(identities, columns)} AS identifications,"
        f" {_struct(properties, columns)} AS properties FROM users"
        f" WHERE {covered_filter(plan, columns)}"
    )


def header_names(plan: ExportPlan) -> list[str]:
    if plan.header_type is HeaderType.NAME:
        return ["gio_id"] + [e.name for e in plan.columns]
    return ["gio_id"] + [e.key for e in plan.columns]


def write_csv(cur: duckdb.DuckDBPyConnection, plan: ExportPlan, columns: dict[str, str],
              dest: Path) -> int:
    reader = cur.sql(csv_query(plan, columns)).to_arrow_reader(BATCH_ROWS)
    schema = pa.schema(
        [f.with_name(name) for f, name in zip(reader.schema, header_names(plan), strict=True)]
    )
    rows = 0
    # the sink is opened here so that its descriptor is closed even when a write fails
    # (a full disk): the space of the removed partial file must come back at once
    with pa.OSFile(str(dest), "wb") as sink, pacsv.CSVWriter(sink, schema) as writer:
        for batch in reader:
            writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
            rows += batch.num_rows
    return rows


def write_json(cur: duckdb.DuckDBPyConnection, plan: ExportPlan, columns: dict[str, str],
               dest: Path) -> int:
    result = cur.execute(
        f"COPY ({json_query(plan, columns)}) TO {literal(str(dest))} (FORMAT JSON)"
    ).fetchall()
    return int(result[0][0])


def export(cur: duckdb.DuckDBPyConnection, plan: ExportPlan, columns: dict[str, str],
           dest: Path) -> int:
    """Write `plan`'s file to `dest`; return the number of rows written."""
    if plan.file_format is FileFormat.CSV:
        return write_csv(cur, plan, columns, dest)
    return write_json(cur, plan, columns, dest)
