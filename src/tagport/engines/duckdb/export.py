"""The export plan on DuckDB: one query; CSV through pyarrow's writer, JSON by COPY.

The query has no ORDER BY: the store keeps `users` in ascending gio_id order (see
store.py) and DuckDB preserves insertion order in a scan, so rows come out ordered
without a sort (a sort of 10M wide rows costs about as much as the export itself and
holds the rows in memory).

Both formats are written by two threads: one drains DuckDB's Arrow reader (the query
runs on DuckDB's own threads), the other writes the batches it hands over, so that the
scan and the write overlap instead of taking turns.

CSV: the batches go into `pyarrow.csv.CSVWriter`, whose default quoting is the spec's:
header cells and strings quoted, numbers and booleans bare, null an empty field. Dates,
datetimes, identities and arrays are rendered as strings in SQL so that they are
quoted. JSON: DuckDB renders each line with `to_json` of nested structs (compact, keys in
select order, `null` kept, UTF-8 unescaped: the same bytes as its `COPY ... (FORMAT
JSON)`), newline included; a batch of lines is then one contiguous Arrow buffer, written
as it is.

A set `stop` event ends the export between two batches (ExportStopped).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from tagport.catalog.models import CatalogEntry, ValueType
from tagport.engines.base import ExportPlan, ExportStopped, FileFormat, HeaderType
from tagport.engines.duckdb.store import sql_type
from tagport.engines.staging.sql import ident

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
              dest: Path, stop: threading.Event | None = None) -> int:
    reader = cur.sql(csv_query(plan, columns)).to_arrow_reader(BATCH_ROWS)
    schema = pa.schema(
        [f.with_name(name) for f, name in zip(reader.schema, header_names(plan), strict=True)]
    )
    rows = 0
    # the sink is opened here so that its descriptor is closed even when a write fails
    # (a full disk): the space of the removed partial file must come back at once
    with pa.OSFile(str(dest), "wb") as sink, pacsv.CSVWriter(sink, schema) as writer:
        for batch in read_ahead(reader):
            _check(stop, rows)
            writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
            rows += batch.num_rows
    return rows


def json_lines_query(plan: ExportPlan, columns: dict[str, str]) -> str:
    return f"SELECT to_json(line)::VARCHAR || chr(10) FROM ({json_query(plan, columns)}) line"


def write_json(cur: duckdb.DuckDBPyConnection, plan: ExportPlan, columns: dict[str, str],
               dest: Path, stop: threading.Event | None = None) -> int:
    reader = cur.sql(json_lines_query(plan, columns)).to_arrow_reader(BATCH_ROWS)
    rows = 0
    with pa.OSFile(str(dest), "wb") as sink:
        for batch in read_ahead(reader):
            _check(stop, rows)
            sink.write(_text(batch.column(0)))
            rows += batch.num_rows
    return rows


def _check(stop: threading.Event | None, rows: int) -> None:
    if stop is not None and stop.is_set():
        raise ExportStopped(rows)


def _text(lines: pa.Array) -> pa.Buffer:
    """The bytes of a string array with no nulls, end to end: a slice of its data buffer."""
    if lines.type not in (pa.string(), pa.large_string()):
        lines = lines.cast(pa.large_string())
    if len(lines) == 0:
        return pa.py_buffer(b"")
    _, offsets, data = lines.buffers()
    width = 8 if lines.type == pa.large_string() else 4
    first = int.from_bytes(offsets[lines.offset * width:][:width], "little")
    end = int.from_bytes(offsets[(lines.offset + len(lines)) * width:][:width], "little")
    return data.slice(first, end - first)


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


def export(cur: duckdb.DuckDBPyConnection, plan: ExportPlan, columns: dict[str, str],
           dest: Path, stop: threading.Event | None = None) -> int:
    """Write `plan`'s file to `dest`; return the number of rows written."""
    if plan.file_format is FileFormat.CSV:
        return write_csv(cur, plan, columns, dest, stop)
    return write_json(cur, plan, columns, dest, stop)
