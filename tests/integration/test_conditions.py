"""The condition tree on every engine: each test names the exact users a condition selects
from the dataset in condition_data.py (read its tables beside these tests)."""

from __future__ import annotations

import duckdb
import pytest
from sqlglot import exp

from tagport.conditions import compile_condition, parse_condition, select_members, to_sql
from tests.integration.condition_data import (
    ALL,
    AS_OF,
    CONTEXT,
    PAY,
    VIEW,
    duckdb_tables,
    spark_views,
)
from tests.spark_support import shared_spark


class DuckDBMembers:
    def __init__(self) -> None:
        from tagport.engines.duckdb.conditions import DuckDBValues

        self.con = duckdb.connect()
        duckdb_tables(self.con)
        columns = [r[0] for r in self.con.execute("DESCRIBE users").fetchall()]
        self.reader = DuckDBValues(columns)

    users, events = "users", "events"

    def __call__(self, doc: dict) -> set[int]:
        query = select_members(parse_condition(doc, CONTEXT), self.reader, as_of=AS_OF)
        return {r[0] for r in self.rows(query)}

    def rows(self, query: exp.Expression) -> list[tuple]:
        return self.con.execute(to_sql(query, self.reader)).fetchall()


class SparkMembers:
    def __init__(self) -> None:
        from tagport.engines.spark.conditions import SparkValues

        self.spark = shared_spark()
        spark_views(self.spark, self.users, self.events)
        schema = self.spark.table("cond_users").schema
        self.reader = SparkValues({f.name: f.dataType.simpleString() for f in schema})

    users, events = "cond_users", "cond_events"

    def __call__(self, doc: dict) -> set[int]:
        query = select_members(parse_condition(doc, CONTEXT), self.reader, as_of=AS_OF,
                               users_table=self.users, events=self.events)
        return {r[0] for r in self.rows(query)}

    def rows(self, query: exp.Expression) -> list[tuple]:
        return [tuple(r) for r in self.spark.sql(to_sql(query, self.reader)).collect()]


_ENGINES = {"duckdb": DuckDBMembers, "spark": SparkMembers}


@pytest.fixture(scope="session", params=sorted(_ENGINES))
def members(request):
    """A function from a condition's JSON to the gio_ids it selects, on each engine."""
    return _ENGINES[request.param]()


def key(k, op, *values):
    return {"key": k, "op": op, "values": list(values)}


def not_(c):
    return {"op": "not", "exprs": [c]}


def and_(*cs):
    return {"op": "and", "exprs": list(cs)}


def or_(*cs):
    return {"op": "or", "exprs": list(cs)}


def did(event, op, *values, measure="count", window=None, where=None):
    behaviour = {"event": event, "measure": measure}
    if window is not None:
        behaviour["window"] = window
    if where is not None:
        behaviour["where"] = where
    return {"did": behaviour, "op": op, "values": list(values)}


# -- each operator on scalars; a null value satisfies none but `is null` ----------------

@pytest.mark.parametrize("condition, expected", [
    (key("usr_gender", "=", "男"), {1, 3, 5, 7}),
    (key("usr_gender", "!=", "男"), {2, 6, 8}),
    (key("usr_age", ">", 30), {3, 7, 8}),
    (key("usr_age", ">=", "30"), {1, 3, 5, 7, 8}),
    (key("usr_score", "<", 2.5), {6, 7}),
    (key("usr_score", "<=", 3), {2, 4, 6, 7}),
    (key("usr_birthday", "between", "1996-03-01", "2001-01-01"), {1, 2, 5}),
    (key("usr_city", "in", "上海", "深圳"), {1, 4, 6}),
    (key("usr_city", "not in", "上海", "深圳"), {2, 3, 7, 8}),
    (key("usr_city", "contains", "海"), {1, 6}),
    (key("usr_city", "not contains", "海"), {2, 3, 4, 7, 8}),
    (key("usr_city", "starts with", "北"), {2, 3}),
    (key("usr_city", "is null"), {5}),
    (key("usr_age", "is not null"), ALL - {4}),
], ids=lambda v: v["op"] if isinstance(v, dict) else None)
def test_each_operator_on_a_scalar_key(members, condition, expected):
    assert members(condition) == expected


def test_contains_and_starts_with_take_quotes_and_wildcards_literally(members):
    assert members(key("usr_city", "contains", "0%_")) == {8}
    assert members(key("usr_city", "contains", "%")) == {8}
    assert members(key("usr_city", "starts with", "O'")) == {8}
    assert members(key("usr_city", "contains", "_")) == {8}


def test_bools_dates_and_datetimes_compare_as_their_type(members):
    assert members(key("usr_vip", "=", True)) == {1, 3, 6}
    assert members(key("usr_vip", "=", "false")) == {2, 5, 8}
    assert members(key("usr_seen", ">=", "2026-11-01 08:00:00")) == {1, 4}
    assert members(key("usr_seen", ">=", "2026-11-01T16:00:00+08:00")) == {1, 4}  # in UTC
    assert members(key("usr_birthday", "<", "1990-01-01")) == {4}


# -- not negates nulls too; nesting -------------------------------------------------------

def test_not_holds_for_a_null_value(members):
    assert members(not_(key("usr_gender", "=", "男"))) == {2, 4, 6, 8}
    assert members(not_(key("usr_city", "in", "上海"))) == {2, 3, 4, 5, 7, 8}
    assert members(not_(key("usr_age", ">", 30))) == {1, 2, 4, 5, 6}


def test_not_not_is_the_condition(members):
    assert members(not_(not_(key("usr_gender", "=", "男")))) == {1, 3, 5, 7}


def test_nested_and_or_not(members):
    men_of_beijing_or_over_50 = and_(key("usr_gender", "=", "男"),
                                     or_(key("usr_city", "=", "北京"), key("usr_age", ">=", 50)))
    no_vip_flag = not_(key("usr_vip", "is not null"))
    assert members(men_of_beijing_or_over_50) == {3, 7}
    assert members(or_(men_of_beijing_or_over_50, no_vip_flag)) == {3, 4, 7}
    assert members(and_(not_(men_of_beijing_or_over_50), key("usr_gender", "=", "男"))) == {1, 5}


# -- lists: any element; `is null` is no element --------------------------------------------

@pytest.mark.parametrize("condition, expected", [
    (key("tag_interests", "=", "数码"), {1, 5}),
    (key("tag_interests", "!=", "数码"), {1, 2, 3, 5, 7}),
    (key("tag_interests", "in", "书", "运动"), {3, 5, 7}),
    (key("tag_interests", "not in", "数码", "美妆"), {3, 5, 7}),
    (key("tag_interests", "contains", "妆"), {1, 2}),
    (key("tag_interests", "not contains", "数"), {1, 2, 3, 5, 7}),
    (key("tag_interests", "starts with", "运"), {3, 5}),
    (key("tag_interests", "is null"), {4, 6, 8}),
    (key("tag_interests", "is not null"), {1, 2, 3, 5, 7}),
    (not_(key("tag_interests", "=", "数码")), {2, 3, 4, 6, 7, 8}),
    (key("tag_levels", ">", 6), {4, 5}),
    (key("tag_levels", "between", 2, 4), {2, 5, 7}),
    (key("tag_levels", "<=", 1), {1}),
    (key("tag_levels", "is null"), {3, 6, 8}),
], ids=lambda v: f"{v['key']} {v['op']}" if isinstance(v, dict) and "key" in v else None)
def test_an_array_tag_holds_when_any_element_does(members, condition, expected):
    assert members(condition) == expected


@pytest.mark.parametrize("condition, expected", [
    (key("id_uid", "=", "u3b"), {3}),
    (key("id_uid", "=", "u3a"), {3}),
    (key("id_uid", "=", "u3a||u3b"), set()),  # the stored form is no value of its own
    (key("id_uid", "contains", "|"), set()),
    (key("id_uid", "in", "u1", "u3b"), {1, 3}),
    (key("id_uid", "!=", "u3a"), ALL - {7}),
    (key("id_uid", "starts with", "u3"), {3}),
    (key("id_uid", "is null"), {7}),
    (not_(key("id_uid", "=", "u3a")), ALL - {3}),
], ids=lambda v: f"{v['op']}" if isinstance(v, dict) and "key" in v else None)
def test_a_multi_valued_identity_holds_when_any_value_does(members, condition, expected):
    assert members(condition) == expected


def test_a_key_without_a_column_is_null_for_everyone(members):
    assert members(key("usr_never", "is null")) == ALL
    assert members(key("usr_never", "=", "x")) == set()
    assert members(not_(key("usr_never", "=", "x"))) == ALL


# -- did ------------------------------------------------------------------------------------

def test_count_zero_is_did_not_do(members):
    assert members(did(PAY, "=", 0, window={"lastDays": 7})) == {3, 4, 5, 6, 8}
    assert members(did("*", "=", 0)) == {6, 8}  # 8's one event is on the compute date


def test_count_and_days_of_a_behaviour(members):
    assert members(did(PAY, ">=", 2, window={"lastDays": 30})) == {1, 2, 3, 5}
    assert members(did(VIEW, "=", 3)) == {4}
    assert members(did(VIEW, "=", 2, measure="days")) == {1, 4}  # 4 viewed twice on one day
    assert members(did(PAY, "!=", 2)) == {4, 5, 6, 7, 8}  # counts 1, 3, 0, 1, 0


def test_sum_with_an_event_filter(members):
    digital = key("category", "=", "数码")
    assert members(did(PAY, ">=", 50, measure={"sum": "amount"}, where=digital)) == {1}
    # a null category is not "not 书": user 5's 200 is left out
    not_books = key("category", "!=", "书")
    assert members(did(PAY, ">=", 70, measure={"sum": "amount"}, where=not_books)) == {1, 3}


def test_a_sum_of_no_events_is_null_and_compares_false(members):
    assert members(did(PAY, "<", 20, measure={"sum": "amount"})) == {4}
    assert members(not_(did(PAY, ">=", 20, measure={"sum": "amount"}))) == {4, 6, 7, 8}


def test_avg_max_and_distinct(members):
    assert members(did(PAY, ">", 50, measure={"avg": "amount"})) == {1, 5}
    assert members(did(PAY, ">=", 100, measure={"max": "amount"})) == {1, 5}
    assert members(did(PAY, "<=", 20, measure={"min": "amount"})) == {3, 4, 5}
    assert members(did(VIEW, "=", 0, measure={"distinct": "category"})) == {5, 6, 7, 8}
    assert members(did(VIEW, "=", 2, measure={"distinct": "category"})) == {1, 4}


def test_any_event_with_a_filter(members):
    books = key("category", "=", "书")
    assert members(did("*", ">=", 1, window={"lastDays": 30}, where=books)) == {1, 2, 4, 7}


def test_last_days_includes_the_nth_day_before_and_excludes_the_compute_date(members):
    beauty = key("category", "=", "美妆")
    assert members(did(PAY, ">=", 1, window={"lastDays": 7}, where=beauty)) == {2}
    assert members(did(PAY, ">=", 1, window={"lastDays": 6}, where=beauty)) == set()
    sport = key("category", "=", "运动")
    assert members(did(PAY, "=", 2, window={"lastDays": 8}, where=sport)) == {3}
    assert members(did(PAY, ">=", 1, window={"lastDays": 7}, where=sport)) == set()
    assert members(did(PAY, ">=", 1, window={"lastDays": 1})) == {1, 2, 7}
    assert members(did(PAY, ">=", 1, where=key("amount", "=", 999))) == set()


def test_from_to_includes_both_days(members):
    assert members(did(PAY, "=", 2, window={"from": "2026-10-01", "to": "2026-10-25"})) == {5}
    assert members(did(PAY, ">=", 1, window={"from": "2026-10-02", "to": "2026-10-24"})) == set()
    # a range is taken as given, the compute date included
    assert members(did(PAY, ">=", 1, window={"from": "2026-11-20", "to": "2026-11-20"})) == {1}


def test_did_between_and_in(members):
    assert members(did(PAY, "between", 1, 2)) == {1, 2, 3, 4, 7}
    assert members(did(PAY, "in", 0, 3)) == {5, 6, 8}


# -- segments ---------------------------------------------------------------------------------

def test_segment_membership_is_a_value_in_its_column(members):
    assert members({"segment": "seg_active"}) == {1, 3, 5}
    assert members(not_({"segment": "seg_active"})) == {2, 4, 6, 7, 8}
    assert members(key("seg_active", "is null")) == {2, 4, 6, 7, 8}


def test_the_worked_example_of_docs_conditions(members):
    """Men who paid at least twice in the last 30 days and are not in Shanghai."""
    condition = and_(
        key("usr_gender", "=", "男"),
        did(PAY, ">=", 2, window={"lastDays": 30}),
        not_(key("usr_city", "=", "上海")),
    )
    assert members(condition) == {3, 5}  # 5's city is null: not in Shanghai


def test_conditions_pick_horizontal_tiers_in_a_case_when(members):
    """A HORIZONTAL tag: the first tier whose condition holds, else null."""
    tiers = [("heavy", and_(did(PAY, ">=", 2, window={"lastDays": 30}),
                            key("tag_interests", "=", "数码"))),
             ("light", did(PAY, ">=", 1))]
    case = exp.Case(ifs=[exp.If(this=compile_condition(
        parse_condition(when, CONTEXT), members.reader, as_of=AS_OF, events=members.events),
        true=exp.Literal.string(value)) for value, when in tiers])
    query = (exp.select("u.gio_id", case).from_(exp.alias_(exp.to_table(members.users), "u", table=True))
             .order_by("u.gio_id"))
    assert members.rows(query) == [(1, "heavy"), (2, "light"), (3, "light"), (4, "light"),
                                   (5, "heavy"), (6, None), (7, "light"), (8, None)]
