"""Projects (spec section 8) over the core and HTTP: the default project from the first
start, create and list, each project form of a tag route answering byte for byte as its
platform route, and an unknown project 404 on every one."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tagport.api.app import create_app
from tagport.catalog.service import entries_from_file, events_from_file, read_catalog_file
from tagport.core import Tagport
from tagport.errors import BadRequest, Conflict, NotFound
from tests.conftest import SEED_CATALOG
from tests.integration.test_api import SEED_PROPERTIES, wait

COMPUTED = {"type": "AGGREGATED", "event": "payOrderSuccess", "measure": "count",
            "window": {"lastDays": 30}}


@pytest.fixture
def client(seeded):
    token = seeded.tokens.create("projects")
    with TestClient(create_app(seeded)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


@pytest.fixture
def project(seeded) -> str:
    return seeded.projects.list()[0].id


def both(client, project, method, path, **kwargs):
    """The platform route's answer and its project form's."""
    platform = client.request(method, f"/v1/api{path}", **kwargs)
    scoped = client.request(method, f"/v1/api/projects/{project}{path}", **kwargs)
    return platform, scoped


def assert_same(platform, scoped):
    assert scoped.status_code == platform.status_code
    assert scoped.headers["content-type"] == platform.headers["content-type"]
    assert scoped.content == platform.content


# -- the core ----------------------------------------------------------------------


def test_the_default_project_exists_once_across_restarts(settings):
    first = Tagport(settings)
    try:
        projects = first.projects.list()
    finally:
        first.close()
    assert [p.name for p in projects] == ["默认项目"]
    assert len(projects[0].id) == 8 and projects[0].id.isalnum()
    again = Tagport(settings)
    try:
        assert again.projects.list() == projects
    finally:
        again.close()


def test_created_projects_are_listed_oldest_first(core):
    default = core.projects.list()[0]
    a = core.projects.create("营销")
    b = core.projects.create(" 运营 ")
    assert core.projects.list() == [default, a, b]
    assert b.name == "运营" and len({default.id, a.id, b.id}) == 3
    assert core.projects.get(a.id) == a


def test_a_project_needs_a_name(core):
    with pytest.raises(BadRequest, match="needs a name"):
        core.projects.create("  ")


def test_a_duplicate_name_is_refused(core):
    core.projects.create("营销")
    with pytest.raises(Conflict, match="a project named '营销' already exists") as err:
        core.projects.create("营销")
    assert err.value.code == "PROJECT_EXISTS"
    assert len(core.projects.list()) == 2


def test_an_unknown_project_is_not_found(core):
    with pytest.raises(NotFound, match="project 'nope' does not exist") as err:
        core.projects.get("nope")
    assert err.value.code == "PROJECT_NOT_FOUND"


# -- GET /v1/api/projects ------------------------------------------------------------


def test_projects_are_listed_in_growingios_page_envelope(client, seeded):
    created = seeded.projects.create("营销")
    page = client.get("/v1/api/projects").json()
    assert {k: page[k] for k in ("limit", "offset", "totalCount", "hasNextPage",
                                 "hasPreviousPage")} == {
        "limit": 1000, "offset": 0, "totalCount": 2, "hasNextPage": False,
        "hasPreviousPage": False}
    assert [(p["name"], set(p)) for p in page["values"]] == [
        ("默认项目", {"id", "name", "createdAt"}), ("营销", {"id", "name", "createdAt"})]
    second = client.get("/v1/api/projects?limit=1&offset=1").json()
    assert second["values"] == [created.document()] and second["hasPreviousPage"]


# -- the project forms answer as the platform routes ----------------------------------


@pytest.mark.parametrize("query", ["", "?limit=1", "?limit=1&offset=1", "?limit=0"])
def test_project_tag_list_is_the_platform_tag_list(client, project, query):
    assert_same(*both(client, project, "GET", f"/user_tags{query}"))


@pytest.mark.parametrize("path", [
    "/user_tags/tag_rfm/users?properties=ids_$basic_userId,usr_gender,tag_rfm",
    "/user_tags/tag_interests/users?properties[]=tag_interests&limit=1&offset=0",
    "/user_tags/tag_rfm/users?properties=usr_nope",
    "/user_tags/tag_nope/users",
])
def test_project_tag_users_are_the_platform_tag_users(client, project, path):
    assert_same(*both(client, project, "GET", path))


def test_english_answers_too(client, project):
    assert_same(*both(client, project, "GET", "/user_tags/tag_nope/users",
                      headers={"language": "US"}))


def test_project_export_is_the_platform_export_to_the_byte(client, project):
    body = {"properties": SEED_PROPERTIES, "fileFormat": "csv"}
    platform, scoped = both(client, project, "POST", "/user_tags/tag_rfm/export_jobs", json=body)
    assert platform.status_code == scoped.status_code == 200
    assert set(scoped.json()) == {"id", "name"} and len(scoped.json()["id"]) == 8
    results = [wait(client, r.json()["id"]) for r in (platform, scoped)]
    assert [r["stage"] for r in results] == ["FINISH", "FINISH"]
    # the same document but for the job's own id, name (in its uris) and times
    for created, result in zip((platform, scoped), results, strict=True):
        assert all(created.json()["name"] in uri for uri in result["uris"])
    assert [u.rsplit("%2F", 1)[1] for u in results[1]["uris"]] == \
        [u.rsplit("%2F", 1)[1] for u in results[0]["uris"]]
    same = ("stage", "rowCount", "byteCount", "error")
    assert {k: results[1].get(k) for k in same} == {k: results[0].get(k) for k in same}
    files = [client.get("/download?file=" + r["uris"][0]) for r in results]
    assert files[1].status_code == files[0].status_code == 200
    assert files[1].content == files[0].content
    assert files[1].headers["content-disposition"] == files[0].headers["content-disposition"]


@pytest.mark.parametrize("body", [{"fileFormat": "xml"}, {"properties": ["usr_nope"]}])
def test_project_export_errors_are_the_platform_errors(client, project, body):
    assert_same(*both(client, project, "POST", "/user_tags/tag_rfm/export_jobs", json=body))


def test_project_export_of_an_unknown_tag_is_the_platform_404(client, project):
    assert_same(*both(client, project, "POST", "/user_tags/tag_nope/export_jobs", json={}))


def test_project_compute_is_the_platform_compute(seeded, project, tmp_path):
    catalog = dict(SEED_CATALOG, tags=[
        *SEED_CATALOG["tags"],
        {"key": "tag_paid_a", "name": "支付次数A", "type": "int", "compute": COMPUTED},
        {"key": "tag_paid_b", "name": "支付次数B", "type": "int", "compute": COMPUTED}],
        events=[{"key": "payOrderSuccess", "name": "支付订单", "attributes": []}])
    path = tmp_path / "computed.json"
    path.write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    spec = read_catalog_file(path)
    seeded.catalog.apply(entries_from_file(spec), events_from_file(spec))
    token = seeded.tokens.create("computes")
    # no workers: a triggered computation stays queued, so a second trigger is the 409
    with TestClient(create_app(seeded, run_workers=False)) as api:
        api.headers["Authorization"] = f"Bearer {token}"
        first = api.post("/v1/api/user_tags/tag_paid_a/computes")
        scoped = api.post(f"/v1/api/projects/{project}/user_tags/tag_paid_b/computes")
        assert first.json() == {"value": True, "message": "触发计算成功"}
        assert_same(first, scoped)
        assert_same(*both(api, project, "POST", "/user_tags/tag_paid_a/computes"))
        assert_same(*both(api, project, "POST", "/user_tags/tag_rfm/computes"))
        assert_same(*both(api, project, "POST", "/user_tags/tag_nope/computes"))


# -- an unknown project ----------------------------------------------------------------

PROJECT_ROUTES = [
    ("GET", "/user_tags"),
    ("GET", "/user_tags/tag_rfm/users"),
    ("POST", "/user_tags/tag_rfm/export_jobs"),
    ("POST", "/user_tags/tag_rfm/computes"),
    ("GET", "/user_tags/tag_nope/users"),  # the project is looked at before the tag
    ("POST", "/user_tags/tag_nope/export_jobs"),
]


@pytest.mark.parametrize(("method", "path"), PROJECT_ROUTES)
def test_an_unknown_project_is_404_on_every_route(client, method, path):
    response = client.request(method, f"/v1/api/projects/nOpe1234{path}",
                              params={"limit": "x"} if method == "GET" else None,
                              json={"fileFormat": "xml"} if method == "POST" else None)
    assert response.status_code == 404
    assert response.json() == {"code": "PROJECT_NOT_FOUND",
                               "message": "project 'nOpe1234' does not exist"}


@pytest.mark.parametrize(("method", "path"), PROJECT_ROUTES[:4])
def test_authentication_comes_before_the_project(client, method, path):
    response = client.request(method, f"/v1/api/projects/nOpe1234{path}",
                              headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
