"""The export plan as a Spark job, with one small writer per file format.

The executors write part files in parallel into the attempt's work dir, each task a
range of gio_ids; the driver then assembles the result from the parts in order,
streaming (memory flat in the rows):

- CSV and JSON lines (`TextWriter`): each task renders its rows with the rendering every
  engine shares (parts.py: the DuckDB engine's query and its writer), so the bytes are
  the DuckDB engine's by construction. A single-file export is a task per bucket of the
  dataset, which reads the bucket's files (and its deltas' rows) itself: the buckets in
  order are the export in order, so nothing is sorted, shuffled or sent from the JVM to
  Python (`write_buckets`). Otherwise (split exports, a dataset written before buckets)
  Spark sorts the rows and hands each task its range as Arrow batches (`write`). One
  file: the header (written by the same CSV writer), then the parts in order, copied
  with copy_file_range, or streamed through exports.sinks.text_sink when a charset or a
  compression applies.
- Parquet (`ParquetWriter`): typed columns written by Spark's Parquet writer, then read
  back part by part, in order, cast to the export's schema (exports/parquet.py) and
  written as one file by pyarrow.
- several files (`max_rows` set): each task writes at most `max_rows` rows per part
  file; the parts are named in order with `exports.naming.part_name` and only the first
  carries the CSV header, so that the parts concatenated in order are the single-file
  export. A part ends where a task's range ends, so a part may hold fewer than
  `max_rows` rows (which is why split exports do not take a task per bucket: a bucket
  of 100,000 users would end a part every 100,000 users at most). When everything fits
  in one part, the result is one file named `file_name`.

When Spark sorts, it is Spark's own `orderBy` (its ranges sized by adaptive execution
after the shuffle, as in a plain Spark job), or, with `max_rows`, ranges a little under
`max_rows` sized by a count, so that few parts are cut short. The rows are counted from
what the tasks wrote: no job counts them beforehand.

The executors write into the work dir and read the dataset, so on a cluster the result dir
and the profile path must be paths that the driver and every executor share (the same mount).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import ClassVar, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from tagport.engines.rendering.text import TEXT_FORMATS, TextFormat
from tagport.engines.spark.deltas import duckdb_bucket_sql
from tagport.engines.spark.lines import stored_column
from tagport.engines.spark.parts import (
    RELATION,
    SOURCE_NAME,
    BucketTask,
    Part,
    PartsSource,
    TaskParts,
    commit_parts,
    read_parts,
    text_options,
    write_bucket,
)
from tagport.engines.spark.render import quote_ident
from tagport.engines.spark.store import Buckets, ProfileStore, Version, read_users
from tagport.engines.staging.sql import ident
from tagport.exports.formats import FileFormat
from tagport.exports.naming import part_name
from tagport.exports.parquet import ROWS_PER_GROUP, arrow_schema, conform
from tagport.exports.plan import ExportOutput, ExportPlan, ExportStopped
from tagport.exports.sinks import text_sink

ROWS_PER_TASK = 250_000  # split exports: below this, fewer tasks (each costs ~50 ms)
COPY_CHUNK = 1 << 20  # bytes read at a time when a part is streamed through a sink
_PART = re.compile(r"^part-(\d+)-.*-c(\d+)(\.[a-z]+)*\.parquet$")


def export(spark: SparkSession, store: ProfileStore, plan: ExportPlan, work_dir: Path,
           file_name: str, max_rows: int | None,
           stop: threading.Event | None = None) -> ExportOutput:
    """Write `plan`'s rows into `work_dir` as `file_name`, or as numbered parts. A set
    `stop` cancels the Spark jobs of this export (ExportStopped)."""
    with _cancelled_by(spark, stop):
        return _export(spark, store, plan, work_dir, file_name, max_rows)


@contextmanager
def _cancelled_by(spark: SparkSession, stop: threading.Event | None) -> Iterator[None]:
    """Run the `with` block's Spark jobs under a job tag of their own, cancelled (tasks
    interrupted) by a watcher thread as soon as `stop` is set; the block then ends in
    ExportStopped, whether it failed (Spark's "job cancelled") or got to its end."""
    if stop is None:
        yield
        return
    context = spark.sparkContext
    tag = f"tagport-export-{uuid.uuid4().hex}"
    # job tags belong to the calling thread (PySpark's pinned threads)
    context.addJobTag(tag)
    context.setInterruptOnCancel(True)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            if stop.is_set():  # again every time: a job may start after a cancel
                context.cancelJobsWithTag(tag)

    watcher = threading.Thread(target=watch, name="tagport-export-stop", daemon=True)
    watcher.start()
    try:
        try:
            yield
        except ExportStopped:
            raise
        except Exception as exc:
            if stop.is_set():
                raise ExportStopped(None) from exc
            raise
        if stop.is_set():  # set after the last job: the files are still to be dropped
            raise ExportStopped(None)
    finally:
        done.set()  # the watcher ends within 0.2 s (not waited for: its tag is this one's)
        context.removeJobTag(tag)
        context.setInterruptOnCancel(False)  # the thread's default again


def _export(spark: SparkSession, store: ProfileStore, plan: ExportPlan, work_dir: Path,
            file_name: str, max_rows: int | None) -> ExportOutput:
    writer = WRITERS[plan.file_format]
    with store.reading() as version:
        users = read_users(spark, version) if version else None
        stored = {f.name: f.dataType.simpleString() for f in users.schema} if users else {}
        selected = stored_column(plan.selection.column, stored) if users else None
        if users is None or selected is None:
            return ExportOutput(0, writer.assemble(plan, [work_dir / file_name], [[]]))
        spark_out = work_dir / f".spark-{uuid.uuid4().hex}"
        assert version is not None  # it has users
        buckets = version.buckets()
        try:
            if isinstance(writer, TextWriter) and max_rows is None and buckets is not None:
                parts = writer.write_buckets(spark, version, buckets, plan, stored, spark_out)
            else:
                ordered = _in_order(users.where(f"{selected} IS NOT NULL"), max_rows)
                parts = writer.write(ordered, plan, stored, max_rows, spark_out)
            paths = [part.path for part in parts]
            if max_rows is None or len(parts) <= 1:
                files = writer.assemble(plan, [work_dir / file_name], [paths])
            else:
                dests = [work_dir / part_name(file_name, n, plan.output.extension)
                         for n in range(1, len(parts) + 1)]
                files = writer.assemble(plan, dests, [[path] for path in paths])
        finally:
            shutil.rmtree(spark_out, ignore_errors=True)
    return ExportOutput(sum(part.rows for part in parts), files)


def _in_order(users: DataFrame, max_rows: int | None) -> DataFrame:
    """`users` sorted by gio_id, in ranges (one per task) in order: Spark's own global
    sort, or, for split exports, ranges a little under `max_rows` (from a count)."""
    if max_rows is None:
        return users.orderBy("gio_id")
    rows = users.count()
    tasks = max(1, math.ceil(rows / ROWS_PER_TASK), math.ceil(rows / (0.9 * max_rows)))
    return users.repartitionByRange(tasks, "gio_id").sortWithinPartitions("gio_id")


class Writer(Protocol):
    file_format: ClassVar[FileFormat]

    def write(self, users: DataFrame, plan: ExportPlan, stored: dict[str, str],
              max_rows: int | None, out: Path) -> list[Part]:
        """Write the ordered `users` as part files into `out`; the parts in order."""
        ...

    def assemble(self, plan: ExportPlan, dests: list[Path],
                 parts: list[list[Path]]) -> list[Path]:
        """Make each file of `dests` from its list of `parts` (in order); the first
        carries the header. Return `dests`."""
        ...


class TextWriter:
    """CSV or JSON lines: rendered and written by the executors (parts.py) with the
    rendering every engine shares, put together here."""

    def __init__(self, text: TextFormat) -> None:
        self.text = text
        self.file_format = text.file_format  # type: ignore[misc]

    def write(self, users: DataFrame, plan: ExportPlan, stored: dict[str, str],
              max_rows: int | None, out: Path) -> list[Part]:
        # only the columns the plan reads, stored with their catalog type; the query
        # takes any other as a typed NULL
        keys = list(dict.fromkeys(e.key for e in plan.columns if stored_column(e, stored)))
        query = self.text.query(plan, keys, RELATION)
        options = text_options(self.file_format, query, plan.output.encoding.delimiter, out,
                               max_rows)
        out.mkdir()
        _register_parts_source(users.sparkSession)
        users.select("gio_id", *keys).write.format(SOURCE_NAME).options(**options) \
            .mode("append").save()
        return read_parts(out)

    def write_buckets(self, spark: SparkSession, version: Version, buckets: Buckets,
                      plan: ExportPlan, stored: dict[str, str], out: Path) -> list[Part]:
        """Write the selected users as parts, a task per bucket that reads the bucket's
        files itself (parts.write_bucket): the buckets' gio_id ranges in order are the
        export's order, so nothing is sorted or shuffled."""
        keys = list(dict.fromkeys(e.key for e in plan.columns if stored_column(e, stored)))
        options = text_options(self.file_format, self.text.query(plan, keys, RELATION),
                               plan.output.encoding.delimiter, out, None)
        columns = ["gio_id", *(ident(key) for key in keys)]
        where = f"{ident(plan.selection.column.key)} IS NOT NULL"
        deltas = version.deltas()
        # a delta may hold new users of a bucket that has no file yet
        numbers = sorted(set(buckets.files).union(*(d.buckets for d in deltas)))
        tasks = []
        for number in numbers:
            low, high = number * buckets.size + 1, (number + 1) * buckets.size
            overlapping = [d.path for d in deltas if number in d.buckets]
            tasks.append(BucketTask(len(tasks), duckdb_bucket_sql(
                buckets.files.get(number, []), overlapping, low, high, columns, where)))
        out.mkdir()  # removed whole by the caller, whatever happens
        messages: list[TaskParts] = []
        if tasks:
            messages = (spark.sparkContext.parallelize(tasks, len(tasks))
                        .map(partial(write_bucket, options)).collect())
        commit_parts(out, messages)
        return read_parts(out)

    def assemble(self, plan: ExportPlan, dests: list[Path],
                 parts: list[list[Path]]) -> list[Path]:
        head = self._header(plan)
        for number, (dest, sources) in enumerate(zip(dests, parts, strict=True)):
            first = head if number == 0 else b""
            if plan.output.plain_utf8:
                _concatenate(dest, first, sources)
            else:
                _stream(dest, plan, first, sources)
        return dests

    def _header(self, plan: ExportPlan) -> bytes:
        """The header line in UTF-8, by the format's own writer (empty for JSON lines)."""
        if not plan.output.info.header:
            return b""
        names = plan.header_names()
        sink = pa.BufferOutputStream()
        schema = pa.schema([(f"c{n}", pa.string()) for n in range(len(names))])
        with self.text.writer(sink, schema, plan.output.encoding.delimiter, names):
            pass
        return bytes(sink.getvalue())


def _register_parts_source(spark: SparkSession) -> None:
    """Register the executors' writer (parts.py) with the session, and make the session
    this thread's active one: Spark looks Python data sources up in the JVM thread's
    active session only, and the threads of a worker pool have none."""
    spark.dataSource.register(PartsSource)
    spark._jvm.org.apache.spark.sql.SparkSession.setActiveSession(  # type: ignore[union-attr]
        spark._jsparkSession)


class ParquetWriter:
    """Typed columns, written by Spark, merged in order into the export's schema."""

    file_format = FileFormat.PARQUET

    def write(self, users: DataFrame, plan: ExportPlan, stored: dict[str, str],
              max_rows: int | None, out: Path) -> list[Part]:
        columns = ["gio_id"] + [_typed(e, stored) for e in plan.columns]
        writer = users.selectExpr(*columns).write.mode("errorifexists")
        if max_rows is not None:
            writer = writer.option("maxRecordsPerFile", max_rows)
        writer.parquet(str(out))
        parts = [Part(path, pq.ParquetFile(path).metadata.num_rows)
                 for path in _parquet_parts(out)]
        return [part for part in parts if part.rows]

    def assemble(self, plan: ExportPlan, dests: list[Path],
                 parts: list[list[Path]]) -> list[Path]:
        schema = arrow_schema(plan)
        for dest, sources in zip(dests, parts, strict=True):
            with pa.OSFile(str(dest), "wb") as sink, pq.ParquetWriter(sink, schema) as out:
                for source in sources:
                    for batch in pq.ParquetFile(source).iter_batches(ROWS_PER_GROUP):
                        out.write_batch(conform(batch, schema))
                if not sources:
                    out.write_table(schema.empty_table())
        return dests


def _typed(entry, stored: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    """SQL: the column of `entry` in its export type (identities as lists of values)."""
    col = stored_column(entry, stored)
    name = quote_ident(entry.key)
    if col is None:
        return f"NULL AS {name}"
    if entry.is_identity:
        return f"split({col}, '[|][|]') AS {name}"
    return f"{col} AS {name}"


WRITERS: dict[FileFormat, Writer] = {
    w.file_format: w for w in (*(TextWriter(t) for t in TEXT_FORMATS.values()),
                               ParquetWriter())
}


def _parquet_parts(out: Path) -> list[Path]:
    """Spark's Parquet part files in row order: by task number, then by file counter."""
    found = []
    for path in out.iterdir():
        match = _PART.match(path.name)
        if match and path.stat().st_size > 0:
            found.append((int(match.group(1)), int(match.group(2)), path))
    return [path for _, _, path in sorted(found)]


def _concatenate(dest: Path, head: bytes, parts: list[Path]) -> None:
    with open(dest, "wb") as out:
        out.write(head)
        out.flush()
        for part in parts:
            _append(out.fileno(), part)


def _stream(dest: Path, plan: ExportPlan, head: bytes, parts: list[Path]) -> None:
    """The header and the parts' UTF-8 text through the output's charset and compression."""
    with text_sink(dest, plan.output) as sink:
        if head:
            sink.write(head)
        for part in parts:
            with open(part, "rb") as src:
                while chunk := src.read(COPY_CHUNK):
                    sink.write(chunk)


def _append(fd: int, source: Path) -> None:
    """Append `source` to the open file `fd`, in the kernel where it can."""
    with open(source, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        copied = 0
        try:
            while copied < size:
                n = os.copy_file_range(src.fileno(), fd, size - copied)
                if n == 0:
                    break
                copied += n
        except OSError:  # another file system, or no copy_file_range: copy through memory
            src.seek(copied)
            with open(fd, "ab", closefd=False) as out:
                shutil.copyfileobj(src, out, 1 << 20)
