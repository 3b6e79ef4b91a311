"""How definitions compile: which scans a HORIZONTAL shares, which rows a SQL tag reads."""

from __future__ import annotations

from datetime import date

import pytest
import sqlglot
from sqlglot import exp

from tagport.catalog.models import ValueType
from tagport.computes import (
    SqlDialect,
    SqlQuery,
    compile_definition,
    one_row_per_user,
    plain,
    row_filter,
    translate,
)
from tagport.computes.definitions import Horizontal, Tier
from tagport.conditions import Behaviour, Did, LastDays, Measure, MeasureKind, Op
from tagport.engines.duckdb.conditions import DuckDBValues

AS_OF = date(2026, 12, 1)
PAY = "payOrderSuccess"


def did(measure: Measure, value: int, event: str = PAY, days: int = 30) -> Did:
    return Did(Behaviour(event, measure, LastDays(days)), Op.GE, (value,))


def horizontal(*conditions: Did) -> Horizontal:
    return Horizontal(tuple(Tier(str(i), c) for i, c in enumerate(conditions)),
                      ValueType.STRING, frozenset())


def compiled(definition: Horizontal) -> exp.Select:
    return compile_definition(definition, as_of=AS_OF, reader=DuckDBValues())


def test_horizontal_dids_of_the_same_events_are_one_aggregate_joined_once():
    amount = Measure(MeasureKind.SUM, "amount", ValueType.DOUBLE)
    query = compiled(horizontal(did(amount, 2000), did(amount, 500),
                                did(Measure(MeasureKind.COUNT), 1)))
    assert len(query.args["joins"]) == 1
    assert not list(query.find_all(exp.In))
    assert len([s for s in query.find_all(exp.Select) if s is not query]) == 1


def test_a_did_alone_on_its_events_stays_a_semi_join():
    count = Measure(MeasureKind.COUNT)
    query = compiled(horizontal(did(count, 1), did(count, 1, days=7),
                                did(count, 1, event="viewItem")))
    assert not query.args.get("joins")
    assert len(list(query.find_all(exp.In))) == 3


GROWINGIO = ("SELECT gio_id, count(1) AS tag_value FROM olap.event WHERE event_key ="
             " 'payOrderSuccess' AND dateDiff('day', dt, today()) BETWEEN 1 AND 30"
             " GROUP BY gio_id")


def rows(sql: str, dialect: str = "clickhouse") -> str | None:
    query = translate(SqlQuery(sql, SqlDialect(dialect)), as_of=AS_OF, event="compute_event",
                      user="compute_user")
    found = row_filter(query, "compute_event")
    return None if found is None else found.sql("duckdb")


def test_a_sql_tag_reads_only_the_events_its_where_keeps():
    assert rows(GROWINGIO) == (
        "event_key = 'payOrderSuccess' AND DATE_DIFF('DAY', dt, CAST('2026-12-01' AS DATE))"
        " BETWEEN 1 AND 30 AND (dt >= CAST('2026-11-01' AS DATE)"
        " AND dt <= CAST('2026-11-30' AS DATE))")


def test_a_day_difference_also_reads_as_the_days_it_implies():
    def days(where: str) -> str | None:
        found = rows(f"SELECT gio_id, 1 AS tag_value FROM olap.event WHERE {where}")
        return None if found is None else found.split(" AND ", 1)[1]

    assert days("dateDiff('day', dt, today()) >= 3") == "dt <= CAST('2026-11-28' AS DATE)"
    assert days("dateDiff('day', dt, today()) > 0") == "dt <= CAST('2026-11-30' AS DATE)"
    assert days("dateDiff('day', dt, today()) < 3") == "dt >= CAST('2026-11-29' AS DATE)"
    assert days("dateDiff('day', dt, today()) = 2") == (
        "(dt >= CAST('2026-11-29' AS DATE) AND dt <= CAST('2026-11-29' AS DATE))")


def test_only_conjuncts_of_columns_and_literals_are_pushed_down():
    assert rows("SELECT gio_id, 1 AS tag_value FROM olap.event e WHERE e.event_key = 'a'"
                " AND lower(event_key) = 'a'") == "event_key = 'a'"
    assert rows("SELECT gio_id, 1 AS tag_value FROM olap.event WHERE event_key = 'a'"
                " OR dt > today()") is None


def test_no_rows_are_dropped_when_the_events_are_read_twice_or_joined():
    assert rows("SELECT gio_id, 1 AS tag_value FROM olap.event WHERE gio_id IN"
                " (SELECT gio_id FROM olap.event WHERE event_key = 'b') AND event_key = 'a'"
                ) is None
    assert rows("SELECT e.gio_id, 1 AS tag_value FROM olap.event e JOIN olap.user u"
                " ON e.gio_id = u.gio_id WHERE e.event_key = 'a'") is None
    assert rows("WITH x AS (SELECT * FROM olap.event WHERE event_key = 'a')"
                " SELECT gio_id, 1 AS tag_value FROM x") is None


def test_a_select_alias_in_the_where_is_not_pushed_down():
    assert rows("SELECT gio_id, 1 AS tag_value, dt AS event_key FROM olap.event"
                " WHERE event_key = 'a' AND gio_id > 0") == "gio_id > 0"


def test_sqlglot_reads_the_pushed_filter_back():
    assert sqlglot.parse_one(rows(GROWINGIO) or "", read="duckdb") is not None


def test_duckdb_packed_order_key_sorts_as_time_then_seq_at_the_extremes():
    import duckdb

    from tagport.engines.duckdb.compute import packed_order_key

    key = packed_order_key(exp.column("time"), exp.column("seq")).sql("duckdb")
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES"
                " (TIMESTAMP '1969-12-31 23:59:59.999999', 9223372036854775807),"
                " (TIMESTAMP '1970-01-01 00:00:00', -9223372036854775808),"
                " (TIMESTAMP '1970-01-01 00:00:00', -1), (TIMESTAMP '1970-01-01 00:00:00', 0),"
                " (TIMESTAMP '2026-11-30 16:00:00', 5), (TIMESTAMP '2026-11-30 16:00:00', 4),"
                " (make_timestamp(-9223372036854775000), 0),"
                " (make_timestamp(9223372036854775000), 9223372036854775807))"
                " AS v(\"time\", seq)")
    by_pair = con.execute('SELECT "time", seq FROM t ORDER BY "time", seq').fetchall()
    assert con.execute(f'SELECT "time", seq FROM t ORDER BY {key}').fetchall() == by_pair


@pytest.mark.parametrize("sql, single", [
    ("SELECT gio_id, count(1) AS tag_value FROM olap.event GROUP BY gio_id", True),
    ("SELECT e.gio_id AS gio_id, count(1) AS tag_value FROM olap.event e GROUP BY e.gio_id",
     True),
    ("SELECT gio_id, count(1) AS tag_value FROM olap.event GROUP BY gio_id, event", False),
    ("SELECT event AS gio_id, count(1) AS tag_value FROM olap.event GROUP BY gio_id", False),
    ("SELECT gio_id, 1 AS tag_value FROM olap.event", False),
    ("SELECT gio_id, count(1) AS tag_value FROM olap.event GROUP BY ROLLUP (gio_id)", False),
    ("SELECT gio_id, 1 AS tag_value FROM olap.event GROUP BY gio_id"
     " UNION ALL SELECT gio_id, 2 AS tag_value FROM olap.event GROUP BY gio_id", False),
])
def test_a_query_grouped_by_its_gio_id_needs_no_check_for_repeated_users(sql, single):
    query = translate(SqlQuery(sql, SqlDialect.CLICKHOUSE), as_of=date(2026, 12, 1),
                      event="compute_event", user="compute_user")
    assert one_row_per_user(query) is single


@pytest.mark.parametrize("sql, dialect, runs_on_store", [
    ("SELECT gio_id, count(1) AS tag_value FROM olap.event WHERE event_key = 'payOrderSuccess'"
     " AND dateDiff('day', dt, today()) BETWEEN 1 AND 30 GROUP BY gio_id", "clickhouse", True),
    ("SELECT u.gio_id, CASE WHEN sum(e.amount) > 10 THEN 'a' ELSE 'b' END AS tag_value"
     " FROM user u JOIN event e ON u.gio_id = e.gio_id WHERE e.dt >= today() - 3"
     " GROUP BY u.gio_id HAVING count(*) > 1", "clickhouse", True),
    ("SELECT gio_id, max(amount) AS tag_value FROM event WHERE gio_id IN"
     " (SELECT gio_id FROM user WHERE usr_city = 'x') GROUP BY gio_id", "duckdb", True),
    # any other function, a CTE or a set operation: the sandbox
    ("SELECT gio_id, upper(max(category)) AS tag_value FROM event GROUP BY gio_id", "duckdb",
     False),
    ("SELECT gio_id, arrayJoin([1, 2]) AS tag_value FROM olap.event", "clickhouse", False),
    ("WITH p AS (SELECT gio_id FROM event) SELECT gio_id, 1 AS tag_value FROM p", "duckdb",
     False),
    ("SELECT gio_id, 1 AS tag_value FROM event UNION SELECT gio_id, 2 AS tag_value FROM user",
     "duckdb", False),
])
def test_only_a_plain_query_may_run_on_the_store(sql, dialect, runs_on_store):
    query = translate(SqlQuery(sql, SqlDialect(dialect)), as_of=date(2026, 12, 1),
                      event="compute_event", user="compute_user")
    assert plain(query, ("compute_event", "compute_user")) is runs_on_store
    # the relation names are what makes a table readable: others are never plain
    assert plain(query, ("other",)) is False
