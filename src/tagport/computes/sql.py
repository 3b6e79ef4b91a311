"""The `SQL` tag type: a user's SELECT, parsed with sqlglot, checked and translated.

GrowingIO's SQL tags are ClickHouse SQL over `olap.event` and `olap.user`; they run here
unchanged. The query is parsed in its dialect and refused unless it is exactly one
query (a SELECT, or a UNION of them) that reads only the relations `event`, `user`,
`olap.event`, `olap.user` (and its own CTEs): no DDL or DML, no table functions or file
and URL readers (`read_csv`, `file`, `url`, Spark's `parquet.`path``), no functions that
reach outside the query (`reflect`, `java_method`, `getenv`, ...). `today()`,
`yesterday()` and `current_date` become the compute date as a literal, the relations
the engine's own, and the engine writes it in its dialect. Engines also run it where
nothing else is reachable (DuckDB: a connection without file access; Spark: temp views).
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from tagport.catalog.models import ValueType
from tagport.computes.definitions import SqlDialect, SqlQuery
from tagport.conditions import literal

RELATIONS = ("event", "user")  # what a query may read, bare or as `olap.<name>`
VALUE_COLUMNS = ("gio_id", "tag_value")  # what it must yield

# functions that read files or URLs, run other SQL, or call into the host, in any of the
# dialects (as table functions they are refused anyway: only relations may be read)
_REFUSED_FUNCTIONS = frozenset({
    "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json", "read_json_auto",
    "read_ndjson", "read_ndjson_auto", "read_text", "read_blob", "read_files", "glob",
    "sniff_csv", "parquet_metadata", "parquet_schema", "iceberg_scan", "delta_scan",
    "sqlite_scan", "postgres_scan", "mysql_scan", "query", "query_table", "getenv",
    "file", "url", "s3", "s3cluster", "hdfs", "remote", "remotesecure", "mysql", "postgresql",
    "jdbc", "odbc", "executable", "input", "dictget", "reflect", "try_reflect", "java_method",
    "input_file_name", "input_file_block_start", "input_file_block_length",
    "current_setting", "load_extension",
})
_TODAY = frozenset({"today", "current_date"})


class SqlRefused(Exception):
    """Why a SQL tag's query cannot run (the message names what is wrong)."""


def parse(sql: str, dialect: SqlDialect) -> exp.Query:
    """The query, checked: one SELECT over the allowed relations (else `SqlRefused`)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect.value) if s is not None]
    except SqlglotError as exc:
        raise SqlRefused(f"not valid {dialect.value} SQL: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise SqlRefused(f"one SELECT statement, got {len(statements)} statements")
    query = statements[0]
    if not isinstance(query, exp.Query) or _writes(query):
        raise SqlRefused(f"only a SELECT can run, not {_statement_name(query)}")
    _check_sources(query)
    _check_functions(query)
    return query


def translate(definition: SqlQuery, *, as_of: date, event: str | exp.Expression,
              user: str | exp.Expression) -> exp.Query:
    """The checked query with the compute date for `today()` and the engine's relations
    (table names or relations) for `event` and `user`; write it in the engine's dialect."""
    query = parse(definition.sql, definition.dialect).copy()
    relations = {"event": event, "user": user}
    ctes = _cte_names(query)

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and not _is_cte(node, ctes):
            name = node.name.lower()
            alias = node.alias or name
            source = relations[name]
            table = exp.to_table(source) if isinstance(source, str) else source.copy()
            return exp.alias_(table, exp.to_identifier(alias, quoted=True), table=True)
        if _is_today(node):
            return literal(as_of, ValueType.DATE)
        if isinstance(node, exp.Anonymous) and node.name.lower() == "yesterday":
            return literal(as_of - timedelta(days=1), ValueType.DATE)
        return node

    return query.transform(rewrite)  # type: ignore[return-value]


def missing_columns(columns: list[str]) -> str | None:
    """Why a query yielding `columns` cannot set a tag, or None when it can."""
    names = [c.lower() for c in columns]
    if all(c in names for c in VALUE_COLUMNS):
        return None
    return (f"the query must yield the columns gio_id and tag_value; it yields"
            f" {', '.join(columns) or 'none'}")


def _writes(query: exp.Expression) -> bool:
    return any(isinstance(n, exp.DDL | exp.DML | exp.Command | exp.Into)
               for n in query.walk())


def _statement_name(statement: exp.Expression) -> str:
    """`DROP`, `INSERT`, `CREATE`, or a command's own word (`COPY`, `ATTACH`)."""
    if isinstance(statement, exp.Command):
        return statement.name.upper()
    if isinstance(statement, exp.Query):  # a SELECT that writes: SELECT ... INTO
        return "SELECT INTO"
    return statement.key.upper()


def _cte_names(query: exp.Expression) -> frozenset[str]:
    return frozenset(cte.alias_or_name.lower() for cte in query.find_all(exp.CTE))


def _is_cte(table: exp.Table, ctes: frozenset[str]) -> bool:
    return not table.db and table.name.lower() in ctes


def _check_sources(query: exp.Query) -> None:
    ctes = _cte_names(query)
    for table in query.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise SqlRefused(f"table functions and file readers are not allowed: "
                             f"{_function_name(table.this)}")
        if _is_cte(table, ctes):
            continue
        name, db = table.name.lower(), table.db.lower()
        if name not in RELATIONS or db not in ("", "olap") or table.catalog:
            raise SqlRefused(f"unknown table {table.sql()!r}: a query reads event and user"
                             " (or olap.event and olap.user)")


def _check_functions(query: exp.Query) -> None:
    if query.find(exp.QueryTransform) is not None:  # Spark/Hive: pipes rows through a program
        raise SqlRefused("TRANSFORM ... USING (a script) is not allowed: a query reads only"
                         " event and user")
    for func in query.find_all(exp.Func):
        name = _function_name(func)
        if name.lower() in _REFUSED_FUNCTIONS:
            raise SqlRefused(f"the function {name} is not allowed: a query reads only"
                             " event and user")


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return node.sql()


def _is_today(node: exp.Expression) -> bool:
    if isinstance(node, exp.CurrentDate):
        return True
    return isinstance(node, exp.Anonymous) and node.name.lower() in _TODAY


def _first_line(exc: SqlglotError) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
