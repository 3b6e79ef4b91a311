"""The executors' side of a CSV or JSON export: each task renders its rows with the
rendering every engine shares and writes them as part files.

A task runs the format's query (engines/rendering/sql.py, the DuckDB engine's own) with
an in-memory DuckDB of one thread over its rows, and writes the result with the format's
writer (engines/rendering/text.py) as `part-<task>-<n>.txt` in the output dir, a new file
every `max_rows` rows when that is set. So the executors write the DuckDB engine's bytes,
and Spark's SQL renders nothing. A task's rows come one of two ways:

- from Spark (`PartsSource`, a Python data source): Spark hands each task its sorted rows
  as Arrow batches (`DataSourceArrowWriter`);
- from the dataset's files (`write_bucket`): a task per bucket of the version, which the
  task's DuckDB reads itself, merged with the deltas' rows of the bucket and in gio_id
  order (deltas.duckdb_bucket_sql). A bucket holds one range of gio_ids, so the buckets
  in order are the export in order: no sort, no shuffle, and nothing crosses from the JVM
  to Python.

A file is written under a name of its task attempt and renamed when complete, so that a
failed attempt's leftovers are never taken for parts. The driver, once every task has
succeeded, lists the committed parts with their row counts in `_parts.json`
(`read_parts`); an aborted write removes the parts it was told of.

The executors import this module: on a cluster, they need tagport's Python environment
(pyarrow, duckdb, tagport) at the path the driver runs (`spark.pyspark.python`), and the
dataset and the output dir at the paths the driver sees.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceArrowWriter, WriterCommitMessage
from pyspark.sql.types import StructType

from tagport.engines.rendering.text import TEXT_FORMATS, BatchWriter, TextFormat
from tagport.exports.formats import FileFormat

SOURCE_NAME = "tagport_parts"
RELATION = "batches"  # the name the format's query reads the task's rows under
MANIFEST = "_parts.json"
BATCH_ROWS = 32 * 1024  # rows per batch of DuckDB's result


@dataclass(frozen=True)
class Part:
    """One part file, in the export's order, and the rows it holds."""

    path: Path
    rows: int


@dataclass
class TaskParts(WriterCommitMessage):
    """What a task wrote: its number and its files (name, rows) in order."""

    task: int
    files: list[tuple[str, int]] = field(default_factory=list)


def text_options(file_format: FileFormat, query: str, delimiter: str, out: Path,
                 max_rows: int | None) -> dict[str, str]:
    """The data source's options (strings: they reach the executors through the JVM)."""
    return {"format": file_format.value, "query": query, "delimiter": delimiter,
            "dir": str(out), "max_rows": str(max_rows or 0)}


def read_parts(out: Path) -> list[Part]:
    """The parts a committed write made, in the export's order."""
    listed = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    return [Part(out / name, rows) for name, rows in listed]


@dataclass(frozen=True)
class TaskOptions:
    """What every task of an export needs (`text_options`, parsed)."""

    out: Path
    file_format: FileFormat
    query: str
    delimiter: str
    max_rows: int | None

    @classmethod
    def of(cls, options: dict[str, str]) -> TaskOptions:
        return cls(Path(options["dir"]), FileFormat(options["format"]), options["query"],
                   options["delimiter"], int(options["max_rows"]) or None)


@dataclass(frozen=True)
class BucketTask:
    """One task of an export read from the dataset's files: the query of its rows."""

    task: int
    rows_sql: str  # DuckDB SQL of the rows, in gio_id order (deltas.duckdb_bucket_sql)


def write_bucket(options: dict[str, str], task: BucketTask) -> TaskParts:
    """On an executor: render and write one bucket's rows as the task's parts."""
    import duckdb
    from pyspark import TaskContext

    context = TaskContext.get()
    attempt = context.attemptNumber() if context is not None else 0
    done = TaskParts(task.task)
    with duckdb.connect(config={"threads": 1}) as con:
        con.execute(f"CREATE TEMP VIEW {RELATION} AS {task.rows_sql}")
        _write_result(TaskOptions.of(options), con, done, attempt)
    return done


def _write_result(options: TaskOptions, con: Any, done: TaskParts, attempt: int) -> None:
    """Run the format's query over `RELATION` and write its rows as `done`'s parts."""
    result = con.sql(options.query).to_arrow_reader(BATCH_ROWS)
    part: _PartFile | None = None
    for number, batch in _numbered(result, options.max_rows):
        if part is None or part.number != number:
            if part is not None:
                done.files.append(part.finish())
            part = _PartFile(options, done.task, number, attempt, result.schema)
        part.write(batch)
    if part is not None:
        done.files.append(part.finish())


def commit_parts(out: Path, messages: list[Any]) -> None:
    """List the tasks' parts, in task order, in `_parts.json` (on the driver)."""
    tasks = sorted((m for m in messages if isinstance(m, TaskParts)), key=lambda m: m.task)
    listed = [file for m in tasks for file in m.files]
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(listed), encoding="utf-8")
    os.replace(tmp, out / MANIFEST)


def abort_parts(out: Path, messages: list[Any]) -> None:
    """Remove the parts of the tasks that reported them."""
    for m in messages:
        if isinstance(m, TaskParts):
            for name, _ in m.files:
                (out / name).unlink(missing_ok=True)


class PartsSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def writer(self, schema: StructType, overwrite: bool) -> PartsWriter:
        return PartsWriter(dict(self.options))


class PartsWriter(DataSourceArrowWriter):
    def __init__(self, options: dict[str, str]) -> None:
        self.options = TaskOptions.of(options)
        self.out = self.options.out

    def write(self, iterator: Iterator[pa.RecordBatch]) -> TaskParts:
        import duckdb  # on the executors, once per task
        from pyspark import TaskContext

        context = TaskContext.get()
        assert context is not None
        done = TaskParts(context.partitionId())
        first = next(iterator, None)
        if first is None:
            return done
        rows = pa.RecordBatchReader.from_batches(first.schema, itertools.chain([first], iterator))
        with duckdb.connect(config={"threads": 1}) as con:
            con.register(RELATION, rows)
            _write_result(self.options, con, done, context.attemptNumber())
        return done

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        commit_parts(self.out, messages)

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        abort_parts(self.out, messages)


class _PartFile:
    """A part being written: `part-<task>-<n>.txt`, under its attempt's name until done."""

    def __init__(self, options: TaskOptions, task: int, number: int, attempt: int,
                 schema: pa.Schema) -> None:
        self.number = number
        self.name = f"part-{task:05d}-{number:05d}.txt"
        self.path = options.out / self.name
        self.tmp = options.out / f".{self.name}.{attempt}"
        self.rows = 0
        self._file = pa.OSFile(str(self.tmp), "wb")
        text: TextFormat = TEXT_FORMATS[options.file_format]
        self._writer: BatchWriter = text.writer(self._file, schema, options.delimiter, None)

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def finish(self) -> tuple[str, int]:
        self._writer.close()
        self._file.close()
        os.replace(self.tmp, self.path)
        return self.name, self.rows


def _numbered(batches: Any, max_rows: int | None) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(file number, batch) in order: the batches cut so that each number has at most
    `max_rows` rows (None: all are number 0)."""
    number, room = 0, max_rows
    for batch in batches:
        if batch.num_rows == 0:
            continue
        if room is None:
            yield number, batch
            continue
        offset = 0
        while offset < batch.num_rows:
            if room == 0:
                number, room = number + 1, max_rows
            take = min(room, batch.num_rows - offset)
            yield number, batch.slice(offset, take)
            offset, room = offset + take, room - take
