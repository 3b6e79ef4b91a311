"""The event catalog in catalog.json: keys, reserved attribute keys, one type per attribute
key, duplicates; applying it adds, renames and extends events."""

import json

import pytest
import sqlalchemy as sa

from tagport.catalog.models import EventAttribute, ValueType, attribute_types
from tagport.catalog.service import CatalogService, events_from_file, read_catalog_file
from tagport.db import migrate
from tagport.errors import Conflict, InvalidInput

PAY = {"key": "payOrderSuccess", "name": "支付订单", "name_en": "Order paid",
       "attributes": [{"key": "amount", "name": "金额", "type": "double"},
                      {"key": "category", "name": "品类", "type": "string"}]}


def events_of(tmp_path, events):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"events": events}, ensure_ascii=False), encoding="utf-8")
    return events_from_file(read_catalog_file(path))


def refusal(tmp_path, events) -> str:
    with pytest.raises(InvalidInput) as e:
        events_of(tmp_path, events)
    return e.value.message


def test_the_spec_example_reads_with_typed_attributes(tmp_path):
    [pay] = events_of(tmp_path, [PAY])
    assert (pay.key, pay.name, pay.name_en, pay.description) == (
        "payOrderSuccess", "支付订单", "Order paid", "")
    assert list(pay.attributes) == ["amount", "category"]
    assert pay.attributes["amount"] == EventAttribute("amount", "金额", ValueType.DOUBLE)
    assert attribute_types([pay]) == {"amount": ValueType.DOUBLE, "category": ValueType.STRING}


def test_an_attribute_without_a_type_is_a_string(tmp_path):
    [event] = events_of(tmp_path, [{"key": "view", "name": "浏览",
                                    "attributes": [{"key": "page", "name": "页面"}]}])
    assert event.attributes["page"].value_type is ValueType.STRING


@pytest.mark.parametrize("key", ["1pay", "pay-order", "pay order", ""])
def test_an_event_key_that_is_not_bare_is_refused_with_the_key(tmp_path, key):
    assert refusal(tmp_path, [{"key": key, "name": "x"}]) == (
        f"event key {key!r}: use letters, digits, '_' and '$', not starting with a digit")


def test_a_dollar_and_underscore_event_key_is_bare(tmp_path):
    assert [e.key for e in events_of(tmp_path, [{"key": "$app_start", "name": "x"}])] == [
        "$app_start"]


def test_an_attribute_key_that_is_not_bare_names_the_event_and_the_attribute(tmp_path):
    message = refusal(tmp_path, [{**PAY, "attributes": [{"key": "9x", "name": "x"}]}])
    assert message == ("event 'payOrderSuccess', attribute '9x': use letters, digits, '_'"
                       " and '$', not starting with a digit")


@pytest.mark.parametrize("key", ["gio_id", "event", "event_key", "time", "dt", "id", "seq"])
def test_reserved_attribute_keys_are_refused(tmp_path, key):
    message = refusal(tmp_path, [{**PAY, "attributes": [{"key": key, "name": "x"}]}])
    assert message.startswith(f"event 'payOrderSuccess', attribute {key!r}: {key!r} is reserved")


def test_an_attribute_key_starting_like_an_identity_column_is_refused(tmp_path):
    message = refusal(tmp_path, [{**PAY, "attributes": [{"key": "id_shop", "name": "x"}]}])
    assert "cannot start with 'id_'" in message and "'id_shop'" in message


def test_an_attribute_key_with_two_types_across_events_is_refused(tmp_path):
    refund = {"key": "refund", "name": "退款",
              "attributes": [{"key": "amount", "name": "金额", "type": "int"}]}
    assert refusal(tmp_path, [PAY, refund]) == (
        "event 'refund', attribute 'amount': type int, but event 'payOrderSuccess' has it as"
        " double; an attribute key has one type across all events")


def test_duplicate_events_and_attributes_are_refused(tmp_path):
    assert refusal(tmp_path, [PAY, PAY]) == (
        "event 'payOrderSuccess' appears twice in the catalog file")
    twice = {**PAY, "attributes": PAY["attributes"] + [{"key": "amount", "name": "y"}]}
    assert refusal(tmp_path, [twice]) == (
        "event 'payOrderSuccess', attribute 'amount' appears twice")


def test_an_unknown_field_or_type_names_its_place(tmp_path):
    with pytest.raises(InvalidInput) as e:
        events_of(tmp_path, [{**PAY, "attributes": [{"key": "a", "name": "a", "type": "float"}]}])
    assert "events.0.attributes.0.type" in e.value.message
    with pytest.raises(InvalidInput) as e:
        events_of(tmp_path, [{**PAY, "colour": "red"}])
    assert "events.0.colour" in e.value.message


@pytest.fixture
def catalog():
    engine = sa.create_engine("sqlite://")
    migrate(engine)
    return CatalogService(engine)


def test_apply_adds_then_renames_and_extends_events_keeping_order(tmp_path, catalog):
    report = catalog.apply([], events_of(tmp_path, [PAY, {"key": "view", "name": "浏览"}]))
    assert report.added == ["payOrderSuccess", "view"]
    renamed = {**PAY, "name": "支付成功",
               "attributes": [{"key": "coupon", "name": "优惠券", "type": "bool"}]}
    report = catalog.apply([], events_of(tmp_path, [renamed, {"key": "view", "name": "浏览"}]))
    assert (report.updated, report.unchanged) == (["payOrderSuccess"], ["view"])
    events = catalog.events()
    assert list(events) == ["payOrderSuccess", "view"]
    assert events["payOrderSuccess"].name == "支付成功"
    # attributes the file no longer lists stay, as catalog entries do
    assert list(events["payOrderSuccess"].attributes) == ["amount", "category", "coupon"]


def test_apply_refuses_a_second_type_for_a_stored_attribute_key(tmp_path, catalog):
    catalog.apply([], events_of(tmp_path, [PAY]))
    refund = {"key": "refund", "name": "退款",
              "attributes": [{"key": "amount", "name": "金额", "type": "int"}]}
    with pytest.raises(Conflict) as e:
        catalog.apply([], events_of(tmp_path, [refund]))
    assert "attribute 'amount': type int, but event 'payOrderSuccess' has it as double" in (
        e.value.message)
    assert list(catalog.events()) == ["payOrderSuccess"]
