"""The SQL of an export on DuckDB: one query per format, read as Arrow batches.

The query has no ORDER BY: the store keeps `users` in ascending gio_id order (see
store.py) and DuckDB preserves insertion order in a scan, so rows come out ordered
without a sort (a sort of 10M wide rows costs about as much as the export itself and
holds the rows in memory).

The batches are drained by a thread of their own (`read_ahead`) while the writer
(writers.py, one class per format) writes the ones it was handed, so that the scan and
the write overlap instead of taking turns.

CSV and JSON: the queries every engine renders with (engines/rendering), over the
covered users. Parquet: typed columns (identities split into lists, array tags cast from
their JSON text).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pyarrow as pa

from tagport.catalog.models import CatalogEntry
from tagport.engines.rendering.sql import column
from tagport.engines.staging.sql import SQL_TYPES, ident
from tagport.exports.plan import ExportPlan

BATCH_ROWS = 32 * 1024  # rows per Arrow batch: ~6 MB of CSV text, ~18 MB of JSON
QUEUED_BATCHES = 2  # batches read ahead of the writer: bounds the memory in flight


def covered_filter(plan: ExportPlan, columns: dict[str, str]) -> str:
    """The selected users: those holding a value in the selection's column (an empty
    array counts as null)."""
    key = plan.selection.column.key
    if key not in columns:
        return "false"
    return f"{ident(key)} IS NOT NULL"  # the loader stores an empty array as NULL


def selected_users(plan: ExportPlan, columns: dict[str, str]) -> str:
    """The relation the text formats' queries (engines/rendering) read: `users`, filtered."""
    return f"users WHERE {covered_filter(plan, columns)}"


def parquet_expression(entry: CatalogEntry, columns: dict[str, str]) -> str:
    col = column(entry, columns)
    if entry.is_identity:
        return f"string_split({col}, '||')"
    if entry.is_array:
        return f"CAST({col} AS {SQL_TYPES[entry.value_type]}[])"
    return col


def parquet_query(plan: ExportPlan, columns: dict[str, str]) -> str:
    selected = ["gio_id"] + [
        f"{parquet_expression(e, columns)} AS {ident(e.key)}" for e in plan.columns
    ]
    return f"SELECT {', '.join(selected)} FROM {selected_users(plan, columns)}"


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
