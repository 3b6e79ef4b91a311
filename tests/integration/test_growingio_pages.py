"""GrowingIO's 2.9 user-API pages, example by example, in one place.

Each test is one documented example of a page under `developer-manual/open-api/user-api/`
of growingio/growingio-cdp-docs: the page's request, sent as the page writes it (its
spelling of keys, `properties[]`, `ids_` prefixes), and the shape of the page's answer
(its keys and, where the page shows values, values of the same kind: `gioId` strings,
identity lists, string values, null). The data is the seed's five users; the names
follow the pages (`seg_51activity`). To add a page: write its examples below its header.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from tagport.api.app import create_app
from tagport.jobs.runner import worker_id

ENVELOPE = {"offset", "limit", "totalCount", "hasNextPage", "hasPreviousPage", "values"}
SEGMENT_FIELDS = {"id", "name", "key", "createdBy", "description", "scheduler", "detector",
                  "creatorId", "creator", "createdAt", "updaterId", "updater", "updatedAt"}
TRIGGERED = {"value": True, "message": "触发计算成功"}


@pytest.fixture
def pages(seeded):
    """A client with an admin token, the default project's id, and `seg_51activity`
    (the men: gio_ids 1 and 5) computed."""
    token = seeded.tokens.create("管理员", scopes=("admin",))
    with TestClient(create_app(seeded, run_workers=False)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        pid = seeded.projects.list()[0].id
        created = client.post(f"/v1/api/projects/{pid}/segment_profiles", json={
            "key": "seg_51activity", "name": "五一活动", "description": "API示例",
            "definition": {"key": "usr_gender", "op": "=", "values": ["男"]}})
        assert created.status_code == 201, created.text
        run_queued(seeded)
        yield client, pid, seeded


def run_queued(tp) -> None:
    while tp.jobs.runner.run_next(worker_id("pages"), tp.engine).name == "RAN":
        pass


def download(client, tp, url: str, body: dict[str, Any]) -> tuple[str, str]:
    """Submit as the page does, poll `job/result`, download: (file name, text)."""
    job = client.post(url, json=body)
    assert job.status_code == 200 and set(job.json()) == {"id", "name"}, job.text
    assert job.json()["name"].startswith("DES-")
    run_queued(tp)
    result = client.get(f"/v1/api/job/result/{job.json()['id']}").json()
    assert result["stage"] == "FINISH" and {"stage", "uris"} <= set(result)
    uri = result["uris"][0]
    assert uri.startswith("%2Fjobs%2Fresults%2FDES-")  # percent-encoded, as the page shows
    name = unquote(uri).rsplit("/", 1)[-1]
    return name, client.get("/download?file=" + uri).text


# -- project-search-segment-profiles.md (项目-群体画像列表查询) ------------------------


def test_segment_profiles_example_list_of_a_project(pages):
    client, pid, _ = pages
    page = client.get(f"/v1/api/projects/{pid}/segment_profiles?offset=0&limit=1000").json()
    assert set(page) == ENVELOPE
    assert (page["offset"], page["limit"], page["totalCount"]) == (0, 1000, 1)
    (segment,) = page["values"]
    assert SEGMENT_FIELDS <= set(segment)
    assert (segment["key"], segment["createdBy"], segment["description"],
            segment["scheduler"], segment["creator"]) == (
        "seg_51activity", "DIRECT", "API示例", "DAILY", "管理员")
    assert {"stage", "detectedAt"} <= set(segment["detector"])
    assert segment["detector"]["stage"] == "FINISH"
    assert all(isinstance(segment[k], str) for k in ("creatorId", "createdAt", "updatedAt"))


# -- project-search-segment-profile-users.md (项目-群体画像用户列表查询) ---------------


def test_segment_users_example_1_an_undefined_segment(pages):
    client, pid, _ = pages
    response = client.get(f"/v1/api/projects/{pid}/segment_profiles/seg_undefine/users"
                          "?limit=100&offset=0&properties[]=ids_$basic_userId")
    # GrowingIO answers a bare 500 "Internal Server Error"; tagport a JSON 404 (spec 8)
    assert response.status_code == 404
    assert response.json()["code"] == "SEGMENT_NOT_FOUND"


def test_segment_users_example_2_no_properties(pages):
    client, pid, _ = pages
    page = client.get(f"/v1/api/projects/{pid}/segment_profiles/seg_51activity/users"
                      "?limit=100&offset=0").json()
    assert set(page) == ENVELOPE and page["totalCount"] == 2
    assert page["values"] == [{"gioId": "1", "identifications": {}, "properties": {}},
                              {"gioId": "5", "identifications": {}, "properties": {}}]


def test_segment_users_example_3_identities_attributes_and_tags(pages):
    client, pid, _ = pages
    page = client.get(
        f"/v1/api/projects/{pid}/segment_profiles/seg_51activity/users?limit=100&offset=0"
        "&properties[]=ids_$basic_userId&properties[]=usr_gender&properties[]=tag_rfm").json()
    assert page["values"] == [
        {"gioId": "1", "identifications": {"id_$basic_userId": ["C001"]},
         "properties": {"usr_gender": "男", "tag_rfm": "高"}},
        {"gioId": "5", "identifications": {"id_$basic_userId": ["C007"]},
         "properties": {"usr_gender": "男", "tag_rfm": None}},
    ]


# -- project-download-segment-profile-users.md (空间-群体画像用户列表下载) -------------


def test_segment_download_example_1_identities_attributes_and_tags(pages):
    client, pid, tp = pages
    name, text = download(
        client, tp, f"/v1/api/projects/{pid}/segment_profiles/seg_51activity/export_jobs",
        {"properties": ["ids_$basic_userId", "usr_gender", "tag_rfm"], "fileFormat": "csv",
         "csvHeaderType": "key"})
    assert name == f"五一活动_{date.today().isoformat()}_UserList.csv"
    assert text == ('"gio_id","id_$basic_userId","usr_gender","tag_rfm"\n'
                    '1,"C001","男","高"\n5,"C007","男",\n')


def test_segment_download_example_2_no_properties(pages):
    client, pid, tp = pages
    _, text = download(
        client, tp, f"/v1/api/projects/{pid}/segment_profiles/seg_51activity/export_jobs",
        {"properties": []})
    assert text == '"gio_id"\n1\n5\n'


def test_segment_download_header_of_names_and_json_lines(pages):
    client, pid, tp = pages
    url = f"/v1/api/projects/{pid}/segment_profiles/seg_51activity/export_jobs"
    _, names = download(client, tp, url, {"properties": ["ids_$basic_userId", "usr_gender"],
                                          "csvHeaderType": "name"})
    assert names.splitlines()[0] == '"gio_id","用户ID","性别"'
    _, lines = download(client, tp, url, {"properties": ["ids_$basic_userId", "tag_rfm"],
                                          "fileFormat": "json"})
    assert lines.splitlines()[0] == ('{"gio_id":1,"identifications":{"id_$basic_userId":'
                                     '"C001"},"properties":{"tag_rfm":"高"}}')


# -- project-compute-segment-profile.md (空间-群体画像更新) ----------------------------


def test_segment_compute_example(pages):
    client, pid, _ = pages
    url = f"/v1/api/projects/{pid}/segment_profiles/seg_51activity/computes"
    response = client.post(url, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (200, TRIGGERED)
    # 限制条件: a segment waiting or computing is not computed again
    assert client.post(url).status_code == 409


# -- project-search-user.md (空间-单用户查询) -------------------------------------------


def test_project_user_example_1_by_user_id(pages):
    client, pid, _ = pages
    user = client.get(f"/v1/api/projects/{pid}/users/$basic_userId/C004").json()
    assert user == {
        "gioId": "3", "identifications": {"ids_$basic_userId": ["C004", "C005"]},
        "properties": {"usr_gender": "女", "usr_age": None, "tag_rfm": "低",
                       "tag_interests": ["数码", "美妆"]}}


def test_project_user_example_2_by_another_value_of_the_identity(pages):
    client, pid, _ = pages
    by_other = client.get(f"/v1/api/projects/{pid}/users/$basic_userId/C005").json()
    assert by_other["gioId"] == "3"


def test_project_user_example_3_unknown(pages):
    client, pid, _ = pages
    user = client.get(f"/v1/api/projects/{pid}/users/$basic_userId/Z")
    assert (user.status_code, user.json()) == (
        200, {"gioId": "0", "identifications": {}, "properties": {}})


# -- project-search-user-tags.md, project-search-user-tag-users.md ------------------------


def test_project_tags_list(pages):
    client, pid, _ = pages
    page = client.get(f"/v1/api/projects/{pid}/user_tags?offset=0&limit=1000").json()
    assert set(page) == ENVELOPE
    rfm = page["values"][0]
    assert {"id", "key", "name", "type", "description", "valueType", "detector"} <= set(rfm)
    assert (rfm["key"], rfm["type"], rfm["valueType"]) == (
        "tag_rfm", "IMPORT", {"type": "STRING", "isArray": False})


def test_project_tag_users_with_identities_attributes_and_tags(pages):
    client, pid, _ = pages
    page = client.get(f"/v1/api/projects/{pid}/user_tags/tag_rfm/users?limit=2&offset=0"
                      "&properties[]=ids_$basic_userId&properties[]=usr_gender").json()
    assert (page["totalCount"], page["hasNextPage"]) == (3, True)
    assert page["values"][0] == {"gioId": "1",
                                 "identifications": {"id_$basic_userId": ["C001"]},
                                 "properties": {"usr_gender": "男"}}


# -- project-download-user-tag-users.md, project-compute-user-tag.md ----------------------


def test_project_tag_download(pages):
    client, pid, tp = pages
    name, text = download(client, tp, f"/v1/api/projects/{pid}/user_tags/tag_rfm/export_jobs",
                          {"properties": ["ids_$basic_userId"], "fileFormat": "csv"})
    assert name == f"会员等级_{date.today().isoformat()}_UserList.csv"
    assert text == '"gio_id","id_$basic_userId"\n1,"C001"\n3,"C004||C005"\n4,"C006"\n'


def test_project_tag_compute_of_a_loaded_tag_is_refused_plainly(pages):
    client, pid, _ = pages
    response = client.post(f"/v1/api/projects/{pid}/user_tags/tag_rfm/computes")
    assert (response.status_code, response.json()["code"]) == (400, "TAG_NOT_COMPUTED")
