"""The SQL of an export on DuckDB: one query per format, read as Arrow batches.

The query has no ORDER BY: the store keeps `users` in ascending gio_id order (see
store.py) and DuckDB preserves insertion order in a scan, so rows come out ordered
without a sort (a sort of 10M wide rows costs about as much as the export itself and
holds the rows in memory).

The batches are drained by a thread of their own (`read_ahead`) while the writer
(writers.py, one class per format) writes the ones it was handed, so that the scan and
the write overlap instead of taking turns.

CSV: dates, datetimes, identities and arrays are rendered as strings in SQL so that
pyarrow's CSV writer quotes them. JSON: DuckDB renders each line with `to_json` of nested
structs (compact, keys in select order, `null` kept, UTF-8 unescaped: the same bytes as
its `COPY ... (FORMAT JSON)`), newline included. Parquet: typed columns (identities split
into lists, array tags cast from their JSON text).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pyarrow as pa

from tagport.catalog.models import CatalogEntry, ValueType
from tagport.engines.duckdb.store import SQL_TYPES, sql_type
from tagport.engines.staging.sql import ident
from tagport.exports.plan import ExportPlan

BATCH_ROWS = 32 * 1024  # rows per Arrow batch: ~6 MB of CSV text, ~18 MB of JSON
QUEUED_BATCHES = 2  # batches read ahead of the writer: bounds the memory in flight
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
    """The selected users: those holding a value in the selection's column (an empty
    array counts as null)."""
    key = plan.selection.column.key
    if key not in columns:
        return "false"
    return f"{ident(key)} IS NOT NULL"  # the loader stores an empty array as NULL


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


def json_lines_query(plan: ExportPlan, columns: dict[str, str]) -> str:
    return f"SELECT to_json(line)::VARCHAR || chr(10) FROM ({json_query(plan, columns)}) line"


def parquet_expression(entry: CatalogEntry, columns: dict[str, str]) -> str:
    col = _column(entry, columns)
    if entry.is_identity:
        return f"string_split({col}, '||')"
    if entry.is_array:
        return f"CAST({col} AS {SQL_TYPES[entry.value_type]}[])"
    return col


def parquet_query(plan: ExportPlan, columns: dict[str, str]) -> str:
    selected = ["gio_id"] + [
        f"{parquet_expression(e, columns)} AS {ident(e.key)}" for e in plan.columns
    ]
    return f"SELECT {', '.join(selected)} FROM users WHERE {covered_filter(plan, columns)}"


def read_ahead(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """The reader's batches, read by a thread of their own up to QUEUED_BATCHES ahead.

    The reader's error, if any, is raised here after the batches before it. When the
    consumer stops early (its write failed), the thread is told to stop and joined.
    """
    batches: queue.Queue[pa.RecordBatch | BaseException | None] = queue.Queue(QUEUED_BATCHES)
    stop = threading.Event()

    def put(item: pa.RecordBatch | BaseException | None) -> None:
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def drain() -> None:
        try:
            for batch in reader:
                if stop.is_set():
                    return
                put(batch)
            put(None)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    thread = threading.Thread(target=drain, name="tagport-export-reader", daemon=True)
    thread.start()
    try:
        while (item := batches.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
        reader.close()
