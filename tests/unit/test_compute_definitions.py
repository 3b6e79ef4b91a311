"""Checking computed tags' definitions: every refusal names the tag and the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.catalog.schemas import CatalogFile
from tagport.catalog.service import CatalogService, entries_from_file
from tagport.computes import (
    Aggregated,
    Attribution,
    AttributionValue,
    ComputedTag,
    DataSet,
    Horizontal,
    Pick,
    Rank,
    Scheduler,
    SqlQuery,
    TopN,
    check_catalog,
    check_tag,
    order,
)
from tagport.conditions import ConditionContext, LastDays, MeasureKind
from tagport.db import create_db_engine, event_attributes, event_definitions, migrate
from tagport.errors import InvalidInput

PAY, VIEW = "payOrderSuccess", "viewPage"
EVENTS = {PAY: {"amount": ValueType.DOUBLE, "category": ValueType.STRING,
                "quantity": ValueType.INT},
          VIEW: {"category": ValueType.STRING}}
S, INT, F = ValueType.STRING, ValueType.INT, ValueType.DOUBLE
BASE = [CatalogEntry("usr_city", Kind.ATTRIBUTE, "城市", S),
        CatalogEntry("tag_rfm", Kind.TAG, "RFM", S)]


def tag(key: str, compute: dict | None, value_type: ValueType = INT, is_array: bool = False,
        scheduler: str | None = "DAILY", kind: Kind = Kind.TAG) -> CatalogEntry:
    return CatalogEntry(key, kind, key, value_type, is_array, compute=compute,
                        scheduler=scheduler if compute is not None else None)


def check(entry: CatalogEntry, *others: CatalogEntry) -> ComputedTag | None:
    catalog = {e.key: e for e in [*BASE, *others, entry]}
    return check_tag(entry, ConditionContext(catalog=catalog, events=EVENTS))


def refusal(entry: CatalogEntry, *others: CatalogEntry) -> str:
    with pytest.raises(InvalidInput) as refused:
        check(entry, *others)
    return refused.value.message


def agg(measure, **more) -> dict:
    return {"type": "AGGREGATED", "event": PAY, "measure": measure, **more}


# --- what each type parses into -----------------------------------------------------------


def test_an_aggregated_definition_is_a_behaviour_of_the_conditions():
    checked = check(tag("tag_paid_30d", agg({"sum": "amount"}, window={"lastDays": 30}), F))
    assert checked is not None and checked.scheduler is Scheduler.DAILY
    definition = checked.definition
    assert isinstance(definition, Aggregated)
    assert definition.behaviour.measure.kind is MeasureKind.SUM
    assert definition.behaviour.window == LastDays(30)


def test_each_other_type_parses_into_its_class():
    last = {"type": "ATTRIBUTION_ATTRIBUTE", "event": PAY, "pick": "last",
            "value": {"attribute": "category"}}
    top = {"type": "TOP_N_ATTRIBUTE", "event": PAY, "attribute": "category",
           "by": {"sum": "amount"}, "pick": "max"}
    data_set = {"type": "DATA_SET_ATTRIBUTE", "event": VIEW, "attribute": "category"}
    tiers = {"type": "HORIZONTAL", "tiers": [
        {"value": "高", "when": {"key": "tag_rfm", "op": "=", "values": ["A"]}}]}
    sql = {"type": "SQL", "sql": "SELECT gio_id, 1 AS tag_value FROM event"}
    assert check(tag("tag_a", last, S)).definition == Attribution(
        check(tag("tag_a", last, S)).definition.events, Pick.LAST, AttributionValue.ATTRIBUTE,
        "category", S)
    assert isinstance(check(tag("tag_t", top, S)).definition, TopN)
    assert check(tag("tag_t", top, S)).definition.rank is Rank.MAX
    assert isinstance(check(tag("tag_d", data_set, S, is_array=True)).definition, DataSet)
    horizontal = check(tag("tag_h", tiers, S)).definition
    assert isinstance(horizontal, Horizontal) and horizontal.reads == {"tag_rfm"}
    assert check(tag("tag_s", sql, F, scheduler="ONCE")) == ComputedTag(
        "tag_s", SqlQuery(sql["sql"], "clickhouse"), Scheduler.ONCE)


def test_a_loaded_tag_has_no_definition():
    assert check(tag("tag_x", None, S)) is None


# --- refusals, each naming the tag and the field ------------------------------------------


@pytest.mark.parametrize("compute, value_type, message", [
    (agg({"sum": "amout"}), F,
     "tag_x: compute.measure.sum: unknown attribute 'amout' of event 'payOrderSuccess'"),
    (agg({"sum": "category"}), F,
     "tag_x: compute.measure.sum: 'category' is a string attribute; sum takes an int or"
     " double one"),
    (agg("count", event="payOrder"), INT, "tag_x: compute.event: unknown event 'payOrder'"),
    (agg("often"), INT, "tag_x: compute.measure: unknown measure 'often'"),
    (agg("count", window={"lastDays": 0}), INT,
     "tag_x: compute.window.lastDays: 0 is not a whole number of days (1 or more)"),
    (agg("count", where={"key": "price", "op": ">", "values": [1]}), INT,
     "tag_x: compute.where.key: unknown attribute 'price' of event 'payOrderSuccess'"),
    (agg("count", every="day"), INT,
     "tag_x: compute.every: unknown field of a AGGREGATED definition (here: event, measure,"
     " window, where)"),
    ({"type": "RFM"}, S, "tag_x: compute.type: unknown type 'RFM' (one of AGGREGATED,"
     " ATTRIBUTION_ATTRIBUTE, TOP_N_ATTRIBUTE, DATA_SET_ATTRIBUTE, HORIZONTAL, SQL)"),
    ("count", INT, "tag_x: compute: a definition is an object with a type, got 'count'"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 12 else None)
def test_a_mistake_in_a_definition_names_the_tag_and_the_field(compute, value_type, message):
    assert refusal(tag("tag_x", compute, value_type)).startswith(message)


@pytest.mark.parametrize("compute, value_type, is_array, message", [
    (agg("count"), S, False, "the tag is declared string but its AGGREGATED definition"
     " yields int"),
    (agg({"sum": "amount"}), INT, False, "the tag is declared int but its AGGREGATED"
     " definition yields double"),
    (agg({"avg": "quantity"}), INT, False, "the tag is declared int but its AGGREGATED definition"
     " yields double"),
    (agg({"min": "category"}), INT, False, "the tag is declared int but its AGGREGATED definition"
     " yields string"),
    (agg("days"), INT, True, "the tag is declared int[] but its AGGREGATED definition yields int"),
    ({"type": "ATTRIBUTION_ATTRIBUTE", "event": PAY, "pick": "first", "value": "daysSince"},
     ValueType.DATE, False, "the tag is declared date but its ATTRIBUTION_ATTRIBUTE definition yields int"),
    ({"type": "ATTRIBUTION_ATTRIBUTE", "event": PAY, "pick": "first", "value": "date"},
     S, False, "the tag is declared string but its ATTRIBUTION_ATTRIBUTE definition yields date"),
    ({"type": "TOP_N_ATTRIBUTE", "event": PAY, "attribute": "amount", "by": "count",
      "pick": "max"}, S, False, "the tag is declared string but its TOP_N_ATTRIBUTE definition yields"
     " double"),
    ({"type": "DATA_SET_ATTRIBUTE", "event": PAY, "attribute": "category"}, S, False,
     "the tag is declared string but its DATA_SET_ATTRIBUTE definition yields string[]"),
])
def test_the_declared_type_must_fit_what_the_definition_yields(compute, value_type, is_array,
                                                                message):
    assert refusal(tag("tag_x", compute, value_type, is_array)) == f"tag_x: type: {message}"


def test_an_int_fits_a_double_tag_and_a_sum_of_ints_is_an_int():
    assert check(tag("tag_x", agg("count"), F)) is not None
    assert check(tag("tag_x", agg({"sum": "quantity"}), INT)) is not None


@pytest.mark.parametrize("compute, message", [
    ({"type": "ATTRIBUTION_ATTRIBUTE", "event": PAY, "pick": "middle", "value": "date"},
     "compute.pick: 'middle' is not 'first' or 'last'"),
    ({"type": "ATTRIBUTION_ATTRIBUTE", "event": PAY, "pick": "last", "value": "amount"},
     'compute.value: {"attribute": a}, "daysSince" or "date", got \'amount\''),
    ({"type": "ATTRIBUTION_ATTRIBUTE", "event": PAY, "pick": "last",
      "value": {"attribute": "colour"}},
     "compute.value.attribute: unknown attribute 'colour' of event 'payOrderSuccess'"),
    ({"type": "ATTRIBUTION_ATTRIBUTE", "event": "*", "pick": "last", "value": "date"},
     'compute.event: "*" (any event) is for AGGREGATED tags: name an event'),
    ({"type": "TOP_N_ATTRIBUTE", "event": PAY, "attribute": "category", "by": {"sum": "category"},
      "pick": "max"}, "compute.by.sum: 'category' is a string attribute; sum takes an int or"
     " double one"),
    ({"type": "TOP_N_ATTRIBUTE", "event": PAY, "attribute": "category", "by": "days",
      "pick": "max"}, 'compute.by: "count" or {"sum": attribute}, got \'days\''),
    ({"type": "TOP_N_ATTRIBUTE", "event": PAY, "attribute": "category", "by": "count",
      "pick": "first"}, "compute.pick: 'first' is not 'max' or 'min'"),
    ({"type": "DATA_SET_ATTRIBUTE", "event": VIEW, "attribute": "amount"},
     "compute.attribute: unknown attribute 'amount' of event 'viewPage'"),
])
def test_attribution_top_n_and_data_set_refusals(compute, message):
    assert refusal(tag("tag_x", compute, S)) == f"tag_x: {message}"


def tiers(*pairs) -> dict:
    return {"type": "HORIZONTAL", "tiers": [{"value": v, "when": w} for v, w in pairs]}


def is_(key, value) -> dict:
    return {"key": key, "op": "=", "values": [value]}


def test_horizontal_tier_values_are_of_the_tag_type_and_conditions_are_checked():
    assert refusal(tag("tag_x", tiers(("abc", is_("usr_city", "上海"))), INT)) == (
        "tag_x: compute.tiers[0].value: 'abc' is not an int (the tag's type)")
    assert refusal(tag("tag_x", tiers((1, is_("usr_city", "上海")), (2, is_("usr_town", "x")))
                       )) == "tag_x: compute.tiers[1].when.key: unknown key 'usr_town'"
    assert refusal(tag("tag_x", {"type": "HORIZONTAL", "tiers": []})).startswith(
        "tag_x: compute.tiers: a list of")
    assert refusal(tag("tag_x", tiers(("高", is_("usr_city", "上海"))), S, is_array=True)) == (
        "tag_x: type: the tag is declared string[] but its HORIZONTAL definition yields string")


def test_a_tier_reading_its_own_tag_or_a_cycle_of_tags_is_refused():
    own = tag("tag_x", tiers(("高", is_("tag_x", "高"))), S)
    assert refusal(own) == "tag_x: compute.tiers: a tier reads the tag itself (tag_x)"
    a = tag("tag_a", tiers(("高", is_("tag_b", "高"))), S)
    b = tag("tag_b", tiers(("高", is_("tag_c", "高"))), S)
    c = tag("tag_c", tiers(("高", is_("tag_a", "高"))), S)
    with pytest.raises(InvalidInput) as refused:
        check_catalog([*BASE, a, b, c], EVENTS)
    assert refused.value.message == ("tag_a: compute.tiers: the computed tags read each other"
                                     " in a cycle: tag_a -> tag_b -> tag_c -> tag_a")


def test_order_puts_the_tags_a_tier_reads_first():
    level = tag("tag_level", tiers(("高", {"key": "tag_orders", "op": ">=", "values": [3]}),
                                   ("中", is_("tag_vip", "是"))), S)
    vip = tag("tag_vip", tiers(("是", {"key": "tag_orders", "op": ">", "values": [9]})), S)
    orders = tag("tag_orders", agg("count"))
    checked = check_catalog([*BASE, level, vip, orders], EVENTS)
    assert [t.key for t in checked] == ["tag_orders", "tag_vip", "tag_level"]
    assert [t.key for t in order(reversed(checked))] == ["tag_orders", "tag_vip", "tag_level"]
    assert [t.key for t in order([checked[2]])] == ["tag_level"]  # others not computed now


@pytest.mark.parametrize("sql, message", [
    ("DROP TABLE event", "only a SELECT can run, not DROP"),
    ("INSERT INTO event SELECT * FROM event", "only a SELECT can run, not INSERT"),
    ("SELECT gio_id, 1 AS tag_value FROM event; SELECT 1", "one SELECT statement, got 2"
     " statements"),
    ("SELECT * FROM file('/etc/passwd', 'CSV')",
     "table functions and file readers are not allowed: file"),
    ("SELECT * FROM url('http://example.com/x.csv', CSV)",
     "table functions and file readers are not allowed: url"),
    ("SELECT gio_id, 1 AS tag_value FROM default.users",
     "unknown table 'default.users': a query reads event and user (or olap.event and"
     " olap.user)"),
    ("SELECT gio_id, 1 AS tag_value FROM event WHERE", "not valid clickhouse SQL"),
])
def test_a_sql_tag_is_one_select_over_event_and_user(sql, message):
    assert refusal(tag("tag_x", {"type": "SQL", "sql": sql})).startswith(
        f"tag_x: compute.sql: {message}")


def test_spark_and_duckdb_file_readers_and_host_calls_are_refused():
    refused = [("spark", "SELECT reflect('java.lang.Runtime', 'getRuntime') AS tag_value"),
               ("spark", "SELECT gio_id FROM parquet.`/data/users`"),
               ("spark", "SELECT TRANSFORM(gio_id) USING 'sh' AS (tag_value) FROM event"),
               ("duckdb", "SELECT * FROM read_parquet('/data/x.parquet')"),
               ("duckdb", "SELECT getenv('HOME') AS tag_value")]
    for dialect, sql in refused:
        message = refusal(tag("tag_x", {"type": "SQL", "sql": sql, "dialect": dialect}))
        assert message.startswith("tag_x: compute.sql: "), message
    assert refusal(tag("tag_x", {"type": "SQL", "sql": "SELECT 1", "dialect": "mysql"})) == (
        "tag_x: compute.dialect: 'mysql' is not clickhouse, duckdb or spark")


def test_ctes_and_unions_over_the_relations_are_queries():
    sql = ("WITH paid AS (SELECT gio_id FROM olap.event WHERE event_key = 'payOrderSuccess')"
           " SELECT gio_id, 1 AS tag_value FROM paid UNION ALL"
           " SELECT gio_id, 2 AS tag_value FROM olap.user")
    assert check(tag("tag_x", {"type": "SQL", "sql": sql})) is not None


def test_schedulers_and_kinds():
    assert refusal(tag("tag_x", agg("count"), scheduler="HOURLY")) == (
        "tag_x: scheduler: 'HOURLY' is not DAILY or ONCE")
    loaded = CatalogEntry("tag_x", Kind.TAG, "x", S, scheduler="DAILY")
    assert refusal(loaded) == ("tag_x: scheduler: only a computed tag (with a compute) has a"
                               " scheduler")
    attribute = tag("usr_x", agg("count"), kind=Kind.ATTRIBUTE)
    assert refusal(attribute) == "usr_x: compute: only a tag can be computed, not a attribute"


# --- the catalog file and `catalog apply` ---------------------------------------------------


def test_the_catalog_file_takes_compute_and_scheduler_daily_by_default():
    spec = CatalogFile.model_validate({"tags": [
        {"key": "tag_paid", "name": "支付次数", "type": "int",
         "compute": agg("count", window={"lastDays": 30})},
        {"key": "tag_once", "name": "一次", "type": "int", "compute": agg("days"),
         "scheduler": "ONCE"},
        {"key": "tag_rfm", "name": "RFM"}]})
    entries = entries_from_file(spec)
    assert [(e.compute_type, e.scheduler) for e in entries] == [
        ("AGGREGATED", "DAILY"), ("AGGREGATED", "ONCE"), (None, None)]
    with pytest.raises(ValueError):
        CatalogFile.model_validate({"tags": [{"key": "tag_x", "name": "x", "scheduler": "WEEKLY"}]})


@pytest.fixture
def catalog(tmp_path) -> CatalogService:
    db = create_db_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    migrate(db)
    now = datetime.now(UTC)
    with db.begin() as conn:
        conn.execute(sa.insert(event_definitions).values(
            key=PAY, name="支付订单", position=1, created_at=now, updated_at=now))
        conn.execute(sa.insert(event_attributes).values(
            event_key=PAY, key="amount", name="金额", value_type="double", position=1))
    return CatalogService(db, check_computes=check_catalog)


def test_apply_stores_the_definition_and_refuses_a_bad_one_all_or_nothing(catalog):
    good = tag("tag_paid", agg({"sum": "amount"}), F)
    catalog.apply([*BASE, good])
    assert catalog.get("tag_paid").compute == agg({"sum": "amount"})
    assert catalog.get("tag_paid").scheduler == "DAILY"
    bad = tag("tag_bad", agg({"sum": "amout"}), F)
    renamed = CatalogEntry("usr_city", Kind.ATTRIBUTE, "所在城市", S)
    with pytest.raises(InvalidInput) as refused:
        catalog.apply([renamed, bad])
    assert refused.value.message == ("tag_bad: compute.measure.sum: unknown attribute 'amout'"
                                     " of event 'payOrderSuccess'")
    assert catalog.get("tag_bad") is None and catalog.get("usr_city").name == "城市"


def test_apply_checks_the_whole_catalog_so_a_tier_may_read_an_earlier_tag(catalog):
    catalog.apply([*BASE, tag("tag_paid", agg("count"))])
    level = tag("tag_level", tiers(("高", {"key": "tag_paid", "op": ">", "values": [1]})), S)
    assert catalog.apply([level]).added == ["tag_level"]
    changed = tag("tag_paid", agg({"sum": "amount"}), F)
    assert catalog.apply([changed]).updated == ["tag_paid"]


def test_a_catalog_service_without_the_compute_check_refuses_computed_tags(tmp_path):
    db = create_db_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    migrate(db)
    with pytest.raises(InvalidInput):
        CatalogService(db).apply([tag("tag_paid", agg("count"))])
