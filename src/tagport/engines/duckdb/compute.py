"""Computing a tag on the DuckDB store: one query, one transaction, every user at once.

Under the store's write lock, on one cursor, in one transaction: the tag's column is made
(`ensure_columns`), the definition's query fills the temp table `compute_result(gio_id,
tag_value)`, and one UPDATE sets the column of every user (NULL for users without a
value; an array tag as the store's JSON text, an empty one NULL). Readers on other
cursors see the old values until the COMMIT; a failing query rolls everything back.
`users` keeps its gio_id order: the UPDATE changes a column in place, only where it moves.

A SQL tag's query is the user's. When it is plain (`computes.sql.plain`: relational
clauses, columns, literals, comparisons, arithmetic, CASE, casts, date differences and the
standard aggregates over `event` and `user`, nothing that could read a file or a setting)
it runs on the store's cursor, over subqueries that are those relations (GrowingIO's
30-day query at 100M events: 0.63 s in the sandbox, against 0.40 s for the same query on
the store). Any other runs in a sandbox, a separate in-memory DuckDB with external access
off and its configuration locked, over copies (Arrow) of the columns it names of `event`
and `user` (of `event`, only the rows the query's WHERE keeps, when it can be read off
the query: `computes.sql.row_filter`). DuckDB 2.0 cannot take file access
away from one cursor: `enable_external_access` and `disabled_filesystems` are global,
one-way, and would stop the store itself (loads read files; a checkpoint fails without
the local file system).
"""

from __future__ import annotations

from datetime import date
from threading import Event

import duckdb
import pyarrow as pa
from sqlglot import exp

from tagport.catalog.models import CatalogEntry
from tagport.computes import (
    ComputeFailed,
    ComputeStopped,
    Definition,
    Relations,
    SqlQuery,
    SqlRefused,
    compile_definition,
    missing_columns,
    one_row_per_user,
    plain,
    row_filter,
    translate,
)
from tagport.computes.reads import event_attributes
from tagport.conditions import data_type
from tagport.engines.duckdb.conditions import DuckDBValues
from tagport.engines.duckdb.store import DuckDBStore, sql_type
from tagport.engines.staging.sql import ident

EVENTS = "events"  # the store's events table (gio_id, event, time, dt, id, seq, <attributes>)
_EVENT_ONLY = ("id", "seq")  # events columns the SQL type's `event` relation leaves out
_SANDBOX_EVENT, _SANDBOX_USER = "compute_event", "compute_user"


def compute_tag(store: DuckDBStore, tag: CatalogEntry, definition: Definition, *,
                as_of: date, stop: Event | None = None) -> int:
    """Replace `tag`'s values with the definition's on `as_of`; the users that got one."""
    # a computation writes every user's value, as a load does: the load's memory limit
    # (the export limit, 128 MB by default, ran out at 1M users in a HORIZONTAL's joins);
    # the cursor, and with it the temp result, is gone before the limit is lowered
    with store.write_lock, store.load_memory():
        cur = store.cursor()
        try:
            cur.execute("BEGIN")
            try:
                covered = _compute(store, cur, tag, definition, as_of)
                if stop is not None and stop.is_set():
                    raise ComputeStopped(f"{tag.key}: the computation was stopped")
                cur.execute("COMMIT")
            except BaseException:
                rollback(cur)
                raise
            return covered
        finally:
            cur.close()


def _compute(store: DuckDBStore, cur: duckdb.DuckDBPyConnection, tag: CatalogEntry,
             definition: Definition, as_of: date) -> int:
    columns = store.user_columns(cur)
    if columns.get(tag.key) != sql_type(tag):
        store.ensure_columns(cur, [tag])
        columns = store.user_columns(cur)
    try:
        if isinstance(definition, SqlQuery):
            query = _translated(tag, definition, as_of)
            if plain(query, (_SANDBOX_EVENT, _SANDBOX_USER)):
                _run_on_store(store, cur, tag, definition, as_of, query)
            else:
                cur.register("compute_sql_result", _run_sandboxed(store, cur, tag, query))
                cur.execute("CREATE TEMP TABLE compute_result AS"
                            " SELECT * FROM compute_sql_result")
            if not one_row_per_user(query):
                _refuse_repeated_users(cur, tag)
        else:
            query = compile_definition(definition, as_of=as_of, reader=DuckDBValues(columns),
                                       relations=Relations(_events(store, cur, definition),
                                                           "users"),
                                       order_key=packed_order_key)
            cur.execute(f"CREATE TEMP TABLE compute_result AS {query.sql('duckdb')}")
        return replace_values(cur, tag)
    except duckdb.Error as exc:
        raise ComputeFailed(f"{tag.key}: {_first_line(exc)}") from exc


def _events(store: DuckDBStore, cur: duckdb.DuckDBPyConnection,
            definition: Definition) -> str | exp.Expression:
    """The events relation, with a typed NULL column for each attribute the definition
    reads that no load has brought yet (so it computes as if every value were null)."""
    read = event_attributes(definition)
    if not read:
        return EVENTS
    stored = store.event_columns(cur)
    absent = {k: t for k, t in read.items() if k not in stored}
    if not absent:
        return EVENTS
    nulls = [exp.alias_(exp.cast(exp.null(), data_type(t)), k, quoted=True)
             for k, t in absent.items()]
    return exp.Subquery(this=exp.select(exp.Star(), *nulls).from_(EVENTS))


def packed_order_key(time: exp.Expression, seq: exp.Expression) -> exp.Expression:
    """(time, seq) as one HUGEINT, `epoch_us(time) * 2^64 + (seq + 2^63)`: the second
    term is in [0, 2^64) for any BIGINT seq and epoch_us is a BIGINT, so the value is
    exact (within HUGEINT's range) and sorts as the pair does; `arg_max` over it is
    1.8x faster than over the struct (0.20 s against 0.37 s at 10M events)."""
    hugeint = exp.DataType.Type.INT128
    micros = exp.cast(exp.Anonymous(this="epoch_us", expressions=[time]), hugeint)
    low = exp.Add(this=exp.cast(seq, hugeint), expression=exp.Literal.number(2**63))
    return exp.Add(this=exp.Mul(this=micros, expression=exp.Literal.number(2**64)),
                   expression=exp.Paren(this=low))


def replace_values(cur: duckdb.DuckDBPyConnection, tag: CatalogEntry) -> int:
    col = ident(tag.key)
    result, value = "compute_result", "c.tag_value"
    if tag.is_array:  # the store keeps arrays as JSON text, an empty one as NULL: made
        # once, not in each statement below (each of which reads the value)
        cur.execute("CREATE TEMP TABLE compute_stored AS SELECT gio_id, CASE WHEN"
                    " len(tag_value) > 0 THEN to_json(tag_value) END AS tag_value"
                    " FROM compute_result")
        result = "compute_stored"
    # only the users whose value changes are written, in two set-based statements that
    # read the result and the column rather than join every user (a segment's first
    # computation writes its members, a recomputation what moved); an UPDATE of a column
    # that is not the key changes it in place, so `users` keeps its gio_id order
    # (tests/integration/test_engine_computes.py checks an export after computing)
    cur.execute(
        f"UPDATE users SET {col} = NULL WHERE {col} IS NOT NULL AND gio_id NOT IN"
        f" (SELECT c.gio_id FROM {result} c WHERE {value} IS NOT NULL)")
    cur.execute(
        f"UPDATE users SET {col} = r.v FROM (SELECT c.gio_id, {value} AS v"
        f" FROM {result} c WHERE {value} IS NOT NULL) r"
        f" WHERE users.gio_id = r.gio_id AND users.{col} IS DISTINCT FROM r.v")
    return int(cur.execute(f"SELECT count({col}) FROM users").fetchall()[0][0])


def _refuse_repeated_users(cur: duckdb.DuckDBPyConnection, tag: CatalogEntry) -> None:
    repeated = cur.execute("SELECT gio_id FROM compute_result GROUP BY gio_id"
                           " HAVING count(*) > 1 ORDER BY gio_id LIMIT 1").fetchall()
    if repeated:
        raise ComputeFailed(f"{tag.key}: the query yields gio_id {repeated[0][0]} more than"
                            " once (one row per user)")


# --- the SQL type ----------------------------------------------------------------------


def _translated(tag: CatalogEntry, definition: SqlQuery, as_of: date) -> exp.Query:
    """The user's query over the sandbox's relations."""
    try:
        return translate(definition, as_of=as_of, event=_SANDBOX_EVENT, user=_SANDBOX_USER)
    except SqlRefused as exc:
        raise ComputeFailed(f"{tag.key}: compute.sql: {exc}") from None


def _run_on_store(store: DuckDBStore, cur: duckdb.DuckDBPyConnection, tag: CatalogEntry,
                  definition: SqlQuery, as_of: date, checked: exp.Query) -> None:
    """A plain query (`computes.sql.plain`: it can read only its relations' rows) run on
    the store into `compute_result`, over the same relations the sandbox would copy:
    `event` as the events with `event_key` (and its row filter), `user` as the users."""
    stored = [c for c in store.event_columns(cur) if c not in _EVENT_ONLY]
    events = exp.select(*(exp.column(c, quoted=True) for c in stored),
                        exp.alias_(exp.column("event", quoted=True), "event_key")).from_(EVENTS)
    if (rows := row_filter(checked, _SANDBOX_EVENT)) is not None:
        events = exp.select(exp.Star()).from_(exp.alias_(exp.Subquery(this=events), "c",
                                                         table=True)).where(rows)
    try:
        query = translate(definition, as_of=as_of, event=exp.Subquery(this=events),
                          user="users")
    except SqlRefused as exc:  # checked above: the same query, other relations
        raise ComputeFailed(f"{tag.key}: compute.sql: {exc}") from None
    if problem := missing_columns(cur.sql(query.sql("duckdb")).columns):
        raise ComputeFailed(f"{tag.key}: {problem}")
    cur.execute(f"CREATE TEMP TABLE compute_result AS {_typed(query, tag).sql('duckdb')}")


def _run_sandboxed(store: DuckDBStore, cur: duckdb.DuckDBPyConnection, tag: CatalogEntry,
                   query: exp.Query) -> pa.Table:
    """The user's query run where no file, URL or setting is reachable: (gio_id, value)."""
    sandbox = duckdb.connect(":memory:", config={
        "enable_external_access": False, "autoload_known_extensions": False,
        "autoinstall_known_extensions": False, "memory_limit": store.load_memory_limit,
        "lock_configuration": True})
    try:
        for name, relation in _relations(cur, query).items():
            sandbox.register(name, relation)
        columns = sandbox.sql(query.sql("duckdb")).columns
        if problem := missing_columns(columns):
            raise ComputeFailed(f"{tag.key}: {problem}")
        return sandbox.sql(_typed(query, tag).sql("duckdb")).to_arrow_table()
    except duckdb.Error as exc:
        raise ComputeFailed(f"{tag.key}: {_first_line(exc)}") from exc
    finally:
        sandbox.close()


def _relations(cur: duckdb.DuckDBPyConnection, query: exp.Query) -> dict[str, pa.Table]:
    """Copies of the relations the query reads, with only the columns it names (all of
    them after a `*`): `event(gio_id, event, event_key, time, dt, <attributes>)` and
    `user(gio_id, <the users table's columns>)`."""
    tables = {t.name for t in query.find_all(exp.Table)}
    named = {c.name.lower() for c in query.find_all(exp.Column)}
    every = any(True for _ in query.find_all(exp.Star))
    relations = {}
    if _SANDBOX_EVENT in tables:
        stored = [r[0] for r in cur.execute(f"DESCRIBE {EVENTS}").fetchall()]
        select = [f"{ident(c)}" for c in stored if c not in _EVENT_ONLY
                  and (every or c == "gio_id" or c.lower() in named)]
        if every or "event_key" in named:
            select.append("event AS event_key")
        copy = f"SELECT {', '.join(select)} FROM {EVENTS}"
        # only the rows the query can read: its own WHERE conjuncts of columns, literals
        # and comparisons, and the days they imply (`row_filter`), run on the store; the
        # Arrow copy of every event was most of the time (10M events: 0.38-0.47 s, then
        # 0.17-0.25 s for the query over it; GrowingIO's 30-day query copies 333k rows)
        if (rows := row_filter(query, _SANDBOX_EVENT)) is not None:
            copy = f"SELECT * FROM ({copy}) AS c WHERE {rows.sql('duckdb')}"
        relations[_SANDBOX_EVENT] = cur.sql(copy).to_arrow_table()
    if _SANDBOX_USER in tables:
        stored = [r[0] for r in cur.execute("DESCRIBE users").fetchall()]
        select = [ident(c) for c in stored if every or c == "gio_id" or c.lower() in named]
        relations[_SANDBOX_USER] = cur.sql(f"SELECT {', '.join(select)} FROM users"
                                           ).to_arrow_table()
    return relations


def _typed(query: exp.Query, tag: CatalogEntry) -> exp.Select:
    """The query's rows as (gio_id UBIGINT, tag_value of the tag's type), users only."""
    gio_id = exp.column("gio_id", table="q")
    value = exp.cast(exp.column("tag_value", table="q"),
                     data_type(tag.value_type, is_list=tag.is_array))
    return (exp.select(exp.alias_(exp.cast(gio_id, exp.DataType.Type.UBIGINT), "gio_id"),
                       exp.alias_(value, "tag_value"))
            .from_(exp.alias_(exp.Subquery(this=query), "q", table=True))
            .where(gio_id.is_(exp.null()).not_()))


def rollback(cur: duckdb.DuckDBPyConnection) -> None:
    try:
        cur.execute("ROLLBACK")
    except duckdb.Error:
        pass  # the transaction is already gone


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
