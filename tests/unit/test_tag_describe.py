"""A computed tag's definition in words (profiles/describe.py), in both languages, with
the catalog's display names: the demo's tags cover the six types."""

from __future__ import annotations

import pytest

from tagport import demo
from tagport.catalog.schemas import CatalogFile
from tagport.catalog.service import entries_from_file, events_from_file
from tagport.i18n import Language
from tagport.profiles.describe import describe

SPEC = CatalogFile.model_validate(demo.CATALOG)
ENTRIES = {e.key: e for e in entries_from_file(SPEC)}
EVENTS = {e.key: e for e in events_from_file(SPEC)}


def words(compute, language=Language.CH):
    return describe(compute, ENTRIES, EVENTS, language)


@pytest.mark.parametrize("key, ch, us", [
    ("tag_paid_30d", "过去30天 支付订单 次数", "Last 30 days · Order paid · count"),
    ("tag_active_days", "过去30天 任意事件 天数", "Last 30 days · Any event · days"),
    ("tag_amount_7d", "过去7天 支付订单 金额 总和", "Last 7 days · Order paid · sum of Amount"),
    ("tag_last_purchase", "全部历史 支付订单 最近一次 的 日期",
     "All time · Order paid · last · date"),
    ("tag_last_category", "全部历史 支付订单 最近一次 的 品类",
     "All time · Order paid · last · Category"),
    ("tag_top_category", "过去90天 浏览商品 次数最多的 品类",
     "Last 90 days · Item viewed · Category with the most events"),
    ("tag_interests", "过去30天 加入购物车 所有 品类",
     "Last 30 days · Added to cart · every Category"),
])
def test_each_demo_tag_in_words_in_both_languages(key, ch, us):
    compute = ENTRIES[key].compute
    assert (words(compute), words(compute, Language.US)) == (ch, us)


def test_tiers_read_as_values_with_their_conditions():
    compute = ENTRIES["tag_value_tier"].compute
    assert words(compute) == (
        "高价值：过去30天 支付订单 金额 总和 >= 2000；中价值：过去30天 支付订单 金额 总和 >= 500；"
        "低价值：过去30天 支付订单 次数 >= 1；否则为空")
    assert words(compute, Language.US).endswith(
        "低价值 when Last 30 days · Order paid · count >= 1; otherwise empty")


def test_sql_shows_its_dialect_and_query():
    assert words({"type": "SQL", "sql": "SELECT 1", "dialect": "duckdb"}, Language.US) == (
        "SQL (duckdb): SELECT 1")
    assert words({"type": "SQL", "sql": "SELECT 1"}) == "SQL（clickhouse）：SELECT 1"


def test_filters_ranges_and_operators_use_display_names():
    compute = {"type": "TOP_N_ATTRIBUTE", "event": "payOrderSuccess", "attribute": "category",
               "by": {"sum": "amount"}, "pick": "min",
               "window": {"from": "2026-10-01", "to": "2026-10-31"},
               "where": {"op": "and", "exprs": [
                   {"key": "amount", "op": "between", "values": [10, 99.5]},
                   {"key": "category", "op": "in", "values": ["书", "数码"]}]}}
    assert words(compute, Language.US) == (
        "2026-10-01 to 2026-10-31 · Order paid · where (Amount between 10 and 99.5 and"
        " Category in {书, 数码}) · Category with the lowest sum of Amount")
    assert words(compute) == (
        "2026-10-01 至 2026-10-31 支付订单 满足 (金额 介于 10 和 99.5 且 品类 属于 {书, 数码})"
        " 按 金额 总和最少的 品类")


def test_conditions_of_tiers_name_keys_not_and_segments():
    compute = {"type": "HORIZONTAL", "tiers": [
        {"value": "A", "when": {"op": "not", "exprs": [
            {"key": "usr_city", "op": "=", "values": ["上海"]}]}},
        {"value": "B", "when": {"op": "or", "exprs": [
            {"segment": "seg_vip"}, {"key": "usr_age", "op": "is null", "values": []}]}}]}
    assert words(compute, Language.US) == (
        "A when not (City = 上海); B when (in segment seg_vip or Age is empty); otherwise empty")


def test_what_it_does_not_know_it_shows_as_json():
    assert words({"type": "AGGREGATED", "event": "nope", "measure": {"median": "x"}}) == (
        '全部历史 nope {"median": "x"}')
    assert words({"type": "LATER"}) == '{"type": "LATER"}'
