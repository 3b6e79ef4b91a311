"""Parsing event files: CSV, JSON lines or Parquet becomes `event_input` (a temp table; for
Parquet, a view of the file), with the user loader's readers (parse.py).

`event_input(line, event, time_raw, id, "<identity key>"..., a<j>, "a<j>?")`: the event key,
the time and the id as text, each identity the file uses as VARCHAR[] (`||` splits a
text), each attribute it uses raw (VARCHAR, or typed when a Parquet column has the
attribute's own type) and whether the line carries the attribute (in JSON the key, in
CSV and Parquet a value). A Parquet file whose `time` column holds integers also gives
`time_ms`, that integer, so that the time is not parsed back from its text. See
events.py for the checks that follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.engines.base import InputFormat, Reject
from tagport.engines.staging.parse import (
    NATIVE_TYPES,
    csv_header,
    csv_source,
    scalar,
    stage_raw_lines,
    type_label,
)
from tagport.engines.staging.sql import SQL_TYPES, ident, literal
from tagport.errors import InvalidInput

EVENT, TIME, ID = "event", "time", "id"
JSON_FIELDS = (EVENT, TIME, ID, "identifications", "attributes")
_JSON_SHAPE = ('not a JSON object (expected {"event": ..., "time": ..., "identifications":'
               ' {...}, "attributes": {...}})')


@dataclass
class EventFile:
    identities: list[str]  # identity keys the file uses
    attributes: list[str]  # attribute keys it uses: a<j> is attributes[j]
    file_rejects: list[Reject] = field(default_factory=list)
    records: int = 0
    typed: frozenset[str] = frozenset()
    time_ms: bool = False  # event_input has `time_ms`: the time as integer epoch ms


def stage(cur: duckdb.DuckDBPyConnection, path: Path, input_format: InputFormat,
          identities: Mapping[str, CatalogEntry], types: Mapping[str, ValueType]) -> EventFile:
    """Parse `path` into `event_input`."""
    if input_format is InputFormat.JSONL:
        return _stage_jsonl(cur, path, identities, types)
    if input_format is InputFormat.CSV:
        return _stage_csv(cur, path, identities, types)
    return _stage_parquet(cur, path, identities, types)


def _attribute(key: str, value_type: ValueType) -> CatalogEntry:
    return CatalogEntry(key, Kind.ATTRIBUTE, key, value_type)


def _column_problems(columns: list[str], identities: Mapping[str, CatalogEntry],
                     types: Mapping[str, ValueType]) -> list[Reject]:
    """A header or schema naming an unknown column, a column twice, or lacking `event` or
    `time`, refuses the whole file."""
    known = {EVENT, TIME, ID, *identities, *types}
    problems = [Reject(1, name, f"the file has no {name!r} column")
                for name in (EVENT, TIME) if name not in columns]
    problems += [
        Reject(1, name, f"unknown column {name!r}: not event, time or id, an identity of"
               " the catalog (id_<k>) or an attribute of an event")
        for name in columns if name not in known
    ]
    problems += [Reject(1, name, f"column {name!r} appears more than once")
                 for name in sorted({n for n in columns if columns.count(n) > 1})]
    return sorted(problems, key=lambda r: (r.line, r.field or ""))


def _create_input(cur: duckdb.DuckDBPyConnection, select: list[str], source: str,
                  kind: str = "TABLE") -> None:
    cur.execute(f"CREATE TEMP {kind} event_input AS SELECT {', '.join(select)} FROM {source}")


def _stage_csv(cur: duckdb.DuckDBPyConnection, path: Path,
               identities: Mapping[str, CatalogEntry],
               types: Mapping[str, ValueType]) -> EventFile:
    header = csv_header(path)
    if not header:
        raise InvalidInput(f"{path}: the CSV file has no header row")
    if problems := _column_problems(header, identities, types):
        count = f"SELECT count(*) FROM {csv_source(path, [f'c{i}' for i in range(len(header))])}"
        return EventFile([], [], problems, cur.execute(count).fetchall()[0][0])
    ids = [c for c in header if c in identities]
    attributes = [c for c in header if c in types]
    select = ["row_number() OVER () + 1 AS line"]
    select += [f"{ident(c)} AS {c}" if c in header else f"NULL::VARCHAR AS {c}"
               for c in (EVENT, ID)]
    select.append(f"{ident(TIME)} AS time_raw")
    select += [f"string_split({ident(k)}, '||') AS {ident(k)}" for k in ids]
    for j, key in enumerate(attributes):
        raw = scalar(_attribute(key, types[key]), ident(key))
        select += [f"{raw} AS a{j}", f"{raw} IS NOT NULL AS {ident(f'a{j}?')}"]
    _create_input(cur, select, csv_source(path, header))
    return EventFile(ids, attributes)


def _stage_parquet(cur: duckdb.DuckDBPyConnection, path: Path,
                   identities: Mapping[str, CatalogEntry],
                   types: Mapping[str, ValueType]) -> EventFile:
    source = f"read_parquet({literal(str(path))}, file_row_number=true)"
    schema = cur.execute(f"DESCRIBE SELECT * EXCLUDE (file_row_number) FROM {source}").fetchall()
    columns = {row[0]: row[1] for row in schema}
    problems = _column_problems(list(columns), identities, types)
    problems += [
        Reject(1, name, f"column {name!r} holds lists but {name!r} takes a single value")
        for name, dtype in columns.items()
        if dtype.endswith("[]") and name not in identities
    ]
    if problems:
        records = cur.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]
        return EventFile([], [], problems, records)
    text = "CAST({} AS VARCHAR)"
    select = ["file_row_number + 1 AS line", f"{text.format(ident(EVENT))} AS event",
              f"{text.format(ident(TIME))} AS time_raw",
              f"{text.format(ident(ID))} AS id" if ID in columns else "NULL::VARCHAR AS id"]
    time_ms = columns[TIME] in NATIVE_TYPES[ValueType.INT]
    if time_ms:
        select.append(f"CAST({ident(TIME)} AS BIGINT) AS time_ms")
    ids = [c for c in columns if c in identities]
    for key in ids:
        col = ident(key)
        select.append(f"CAST({col} AS VARCHAR[]) AS {col}" if columns[key].endswith("[]")
                      else f"string_split(CAST({col} AS VARCHAR), '||') AS {col}")
    attributes = [c for c in columns if c in types]
    typed = set()
    for j, key in enumerate(attributes):
        col, value_type = ident(key), types[key]
        if columns[key] in NATIVE_TYPES.get(value_type, ()):
            raw = f"CAST({col} AS {SQL_TYPES[value_type]})"
            typed.add(key)
        else:
            raw = scalar(_attribute(key, value_type), f"CAST({col} AS VARCHAR)")
        select += [f"{raw} AS a{j}", f"{raw} IS NOT NULL AS {ident(f'a{j}?')}"]
    _create_input(cur, select, source, kind="VIEW")
    return EventFile(ids, attributes, typed=frozenset(typed), time_ms=time_ms)


def _stage_jsonl(cur: duckdb.DuckDBPyConnection, path: Path,
                 identities: Mapping[str, CatalogEntry],
                 types: Mapping[str, ValueType]) -> EventFile:
    stage_raw_lines(cur, path)
    _reject_json_shapes(cur)
    ids, attributes = _json_keys(cur, identities, types)
    _stage_json_values(cur, ids, attributes, types)
    return EventFile(ids, attributes)


def _reject_json_shapes(cur: duckdb.DuckDBPyConnection) -> None:
    """Keep the JSON objects in `load_json`; reject other lines and misplaced fields."""
    is_object = "CASE WHEN json_valid(text) THEN json_type(text) = 'OBJECT' ELSE false END"
    cur.execute(
        "INSERT INTO load_rejects SELECT line, NULL, CASE WHEN json_valid(text)"
        f" THEN {literal(_JSON_SHAPE)} ELSE 'not valid JSON' END"
        f" FROM load_raw WHERE trim(text) <> '' AND NOT ({is_object})")
    cur.execute(f"CREATE TEMP TABLE load_json AS SELECT line, text::JSON AS doc FROM load_raw"
                f" WHERE {is_object}")
    fields = ", ".join(literal(f) for f in JSON_FIELDS)
    cur.execute(
        "INSERT INTO load_rejects SELECT line, key, format('unknown top-level field ''{}'';"
        f" expected {', '.join(JSON_FIELDS)}', key)"
        " FROM (SELECT line, unnest(json_keys(doc)) AS key FROM load_json)"
        f" WHERE key NOT IN ({fields})")
    for section in ("identifications", "attributes"):
        cur.execute(
            f"INSERT INTO load_rejects SELECT line, '{section}',"
            f" '{section} must be an object of key: value' FROM load_json"
            f" WHERE json_type(doc, '$.{section}') NOT IN ('OBJECT', 'NULL')")
    cur.execute(
        "INSERT INTO load_rejects SELECT line, 'id', 'the id must be a string or a whole"
        " number' FROM load_json"
        " WHERE json_type(doc, '$.id') NOT IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'NULL')")


def _json_keys(cur: duckdb.DuckDBPyConnection, identities: Mapping[str, CatalogEntry],
               types: Mapping[str, ValueType]) -> tuple[list[str], list[str]]:
    """Reject identity keys not in the catalog and attribute keys of no event; return
    the identity and attribute keys the file uses."""
    cur.execute(
        "CREATE TEMP TABLE load_jkeys AS"
        " SELECT line, true AS in_ids, unnest(json_keys(doc, '$.identifications')) AS key"
        " FROM load_json WHERE json_type(doc, '$.identifications') = 'OBJECT' UNION ALL"
        " SELECT line, false, unnest(json_keys(doc, '$.attributes')) FROM load_json"
        " WHERE json_type(doc, '$.attributes') = 'OBJECT'")
    used = cur.execute("SELECT DISTINCT in_ids, key FROM load_jkeys ORDER BY key").fetchall()
    known = {True: set(identities), False: set(types)}
    for in_ids, key in used:
        if key in known[in_ids]:
            continue
        reason = (f"unknown identity {key!r}: it is not an identity of the catalog" if in_ids
                  else f"unknown attribute {key!r}: no event of the event catalog has it")
        cur.execute(f"INSERT INTO load_rejects SELECT line, key, {literal(reason)}"
                    f" FROM load_jkeys WHERE in_ids = {in_ids} AND key = {literal(key)}")
    return ([k for in_ids, k in used if in_ids and k in identities],
            [k for in_ids, k in used if not in_ids and k in types])


def _stage_json_values(cur: duckdb.DuckDBPyConnection, ids: list[str], attributes: list[str],
                       types: Mapping[str, ValueType]) -> None:
    # json_extract gives SQL NULL for an absent key and JSON null for an explicit null
    extracts = [f"json_extract(doc, '$.identifications.\"{k}\"') AS {ident(k)}" for k in ids]
    extracts += [f"json_extract(doc, '$.attributes.\"{k}\"') AS a{j}"
                 for j, k in enumerate(attributes)]
    # a JSON null is no value; a number or a list as the event key is an unknown event
    text = "CASE WHEN json_type(doc, '$.{0}') <> 'NULL' THEN doc ->> '$.{0}' END"
    cur.execute(
        f"CREATE TEMP TABLE load_jvals AS SELECT line, {text.format(EVENT)} AS event,"
        f" {text.format(TIME)} AS time_raw, CASE WHEN json_type(doc, '$.id') IN ('VARCHAR',"
        " 'BIGINT', 'UBIGINT') THEN doc ->> '$.id' END AS id"
        f"{''.join(', ' + x for x in extracts)} FROM load_json")
    select = ["line", "event", "time_raw", "id"]
    for key in ids:
        col = ident(key)
        cur.execute(
            f"INSERT INTO load_rejects SELECT line, {literal(key)}, 'the value is a JSON"
            f" object, not a list of values' FROM load_jvals WHERE json_type({col}) = 'OBJECT'")
        select.append(f"CASE json_type({col}) WHEN 'ARRAY' THEN CAST({col} AS VARCHAR[])"
                      f" WHEN 'OBJECT' THEN NULL ELSE string_split({col} ->> '$', '||') END"
                      f" AS {col}")
    for j, key in enumerate(attributes):
        entry, col = _attribute(key, types[key]), f"a{j}"
        cur.execute(
            f"INSERT INTO load_rejects SELECT line, {literal(key)}, 'the value is a JSON '"
            f" || lower(json_type({col})) || ', not {type_label(entry)}'"
            f" FROM load_jvals WHERE json_type({col}) IN ('ARRAY', 'OBJECT')")
        raw = (f"CASE WHEN json_type({col}) IN ('ARRAY', 'OBJECT') THEN NULL"
               f" ELSE {scalar(entry, f'({col} ->> {chr(39)}${chr(39)})')} END")
        select += [f"{raw} AS {col}", f"{col} IS NOT NULL AS {ident(col + '?')}"]
    _create_input(cur, select, "load_jvals")
