"""The text formats' writers: the Arrow batches of a format's query (sql.py) into a writable.

- CSV: `pyarrow.csv.CSVWriter`, whose default quoting is the spec's: header cells and
  strings quoted, numbers and booleans bare, null an empty field.
- JSON lines: a batch of rendered lines is one contiguous Arrow buffer, written as it is.

A writer writes UTF-8 text; what lands on disk in another charset or compressed is the
caller's sink (exports.sinks.text_sink).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from types import TracebackType
from typing import Any, ClassVar, Protocol

import pyarrow as pa
import pyarrow.csv as pacsv

from tagport.engines.rendering.sql import csv_query, json_lines_query
from tagport.exports.formats import FileFormat
from tagport.exports.plan import ExportPlan


class BatchWriter:
    """Writes a query's batches into a writable; a context manager that closes itself."""

    def write_batch(self, batch: pa.RecordBatch) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing is held back unless a writer says so."""

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class TextFormat(Protocol):
    file_format: ClassVar[FileFormat]
    query: Callable[[ExportPlan, Collection[str], str], str]

    def writer(self, sink: Any, schema: pa.Schema, delimiter: str,
               header: list[str] | None) -> BatchWriter:
        """A writer of `schema`'s batches (the query's) into `sink`; `header`: the header
        row's cells, written first, for formats that have one (None: no header)."""
        ...


class CsvText:
    file_format = FileFormat.CSV
    query = staticmethod(csv_query)

    def writer(self, sink: Any, schema: pa.Schema, delimiter: str,
               header: list[str] | None) -> BatchWriter:
        return _CsvBatches(sink, schema, delimiter, header)


class _CsvBatches(BatchWriter):
    def __init__(self, sink: Any, schema: pa.Schema, delimiter: str,
                 header: list[str] | None) -> None:
        if header is not None:  # the header row is the schema's field names
            schema = pa.schema([f.with_name(name)
                                for f, name in zip(schema, header, strict=True)])
        self.schema = schema
        options = pacsv.WriteOptions(include_header=header is not None, delimiter=delimiter)
        self._writer = pacsv.CSVWriter(sink, schema, write_options=options)

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=self.schema))

    def close(self) -> None:
        self._writer.close()


class JsonLinesText:
    file_format = FileFormat.JSON
    query = staticmethod(json_lines_query)

    def writer(self, sink: Any, schema: pa.Schema, delimiter: str,
               header: list[str] | None) -> BatchWriter:
        return _LineBatches(sink)


class _LineBatches(BatchWriter):
    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self.sink.write(_text(batch.column(0)))


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


TEXT_FORMATS: dict[FileFormat, TextFormat] = {
    f.file_format: f for f in (CsvText(), JsonLinesText())
}
