"""Parsing: a CSV, JSON-lines or Parquet file becomes `load_input` (a temp table; for
Parquet, a view of the file).

`load_input(line, gio_raw, "<key>", "<key>?")` holds, per catalog key the file touches,
the raw value (VARCHAR, or VARCHAR[] for identities and array tags) and whether the
record carries the key at all (only JSON lines can leave a key out). A Parquet column
that already has the key's type (BIGINT for an int, DATE for a date, ...) is staged as it
is, typed, and listed in `Staged.typed`: validation then has nothing to parse. Problems found on the
way go to `load_rejects`. See validate.py for the step after this one.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from tagport.catalog.models import CatalogEntry, ValueType
from tagport.engines.base import InputFormat, Reject
from tagport.engines.staging.sql import SQL_TYPES, ident, literal
from tagport.errors import InvalidInput

GIO_ID = "gio_id"
_MAX_LINE = 64 * 1024 * 1024  # one record may carry long arrays; DuckDB's default is 2 MB

# How the messages name each type, and the SQL that casts a VARCHAR `x` to it (NULL when
# the text is not a value of the type: TRY_CAST alone is too lenient, e.g. '1.5' -> 2).
TYPE_WORDS = {
    ValueType.INT: "an int (a whole number)",
    ValueType.DOUBLE: "a double (a finite number)",
    ValueType.BOOL: "a bool (true, false, 1 or 0)",
    ValueType.DATE: "a date (YYYY-MM-DD)",
    ValueType.DATETIME: "a datetime (YYYY-MM-DD HH:MM:SS)",
}


@dataclass
class Staged:
    """What staging learnt: the keys the file touches, or why the whole file is refused."""

    entries: list[CatalogEntry]
    file_rejects: list[Reject] = field(default_factory=list)
    records: int = 0
    typed: frozenset[str] = frozenset()  # keys staged typed, not as text


# Parquet types that hold a key's values exactly, staged without a round trip through text
NATIVE_TYPES: dict[ValueType, frozenset[str]] = {
    ValueType.INT: frozenset({"BIGINT", "INTEGER", "SMALLINT", "TINYINT",
                              "UINTEGER", "USMALLINT", "UTINYINT"}),
    ValueType.DOUBLE: frozenset({"DOUBLE", "FLOAT"}),
    ValueType.BOOL: frozenset({"BOOLEAN"}),
    ValueType.DATE: frozenset({"DATE"}),
    ValueType.DATETIME: frozenset({"TIMESTAMP"}),
}


def stage_file(
    cur: duckdb.DuckDBPyConnection, path: Path, input_format: InputFormat,
    catalog: dict[str, CatalogEntry],
) -> Staged:
    """Parse `path` into `load_input`; an unreadable file raises InvalidInput."""
    stage = {InputFormat.CSV: _stage_csv, InputFormat.PARQUET: _stage_parquet,
             InputFormat.JSONL: _stage_jsonl}[input_format]
    try:
        return stage(cur, path, catalog)
    except (duckdb.IOException, duckdb.InvalidInputException, duckdb.ConversionException) as exc:
        raise InvalidInput(f"{path}: not a readable {input_format.value} file: {exc}") from exc


def is_list(entry: CatalogEntry) -> bool:
    """Whether `entry` takes several values (an identity or an array tag)."""
    return entry.is_identity or entry.is_array


def computed_reason(entry: CatalogEntry) -> str:
    """Why a load cannot carry a computed tag: its values come from its definition."""
    return f"{entry.key} is computed ({entry.compute_type}); it cannot be loaded"


def column_problems(columns: list[str], catalog: dict[str, CatalogEntry]) -> list[Reject]:
    """A CSV header or Parquet schema naming an unknown key refuses the whole file."""
    problems = [
        Reject(1, name, f"unknown key {name!r}: it is not in the catalog")
        for name in columns if name != GIO_ID and name not in catalog
    ]
    problems += [Reject(1, name, computed_reason(catalog[name]))
                 for name in columns if name in catalog and catalog[name].compute is not None]
    problems += [
        Reject(1, name, f"column {name!r} appears more than once")
        for name in sorted({n for n in columns if columns.count(n) > 1})
    ]
    return problems


def _create_input(cur: duckdb.DuckDBPyConnection, select: list[str], source: str,
                  kind: str = "TABLE") -> None:
    cur.execute(f"CREATE TEMP {kind} load_input AS SELECT {', '.join(select)} FROM {source}")


def csv_header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            return next(csv.reader(f), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"{path}: not a readable csv file: {exc}") from exc


def csv_source(path: Path, names: list[str]) -> str:
    # the header is parsed in Python and the sniffer stays off: it can mistake data for a
    # header, or skip lines
    columns = "{" + ", ".join(f"{literal(n)}: 'VARCHAR'" for n in names) + "}"
    return (f"read_csv({literal(str(path))}, header=true, auto_detect=false, delim=',',"
            f" quote='\"', escape='\"', allow_quoted_nulls=false, columns={columns},"
            f" max_line_size={_MAX_LINE})")


def _stage_csv(
    cur: duckdb.DuckDBPyConnection, path: Path, catalog: dict[str, CatalogEntry],
) -> Staged:
    header = csv_header(path)
    if not header:
        raise InvalidInput(f"{path}: the CSV file has no header row")
    problems = column_problems(header, catalog)
    if problems:
        count = f"SELECT count(*) FROM {csv_source(path, [f'c{i}' for i in range(len(header))])}"
        return Staged([], problems, cur.execute(count).fetchall()[0][0])
    source = csv_source(path, header)
    entries = [catalog[c] for c in header if c != GIO_ID]
    gio = f"NULLIF({ident(GIO_ID)}, '')" if GIO_ID in header else "NULL::VARCHAR"
    select = ["row_number() OVER () + 1 AS line", f"{gio} AS gio_raw"]
    for e in entries:
        col = ident(e.key)
        # an empty field is an explicit null, a quoted `""` an empty string; several
        # values are joined by `||`
        raw = f"string_split({col}, '||')" if is_list(e) else scalar(e, col)
        select += [f"{raw} AS {col}", f"true AS {ident(e.key + '?')}"]
    _create_input(cur, select, source)
    return Staged(entries)


def _stage_parquet(
    cur: duckdb.DuckDBPyConnection, path: Path, catalog: dict[str, CatalogEntry],
) -> Staged:
    source = f"read_parquet({literal(str(path))}, file_row_number=true)"
    schema = cur.execute(f"DESCRIBE SELECT * EXCLUDE (file_row_number) FROM {source}").fetchall()
    types = {row[0]: row[1] for row in schema}
    problems = column_problems(list(types), catalog)
    problems += [
        Reject(1, name, f"column {name!r} holds lists but {name!r} takes a single value")
        for name, dtype in types.items()
        if name in catalog and dtype.endswith("[]") and not is_list(catalog[name])
    ]
    if problems:
        records = cur.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]
        return Staged([], problems, records)
    entries = [catalog[c] for c in types if c != GIO_ID]
    gio = f"CAST({ident(GIO_ID)} AS VARCHAR)" if GIO_ID in types else "NULL::VARCHAR"
    select = ["file_row_number + 1 AS line", f"{gio} AS gio_raw"]
    typed = set()
    for e in entries:
        col, is_list_column = ident(e.key), types[e.key].endswith("[]")
        if is_list_column:
            raw = f"CAST({col} AS VARCHAR[])"
        elif is_list(e):
            raw = f"string_split(CAST({col} AS VARCHAR), '||')"
        elif types[e.key] in NATIVE_TYPES.get(e.value_type, ()):
            raw = f"CAST({col} AS {SQL_TYPES[e.value_type]})"
            typed.add(e.key)
        else:
            raw = scalar(e, f"CAST({col} AS VARCHAR)")
        select += [f"{raw} AS {col}", f"true AS {ident(e.key + '?')}"]
    # a view: the file is read where load_rec is made (and again by a check of a column
    # staged as text); copying it into a table first cost ~6 s per 10M users
    _create_input(cur, select, source, kind="VIEW")
    return Staged(entries, typed=frozenset(typed))


def _stage_jsonl(
    cur: duckdb.DuckDBPyConnection, path: Path, catalog: dict[str, CatalogEntry],
) -> Staged:
    stage_raw_lines(cur, path)
    _reject_json_shapes(cur)
    entries = _json_keys(cur, catalog)
    _stage_json_values(cur, entries)
    return Staged(entries)


def stage_raw_lines(cur: duckdb.DuckDBPyConnection, path: Path) -> None:
    """`load_raw(line, text)`: the file's physical lines, numbered from 1."""
    # Raw lines through the CSV reader with no quoting and a delimiter that valid JSON
    # cannot hold unescaped (\x01): one row per physical line, blank lines kept as NULL.
    cur.execute(
        "CREATE TEMP TABLE load_raw AS SELECT row_number() OVER () AS line, text"
        f" FROM read_csv({literal(str(path))}, columns={{'text': 'VARCHAR'}}, header=false,"
        f" auto_detect=false, delim=chr(1), quote='', escape='', max_line_size={_MAX_LINE})"
    )


def _reject_json_shapes(cur: duckdb.DuckDBPyConnection) -> None:
    """Keep the JSON objects in `load_json`; reject other lines and misplaced fields."""
    is_object = "CASE WHEN json_valid(text) THEN json_type(text) = 'OBJECT' ELSE false END"
    cur.execute(
        "INSERT INTO load_rejects SELECT line, NULL, CASE WHEN json_valid(text)"
        " THEN 'not a JSON object (expected {\"identifications\": {...}, \"properties\": {...}})'"
        " ELSE 'not valid JSON' END"
        f" FROM load_raw WHERE trim(text) <> '' AND NOT ({is_object})"
    )
    cur.execute(f"CREATE TEMP TABLE load_json AS SELECT line, text::JSON AS doc FROM load_raw"
                f" WHERE {is_object}")
    cur.execute(
        "INSERT INTO load_rejects SELECT line, key, format('unknown top-level field ''{}'';"
        " expected gio_id, identifications and properties', key)"
        " FROM (SELECT line, unnest(json_keys(doc)) AS key FROM load_json)"
        " WHERE key NOT IN ('gio_id', 'identifications', 'properties')"
    )
    for section in ("identifications", "properties"):
        cur.execute(
            f"INSERT INTO load_rejects SELECT line, '{section}',"
            f" '{section} must be an object of key: value' FROM load_json"
            f" WHERE json_type(doc, '$.{section}') NOT IN ('OBJECT', 'NULL')"
        )


def _json_keys(
    cur: duckdb.DuckDBPyConnection, catalog: dict[str, CatalogEntry],
) -> list[CatalogEntry]:
    """Reject unknown and misplaced keys; return the catalog entries the file uses."""
    cur.execute("CREATE TEMP TABLE load_catalog (key VARCHAR, is_identity BOOLEAN,"
                " computed VARCHAR)")
    if catalog:
        rows = ", ".join(
            f"({literal(k)}, {e.is_identity},"
            f" {'NULL' if e.compute is None else literal(computed_reason(e))})"
            for k, e in catalog.items())
        cur.execute(f"INSERT INTO load_catalog VALUES {rows}")
    cur.execute(
        "CREATE TEMP TABLE load_jkeys AS SELECT j.line, j.in_ids, j.key, c.is_identity,"
        " c.computed FROM ("
        " SELECT line, true AS in_ids, unnest(json_keys(doc, '$.identifications')) AS key"
        " FROM load_json UNION ALL"
        " SELECT line, false, unnest(json_keys(doc, '$.properties')) FROM load_json"
        ") j LEFT JOIN load_catalog c USING (key)"
    )
    cur.execute(
        "INSERT INTO load_rejects SELECT line, key, CASE"
        " WHEN is_identity IS NULL THEN format('unknown key ''{}'': it is not in the catalog', key)"
        " WHEN is_identity THEN format('{} is an identity: put it under identifications', key)"
        " ELSE format('{} is not an identity: put it under properties', key) END"
        " FROM load_jkeys WHERE is_identity IS DISTINCT FROM in_ids"
    )
    cur.execute("INSERT INTO load_rejects SELECT line, key, computed FROM load_jkeys"
                " WHERE computed IS NOT NULL AND NOT in_ids")
    used = cur.execute(
        "SELECT DISTINCT key FROM load_jkeys WHERE is_identity = in_ids AND computed IS NULL"
        " ORDER BY key"
    ).fetchall()
    return [catalog[key] for (key,) in used]


def _stage_json_values(cur: duckdb.DuckDBPyConnection, entries: list[CatalogEntry]) -> None:
    # one JSON extraction per key; json_extract gives SQL NULL for an absent key and
    # JSON null for an explicit null, which is what "present" means
    extracts = [
        f"json_extract(doc, '$.{'identifications' if e.is_identity else 'properties'}"
        f".\"{e.key}\"') AS {ident(e.key)}" for e in entries
    ]
    cur.execute("CREATE TEMP TABLE load_jvals AS SELECT line, json_extract_string(doc, '$.gio_id')"
                f" AS gio_raw{''.join(', ' + x for x in extracts)} FROM load_json")
    select = ["line", "gio_raw"]
    for e in entries:
        col = ident(e.key)
        shapes = "('OBJECT')" if is_list(e) else "('ARRAY', 'OBJECT')"
        cur.execute(
            f"INSERT INTO load_rejects SELECT line, {literal(e.key)}, 'the value is a JSON '"
            f" || lower(json_type({col})) || ', not {type_label(e)}'"
            f" FROM load_jvals WHERE json_type({col}) IN {shapes}"
        )
        if is_list(e):  # a JSON array, or one string that may hold `||`-joined values
            raw = (f"CASE json_type({col}) WHEN 'ARRAY' THEN CAST({col} AS VARCHAR[])"
                   f" WHEN 'OBJECT' THEN NULL ELSE string_split({col} ->> '$', '||') END")
        else:
            raw = (f"CASE WHEN json_type({col}) IN ('ARRAY', 'OBJECT') THEN NULL"
                   f" ELSE {scalar(e, f'({col} ->> {chr(39)}${chr(39)})')} END")
        select += [f"{raw} AS {col}", f"{col} IS NOT NULL AS {ident(e.key + '?')}"]
    _create_input(cur, select, "load_jvals")


def scalar(entry: CatalogEntry, raw: str) -> str:
    """An empty string is a value for string keys and null for any other type."""
    if entry.value_type is ValueType.STRING and not entry.is_identity:
        return raw
    return f"NULLIF({raw}, '')"


def type_label(entry: CatalogEntry) -> str:
    if is_list(entry):
        return "a list of values"
    return TYPE_WORDS.get(entry.value_type, "a string")


FileState = tuple[int, int, int, int] | None


def file_state(path: Path) -> FileState:
    """What tells a file from a changed or replaced one (None: it is gone)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def unchanged_since(path: Path, state: FileState) -> None:
    """Refuse a load whose file changed after `state` was taken: its steps read a Parquet
    file more than once (a view), and must all have read the same file."""
    if file_state(path) != state:
        raise InvalidInput(f"{path}: the file changed while it was loaded, so nothing was"
                           " loaded: load it again once it is whole")
