"""The DuckDB engine's writers, one small class per file format, looked up by format.

Each runs its format's query (export.py) and writes the Arrow batches into the attempt's
file; a set `stop` event ends the export between two batches (ExportStopped).

- CSV and JSON lines (`TextWriter`): the query and the writer every engine renders with
  (engines/rendering: pyarrow's CSV writer; DuckDB's `to_json` lines).
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
import pyarrow.parquet as pq

from tagport.engines.duckdb.export import BATCH_ROWS, parquet_query, read_ahead, selected_users
from tagport.engines.rendering.text import TEXT_FORMATS, TextFormat
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


class TextWriter:
    """CSV or JSON lines: the format's query over the covered users, written by the
    format's writer that every engine shares (engines/rendering)."""

    def __init__(self, text: TextFormat) -> None:
        self.text = text
        self.file_format = text.file_format  # type: ignore[misc]

    def write(self, cur: duckdb.DuckDBPyConnection, plan: ExportPlan,
              columns: dict[str, str], dest: Path, stop: threading.Event | None) -> int:
        query = self.text.query(plan, columns, selected_users(plan, columns))
        reader = cur.sql(query).to_arrow_reader(BATCH_ROWS)
        header = plan.header_names() if plan.output.info.header else None
        rows = 0
        with text_sink(dest, plan.output) as sink, self.text.writer(
                sink, reader.schema, plan.output.encoding.delimiter, header) as writer:
            for batch in read_ahead(reader):
                _check(stop, rows)
                writer.write_batch(batch)
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
    writer.file_format: writer for writer in (
        *(TextWriter(text) for text in TEXT_FORMATS.values()), ParquetWriter())
}


def write(cur: duckdb.DuckDBPyConnection, plan: ExportPlan, columns: dict[str, str],
          dest: Path, stop: threading.Event | None = None) -> int:
    """Write `plan`'s file to `dest` with its format's writer; return the rows written."""
    return WRITERS[plan.file_format].write(cur, plan, columns, dest, stop)


def _check(stop: threading.Event | None, rows: int) -> None:
    if stop is not None and stop.is_set():
        raise ExportStopped(rows)
