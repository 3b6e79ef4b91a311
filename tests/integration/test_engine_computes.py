"""Computed tags, the same on every engine: each test names the exact value every user gets
from a definition over the dataset in compute_data.py (read its events beside these), as
of 2026-11-20, read back through `Engine.export`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.computes import ComputeFailed, SqlDialect, SqlQuery, check_catalog, check_tag
from tagport.conditions import ConditionContext
from tagport.engines.duckdb.engine import DuckDBEngine
from tagport.engines.duckdb.store import DuckDBStore
from tagport.exports.formats import FileFormat, OutputFormat
from tagport.exports.plan import ExportPlan
from tests.integration.compute_data import (
    AS_OF,
    ENTRIES,
    EVENTS_CATALOG,
    PAY,
    VIEW,
    duckdb_events,
    load_users,
    spark_events,
)
from tests.spark_support import shared_spark

S, INT, F, D = ValueType.STRING, ValueType.INT, ValueType.DOUBLE, ValueType.DATE


def duckdb_engine(root: Path) -> DuckDBEngine:
    engine = DuckDBEngine(DuckDBStore(root / "p.duckdb"))
    load_users(engine, root)
    duckdb_events(engine.store)
    return engine


def spark_engine(root: Path):  # type: ignore[no-untyped-def]
    from tagport.engines.spark.engine import SparkEngine
    from tagport.engines.spark.store import ProfileStore

    spark = shared_spark()
    spark_events(spark, "computes_events")
    engine = SparkEngine(spark, ProfileStore(root / "profiles"),
                         events=lambda: spark.table("computes_events"))
    load_users(engine, root)
    return engine


class Tags:
    """Checks a definition as `catalog apply` does, computes it, reads every user's value."""

    def __init__(self, engine, root: Path) -> None:  # type: ignore[no-untyped-def]
        self.engine, self.root, self.n = engine, root, 0
        self.catalog = {e.key: e for e in ENTRIES}

    def entry(self, key: str, compute: dict, value_type: ValueType = INT,
              is_array: bool = False) -> CatalogEntry:
        entry = CatalogEntry(key, Kind.TAG, key, value_type, is_array, compute=compute,
                             scheduler="ONCE")
        self.catalog[key] = entry
        return entry

    def compute(self, key: str, compute: dict, value_type: ValueType = INT,
                is_array: bool = False, events=EVENTS_CATALOG) -> dict[int, object]:
        entry = self.entry(key, compute, value_type, is_array)
        context = ConditionContext(catalog=self.catalog, events=events)
        tag = check_tag(entry, context)
        assert tag is not None
        covered = self.engine.compute_tag(entry, tag.definition, as_of=AS_OF)
        values = self.read(key)
        assert covered == sum(v is not None for v in values.values())
        return values

    def read(self, key: str) -> dict[int, object]:
        self.n += 1
        work = self.root / f"out{self.n}"
        work.mkdir()
        plan = ExportPlan.for_tag(self.catalog["tag_all"], (self.catalog[key],),
                                  OutputFormat(FileFormat.JSON))
        lines = self.engine.export(plan, work, "u.json").files[0].read_text().splitlines()
        return {doc["gio_id"]: doc["properties"][key] for doc in map(json.loads, lines)}


_ENGINES = {"duckdb": duckdb_engine, "spark": spark_engine}


@pytest.fixture(scope="module", params=sorted(_ENGINES))
def tags(request):
    root = Path(tempfile.mkdtemp(prefix=f"tagport-computes-{request.param}-"))
    engine = _ENGINES[request.param](root)
    yield Tags(engine, root)
    engine.close()
    shutil.rmtree(root, ignore_errors=True)


def pay(measure, window=None, where=None, event=PAY) -> dict:
    doc = {"type": "AGGREGATED", "event": event, "measure": measure}
    if window is not None:
        doc["window"] = window
    if where is not None:
        doc["where"] = where
    return doc


LAST_30 = {"lastDays": 30}

# --- AGGREGATED ---------------------------------------------------------------------------


def test_count_over_last_days_excludes_the_compute_date_and_the_day_past_the_window(tags):
    # user 1: its 00:10 payment is dt 11-20 (excluded), its 23:50 one dt 11-19 (included);
    # user 2: 10-21 (30 days before) counts, 10-20 (31) does not; user 5 paid 50 days ago
    assert tags.compute("tag_pay_30d", pay("count", LAST_30)) == {
        1: 3, 2: 2, 3: 3, 4: 3, 5: None, 6: None}


def test_any_event_days_and_count_over_seven_days(tags):
    # 11-13 (7 days before) is in, 11-12 (8) is out: user 5 keeps it, user 4 loses it
    assert tags.compute("tag_days_7d", pay("days", {"lastDays": 7}, event="*")) == {
        1: 2, 2: 1, 3: 1, 4: 2, 5: 2, 6: None}
    assert tags.compute("tag_any_7d", pay("count", {"lastDays": 7}, event="*")) == {
        1: 4, 2: 1, 3: 2, 4: 2, 5: 3, 6: None}


def test_sum_ignores_null_amounts(tags):
    assert tags.compute("tag_paid_30d", pay({"sum": "amount"}, LAST_30), F) == {
        1: 170.0, 2: 60.0, 3: 35.0, 4: 40.0, 5: None, 6: None}


def test_avg_with_a_where_filter(tags):
    books = {"key": "category", "op": "=", "values": ["书"]}
    assert tags.compute("tag_avg_books", pay({"avg": "amount"}, LAST_30, books), F) == {
        1: 35.0, 2: 30.0, 3: 20.0, 4: None, 5: None, 6: None}


def test_max_without_a_window_reads_every_day_before_the_compute_date(tags):
    assert tags.compute("tag_max_paid", pay({"max": "amount"}), F) == {
        1: 100.0, 2: 70.0, 3: 20.0, 4: 40.0, 5: 500.0, 6: None}


def test_min_of_a_string_attribute_and_distinct_values(tags):
    assert tags.compute("tag_min_cat", pay({"min": "category"}, LAST_30), S) == {
        1: "书", 2: "书", 3: "书", 4: "数码", 5: None, 6: None}
    assert tags.compute("tag_cats", pay({"distinct": "category"}, LAST_30)) == {
        1: 2, 2: 2, 3: 2, 4: 1, 5: None, 6: None}


def test_a_from_to_window_includes_both_days(tags):
    window = {"from": "2026-10-01", "to": "2026-10-21"}
    assert tags.compute("tag_october", pay("count", window)) == {
        1: None, 2: 2, 3: None, 4: None, 5: 1, 6: None}


# --- ATTRIBUTION_ATTRIBUTE ----------------------------------------------------------------


def attribution(pick, value, event=PAY, window=None) -> dict:
    doc = {"type": "ATTRIBUTION_ATTRIBUTE", "event": event, "pick": pick, "value": value}
    return doc | ({"window": window} if window else {})


def test_last_event_by_local_day_then_time_then_load_order(tags):
    # user 1: the payment at 00:10 on 11-20 is later in time but out of the window;
    # user 3: two at the same time, the one loaded last wins; user 4: only non-null ones
    assert tags.compute("tag_last_cat", attribution("last", {"attribute": "category"},
                                                    window=LAST_30), S) == {
        1: "书", 2: "书", 3: "书", 4: "数码", 5: None, 6: None}


def test_first_event_and_ties_to_the_one_loaded_first(tags):
    assert tags.compute("tag_first_cat", attribution("first", {"attribute": "category"},
                                                     window=LAST_30), S) == {
        1: "书", 2: "美妆", 3: "运动", 4: "数码", 5: None, 6: None}
    assert tags.compute("tag_first_view", attribution("first", {"attribute": "category"},
                                                      VIEW), S) == {
        1: "书", 2: "美妆", 3: "数码", 4: None, 5: "书", 6: None}
    assert tags.compute("tag_last_view", attribution("last", {"attribute": "category"},
                                                     VIEW), S) == {
        1: "数码", 2: "美妆", 3: "书", 4: None, 5: "美妆", 6: None}


def test_last_amount_skips_events_without_one(tags):
    assert tags.compute("tag_last_amount", attribution("last", {"attribute": "amount"}), F) == {
        1: 20.0, 2: 30.0, 3: 20.0, 4: 40.0, 5: 500.0, 6: None}


def test_days_since_and_date_of_the_picked_event(tags):
    assert tags.compute("tag_since_pay", attribution("last", "daysSince")) == {
        1: 1, 2: 10, 3: 5, 4: 3, 5: 50, 6: None}
    assert tags.compute("tag_first_pay", attribution("first", "date"), D) == {
        1: "2026-11-18", 2: "2026-10-20", 3: "2026-11-05", 4: "2026-11-12", 5: "2026-10-01",
        6: None}


# --- TOP_N_ATTRIBUTE and DATA_SET_ATTRIBUTE -----------------------------------------------


def top(by, pick) -> dict:
    return {"type": "TOP_N_ATTRIBUTE", "event": PAY, "attribute": "category", "by": by,
            "pick": pick, "window": LAST_30}


def test_top_n_by_count_ties_to_the_smallest_value_and_ignores_nulls(tags):
    assert tags.compute("tag_top_cat", top("count", "max"), S) == {
        1: "书", 2: "书", 3: "运动", 4: "数码", 5: None, 6: None}
    assert tags.compute("tag_rare_cat", top("count", "min"), S) == {
        1: "数码", 2: "书", 3: "书", 4: "数码", 5: None, 6: None}


def test_top_n_by_sum_ignores_events_without_the_summed_attribute(tags):
    assert tags.compute("tag_top_spend", top({"sum": "amount"}, "max"), S) == {
        1: "数码", 2: "书", 3: "书", 4: None, 5: None, 6: None}


def test_data_set_is_the_distinct_values_ascending(tags):
    doc = {"type": "DATA_SET_ATTRIBUTE", "event": PAY, "attribute": "category",
           "window": LAST_30}
    assert tags.compute("tag_cat_set", doc, S, is_array=True) == {
        1: ["书", "数码"], 2: ["书", "美妆"], 3: ["书", "运动"], 4: ["数码"], 5: None, 6: None}


# --- HORIZONTAL -------------------------------------------------------------------------


def test_horizontal_takes_the_first_tier_that_holds_reading_a_computed_tag(tags):
    tags.entry("tag_orders", pay("count", LAST_30))
    tiers = {"type": "HORIZONTAL", "tiers": [
        {"value": "高", "when": {"key": "tag_orders", "op": ">=", "values": [3]}},
        {"value": "中", "when": {"did": {"event": PAY, "measure": "count", "window": LAST_30},
                                "op": ">=", "values": ["1"]}},
        {"value": "低", "when": {"key": "usr_city", "op": "=", "values": ["上海"]}},
    ]}
    tags.entry("tag_level", tiers, S)
    ordered = check_catalog(tags.catalog.values(), EVENTS_CATALOG)
    assert [t.key for t in ordered][-2:] == ["tag_orders", "tag_level"]
    for tag in ordered[-2:]:
        tags.engine.compute_tag(tags.catalog[tag.key], tag.definition, as_of=AS_OF)
    # user 1 is in the first two tiers and the third: the first wins; user 6 in none
    assert tags.read("tag_level") == {1: "高", 2: "中", 3: "高", 4: "高", 5: "低", 6: None}


def test_horizontal_dids_of_the_same_events_share_one_scan_with_the_same_values(tags):
    """Five `did`s of payments over 30 days (one aggregate, LEFT JOINed): a counting
    measure of no events is 0 (`count < 1` holds for users 5 and 6), a sum of none is
    null (`not (sum >= 50)` holds for them, as the semi-join has it), nested in and/not."""
    def did(measure, op, value) -> dict:
        return {"did": {"event": PAY, "measure": measure, "window": LAST_30},
                "op": op, "values": [value]}

    def not_(c) -> dict:
        return {"op": "not", "exprs": [c]}

    def and_(*cs) -> dict:
        return {"op": "and", "exprs": list(cs)}

    tiers = {"type": "HORIZONTAL", "tiers": [
        {"value": "big", "when": did({"sum": "amount"}, ">=", 100)},
        {"value": "many", "when": and_(did("count", ">=", 3),
                                       not_(did({"distinct": "category"}, "<", 2)))},
        {"value": "small", "when": and_(not_(did({"sum": "amount"}, ">=", 50)),
                                        did("count", ">=", 1))},
        {"value": "none", "when": did("count", "<", 1)},
        {"value": "rest", "when": {"op": "or", "exprs": [did({"sum": "amount"}, "<", 100),
                                                         did("count", "=", 2)]}},
    ]}
    # 30 days: counts 3, 2, 3, 3, 0, 0; sums 170, 60, 35, 40, null, null; categories 2, 2, 2, 1
    assert tags.compute("tag_shared_tiers", tiers, S) == {
        1: "big", 2: "rest", 3: "many", 4: "small", 5: "none", 6: "none"}


# --- SQL ------------------------------------------------------------------------------------

GROWINGIO = ("SELECT gio_id, count(1) AS tag_value FROM olap.event WHERE event_key ="
             " 'payOrderSuccess' AND dateDiff('day', dt, today()) BETWEEN 1 AND 30"
             " GROUP BY gio_id")


def test_growingio_clickhouse_sql_runs_unchanged(tags):
    assert tags.compute("tag_sql_ch", {"type": "SQL", "sql": GROWINGIO}) == {
        1: 3, 2: 2, 3: 3, 4: 3, 5: None, 6: None}


def test_a_duckdb_query_joining_user(tags):
    sql = ("SELECT e.gio_id, count(*) AS tag_value FROM event AS e JOIN olap.user AS u"
           " ON e.gio_id = u.gio_id WHERE u.usr_city = '上海' AND e.dt < current_date"
           " GROUP BY e.gio_id")
    assert tags.compute("tag_sql_duck", {"type": "SQL", "sql": sql, "dialect": "duckdb"}) == {
        1: 5, 2: None, 3: None, 4: None, 5: 4, 6: None}


def test_a_query_that_is_not_plain_computes_the_same(tags):
    # a CTE and a function outside computes.sql's plain nodes: DuckDB runs it in its
    # sandbox (the queries above run on the store), Spark over its temp views
    sql = ("WITH paid AS (SELECT gio_id, amount FROM event WHERE event_key = 'payOrderSuccess'"
           " AND dt < today()) SELECT gio_id, round(max(amount) / 3, 1) AS tag_value"
           " FROM paid GROUP BY gio_id")
    assert tags.compute("tag_sql_sandbox", {"type": "SQL", "sql": sql, "dialect": "duckdb"},
                        F) == {1: 33.3, 2: 23.3, 3: 6.7, 4: 13.3, 5: 166.7, 6: None}


def sql_tag(sql: str) -> SqlQuery:
    return SqlQuery(sql, SqlDialect.CLICKHOUSE)  # not checked: the engine checks again


@pytest.mark.parametrize("sql, message", [
    ("DROP TABLE event", "tag_refused: compute.sql: only a SELECT can run, not DROP"),
    ("SELECT gio_id, 1 AS tag_value FROM read_csv('/etc/passwd')",
     "tag_refused: compute.sql: table functions and file readers are not allowed: read_csv"),
    ("SELECT gio_id, 1 AS tag_value FROM users",
     "tag_refused: compute.sql: unknown table 'users': a query reads event and user"
     " (or olap.event and olap.user)"),
    ("SELECT gio_id, count(*) AS n FROM event GROUP BY gio_id",
     "tag_refused: the query must yield the columns gio_id and tag_value; it yields gio_id, n"),
    ("SELECT gio_id, 1 AS tag_value FROM event",
     "tag_refused: the query yields gio_id 1 more than once (one row per user)"),
])
def test_a_refused_query_names_why(tags, sql, message):
    entry = tags.entry("tag_refused", {"type": "SQL", "sql": sql})
    with pytest.raises(ComputeFailed) as failed:
        tags.engine.compute_tag(entry, sql_tag(sql), as_of=AS_OF)
    assert failed.value.message == message


def test_a_failing_query_leaves_the_previous_values(tags):
    good = "SELECT gio_id, max(amount) AS tag_value FROM event WHERE dt < today() GROUP BY gio_id"
    before = tags.compute("tag_atomic", {"type": "SQL", "sql": good}, F)
    assert before == {1: 100.0, 2: 70.0, 3: 20.0, 4: 40.0, 5: 500.0, 6: None}
    bad = "SELECT gio_id, sum(amout) AS tag_value FROM event GROUP BY gio_id"
    with pytest.raises(ComputeFailed) as failed:
        tags.engine.compute_tag(tags.catalog["tag_atomic"], sql_tag(bad), as_of=AS_OF)
    assert failed.value.message.startswith("tag_atomic: ")
    assert "amout" in failed.value.message
    assert tags.read("tag_atomic") == before


def test_a_value_that_does_not_fit_the_tag_type_fails_and_changes_nothing(tags):
    before = tags.compute("tag_fit", {"type": "SQL", "sql": GROWINGIO})
    text = "SELECT gio_id, 'many' AS tag_value FROM event GROUP BY gio_id"
    with pytest.raises(ComputeFailed):
        tags.engine.compute_tag(tags.catalog["tag_fit"], sql_tag(text), as_of=AS_OF)
    assert tags.read("tag_fit") == before


def test_recomputing_replaces_every_value(tags):
    assert tags.compute("tag_again", pay("count", LAST_30)) == {
        1: 3, 2: 2, 3: 3, 4: 3, 5: None, 6: None}
    assert tags.compute("tag_again", pay("count", {"lastDays": 1})) == {
        1: 2, 2: None, 3: None, 4: None, 5: None, 6: None}
    assert tags.read("tag_all") == {i: "x" for i in range(1, 7)}


# --- segment membership (spec section 8: a segment is computed like a tag) ----------------


def test_a_membership_is_true_for_the_members_and_null_for_everyone_else(tags):
    from tagport.catalog.segments import membership_column
    from tagport.computes import Membership
    from tagport.conditions import parse_condition

    context = ConditionContext(catalog=tags.catalog, events=EVENTS_CATALOG)
    paid_twice_not_shanghai = parse_condition({"op": "and", "exprs": [
        {"did": {"event": PAY, "measure": "count", "window": LAST_30}, "op": ">=",
         "values": [2]},
        {"op": "not", "exprs": [{"key": "usr_city", "op": "=", "values": ["上海"]}]}]}, context)
    column = membership_column("seg_paid")
    tags.catalog["seg_paid"] = column
    members = tags.engine.compute_tag(column, Membership(paid_twice_not_shanghai), as_of=AS_OF)
    # user 1 paid 3 times but lives in 上海; user 3's city is null: `not` holds for it
    assert tags.read("seg_paid") == {1: None, 2: True, 3: True, 4: True, 5: None, 6: None}
    assert members == 3
    never = parse_condition({"did": {"event": PAY, "measure": "count", "window": LAST_30},
                             "op": "=", "values": [0]}, context)
    assert tags.engine.compute_tag(column, Membership(never), as_of=AS_OF) == 2
    assert tags.read("seg_paid") == {1: None, 2: None, 3: None, 4: None, 5: True, 6: True}
    assert tags.engine.compute_tag(column, Membership(None), as_of=AS_OF) == 0
    assert set(tags.read("seg_paid").values()) == {None}


def test_users_stay_in_gio_id_order_after_computing(tags):
    tags.compute("tag_order_check", pay("count", LAST_30))
    work = tags.root / "order-check"
    work.mkdir()
    plan = ExportPlan.for_tag(tags.catalog["tag_all"], (tags.catalog["tag_order_check"],),
                              OutputFormat(FileFormat.JSON))
    lines = tags.engine.export(plan, work, "u.json").files[0].read_text().splitlines()
    assert [json.loads(line)["gio_id"] for line in lines] == [1, 2, 3, 4, 5, 6]


# --- keys no load has brought -------------------------------------------------------------

# the event catalog says payments have a coupon and a quantity; no load brought either, so
# the stored events have no column for them
ABSENT = {PAY: {**EVENTS_CATALOG[PAY], "coupon": S, "quantity": INT},
          VIEW: EVENTS_CATALOG[VIEW]}
NOBODY = dict.fromkeys(range(1, 7))


def test_an_event_attribute_never_loaded_reads_as_null_in_every_tag_type(tags):
    def compute(key, doc, value_type=INT, is_array=False):
        return tags.compute(key, doc, value_type, is_array, events=ABSENT)

    assert compute("tag_quantity", pay({"sum": "quantity"}, LAST_30)) == NOBODY
    assert compute("tag_no_coupon", pay("count", LAST_30, {
        "key": "coupon", "op": "is null", "values": []})) == {
        1: 3, 2: 2, 3: 3, 4: 3, 5: None, 6: None}
    assert compute("tag_coupons", pay({"distinct": "coupon"}, LAST_30)) == {
        1: 0, 2: 0, 3: 0, 4: 0, 5: None, 6: None}
    assert compute("tag_last_coupon", attribution("last", {"attribute": "coupon"}), S) == NOBODY
    top = {"type": "TOP_N_ATTRIBUTE", "event": PAY, "attribute": "coupon", "by": "count",
           "pick": "max"}
    assert compute("tag_top_coupon", top, S) == NOBODY
    assert compute("tag_top_by_quantity", dict(top, attribute="category",
                                               by={"sum": "quantity"}), S) == NOBODY
    assert compute("tag_coupon_set", {"type": "DATA_SET_ATTRIBUTE", "event": PAY,
                                      "attribute": "coupon"}, S, True) == NOBODY
    tiers = {"type": "HORIZONTAL", "tiers": [
        {"value": "coupon", "when": {"did": {"event": PAY, "measure": "count", "where": {
            "key": "coupon", "op": "=", "values": ["X"]}}, "op": ">=", "values": [1]}},
        {"value": "payer", "when": {"did": {"event": PAY, "measure": "count"},
                                    "op": ">=", "values": [1]}}]}
    assert compute("tag_coupon_tier", tiers, S) == {
        1: "payer", 2: "payer", 3: "payer", 4: "payer", 5: "payer", 6: None}


def test_a_user_attribute_never_loaded_reads_as_null(tags):
    tags.catalog["usr_age"] = CatalogEntry("usr_age", Kind.ATTRIBUTE, "年龄", INT)
    tiers = {"type": "HORIZONTAL", "tiers": [
        {"value": "adult", "when": {"key": "usr_age", "op": ">=", "values": [18]}},
        {"value": "unknown", "when": {"key": "usr_age", "op": "is null", "values": []}}]}
    assert tags.compute("tag_age_tier", tiers, S) == dict.fromkeys(range(1, 7), "unknown")


def test_duckdb_users_keep_their_gio_id_order_through_computations(tags):
    """Exports scan `users` in gio_id order without a sort; a computation updates a scalar
    column in place (an array tag is JSON text), so it does not check the order after."""
    if tags.engine.name != "duckdb":
        pytest.skip("the DuckDB store's layout")
    from tagport.engines.duckdb.store import restore_gio_order

    tags.compute("tag_order_set", {"type": "DATA_SET_ATTRIBUTE", "event": PAY,
                                   "attribute": "category"}, S, True)
    tags.compute("tag_order_count", pay("count"))
    cur = tags.engine.store.cursor()
    try:
        assert restore_gio_order(cur) is False  # nothing to restore
    finally:
        cur.close()


def test_duckdb_runs_a_query_that_is_not_plain_where_no_file_is_reachable(tmp_path):
    # computes.sql refuses the file readers it knows by name before any engine runs a
    # query; one it did not know would still find the sandbox's file access off
    import sqlglot

    from tagport.engines.duckdb.compute import _run_sandboxed

    engine = duckdb_engine(tmp_path)
    entry = CatalogEntry("tag_file", Kind.TAG, "tag_file", S, False, scheduler="ONCE")
    query = sqlglot.parse_one("SELECT 1 AS gio_id, content AS tag_value"
                              " FROM read_text('/etc/hostname')", read="duckdb")
    cur = engine.store.cursor()
    try:
        with pytest.raises(ComputeFailed) as failed:
            _run_sandboxed(engine.store, cur, entry, query)
    finally:
        cur.close()
        engine.close()
    assert failed.value.message == ('tag_file: Permission Error: Cannot access file'
                                    ' "/etc/hostname" - file system operations are disabled'
                                    ' by configuration')
