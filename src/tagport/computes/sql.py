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


def one_row_per_user(query: exp.Query) -> bool:
    """Whether the translated query yields at most one row per gio_id by its shape: one
    SELECT (not a set operation) grouped by exactly the column it outputs as `gio_id`,
    with no ROLLUP, CUBE or GROUPING SETS. Then an engine need not look for a gio_id
    repeated in the result (a GROUP BY of its own, 0.06 s at 1M users)."""
    if not isinstance(query, exp.Select):
        return False
    group = query.args.get("group")
    if group is None or any(group.args.get(k) for k in ("rollup", "cube", "grouping_sets")):
        return False
    outputs = [e for e in query.expressions if e.alias_or_name.lower() == "gio_id"]
    if len(outputs) != 1 or len(group.expressions) != 1:
        return False
    output = outputs[0].unalias() if isinstance(outputs[0], exp.Alias) else outputs[0]
    return isinstance(output, exp.Column) and output == group.expressions[0]


# what a pushed-down row filter may be made of: columns, literals, casts, comparisons and
# date differences; no function that could read anything, no subquery
_ROW_FILTER_NODES = (
    exp.And, exp.Paren, exp.Not, exp.Is, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
    exp.Between, exp.In, exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null,
    exp.Neg, exp.Cast, exp.DataType, exp.DateDiff, exp.Var,
)


# what a query may be made of to run where the data is: relational clauses, columns,
# literals, comparisons, arithmetic, CASE, casts, date differences and the standard
# aggregates; every other node (any other function, a CTE, a set operation) is not
# known to be unable to reach a file, a URL or a setting
_PLAIN_NODES = (
    *_ROW_FILTER_NODES, exp.Select, exp.From, exp.Where, exp.Group, exp.Having, exp.Order,
    exp.Ordered, exp.Limit, exp.Join, exp.Table, exp.TableAlias, exp.Alias, exp.Subquery,
    exp.Star, exp.Distinct, exp.Or, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Case,
    exp.If, exp.Coalesce, exp.Count, exp.Sum, exp.Min, exp.Max, exp.Avg,
)


def plain(query: exp.Query, relations: tuple[str, ...]) -> bool:
    """Whether the translated query is made only of `_PLAIN_NODES` and reads only the
    tables `relations` (by name, unqualified): it can then compute only over their rows,
    and an engine may run it on its store rather than in a sandbox (DuckDB: GrowingIO's
    30-day query at 100M events spent a third of its time copying rows there)."""
    for node in query.walk():
        if not isinstance(node, _PLAIN_NODES):
            return False
        if isinstance(node, exp.Table) and (node.name not in relations or node.db
                                            or node.catalog):
            return False
    return True


def row_filter(query: exp.Query, relation: str) -> exp.Expression | None:
    """The conjuncts of the translated query's WHERE that every row it reads of the table
    `relation` must pass, or None: only when the query is one SELECT whose only source is
    that table, read once, so that rows failing them cannot change its result; only
    conjuncts of columns, literals, comparisons and date differences (`_ROW_FILTER_NODES`)
    over the table's own columns (not the SELECT's aliases), unqualified. An engine may
    drop the rows they refuse before the query runs (DuckDB's sandbox copies only the
    others)."""
    if not isinstance(query, exp.Select) or query.args.get("with") or query.args.get("joins"):
        return None
    source = query.args.get("from_") or query.args.get("from")  # sqlglot renamed it
    tables = list(query.find_all(exp.Table))
    if (source is None or len(tables) != 1 or source.this is not tables[0]
            or tables[0].name != relation or query.args.get("where") is None):
        return None
    alias = tables[0].alias_or_name
    aliases = {a.alias.lower() for a in query.expressions if isinstance(a, exp.Alias)}
    kept = [c for c in _conjuncts(query.args["where"].this) if _pushable(c, alias, aliases)]
    if not kept:
        return None
    # `dateDiff('day', dt, today()) BETWEEN 1 AND 30` also as the days it implies, which
    # an engine can prune by (DuckDB's zone maps: the events are stored in dt order)
    kept += [r for r in map(_implied_days, kept) if r is not None]
    pushed = exp.and_(*(c.copy() for c in kept))
    for column in pushed.find_all(exp.Column):  # the table is the only source
        column.set("table", None)
    return pushed


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    if isinstance(condition, exp.And):
        return _conjuncts(condition.this) + _conjuncts(condition.expression)
    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    return [condition]


def _pushable(condition: exp.Expression, alias: str, aliases: set[str]) -> bool:
    for node in condition.walk():
        if not isinstance(node, _ROW_FILTER_NODES):
            return False
        if isinstance(node, exp.Column) and (
                node.table not in ("", alias) or node.name.lower() in aliases):
            return False
        if isinstance(node, exp.In) and node.args.get("query") is not None:
            return False
    return True


def _implied_days(condition: exp.Expression) -> exp.Expression | None:
    """`dt` within the days a comparison of `DATE_DIFF('DAY', dt, <date>)` with whole
    numbers implies (the difference of two DATEs in days is their distance), or None."""
    diff = condition.this
    if not (isinstance(diff, exp.DateDiff) and isinstance(diff.expression, exp.Column)
            and diff.expression.name.lower() == "dt"
            and str(diff.args.get("unit") or "").strip("'").upper() == "DAY"):
        return None
    end = _date_literal(diff.this)
    if end is None:
        return None
    if isinstance(condition, exp.Between):
        low, high = _int_literal(condition.args.get("low")), _int_literal(
            condition.args.get("high"))
        if low is None or high is None:
            return None
        first, last = end - timedelta(days=high), end - timedelta(days=low)
    elif isinstance(condition, exp.EQ | exp.GT | exp.GTE | exp.LT | exp.LTE):
        n = _int_literal(condition.expression)
        if n is None:
            return None
        n += {exp.GT: 1, exp.LT: -1}.get(type(condition), 0)
        bound = end - timedelta(days=n)  # dt is bound days before `end`, or beyond it
        first = bound if isinstance(condition, exp.EQ | exp.LT | exp.LTE) else None
        last = bound if isinstance(condition, exp.EQ | exp.GT | exp.GTE) else None
    else:
        return None
    dt = exp.column("dt")
    parts = ([exp.GTE(this=dt, expression=literal(first, ValueType.DATE))] if first else []) + (
        [exp.LTE(this=dt.copy(), expression=literal(last, ValueType.DATE))] if last else [])
    return exp.and_(*parts)


def _date_literal(node: exp.Expression | None) -> date | None:
    if (isinstance(node, exp.Cast) and node.to.this is exp.DataType.Type.DATE
            and isinstance(node.this, exp.Literal) and node.this.is_string):
        try:
            return date.fromisoformat(node.this.this)
        except ValueError:
            return None
    return None


def _int_literal(node: exp.Expression | None) -> int | None:
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        return int(node.this)
    return None
