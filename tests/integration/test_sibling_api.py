"""The sibling endpoints of the seed over HTTP (in-process ASGI client, real engine):
tags with coverage, a page of a tag's users, one user; language; errors."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tagport.api.app import create_app
from tagport.catalog.service import entries_from_file, read_catalog_file
from tagport.db import tag_coverage
from tests.conftest import SEED_CATALOG, write_jsonl


@pytest.fixture
def client(seeded):
    token = seeded.tokens.create("reader")
    with TestClient(create_app(seeded, run_workers=False)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def tags_by_key(client, **headers):
    response = client.get("/v1/api/user_tags", headers=headers)
    assert response.status_code == 200, response.text
    return {t["key"]: t for t in response.json()["values"]}


# -- GET /v1/api/user_tags ---------------------------------------------------------


def test_tags_are_listed_with_type_value_type_and_coverage(client):
    page = client.get("/v1/api/user_tags").json()
    assert {k: page[k] for k in ("limit", "offset", "totalCount", "hasNextPage",
                                 "hasPreviousPage")} == {
        "limit": 1000, "offset": 0, "totalCount": 2, "hasNextPage": False,
        "hasPreviousPage": False}
    rfm, interests = page["values"]
    detected = rfm["detector"].pop("detectedAt")
    assert detected[:4].isdigit() and "T" in detected
    assert rfm == {"id": "tag_rfm", "key": "tag_rfm", "name": "会员等级", "type": "IMPORT",
                   "description": "RFM", "valueType": {"type": "STRING", "isArray": False},
                   "detector": {"stage": "FINISH", "totalUsers": 3, "usersRatio": 0.6}}
    assert interests["valueType"] == {"type": "STRING", "isArray": True}
    assert interests["detector"]["totalUsers"] == 1
    assert interests["detector"]["usersRatio"] == 0.2


def test_tags_page_with_limit_and_offset(client):
    first = client.get("/v1/api/user_tags?limit=1").json()
    assert [t["key"] for t in first["values"]] == ["tag_rfm"]
    assert first["hasNextPage"] and not first["hasPreviousPage"]
    second = client.get("/v1/api/user_tags?limit=1&offset=1").json()
    assert [t["key"] for t in second["values"]] == ["tag_interests"]
    assert not second["hasNextPage"] and second["hasPreviousPage"]


def test_coverage_is_kept_current_by_loads(client, seeded, tmp_path):
    more = write_jsonl(tmp_path / "more.jsonl", [
        {"identifications": {"id_$basic_userId": "C002"}, "properties": {"tag_rfm": "中"}},
        {"identifications": {"id_$basic_userId": "C100"}, "properties": {"tag_rfm": "高"}},
        {"identifications": {"id_$basic_userId": "C004"}, "properties": {"tag_interests": []}},
    ])
    before = tags_by_key(client)["tag_rfm"]["detector"]["detectedAt"]
    assert seeded.profiles.load(more).applied
    tags = tags_by_key(client)
    assert tags["tag_rfm"]["detector"]["totalUsers"] == 5
    assert tags["tag_rfm"]["detector"]["usersRatio"] == pytest.approx(5 / 6)
    assert tags["tag_rfm"]["detector"]["detectedAt"] > before
    assert tags["tag_interests"]["detector"]["totalUsers"] == 0


def test_coverage_is_read_from_the_metadata_store_not_recounted(client, seeded):
    with seeded.db.begin() as conn:
        conn.execute(tag_coverage.update().where(tag_coverage.c.tag_key == "tag_rfm")
                     .values(covered_users=42, all_users=84))
    assert tags_by_key(client)["tag_rfm"]["detector"]["totalUsers"] == 42
    assert tags_by_key(client)["tag_rfm"]["detector"]["usersRatio"] == 0.5


def test_a_tag_defined_after_the_last_load_is_not_measured_yet(client, seeded, tmp_path):
    catalog = dict(SEED_CATALOG, tags=[{"key": "tag_new", "name": "新标签"}])
    path = tmp_path / "more-catalog.json"
    path.write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    seeded.catalog.apply(entries_from_file(read_catalog_file(path)))
    assert tags_by_key(client)["tag_new"]["detector"] == {
        "stage": "NONE", "detectedAt": None, "totalUsers": 0, "usersRatio": 0.0}


def test_english_names_follow_the_language_header(client, seeded, tmp_path):
    catalog = json.loads(json.dumps(SEED_CATALOG))
    catalog["tags"][0]["name_en"] = "Membership level"
    path = tmp_path / "catalog-en.json"
    path.write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    seeded.catalog.apply(entries_from_file(read_catalog_file(path)))
    assert tags_by_key(client)["tag_rfm"]["name"] == "会员等级"
    assert tags_by_key(client, language="CH")["tag_rfm"]["name"] == "会员等级"
    assert tags_by_key(client, language="US")["tag_rfm"]["name"] == "Membership level"
    # no English name given: the display name stays
    assert tags_by_key(client, language="US")["tag_interests"]["name"] == "兴趣"


# -- GET /v1/api/user_tags/{tag_key}/users -----------------------------------------


def test_tag_users_page_is_growingios_users_by_gio_id(client):
    response = client.get("/v1/api/user_tags/tag_rfm/users",
                          params={"properties": ["ids_$basic_userId", "usr_gender", "tag_rfm"]})
    assert response.status_code == 200
    assert response.json() == {
        "limit": 1000, "offset": 0, "totalCount": 3, "hasNextPage": False,
        "hasPreviousPage": False, "values": [
            {"gioId": "1", "identifications": {"id_$basic_userId": ["C001"]},
             "properties": {"usr_gender": "男", "tag_rfm": "高"}},
            {"gioId": "3", "identifications": {"id_$basic_userId": ["C004", "C005"]},
             "properties": {"usr_gender": "女", "tag_rfm": "低"}},
            {"gioId": "4", "identifications": {"id_$basic_userId": ["C006"]},
             "properties": {"usr_gender": None, "tag_rfm": "中"}},
        ]}


def test_tag_users_pages_follow_each_other(client):
    first = client.get("/v1/api/user_tags/tag_rfm/users?limit=2").json()
    second = client.get("/v1/api/user_tags/tag_rfm/users?limit=2&offset=2").json()
    assert [u["gioId"] for u in first["values"]] == ["1", "3"]
    assert first["hasNextPage"] and not first["hasPreviousPage"]
    assert second["values"] == [{"gioId": "4", "identifications": {}, "properties": {}}]
    assert not second["hasNextPage"] and second["hasPreviousPage"]
    assert first["totalCount"] == second["totalCount"] == 3


def test_growingio_bracket_and_comma_spellings_of_properties(client):
    a = client.get("/v1/api/user_tags/tag_interests/users?properties[]=ids_$basic_userId"
                   "&properties[]=tag_interests").json()
    b = client.get("/v1/api/user_tags/tag_interests/users"
                   "?properties=id_$basic_userId,tag_interests,gio_id").json()
    assert a == b
    assert a["values"] == [{"gioId": "3", "identifications": {"id_$basic_userId": ["C004", "C005"]},
                            "properties": {"tag_interests": ["数码", "美妆"]}}]


def test_more_than_twenty_properties_is_400(client):
    keys = ",".join(f"usr_x{i}" for i in range(21))
    response = client.get(f"/v1/api/user_tags/tag_rfm/users?properties={keys}",
                          headers={"language": "US"})
    assert response.status_code == 400
    assert response.json() == {"code": "TOO_MANY_PROPERTIES",
                               "message": "properties: at most 20 distinct properties, got 21"}


def test_unknown_properties_are_400_with_their_keys(client):
    response = client.get("/v1/api/user_tags/tag_rfm/users?properties=usr_gender,usr_nope")
    assert response.status_code == 400
    assert response.json() == {"code": "UNKNOWN_PROPERTIES",
                               "message": "properties：未知的键：usr_nope"}


@pytest.mark.parametrize("query, code, us_message", [
    ("limit=1001", "INVALID_LIMIT", "limit: must be between 1 and 1000, got 1001"),
    ("limit=0", "INVALID_LIMIT", "limit: must be between 1 and 1000, got 0"),
    ("offset=-1", "INVALID_OFFSET", "offset: must be between 0 and 9223372036854775807, got -1"),
    ("offset=9223372036854775808", "INVALID_OFFSET",
     "offset: must be between 0 and 9223372036854775807, got 9223372036854775808"),
    ("limit=ten", "BAD_REQUEST", "limit: must be an integer"),
])
def test_bad_paging_is_400_with_a_clear_message(client, query, code, us_message):
    for path in ("/v1/api/user_tags", "/v1/api/user_tags/tag_rfm/users"):
        response = client.get(f"{path}?{query}", headers={"language": "US"})
        assert response.status_code == 400
        assert response.json() == {"code": code, "message": us_message}


def test_the_largest_offset_is_an_empty_page(client):
    for path in ("/v1/api/user_tags", "/v1/api/user_tags/tag_rfm/users"):
        response = client.get(f"{path}?offset=9223372036854775807")
        assert response.status_code == 200, response.text
        page = response.json()
        assert (page["values"], page["hasNextPage"], page["hasPreviousPage"]) == ([], False, True)


def test_unknown_tag_is_404_in_either_language(client):
    ch = client.get("/v1/api/user_tags/tag_nope/users")
    us = client.get("/v1/api/user_tags/tag_nope/users", headers={"language": "US"})
    assert ch.status_code == us.status_code == 404
    assert ch.json() == {"code": "TAG_NOT_FOUND", "message": "用户标签 'tag_nope' 不存在"}
    assert us.json() == {"code": "TAG_NOT_FOUND", "message": "user tag 'tag_nope' does not exist"}


def test_an_attribute_is_not_a_tag(client):
    assert client.get("/v1/api/user_tags/usr_gender/users").status_code == 404


# -- GET /v1/api/users/{user_key}/{value} ------------------------------------------


@pytest.mark.parametrize("user_key", ["$basic_userId", "id_$basic_userId", "ids_$basic_userId"])
def test_one_user_by_any_identity_value_and_key_spelling(client, user_key):
    response = client.get(f"/v1/api/users/{user_key}/C005")
    assert response.status_code == 200
    assert response.json() == {
        "gioId": "3", "identifications": {"ids_$basic_userId": ["C004", "C005"]},
        "properties": {"usr_gender": "女", "usr_age": None, "tag_rfm": "低",
                       "tag_interests": ["数码", "美妆"]}}


def test_a_value_with_a_slash_or_unicode_is_found(client, seeded, tmp_path):
    odd = write_jsonl(tmp_path / "odd.jsonl", [
        {"identifications": {"id_$basic_userId": "a/b 用户"}, "properties": {"usr_age": 7}}])
    assert seeded.profiles.load(odd).applied
    response = client.get("/v1/api/users/$basic_userId/a%2Fb%20%E7%94%A8%E6%88%B7")
    assert response.status_code == 200
    assert response.json()["properties"]["usr_age"] == "7"  # GrowingIO's values are strings


def test_unknown_user_is_growingios_user_zero(client):
    response = client.get("/v1/api/users/$basic_userId/C999", headers={"language": "US"})
    assert response.status_code == 200
    assert response.json() == {"gioId": "0", "identifications": {}, "properties": {}}


def test_unknown_identity_is_404(client):
    response = client.get("/v1/api/users/usr_gender/男", headers={"language": "US"})
    assert response.status_code == 404
    assert response.json() == {"code": "IDENTITY_NOT_FOUND",
                               "message": "identity 'id_usr_gender' does not exist"}


# -- auth and language on the new routes; the seed routes keep their messages -------


@pytest.mark.parametrize("path", ["/v1/api/user_tags", "/v1/api/user_tags/tag_rfm/users",
                                  "/v1/api/users/$basic_userId/C001"])
def test_new_routes_need_a_token_and_say_so_in_the_callers_language(client, path):
    ch = client.get(path, headers={"Authorization": ""})
    us = client.get(path, headers={"Authorization": "", "language": "US"})
    assert ch.status_code == us.status_code == 401
    assert ch.json() == {"code": "MISSING_TOKEN",
                         "message": "缺少 Authorization 请求头：请使用 'Bearer <token>'"}
    assert us.json()["message"] == "missing Authorization header: use 'Bearer <token>'"
    bad = client.get(path, headers={"Authorization": "Bearer 4aaa22c7-679f-49be-b97d-073dad5dfc15"})
    assert bad.status_code == 401 and bad.json()["code"] == "INVALID_TOKEN"


def test_seed_routes_keep_their_messages_under_ch(client):
    response = client.get("/v1/api/job/result/nosuchjb", headers={"language": "CH"})
    assert response.json() == {"code": "JOB_NOT_FOUND", "message": "job 'nosuchjb' does not exist"}


def test_new_routes_are_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/api/user_tags", "/v1/api/user_tags/{tag_key}/users",
            "/v1/api/users/{user_key}/{value}"} <= set(paths)


def test_coverage_rows_exist_for_every_tag_after_a_load(seeded):
    with seeded.db.connect() as conn:
        rows = dict(conn.execute(
            sa.select(tag_coverage.c.tag_key, tag_coverage.c.covered_users)).all())
    assert rows == {"tag_rfm": 3, "tag_interests": 1}


# -- GET /v1/api/user_tags/{tag_key}/distribution (tagport's own, for the console) -------


def test_a_tags_distribution_gives_its_values_with_their_share_of_all_users(client):
    response = client.get("/v1/api/user_tags/tag_rfm/distribution", headers={"language": "US"})
    assert response.status_code == 200
    assert response.json() == {
        "key": "tag_rfm", "name": "会员等级",  # no English name in the seed catalog
        "valueType": {"type": "STRING", "isArray": False},
        "totalUsers": 5, "coveredUsers": 3, "coveredRatio": 0.6,
        "values": [{"value": "中", "users": 1, "ratio": 0.2},
                   {"value": "低", "users": 1, "ratio": 0.2},
                   {"value": "高", "users": 1, "ratio": 0.2}],
        "bins": []}
    interests = client.get("/v1/api/user_tags/tag_interests/distribution?top=1").json()
    assert interests["values"] == [{"value": "数码", "users": 1, "ratio": 0.2}]


def test_a_distribution_refuses_bad_sizes_and_unknown_tags(client):
    bad = client.get("/v1/api/user_tags/tag_rfm/distribution?bins=0", headers={"language": "US"})
    assert bad.status_code == 400 and bad.json() == {
        "code": "INVALID_DISTRIBUTION",
        "message": "top must be between 1 and 100, bins between 1 and 50"}
    assert client.get("/v1/api/user_tags/tag_nope/distribution").status_code == 404
