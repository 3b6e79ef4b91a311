"""The export plan as a Spark job that writes the DuckDB engine's bytes.

Each output line is built as one string column by SQL (values rendered by render.py),
the covered users are range-partitioned and sorted by gio_id, and Spark's text writer
writes the lines in parallel as part files (no header, `\\n` after each line). The driver
then assembles the result in the attempt's work dir:

- one file (no `TAGPORT_MAX_ROWS_PER_FILE`): the header, then the parts in order, copied
  into `file_name` with copy_file_range;
- several files (`max_rows` set): Spark writes at most `max_rows` lines per part file
  (`maxRecordsPerFile`); the parts are renamed in order with `exports.naming.part_name`
  and only the first carries the CSV header, so that the parts concatenated in order are
  byte for byte the single-file export. A part ends where Spark's sort range ends, so a
  part may hold fewer than `max_rows` rows. When everything fits in one part, the result
  is one file named `file_name`.

The executors write into the work dir, so on a cluster the result dir must be a path
that the driver and every executor share (the same mount).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from tagport.catalog.models import CatalogEntry, ValueType
from tagport.engines.base import (
    ExportOutput,
    ExportPlan,
    ExportStopped,
    FileFormat,
    HeaderType,
)
from tagport.engines.spark.render import (
    ARROW_CSV,
    DUCKDB_JSON,
    PYTHON_REPR,
    DoubleStyle,
    double_from_digits,
    double_text,
    let,
    literal,
    quote_ident,
    shortest_digits,
)
from tagport.engines.spark.store import ProfileStore, spark_type
from tagport.exports.naming import part_name

ROWS_PER_TASK = 250_000  # below this, fewer sort tasks: each costs a fixed ~50 ms
_PART = re.compile(r"^part-(\d+)-.*-c(\d+)\.txt$")


# --- rendering one value ----------------------------------------------------------------


def _csv_quoted(text: str) -> str:
    return f"concat('\"', replace({text}, '\"', '\"\"'), '\"')"


def _double(col: str, digits: str | None, style: DoubleStyle) -> str:
    """`digits` is the column of shortest_digits(col), when the query computed one."""
    return double_from_digits(col, digits, style) if digits else double_text(col, style)


def csv_cell(entry: CatalogEntry, col: str, digits: str | None = None) -> str:
    """SQL: the CSV field of `col` (quoted strings, bare numbers, NULL as empty)."""
    vt = entry.value_type
    if entry.is_identity:
        cell = _csv_quoted(col)
    elif entry.is_array and vt is ValueType.DOUBLE:
        # DuckDB's VARCHAR cast of each element (Python's repr)
        joined = f"array_join(transform({col}, e -> {double_text('e', PYTHON_REPR)}), '||')"
        cell = _csv_quoted(joined)
    elif entry.is_array:
        cell = _csv_quoted(f"array_join(cast({col} AS array<string>), '||')")
    elif vt is ValueType.DOUBLE:
        cell = _double(col, digits, ARROW_CSV)
    elif vt in (ValueType.INT, ValueType.BOOL):
        cell = f"cast({col} AS string)"
    else:  # strings, dates and datetimes are quoted
        cell = _csv_quoted(f"cast({col} AS string)")
    return f"coalesce({cell}, '')"


def _json_string(text: str) -> str:
    # Spark's JSON generator escapes exactly as DuckDB's does; most strings need none
    return (f"CASE WHEN {text} RLIKE '[\\\\x00-\\\\x1f\"\\\\\\\\]'"
            f" THEN {let(f'to_json(array({text}))', lambda v: f'substr({v}, 2, length({v}) - 2)')}"
            f" ELSE concat('\"', {text}, '\"') END")


def json_value(entry: CatalogEntry, col: str, digits: str | None = None) -> str:
    """SQL: the JSON text of `col` (`null` for NULL)."""
    vt = entry.value_type
    if entry.is_identity or (vt is ValueType.STRING and not entry.is_array):
        value = _json_string(col)
    elif entry.is_array and vt is ValueType.DOUBLE:
        value = (f"concat('[', array_join(transform({col},"
                 f" e -> {double_text('e', DUCKDB_JSON)}), ','), ']')")
    elif entry.is_array and vt is ValueType.DATETIME:
        value = f"to_json(cast({col} AS array<string>))"
    elif entry.is_array:
        value = f"to_json({col})"
    elif vt is ValueType.DOUBLE:
        value = _double(col, digits, DUCKDB_JSON)
    elif vt in (ValueType.INT, ValueType.BOOL):
        value = f"cast({col} AS string)"
    else:  # dates and datetimes
        value = f"concat('\"', cast({col} AS string), '\"')"
    return f"coalesce({value}, 'null')"


# --- one line --------------------------------------------------------------------------


def stored_column(entry: CatalogEntry, stored: dict[str, str]) -> str | None:
    """The column holding `entry`, or None when no load brought it with its current type
    (a type changes only while the key holds no data, so such a column is all NULL)."""
    if stored.get(entry.key) == spark_type(entry):
        return quote_ident(entry.key)
    return None


def digit_columns(entries: Sequence[CatalogEntry], stored: dict[str, str]) -> dict[str, str]:
    """key -> SQL of shortest_digits(column) for the scalar double columns: computed as
    columns of their own before the line, which reads each several times."""
    return {e.key: shortest_digits(col) for e in entries
            if e.value_type is ValueType.DOUBLE and not e.is_array
            and (col := stored_column(e, stored))}


def _digits_name(key: str) -> str:
    return quote_ident(f"__digits_{key}")


def csv_line(plan: ExportPlan, stored: dict[str, str], digits: dict[str, str]) -> str:
    cells = ["cast(gio_id AS string)"]
    for entry in plan.columns:
        col = stored_column(entry, stored)
        d = _digits_name(entry.key) if entry.key in digits else None
        cells.append(csv_cell(entry, col, d) if col else "''")
    return f"concat_ws(',', {', '.join(cells)})"


def _json_object(entries: list[CatalogEntry], stored: dict[str, str],
                 digits: dict[str, str]) -> list[str]:
    parts: list[str] = []
    for i, entry in enumerate(entries):
        col = stored_column(entry, stored)
        d = _digits_name(entry.key) if entry.key in digits else None
        key = ("," if i else "") + json.dumps(entry.key, ensure_ascii=False) + ":"
        parts += [literal(key), json_value(entry, col, d) if col else "'null'"]
    return parts


def json_line(plan: ExportPlan, stored: dict[str, str], digits: dict[str, str]) -> str:
    return user_json(plan.columns, stored, digits)


def user_json(entries: Sequence[CatalogEntry], stored: dict[str, str],
              digits: dict[str, str] | None = None) -> str:
    """SQL: a user as a line of the JSON export (gio_id, identifications, properties);
    `digits`: the digit_columns the query computed beforehand."""
    digits = digits or {}
    identities = [e for e in entries if e.is_identity]
    properties = [e for e in entries if not e.is_identity]
    parts = ["'{\"gio_id\":'", "cast(gio_id AS string)", "',\"identifications\":{'",
             *_json_object(identities, stored, digits), "'},\"properties\":{'",
             *_json_object(properties, stored, digits), "'}}'"]
    return f"concat({', '.join(parts)})"


def header(plan: ExportPlan) -> bytes:
    """The CSV header line (every cell quoted, as pyarrow's writer does); none for JSON."""
    if plan.file_format is FileFormat.JSON:
        return b""
    names = [e.name if plan.header_type is HeaderType.NAME else e.key for e in plan.columns]
    cells = ['"' + n.replace('"', '""') + '"' for n in ["gio_id", *names]]
    return (",".join(cells) + "\n").encode("utf-8")


# --- the job ---------------------------------------------------------------------------


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
    head = header(plan)
    with store.reading() as version:
        users = spark.read.parquet(str(version.users)) if version else None
        stored = {f.name: f.dataType.simpleString() for f in users.schema} if users else {}
        if users is None or stored_column(plan.tag, stored) is None:
            return _single(work_dir / file_name, head, [])
        covered = users.where(f"{quote_ident(plan.tag.key)} IS NOT NULL")
        rows = covered.count()
        if rows == 0:
            return _single(work_dir / file_name, head, [])
        digits = digit_columns(plan.columns, stored)
        line = (csv_line if plan.file_format is FileFormat.CSV else json_line)(
            plan, stored, digits)
        spark_out = work_dir / f".spark-{uuid.uuid4().hex}"
        try:
            helpers = [f"{sql} AS {_digits_name(key)}" for key, sql in digits.items()]
            _write_lines(covered.selectExpr("*", *helpers), line, rows, max_rows, spark_out)
            parts = _parts_in_order(spark_out)
            if max_rows is None or len(parts) <= 1:
                output = _single(work_dir / file_name, head, parts)
            else:
                output = _split(work_dir, file_name, head, parts)
        finally:
            shutil.rmtree(spark_out, ignore_errors=True)
    return ExportOutput(rows, output.files)


def _write_lines(covered: DataFrame, line: str, rows: int, max_rows: int | None,
                 out: Path) -> None:
    tasks = max(1, math.ceil(rows / ROWS_PER_TASK))
    if max_rows is not None:
        # ranges a little under max_rows, so that few parts are cut short
        tasks = max(tasks, math.ceil(rows / (0.9 * max_rows)))
    lines = (covered.repartitionByRange(tasks, "gio_id").sortWithinPartitions("gio_id")
             .selectExpr(f"{line} AS value"))
    writer = lines.write.mode("errorifexists")
    if max_rows is not None:
        writer = writer.option("maxRecordsPerFile", max_rows)
    writer.text(str(out))


def _parts_in_order(out: Path) -> list[Path]:
    """Spark's part files in row order: by task number, then by file counter."""
    found = []
    for path in out.iterdir():
        match = _PART.match(path.name)
        if match and path.stat().st_size > 0:
            found.append((int(match.group(1)), int(match.group(2)), path))
    return [path for _, _, path in sorted(found)]


def _single(dest: Path, head: bytes, parts: list[Path]) -> ExportOutput:
    with open(dest, "wb") as out:
        out.write(head)
        out.flush()
        for part in parts:
            _append(out.fileno(), part)
    return ExportOutput(0, [dest])


def _split(work_dir: Path, file_name: str, head: bytes, parts: list[Path]) -> ExportOutput:
    files = []
    for number, part in enumerate(parts, start=1):
        dest = work_dir / part_name(file_name, number)
        if number == 1 and head:
            _single(dest, head, [part])
        else:
            os.replace(part, dest)
        files.append(dest)
    return ExportOutput(0, files)


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
