"""Checking a condition: each refusal's exact message names the JSON path and the field."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.conditions import (
    And,
    Compare,
    ConditionContext,
    DateRange,
    Did,
    FieldKind,
    InSegment,
    LastDays,
    MeasureKind,
    Not,
    Op,
    parse_condition,
    parse_event_filter,
)
from tagport.errors import BadRequest

CONTEXT = ConditionContext(
    catalog={e.key: e for e in [
        CatalogEntry("id_uid", Kind.IDENTITY, "用户ID", ValueType.STRING),
        CatalogEntry("usr_age", Kind.ATTRIBUTE, "年龄", ValueType.INT),
        CatalogEntry("usr_score", Kind.ATTRIBUTE, "评分", ValueType.DOUBLE),
        CatalogEntry("usr_vip", Kind.ATTRIBUTE, "会员", ValueType.BOOL),
        CatalogEntry("usr_birthday", Kind.ATTRIBUTE, "生日", ValueType.DATE),
        CatalogEntry("usr_seen", Kind.ATTRIBUTE, "访问", ValueType.DATETIME),
        CatalogEntry("usr_city", Kind.ATTRIBUTE, "城市", ValueType.STRING),
        CatalogEntry("tag_i", Kind.TAG, "兴趣", ValueType.STRING, is_array=True),
    ]},
    segments=frozenset({"seg_x"}),
    events={"pay": {"amount": ValueType.DOUBLE, "category": ValueType.STRING,
                    "paid": ValueType.BOOL},
            "view": {"category": ValueType.STRING}},
)


def refusal(doc, parse=parse_condition) -> str:
    with pytest.raises(BadRequest) as caught:
        parse(doc, CONTEXT)
    assert caught.value.code == "INVALID_CONDITION" and caught.value.status == 400
    return caught.value.message


def cmp(key, op, *values):
    return {"key": key, "op": op, "values": list(values)}


def did(behaviour, op="=", values=(1,)):
    return {"did": {"event": "pay", "measure": "count", **behaviour}, "op": op,
            "values": list(values)}


# -- what passes --------------------------------------------------------------------------

def test_a_checked_tree_holds_typed_values():
    tree = parse_condition({"op": "and", "exprs": [
        cmp("usr_age", ">=", "30"), cmp("usr_score", "<", 2), cmp("usr_vip", "=", "true"),
        cmp("usr_birthday", "=", "2000-02-29"), cmp("usr_seen", "<", "2026-01-01T08:00:00+08:00"),
        {"op": "not", "exprs": [{"segment": "seg_x"}]}]}, CONTEXT)
    assert isinstance(tree, And)
    assert [c.values for c in tree.exprs[:5]] == [
        (30,), (2.0,), (True,), (date(2000, 2, 29),), (datetime(2026, 1, 1),)]
    assert tree.exprs[5] == Not(InSegment("seg_x"))


def test_keys_resolve_to_their_kind_and_lists():
    ident, tag = (parse_condition(cmp(k, "=", "a"), CONTEXT) for k in ("id_uid", "tag_i"))
    assert isinstance(ident, Compare) and ident.field.kind is FieldKind.IDENTITY
    assert ident.field.is_list and isinstance(tag, Compare) and tag.field.is_list
    seg = parse_condition(cmp("seg_x", "is null"), CONTEXT)
    assert isinstance(seg, Compare) and seg.field.kind is FieldKind.SEGMENT and seg.values == ()


def test_a_did_holds_its_behaviour():
    tree = parse_condition({"did": {"event": "pay", "measure": {"sum": "amount"},
                                    "window": {"lastDays": 30},
                                    "where": cmp("category", "in", "书")},
                            "op": ">=", "values": ["99.5"]}, CONTEXT)
    assert isinstance(tree, Did) and tree.op is Op.GE and tree.values == (99.5,)
    behaviour = tree.behaviour
    assert (behaviour.event, behaviour.measure.kind, behaviour.measure.value_type,
            behaviour.window) == ("pay", MeasureKind.SUM, ValueType.DOUBLE, LastDays(30))
    assert isinstance(behaviour.where, Compare) and behaviour.where.field.kind is FieldKind.EVENT
    ranged = parse_condition(did({"event": "*", "window": {"from": "2026-01-01",
                                                           "to": "2026-01-31"}}), CONTEXT)
    assert ranged.behaviour.event is None
    assert ranged.behaviour.window == DateRange(date(2026, 1, 1), date(2026, 1, 31))


def test_growingio_null_fields_pass():
    tree = parse_condition({"key": "usr_age", "op": "is null", "values": None, "exprs": None},
                           CONTEXT)
    assert isinstance(tree, Compare) and tree.values == ()


# -- refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize("doc, message", [
    ([1], "definition: a condition is an object, got [1]"),
    ({"op": "="}, 'definition: a condition has "op" and "exprs", "key", "did" or "segment"'),
    ({"op": "xor", "exprs": [cmp("usr_age", "is null")]},
     "definition.op: 'xor' is not 'and', 'or' or 'not' (a node with exprs)"),
    ({"op": "and", "exprs": []}, "definition.exprs: 'and' takes a list of conditions, got []"),
    ({"op": "not", "exprs": [cmp("usr_age", "is null")] * 2},
     "definition.exprs: 'not' takes exactly one condition, got 2"),
    ({"op": "and", "exprs": [cmp("usr_age", "is null"), cmp("usr_nope", "=", 1)]},
     "definition.exprs[1].key: unknown key 'usr_nope'"),
    ({"key": 7, "op": "="}, "definition.key: a key is a string, got 7"),
    (cmp("usr_age", "like", "3%"),
     "definition.op: unknown operator 'like' (one of =, !=, >, >=, <, <=, between, in, "
     "not in, contains, not contains, starts with, is null, is not null)"),
    ({"op": "or", "exprs": [cmp("usr_age", "is null"), cmp("usr_age", "=", "abc")]},
     "definition.exprs[1].values: 'abc' is not an int (key usr_age)"),
    (cmp("usr_age", "=", 1.5), "definition.values: 1.5 is not an int (key usr_age)"),
    (cmp("usr_age", "=", True), "definition.values: True is not an int (key usr_age)"),
    (cmp("usr_score", "=", "NaN"), "definition.values: 'NaN' is not a double (key usr_score)"),
    (cmp("usr_vip", "=", "yes"), "definition.values: 'yes' is not a bool (key usr_vip)"),
    (cmp("usr_city", "=", 5), "definition.values: 5 is not a string (key usr_city)"),
    (cmp("usr_birthday", "=", "2026-02-30"),
     "definition.values: '2026-02-30' is not a date 'YYYY-MM-DD' (key usr_birthday)"),
    (cmp("usr_seen", ">", "yesterday"),
     "definition.values: 'yesterday' is not a datetime 'YYYY-MM-DD HH:MM:SS' (key usr_seen)"),
    (cmp("tag_i", "=", 3), "definition.values: 3 is not a string (key tag_i)"),
    (cmp("usr_age", "between", 1), "definition.values: 'between' takes two values, got 1"),
    (cmp("usr_age", "is null", 1), "definition.values: 'is null' takes no values, got 1"),
    (cmp("usr_age", "=", 1, 2), "definition.values: '=' takes one value, got 2"),
    (cmp("usr_age", "in"), "definition.values: 'in' takes at least one value, got none"),
    ({"key": "usr_age", "op": "=", "values": 3}, "definition.values: a list of values, got 3"),
    (cmp("usr_age", "contains", "3"),
     "definition.op: 'contains' applies to strings, not to int (key usr_age)"),
    (cmp("usr_vip", ">", True), "definition.op: '>' does not apply to a bool (key usr_vip)"),
    ({"key": "usr_age", "op": "=", "values": [1], "name": "x"},
     "definition.name: unknown field (here: key, op, values)"),
    ({"segment": "seg_y"}, "definition.segment: unknown segment 'seg_y'"),
])
def test_a_bad_comparison_is_refused_naming_its_path(doc, message):
    assert refusal(doc) == message


@pytest.mark.parametrize("doc, message", [
    ({"did": "pay", "op": "=", "values": [1]},
     "definition.did: a behaviour is an object, got 'pay'"),
    (did({"event": "buy"}), "definition.did.event: unknown event 'buy'"),
    (did({"event": None}), "definition.did.event: an event key or \"*\", got None"),
    (did({"measure": "total"}),
     "definition.did.measure: unknown measure 'total' "
     '(use "count", "days" or {"sum"|"avg"|"min"|"max"|"distinct": attribute})'),
    (did({"measure": {"sum": "price"}}),
     "definition.did.measure.sum: unknown attribute 'price' of event 'pay'"),
    (did({"event": "*", "measure": {"max": "price"}}),
     "definition.did.measure.max: unknown attribute 'price' of any event"),
    (did({"measure": {"avg": "category"}}),
     "definition.did.measure.avg: 'category' is a string attribute; avg takes an int or "
     "double one"),
    (did({"measure": {"min": "paid"}}),
     "definition.did.measure.min: 'paid' is a bool attribute; min takes an int, double, "
     "string, date or datetime one"),
    (did({"window": {"lastDays": 0}}),
     "definition.did.window.lastDays: 0 is not a whole number of days (1 or more)"),
    (did({"window": {"lastDays": "7"}}),
     "definition.did.window.lastDays: '7' is not a whole number of days (1 or more)"),
    (did({"window": {"from": "2026-13-01", "to": "2026-12-31"}}),
     "definition.did.window.from: '2026-13-01' is not a date 'YYYY-MM-DD'"),
    (did({"window": {"from": "2026-02-01", "to": "2026-01-01"}}),
     "definition.did.window: 'from' 2026-02-01 is after 'to' 2026-01-01"),
    (did({"window": {"days": 3}}),
     'definition.did.window: a window is {"lastDays": N} or {"from": "YYYY-MM-DD", '
     "\"to\": \"YYYY-MM-DD\"}, got {'days': 3}"),
    (did({"where": cmp("amount", ">", "lots")}),
     "definition.did.where.values: 'lots' is not a double (key amount)"),
    (did({"event": "view", "where": cmp("amount", ">", 1)}),
     "definition.did.where.key: unknown attribute 'amount' of event 'view'"),
    (did({"where": {"op": "not", "exprs": [{"segment": "seg_x"}]}}),
     "definition.did.where.exprs[0]: an event filter compares event attributes: "
     "no 'segment' here"),
    (did({"where": did({})}),
     "definition.did.where: an event filter compares event attributes: no 'did' here"),
    (did({"once": True}), "definition.did.once: unknown field (here: event, measure, "
                          "window, where)"),
    (did({}, op="contains", values=["1"]),
     "definition.op: 'contains' does not apply to a measure (count): use a comparison"),
    (did({}, op="is null", values=[]),
     "definition.op: 'is null' does not apply to a measure (count): use a comparison"),
    (did({}, values=["many"]), "definition.values: 'many' is not an int (measure count)"),
    (did({"measure": {"sum": "amount"}}, op="between", values=[1]),
     "definition.values: 'between' takes two values, got 1"),
    (did({"measure": {"avg": "amount"}}, values=["x"]),
     "definition.values: 'x' is not a double (measure avg(amount))"),
])
def test_a_bad_behaviour_is_refused_naming_its_path(doc, message):
    assert refusal(doc) == message


def test_an_event_filter_names_the_event_attributes_only():
    def where(doc, context):
        return parse_event_filter(doc, context, "view")

    assert refusal(cmp("usr_age", "=", 1), where) == \
        "where.key: unknown attribute 'usr_age' of event 'view'"
    checked = parse_event_filter(cmp("category", "=", "书"), CONTEXT, "view")
    assert isinstance(checked, Compare) and checked.field.kind is FieldKind.EVENT
