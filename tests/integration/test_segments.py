"""Segments over HTTP (spec section 8): defined by an admin, computed as jobs on the
workers, listed, paged, exported and portrayed as GrowingIO's pages say; uploaded
identity lists; estimates. A real DuckDB file; events through the real loader."""

from __future__ import annotations

from datetime import date
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from tagport.api.app import create_app
from tagport.jobs.runner import worker_id
from tests.conftest import core_with_events

CATALOG = {
    "identities": [{"key": "id_uid", "name": "用户ID"}],
    "attributes": [{"key": "usr_gender", "name": "性别", "type": "string"},
                   {"key": "usr_city", "name": "城市", "type": "string"},
                   {"key": "usr_age", "name": "年龄", "type": "int"}],
    "tags": [{"key": "tag_rfm", "name": "会员等级", "type": "string"}],
    "events": [{"key": "payOrderSuccess", "name": "支付订单",
                "attributes": [{"key": "amount", "name": "金额", "type": "double"}]}],
}
USERS = [  # gio_ids 1..5 in this order
    {"identifications": {"id_uid": "u1"},
     "properties": {"usr_gender": "男", "usr_city": "北京", "usr_age": 30, "tag_rfm": "高"}},
    {"identifications": {"id_uid": "u2"},
     "properties": {"usr_gender": "男", "usr_city": "上海", "usr_age": 40, "tag_rfm": "中"}},
    {"identifications": {"id_uid": "u3"},
     "properties": {"usr_gender": "女", "usr_city": "北京", "usr_age": 20}},
    {"identifications": {"id_uid": "u4"},
     "properties": {"usr_gender": "男", "usr_city": "广州", "tag_rfm": "低"}},
    {"identifications": {"id_uid": "u5"}, "properties": {}},
]
TODAY = date.today()


def paid(user: str, day: int, n: int) -> dict:
    """An order paid by `user` `day` days ago (in the window of the last 30 days)."""
    when = date.fromordinal(TODAY.toordinal() - day).isoformat()
    return {"event": "payOrderSuccess", "time": f"{when}T12:00:00+08:00",
            "identifications": {"id_uid": user}, "attributes": {"amount": 10.0},
            "id": f"{user}-{day}-{n}"}


EVENTS = [paid("u1", 3, 1), paid("u1", 5, 2), paid("u2", 4, 1), paid("u4", 2, 1),
          paid("u4", 9, 2), paid("u4", 12, 3)]
MEN = {"key": "usr_gender", "op": "=", "values": ["男"]}
PAID_TWICE = {"did": {"event": "payOrderSuccess", "measure": "count",
                      "window": {"lastDays": 30}}, "op": ">=", "values": ["2"]}
NOT_SHANGHAI = {"op": "not", "exprs": [{"key": "usr_city", "op": "=", "values": ["上海"]}]}
MARKETERS = {"op": "and", "exprs": [MEN, PAID_TWICE, NOT_SHANGHAI]}  # u1, u4


@pytest.fixture
def tp(tmp_path, metadata_url):
    core = core_with_events(tmp_path, metadata_url, CATALOG, USERS, EVENTS)
    yield core
    core.close()


@pytest.fixture
def pid(tp) -> str:
    return tp.projects.list()[0].id


def client_for(tp, token: str) -> TestClient:
    client = TestClient(create_app(tp, run_workers=False))
    client.headers["Authorization"] = f"Bearer {token}"
    return client


@pytest.fixture
def api(tp):
    with client_for(tp, tp.tokens.create("运营", scopes=("admin",))) as client:
        yield client


def run_queued(tp) -> None:
    while tp.jobs.runner.run_next(worker_id("test"), tp.engine).name == "RAN":
        pass


def define(api, pid, key, definition, **more):
    body = {"key": key, "name": more.pop("name", key), "definition": definition, **more}
    response = api.post(f"/v1/api/projects/{pid}/segment_profiles", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def members(api, pid, key) -> list[str]:
    page = api.get(f"/v1/api/projects/{pid}/segment_profiles/{key}/users",
                   params={"properties": "id_uid", "limit": 100}).json()
    return [v["identifications"]["id_uid"][0] for v in page["values"]]


def test_a_defined_segment_is_computed_by_the_workers_and_listed_as_growingio_does(
        api, tp, pid):
    created = define(api, pid, "seg_buyers", MARKETERS, name="男性复购",
                     description="近30天支付两次及以上的男性，不在上海")
    assert created["detector"]["stage"] == "RUNNING"  # queued at once
    run_queued(tp)
    page = api.get(f"/v1/api/projects/{pid}/segment_profiles").json()
    assert (page["totalCount"], page["hasNextPage"], page["hasPreviousPage"]) == (1, False, False)
    listed = page["values"][0]
    assert {k: listed[k] for k in ("id", "key", "name", "createdBy", "description",
                                   "scheduler", "creator")} == {
        "id": "seg_buyers", "key": "seg_buyers", "name": "男性复购", "createdBy": "DIRECT",
        "description": "近30天支付两次及以上的男性，不在上海", "scheduler": "DAILY",
        "creator": "运营"}
    assert isinstance(listed["creatorId"], str) and listed["createdAt"] and listed["updatedAt"]
    detector = listed["detector"]
    assert (detector["stage"], detector["totalUsers"]) == ("FINISH", 2)
    assert detector["usersRatio"] == pytest.approx(2 / 5) and detector["detectedAt"]
    assert members(api, pid, "seg_buyers") == ["u1", "u4"]


def test_a_segments_users_page_is_growingios_user_shape(api, tp, pid):
    define(api, pid, "seg_men", MEN)
    run_queued(tp)
    page = api.get(f"/v1/api/projects/{pid}/segment_profiles/seg_men/users",
                   params={"properties[]": ["id_uid", "usr_age"], "limit": 2}).json()
    assert (page["totalCount"], page["hasNextPage"]) == (3, True)
    assert page["values"] == [
        {"gioId": "1", "identifications": {"id_uid": ["u1"]}, "properties": {"usr_age": "30"}},
        {"gioId": "2", "identifications": {"id_uid": ["u2"]}, "properties": {"usr_age": "40"}},
    ]


def test_a_segment_exports_its_members_named_after_it(api, tp, pid):
    define(api, pid, "seg_buyers", MARKETERS, name="男性复购")
    run_queued(tp)
    body = {"properties": ["id_uid", "usr_city"], "fileFormat": "csv"}
    created = api.post(f"/v1/api/projects/{pid}/segment_profiles/seg_buyers/export_jobs",
                       json=body)
    assert created.status_code == 200 and set(created.json()) == {"id", "name"}
    run_queued(tp)
    result = api.get(f"/v1/api/job/result/{created.json()['id']}").json()
    assert result["stage"] == "FINISH"
    name = unquote(result["uris"][0]).rsplit("/", 1)[-1]
    assert name == f"男性复购_{TODAY.isoformat()}_UserList.csv"
    assert api.get(f"/download?file={result['uris'][0]}").text == (
        '"gio_id","id_uid","usr_city"\n1,"u1","北京"\n4,"u4","广州"\n')


def test_computes_answers_as_growingio_and_409_while_queued(api, tp, pid):
    define(api, pid, "seg_men", MEN)
    run_queued(tp)
    url = f"/v1/api/projects/{pid}/segment_profiles/seg_men/computes"
    first = api.post(url)
    assert (first.status_code, first.json()) == (200, {"value": True, "message": "触发计算成功"})
    again = api.post(url)
    assert (again.status_code, again.json()["code"]) == (409, "COMPUTE_IN_PROGRESS")


def test_a_segment_may_name_another_and_a_changed_definition_is_computed_again(api, tp, pid):
    define(api, pid, "seg_men", MEN)
    define(api, pid, "seg_men_not_paid", {"op": "and", "exprs": [
        {"segment": "seg_men"},
        {"did": {"event": "payOrderSuccess", "measure": "count"}, "op": "=", "values": [0]}]})
    run_queued(tp)
    assert members(api, pid, "seg_men_not_paid") == []  # every man paid
    url = f"/v1/api/projects/{pid}/segment_profiles/seg_men"
    changed = api.put(url, json={"name": "女性", "definition": {
        "key": "usr_gender", "op": "!=", "values": ["男"]}})
    assert changed.status_code == 200, changed.text
    run_queued(tp)
    assert members(api, pid, "seg_men") == ["u3"]
    api.post(f"/v1/api/projects/{pid}/segment_profiles/seg_men_not_paid/computes")
    run_queued(tp)
    assert members(api, pid, "seg_men_not_paid") == ["u3"]


def test_definitions_are_checked_naming_the_field(api, pid):
    url = f"/v1/api/projects/{pid}/segment_profiles"
    cases = [
        ({"key": "seg_x", "name": "x", "definition": {"key": "usr_gendr", "op": "=",
                                                      "values": ["男"]}},
         "INVALID_CONDITION", "definition.key: unknown key 'usr_gendr'"),
        ({"key": "seg_x", "name": "x", "definition": {"key": "usr_age", "op": ">",
                                                      "values": ["old"]}},
         "INVALID_CONDITION", "definition.values: 'old' is not an int (key usr_age)"),
        ({"key": "x", "name": "x", "definition": MEN},
         "INVALID_SEGMENT", "key: a segment key starts with 'seg_', got 'x'"),
        ({"key": "seg_x", "definition": MEN}, "INVALID_SEGMENT", "name: a segment needs a name"),
        ({"key": "seg_x", "name": "x", "definition": {"segment": "seg_none"}},
         "INVALID_CONDITION", "definition.segment: unknown segment 'seg_none'"),
        ({"key": "seg_x", "name": "x"}, "INVALID_SEGMENT",
         "definition: a DIRECT segment needs a definition (a condition)"),
        ({"key": "seg_x", "name": "x", "definition": MEN, "colour": "red"}, "INVALID_SEGMENT",
         "colour: unknown field (a segment has: key, name, description, scheduler, "
         "createdBy, definition)"),
    ]
    for body, code, message in cases:
        response = api.post(url, json=body)
        assert (response.status_code, response.json()) == (400, {"code": code,
                                                                  "message": message})
    assert api.get(url).json()["totalCount"] == 0


def test_segments_naming_each_other_in_a_cycle_are_refused(api, tp, pid):
    define(api, pid, "seg_a", MEN)
    define(api, pid, "seg_b", {"segment": "seg_a"})
    response = api.put(f"/v1/api/projects/{pid}/segment_profiles/seg_a",
                       json={"name": "a", "definition": {"segment": "seg_b"}})
    assert response.status_code == 400
    assert response.json()["message"] == (
        "definition: the segments seg_a -> seg_b -> seg_a name each other in a cycle")


def test_a_key_is_taken_across_projects_and_a_segment_is_found_only_in_its_own(api, tp, pid):
    other = tp.projects.create("第二项目").id
    define(api, pid, "seg_men", MEN)
    taken = api.post(f"/v1/api/projects/{other}/segment_profiles",
                     json={"key": "seg_men", "name": "m", "definition": MEN})
    assert (taken.status_code, taken.json()["code"]) == (409, "SEGMENT_EXISTS")
    missing = api.get(f"/v1/api/projects/{other}/segment_profiles/seg_men/users")
    assert (missing.status_code, missing.json()["code"]) == (404, "SEGMENT_NOT_FOUND")
    assert api.get(f"/v1/api/projects/{other}/segment_profiles").json()["totalCount"] == 0
    unknown = api.get("/v1/api/projects/nope0000/segment_profiles")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "PROJECT_NOT_FOUND")
    export = api.post(f"/v1/api/projects/{pid}/segment_profiles/seg_none/export_jobs",
                      json={})
    assert (export.status_code, export.json()["code"]) == (404, "SEGMENT_NOT_FOUND")


def test_defining_takes_the_admin_scope(tp, pid):
    with client_for(tp, tp.tokens.create("export-only")) as client:
        response = client.post(f"/v1/api/projects/{pid}/segment_profiles",
                               json={"key": "seg_men", "name": "m", "definition": MEN})
        assert (response.status_code, response.json()["code"]) == (403, "ADMIN_REQUIRED")
        assert client.get(f"/v1/api/projects/{pid}/segment_profiles").status_code == 200


def test_an_uploaded_list_makes_exactly_its_users_members(api, tp, pid):
    created = api.post(f"/v1/api/projects/{pid}/segment_profiles",
                       json={"key": "seg_list", "name": "名单", "createdBy": "FROM_FILES",
                             "scheduler": "ONCE"})
    assert created.status_code == 201 and created.json()["createdBy"] == "FROM_FILES"
    url = f"/v1/api/projects/{pid}/segment_profiles/seg_list/members"
    upload = api.post(url, content=b"id_uid\nu2\nu5\nnobody\nu2\n",
                      headers={"Content-Type": "text/csv"})
    assert upload.status_code == 200, upload.text
    assert upload.json() == {"values": 3, "members": 2, "unknown": 1}
    assert members(api, pid, "seg_list") == ["u2", "u5"]
    again = api.post(url, content=b"id_uid\nu3\n", headers={"Content-Type": "text/csv"})
    assert again.json() == {"values": 1, "members": 1, "unknown": 0}
    assert members(api, pid, "seg_list") == ["u3"]
    listed = api.get(f"/v1/api/projects/{pid}/segment_profiles").json()["values"][0]
    assert (listed["detector"]["stage"], listed["detector"]["totalUsers"]) == ("FINISH", 1)
    bad = api.post(url, content="usr_city\n北京\n".encode(), headers={"Content-Type": "text/csv"})
    assert (bad.status_code, bad.json()["code"]) == (400, "UNKNOWN_IDENTITY")
    assert members(api, pid, "seg_list") == ["u3"]  # nothing changed


def test_a_segment_named_by_another_is_not_deleted_and_a_deleted_one_is_cleared(api, tp, pid):
    define(api, pid, "seg_men", MEN)
    define(api, pid, "seg_b", {"segment": "seg_men"})
    run_queued(tp)
    url = f"/v1/api/projects/{pid}/segment_profiles"
    in_use = api.delete(f"{url}/seg_men")
    assert (in_use.status_code, in_use.json()["code"]) == (409, "SEGMENT_IN_USE")
    assert api.delete(f"{url}/seg_b").json() == {"key": "seg_b", "deleted": True}
    assert api.delete(f"{url}/seg_men").status_code == 200
    run_queued(tp)
    assert api.get(url).json()["totalCount"] == 0
    define(api, pid, "seg_men", {"key": "usr_city", "op": "=", "values": ["广州"]},
           createdBy="DIRECT")
    # before its first computation, the re-used key holds no stale members
    assert members(api, pid, "seg_men") == []


def test_an_estimate_counts_a_definition_not_yet_saved(api, pid):
    response = api.post(f"/v1/api/projects/{pid}/segment_estimates",
                        json={"definition": MARKETERS})
    assert response.json() == {"users": 2, "totalUsers": 5, "exact": True, "sampleRatio": 1.0}
    bad = api.post(f"/v1/api/projects/{pid}/segment_estimates",
                   json={"definition": {"key": "usr_x", "op": "=", "values": ["1"]}})
    assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_CONDITION")


def test_a_portrait_compares_a_segments_users_with_all_users(api, tp, pid):
    define(api, pid, "seg_men", MEN)
    run_queued(tp)
    portrait = api.get(f"/v1/api/projects/{pid}/segment_profiles/seg_men/portrait",
                       params={"properties": "usr_city,tag_rfm"}).json()
    assert (portrait["groupUsers"], portrait["totalUsers"]) == (3, 5)
    city, rfm = portrait["properties"]
    assert (city["key"], city["name"], city["groupCovered"], city["allCovered"]) == (
        "usr_city", "城市", 3, 4)
    assert [(v["value"], v["groupUsers"], v["allUsers"]) for v in city["values"]] == [
        ("上海", 1, 1), ("北京", 1, 2), ("广州", 1, 1)]
    assert city["values"][1]["groupRatio"] == pytest.approx(1 / 3)
    assert city["values"][1]["allRatio"] == pytest.approx(2 / 5)
    assert [(v["value"], v["groupUsers"]) for v in rfm["values"]] == [
        ("中", 1), ("低", 1), ("高", 1)]
    tag = api.get("/v1/api/user_tags/tag_rfm/portrait", params={"properties": "usr_gender"})
    assert tag.status_code == 200
    assert [(v["value"], v["groupUsers"], v["allUsers"])
            for v in tag.json()["properties"][0]["values"]] == [("男", 3, 3)]


def test_the_daily_schedule_computes_daily_segments_after_the_tags(api, tp, pid):
    define(api, pid, "seg_men", MEN)
    define(api, pid, "seg_once", MEN, scheduler="ONCE")
    run_queued(tp)
    assert tp.segments.ordered(None) == ["seg_men"]
