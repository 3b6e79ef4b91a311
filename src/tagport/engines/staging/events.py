"""Event staging, shared by every engine: a file of events becomes the typed, checked
`event_rec`, with every problem and its line in `load_rejects` (as user records do).

`event_rec(line, event, "time", dt, id, "<identity key>"..., a0, a1, ...)`: the event key,
its time in UTC (TIMESTAMP, no zone), its local day in the load's zone, its own id (NULL
when it has none), one VARCHAR[] per identity key the file uses (as user records hold
them) and one typed column `a<j>` per attribute key it uses (`StagedEvents.attributes`
maps them to their keys; positional names, because an attribute key may be `line`).
For a Parquet file with integer times `event_rec` holds only the line, the time, the day,
the id and the identities, and `StagedEvents.rows()` is the whole layout computed again
from the file (casts only); a step that needs the event key or an attribute reads that.

File shapes (spec section 5): JSON lines `{"event", "time", "identifications": {...},
"attributes": {...}, "id"}`; CSV and Parquet columns `event`, `time`, `id` (optional),
`id_<k>` identities and one column per attribute key. `time`: ISO 8601 with a time of day
(with an offset, or local in the zone) or integer epoch milliseconds.

Then `mark_duplicates` finds the events to skip (`event_dup`: an id earlier in the file,
or stored on the event's day) and `identity_records` hands the rest to identity resolution
as user records (`load_rec`), which the engines resolve exactly as user loads do.
`signature_records` does the same with one record per distinct set of identity values
(`event_sig`): a user's many events carry the same few sets, so resolution handles
thousands of records instead of millions, then `spread_rejects` gives each event line
what resolution found for its set.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, timedelta, tzinfo
from pathlib import Path

import duckdb

from tagport.catalog.models import (
    CatalogEntry,
    EventDefinition,
    Kind,
    ValueType,
    attribute_types,
)
from tagport.engines.base import InputFormat, Reject
from tagport.engines.staging import event_files
from tagport.engines.staging.sql import ident, literal
from tagport.engines.staging.validate import (
    _DATETIME_RE,
    _OFFSET_RE,
    NOT_REJECTED,
    reject_mistyped,
    typed_value,
)
from tagport.errors import ConfigError, InvalidInput

# why `known_users_only` rejects an event (both engines)
UNKNOWN_USER = ("no user holds its identity values, and only the events of known users"
                " are loaded (known users only)")
TIME_WORDS = ("a time (ISO 8601 with a time of day, such as 2026-11-20T10:00:00+08:00,"
              " or epoch milliseconds)")


@dataclass(frozen=True)
class AttributeColumn:
    """An attribute key the file uses, its type and its column in `event_rec`."""

    key: str
    value_type: ValueType
    column: str

    @property
    def entry(self) -> CatalogEntry:
        """The attribute as a catalog entry, for the shared type checks."""
        return CatalogEntry(self.key, Kind.ATTRIBUTE, self.key, self.value_type)


@dataclass
class StagedEvents:
    """What staging learnt: the identity and attribute keys the file uses, or why the
    whole file is refused (`file_rejects`, with `records` counted)."""

    identities: list[CatalogEntry]
    attributes: list[AttributeColumn]
    file_rejects: list[Reject] = field(default_factory=list)
    records: int = 0
    typed: frozenset[str] = frozenset()  # attribute keys staged typed (Parquet)
    time_ms: bool = False  # event_input has the time as integer epoch ms (Parquet)
    # the whole rows' query, where reading them again costs less than staging them (a
    # view of a Parquet file with integer times: casts, no parsing); `event_rec` then
    # lacks the event key and the attributes
    cheap_query: str | None = None

    def rows(self) -> str:
        """The relation of the staged rows with every column, `event_rec`'s layout."""
        return f"({self.cheap_query})" if self.cheap_query else "event_rec"


def zone_name(zone: tzinfo) -> str:
    """The IANA name DuckDB knows `zone` by (a fixed whole-hour offset as `Etc/GMT-8`)."""
    key = getattr(zone, "key", None)
    if key:
        return str(key)
    offset = zone.utcoffset(None)
    if offset is None or offset == timedelta(0):
        return "UTC"
    hours, rest = divmod(offset, timedelta(hours=1))
    if rest:
        raise ConfigError(f"the time zone {zone} is no whole number of hours from UTC: set "
                          "TAGPORT_TIMEZONE to its IANA name (e.g. Asia/Kolkata)")
    return f"Etc/GMT{-hours:+d}"  # POSIX signs: Etc/GMT-8 is UTC+08:00


def prepare_events(cur: duckdb.DuckDBPyConnection, events: dict[str, EventDefinition],
                   zone: tzinfo) -> None:
    """The time macros for `zone` and the event catalog as tables (`load_events`,
    `load_event_attributes`); call after validate.prepare."""
    name = literal(zone_name(zone))
    with_time = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}"
    # epoch milliseconds as an integer: what event_time accepts of its text (1 to 15 digits)
    cur.execute("CREATE OR REPLACE TEMP MACRO event_time_ms(x) AS CASE"
                " WHEN x BETWEEN 0 AND 999999999999999 THEN epoch_ms(x) END")
    cur.execute(
        "CREATE OR REPLACE TEMP MACRO event_time(x) AS CASE"
        " WHEN regexp_full_match(trim(x), '[0-9]{1,15}') THEN epoch_ms(CAST(trim(x) AS BIGINT))"
        f" WHEN NOT (regexp_full_match(trim(x), '{_DATETIME_RE}')"
        f"  AND regexp_matches(trim(x), '^{with_time}')) THEN NULL"
        f" WHEN regexp_matches(trim(x), ':[0-9]{{2}}(\\.[0-9]+)?{_OFFSET_RE}$')"
        " THEN timezone('UTC', TRY_CAST(trim(x) AS TIMESTAMPTZ))"
        f" ELSE timezone('UTC', timezone({name}, TRY_CAST(trim(x) AS TIMESTAMP))) END")
    cur.execute("CREATE OR REPLACE TEMP MACRO event_day(t) AS"
                f" CAST(timezone({name}, timezone('UTC', t)) AS DATE)")
    # the zone's UTC offset (an INTERVAL) at the UTC time t
    cur.execute("CREATE OR REPLACE TEMP MACRO event_offset(t) AS"
                f" timezone({name}, timezone('UTC', t)) - t")
    cur.execute("CREATE TEMP TABLE load_events (event VARCHAR)")
    cur.execute("CREATE TEMP TABLE load_event_attributes (event VARCHAR, key VARCHAR)")
    if events:
        cur.execute("INSERT INTO load_events VALUES "
                    + ", ".join(f"({literal(k)})" for k in events))
    pairs = [f"({literal(e.key)}, {literal(a)})" for e in events.values() for a in e.attributes]
    if pairs:
        cur.execute(f"INSERT INTO load_event_attributes VALUES {', '.join(pairs)}")


def stage_events(
    cur: duckdb.DuckDBPyConnection, path: Path, input_format: InputFormat,
    catalog: dict[str, CatalogEntry], events: dict[str, EventDefinition],
) -> StagedEvents:
    """Parse `path` into `event_input`, then check and type it into `event_rec`; an
    unreadable file raises InvalidInput."""
    identities = {k: e for k, e in catalog.items() if e.is_identity}
    types = attribute_types(events.values())
    try:
        staged = event_files.stage(cur, path, input_format, identities, types)
    except (duckdb.IOException, duckdb.InvalidInputException, duckdb.ConversionException) as exc:
        raise InvalidInput(f"{path}: not a readable {input_format.value} file: {exc}") from exc
    identity_entries = [identities[k] for k in staged.identities]
    attributes = [AttributeColumn(k, types[k], f"a{j}") for j, k in enumerate(staged.attributes)]
    result = StagedEvents(identity_entries, attributes, staged.file_rejects, staged.records,
                          staged.typed, staged.time_ms)
    if not staged.file_rejects:
        _check(cur, result)
    return result


def _check(cur: duckdb.DuckDBPyConnection, staged: StagedEvents) -> None:
    time, day = "event_time(time_raw)", "event_day({})"
    if staged.time_ms:
        time, day = "event_time_ms(time_ms)", _day_by_offsets(cur)
    keys = [f"{time} AS \"time\"", f"{day.format(time)} AS dt", "NULLIF(id, '') AS id"]
    keys += [f"{_identity_value(e)} AS {ident(e.key)}" for e in staged.identities]
    values = [f"{typed_value(a.entry, a.key in staged.typed, a.column)} AS {a.column}"
              for a in staged.attributes]
    query = f"SELECT {', '.join(['line', 'event', *keys, *values])} FROM event_input"
    if staged.time_ms:  # Parquet only, whose event_input is a view of the file
        # the event key and the attributes are read from the file when needed (rows()):
        # the staged table keeps what the checks and the resolution read, a narrower
        # table that spills less
        staged.cheap_query = query
        cur.execute(f"CREATE TEMP TABLE event_rec AS SELECT {', '.join(['line', *keys])}"
                    " FROM event_input")
    else:
        cur.execute(f"CREATE TEMP TABLE event_rec AS {query}")
    cur.execute(
        "INSERT INTO load_rejects SELECT line, 'event', CASE WHEN event IS NULL"
        " THEN 'no event key: every event names its event'"
        " ELSE format('unknown event ''{}'': it is not in the event catalog', event) END"
        " FROM event_input WHERE event IS NULL OR event NOT IN (SELECT event FROM load_events)")
    cur.execute(
        "INSERT INTO load_rejects SELECT i.line, 'time', CASE WHEN i.time_raw IS NULL"
        " OR trim(i.time_raw) = '' THEN 'no time: every event needs its time'"
        f" ELSE format({literal('value {} is not ' + TIME_WORDS)},"
        " '''' || left(i.time_raw, 80) || '''') END"
        " FROM event_input i JOIN event_rec r USING (line) WHERE r.\"time\" IS NULL")
    for a in staged.attributes:
        has_it = ("event IN (SELECT event FROM load_event_attributes"
                  f" WHERE key = {literal(a.key)})")
        # a value (or, in JSON, the key) for an attribute that the line's event lacks
        cur.execute(
            f"INSERT INTO load_rejects SELECT line, {literal(a.key)},"
            f" format('event ''{{}}'' has no attribute ''{{}}''', event, {literal(a.key)})"
            f" FROM event_input WHERE {ident(a.column + '?')}"
            f" AND event IN (SELECT event FROM load_events) AND NOT {has_it}")
        if a.value_type is not ValueType.STRING:  # only where the event has the attribute
            reject_mistyped(cur, a.entry, a.key in staged.typed, a.column,
                            f"(SELECT * FROM event_input WHERE {has_it})",
                            f"(SELECT * FROM {staged.rows()} WHERE {has_it})")
    no_ids = " AND ".join([f"{ident(e.key)} IS NULL" for e in staged.identities] or ["true"])
    cur.execute("INSERT INTO load_rejects SELECT line, NULL,"
                " 'an event needs at least one identity value'"
                f" FROM event_rec WHERE {no_ids}")


_OFFSET_STEP_MINUTES = 15  # no time zone changes its offset twice within this
_MAX_OFFSET_SAMPLES = 2_000_000  # ~57 years of samples; beyond, each time is converted
_MAX_OFFSET_CHANGES = 200


def _day_by_offsets(cur: duckdb.DuckDBPyConnection) -> str:
    """`event_day` for the integer times of `event_input`, as a template of the time's
    SQL: the zone's UTC offset, sampled every 15 minutes over the file's time range, is
    added to each time (`CAST(t + offset AS DATE)`, a tenth of the cost of converting each
    time with `timezone`); only a time in a 15-minute stretch where the offset changes
    (daylight saving) is converted on its own. `event_day` itself when the range is too
    long to sample."""
    lo, hi = cur.execute("SELECT min(time_ms), max(time_ms) FROM event_input"
                         " WHERE time_ms BETWEEN 0 AND 999999999999999").fetchall()[0]
    step = _OFFSET_STEP_MINUTES * 60_000
    if lo is None or (hi - lo) // step > _MAX_OFFSET_SAMPLES:
        return "event_day({})"
    changes = cur.execute(
        "SELECT s, o FROM (SELECT s, o, lag(o) OVER (ORDER BY s) AS p FROM (SELECT s,"
        " epoch(event_offset(s)) AS o FROM range(epoch_ms(?), epoch_ms(?) + to_minutes(?),"
        " to_minutes(?)) t(s))) WHERE p IS NULL OR o <> p ORDER BY s",
        [lo - lo % step, hi, _OFFSET_STEP_MINUTES, _OFFSET_STEP_MINUTES]).fetchall()
    if len(changes) > _MAX_OFFSET_CHANGES:
        return "event_day({})"
    shifted = "CAST({{0}} + to_seconds({}) AS DATE)"
    case = "CASE"
    for (_, offset), (change, _) in itertools.pairwise(changes):
        unsure = change - timedelta(minutes=_OFFSET_STEP_MINUTES)
        case += (f" WHEN {{0}} < TIMESTAMP {literal(str(unsure))}"
                 f" THEN {shifted.format(int(offset))}"
                 f" WHEN {{0}} < TIMESTAMP {literal(str(change))} THEN event_day({{0}})")
    last = shifted.format(int(changes[-1][1]))
    return f"{case} ELSE {last} END" if len(changes) > 1 else last


def _identity_value(entry: CatalogEntry) -> str:
    """`typed_value` of an identity, with a shortcut for the usual single value."""
    raw, full = ident(entry.key), typed_value(entry, False)
    return (f"CASE WHEN len({raw}) = 1 THEN CASE WHEN {raw}[1] <> '' THEN {raw} END"
            f" ELSE {full} END")


def kept(cur: duckdb.DuckDBPyConnection, alias: str = "", duplicates: bool = True) -> str:
    """The SQL condition that an `event_rec` line (of `alias`) is neither rejected nor,
    with `duplicates`, skipped (`event_dup`), as the tables stand now: "true" for each of
    them that is empty, as it usually is (each anti-join costs ~1 s at 30M events)."""
    line = f"{alias}.line" if alias else "line"
    tables = ["load_rejects", *(["event_dup"] if duplicates else [])]
    parts = [f"{line} NOT IN (SELECT line FROM {t})" for t in tables
             if cur.execute(f"SELECT EXISTS (SELECT 1 FROM {t})").fetchall()[0][0]]
    return " AND ".join(parts) or "true"


def covered_days(cur: duckdb.DuckDBPyConnection) -> list[date]:
    """The days of the valid events that carry an id: where a stored duplicate can be."""
    rows = cur.execute(f"SELECT DISTINCT dt FROM event_rec WHERE id IS NOT NULL"
                       f" AND {kept(cur, duplicates=False)} ORDER BY dt").fetchall()
    return [row[0] for row in rows]


def mark_duplicates(cur: duckdb.DuckDBPyConnection, stored: str | None) -> int:
    """`event_dup(line)`: valid events whose id came earlier in the file (the first is
    kept) or is stored on the event's day; `stored` is a relation `(dt, id)` of the
    stored events of `covered_days` (None: nothing stored there). Returns their count."""
    not_rejected = kept(cur, duplicates=False)
    stored_part = ("" if stored is None else
                   " UNION SELECT r.line FROM event_rec r JOIN (SELECT DISTINCT dt, id FROM"
                   f" {stored}) s ON r.dt = s.dt AND r.id = s.id WHERE {not_rejected}")
    # most ids occur once: a 64-bit hash tells them apart, so only ids whose hash
    # repeats are ranked by line (ranking every id cost most of this step); the hashes
    # that repeat are found by sorting them, each next to its predecessor (30M ids: 2.1 s,
    # against 4.4 s for a GROUP BY of 30M groups, which spilled at 100M: 26 s)
    valid = f"id IS NOT NULL AND {not_rejected}"
    repeated = ("SELECT DISTINCT h FROM (SELECT h, lag(h) OVER (ORDER BY h) AS previous FROM"
                f" (SELECT hash(id) AS h FROM event_rec WHERE {valid})) WHERE h = previous")
    cur.execute(
        "CREATE TEMP TABLE event_dup AS SELECT line FROM (SELECT line, row_number() OVER"
        " (PARTITION BY id ORDER BY line) AS n FROM event_rec"
        f" WHERE {valid} AND hash(id) IN ({repeated})) WHERE n > 1{stored_part}")
    return int(cur.execute("SELECT count(*) FROM event_dup").fetchall()[0][0])


def identity_records(cur: duckdb.DuckDBPyConnection, identities: list[CatalogEntry]) -> None:
    """`load_rec` for identity resolution: the events not skipped as duplicates, as user
    records with their identities only (the shape engines resolve user records in)."""
    select = ["line", "NULL::VARCHAR AS gio_raw", "NULL::UBIGINT AS gio_id"]
    for e in identities:
        select += [ident(e.key), f"true AS {ident(e.key + '?')}"]
    cur.execute(f"CREATE TEMP TABLE load_rec AS SELECT {', '.join(select)} FROM event_rec"
                " WHERE line NOT IN (SELECT line FROM event_dup)")


def signature_records(cur: duckdb.DuckDBPyConnection, identities: list[CatalogEntry]) -> None:
    """`event_sig(line, "<identity key>"...)`: each distinct set of identity values of the
    events not rejected nor skipped, with the first line holding it; and `load_rec`, one
    user record per set (its line), for identity resolution.

    Events with the same values belong to the same group (they share them), and a group's
    label, its first line, is the first line of one of its sets: resolving the sets gives
    every event the user, and every message the line numbers, that resolving each event
    would."""
    if not identities:  # every event lacks an identity: rejected already
        cur.execute("CREATE TEMP TABLE event_sig AS SELECT line FROM event_rec WHERE false")
    else:
        # grouped by each key's one value (when its list has one, as most do) and its
        # list (when not): a group of strings costs a quarter less than one of lists at
        # 100M events; a one-element list never holds NULL or '' (_identity_value)
        split, groups, joined = ["line"], [], []
        for j, e in enumerate(identities):
            col = ident(e.key)
            split += [f"CASE WHEN len({col}) = 1 THEN {col}[1] END AS v{j}",
                      f"CASE WHEN len({col}) <> 1 THEN {col} END AS l{j}"]
            groups += [f"v{j}", f"l{j}"]
            joined.append(f"CASE WHEN v{j} IS NOT NULL THEN [v{j}] ELSE l{j} END AS {col}")
        cur.execute(f"CREATE TEMP TABLE event_sig AS SELECT min(line) AS line,"
                    f" {', '.join(joined)} FROM (SELECT {', '.join(split)} FROM event_rec"
                    f" WHERE {kept(cur)}) GROUP BY {', '.join(groups)}")
    select = ["line", "NULL::VARCHAR AS gio_raw", "NULL::UBIGINT AS gio_id"]
    for e in identities:
        select += [ident(e.key), f"true AS {ident(e.key + '?')}"]
    cur.execute(f"CREATE TEMP TABLE load_rec AS SELECT {', '.join(select)} FROM event_sig")


def same_signature(identities: list[CatalogEntry], event: str = "r", sig: str = "s",
                   *, single: bool = False) -> str:
    """The join condition of an event (`event`) and its set of identity values (`sig`);
    with `single` (see `single_valued`), on each key's one value rather than its list."""
    first = "[1]" if single else ""
    return " AND ".join(
        f"{event}.{ident(e.key)}{first} IS NOT DISTINCT FROM {sig}.{ident(e.key)}{first}"
        for e in identities) or "false"


def single_valued(cur: duckdb.DuckDBPyConnection, identities: list[CatalogEntry]) -> bool:
    """Whether each set of `event_sig` has, per key, no value or exactly one (the usual:
    an event names its user by one id). Then a set is told by its keys' first values,
    and an event finds its set by those (`same_signature(single=True)`): at 100M events
    a join on the values instead of the one-element lists saved a fifth of the append."""
    if not identities:
        return False
    one = " AND ".join(f"({ident(e.key)} IS NULL OR len({ident(e.key)}) = 1"
                       f" AND {ident(e.key)}[1] IS NOT NULL)" for e in identities)
    return bool(cur.execute(f"SELECT coalesce(bool_and({one}), true) FROM event_sig"
                            ).fetchall()[0][0])


def spread_rejects(cur: duckdb.DuckDBPyConnection, identities: list[CatalogEntry]) -> None:
    """Give the rejects of a set's line (resolution's, after `signature_records`) to every
    other event line of that set that is not rejected nor skipped already."""
    found = cur.execute("SELECT count(*) FROM load_rejects"
                        " WHERE line IN (SELECT line FROM event_sig)").fetchall()[0][0]
    if not found:
        return
    cur.execute(
        "INSERT INTO load_rejects SELECT r.line, j.field, j.reason FROM load_rejects j"
        " JOIN event_sig s USING (line)"
        f" JOIN event_rec r ON {same_signature(identities)}"
        f" WHERE r.line <> s.line AND r.{NOT_REJECTED}"
        " AND r.line NOT IN (SELECT line FROM event_dup)")
