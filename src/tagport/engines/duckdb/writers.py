"""The DuckDB engine's writers, one small class per file format, looked up by format.

Each runs its format's query (export.py) and writes the Arrow batches into the attempt's
file; a set `stop` event ends the export between two batches (ExportStopped).

- CSV: the batches go into `pyarrow.csv.CSVWriter`, whose default quoting is the spec's:
  header cells and strings quoted, numbers and booleans bare, null an empty field.
- JSON lines: a batch of rendered lines is one contiguous Arrow buffer, written as it is.
- Parquet: the typed batches, cast to the export's schema (exports/parquet.py), grouped
  into row groups of ROWS_PER_GROUP.
CSV and JSON write UTF-8 text into exports.sinks.text_sink, which applies the request's
charset and compression on the way to the disk.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar, Protocol

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tagport.engines.duckdb.export import (
    BATCH_ROWS,
    csv_query,
    json_lines_query,
    parquet_query,
    read_ahead,
)
from tagport.exports.formats import FileFormat
from tagport.exports.parquet import ROWS_PER_GROUP, arrow_schema, conform
from tagport.exports.plan import ExportPlan, ExportStopped
from tagport.exports.sinks import text_sink


class Writer(Protocol):
    file_format: ClassVar[FileFormat]

    def write(self, cur: duckdb.DuckDBPyConnection, plan: ExportPlan,
              columns: dict[str, str], dest: Path, stop: threading.Event | None) -> int:
        """Write `plan`'s file to `dest`; return the number of rows written."""
        ...


class CsvWriter:
    file_format = FileFormat.CSV

    def write(self, cur: duckdb.DuckDBPyConnection, plan: ExportPlan,
              columns: dict[str, str], dest: Path, stop: threading.Event | None) -> int:
        reader = cur.sql(csv_query(plan, columns)).to_arrow_reader(BATCH_ROWS)
        schema = pa.schema([f.with_name(name) for f, name
                            in zip(reader.schema, plan.header_names(), strict=True)])
        options = pacsv.WriteOptions(delimiter=plan.output.encoding.delimiter)
        rows = 0
        with text_sink(dest, plan.output) as sink, \
                pacsv.CSVWriter(sink, schema, write_options=options) as writer:
            for batch in read_ahead(reader):
                _check(stop, rows)
                writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
                rows += batch.num_rows
        return rows


class JsonWriter:
    file_format = FileFormat.JSON

    def write(self, cur: duckdb.DuckDBPyConnection, plan: ExportPlan,
              columns: dict[str, str], dest: Path, stop: threading.Event | None) -> int:
        reader = cur.sql(json_lines_query(plan, columns)).to_arrow_reader(BATCH_ROWS)
        rows = 0
        with text_sink(dest, plan.output) as sink:
            for batch in read_ahead(reader):
                _check(stop, rows)
                sink.write(_text(batch.column(0)))
                rows += batch.num_rows
        return rows


class ParquetWriter:
    file_format = FileFormat.PARQUET

    def write(self, cur: duckdb.DuckDBPyConnection, plan: ExportPlan,
              columns: dict[str, str], dest: Path, stop: threading.Event | None) -> int:
        reader = cur.sql(parquet_query(plan, columns)).to_arrow_reader(BATCH_ROWS)
        schema = arrow_schema(plan)
        rows, pending = 0, pa.Table.from_batches([], schema)
        with pa.OSFile(str(dest), "wb") as sink, pq.ParquetWriter(sink, schema) as writer:
            for batch in read_ahead(reader):
                _check(stop, rows)
                pending = pa.concat_tables([pending, pa.Table.from_batches(
                    [conform(batch, schema)])])
                rows += batch.num_rows
                # whole row groups only; the rest waits for the next batches (DuckDB's
                # batches end at its own segments, not at multiples of a group)
                if (full := pending.num_rows // ROWS_PER_GROUP * ROWS_PER_GROUP) > 0:
                    writer.write_table(pending.slice(0, full), ROWS_PER_GROUP)
                    pending = pending.slice(full)
            if pending.num_rows or rows == 0:
                writer.write_table(pending, ROWS_PER_GROUP)
        return rows


WRITERS: dict[FileFormat, Writer] = {
    writer.file_format: writer for writer in (CsvWriter(), JsonWriter(), ParquetWriter())
}


def write(cur: duckdb.DuckDBPyConnection, plan: ExportPlan, columns: dict[str, str],
          dest: Path, stop: threading.Event | None = None) -> int:
    """Write `plan`'s file to `dest` with its format's writer; return the rows written."""
    return WRITERS[plan.file_format].write(cur, plan, columns, dest, stop)


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
