"""The routes behind the web console (in-process ASGI client, real worker pool and engine):
`GET /v1/api/catalog`, `GET /v1/api/jobs`, and the console's page and static files."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tagport.api.app import create_app
from tagport.exports.spec import ExportRequest
from tests.integration.test_api import wait


@pytest.fixture
def app(seeded):
    with TestClient(create_app(seeded)) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- GET /v1/api/catalog -------------------------------------------------------------


def test_catalog_lists_identities_attributes_and_tags_with_display_names(app, seeded):
    token = seeded.tokens.create("reader")
    response = app.get("/v1/api/catalog", headers=bearer(token))
    assert response.status_code == 200, response.text
    catalog = response.json()
    assert catalog["identities"] == [{"key": "id_$basic_userId", "name": "用户ID",
                                      "description": "",
                                      "valueType": {"type": "STRING", "isArray": False}}]
    assert [(a["key"], a["name"], a["valueType"]["type"]) for a in catalog["attributes"]] == [
        ("usr_gender", "性别", "STRING"), ("usr_age", "年龄", "INT")]
    assert [(t["key"], t["name"], t["valueType"]["isArray"]) for t in catalog["tags"]] == [
        ("tag_rfm", "会员等级", False), ("tag_interests", "兴趣", True)]


def test_catalog_needs_a_token(app):
    response = app.get("/v1/api/catalog")
    assert response.status_code == 401
    assert response.json()["code"] == "MISSING_TOKEN"


# -- GET /v1/api/jobs ----------------------------------------------------------------


def test_jobs_are_the_tokens_own_newest_first_as_result_documents(app, seeded):
    mine, theirs = seeded.tokens.create("mine"), seeded.tokens.create("theirs")
    first = submit_as(app, mine, {"properties": ["usr_gender"]})
    second = submit_as(app, mine, {"properties": ["usr_age"], "fileFormat": "json"})
    submit_as(app, theirs, {})
    app.headers.update(bearer(mine))
    finished = wait(app, first["id"])
    wait(app, second["id"])

    page = app.get("/v1/api/jobs").json()
    assert {k: page[k] for k in ("limit", "offset", "totalCount", "hasNextPage",
                                 "hasPreviousPage")} == {
        "limit": 20, "offset": 0, "totalCount": 2, "hasNextPage": False,
        "hasPreviousPage": False}
    assert [j["id"] for j in page["values"]] == [second["id"], first["id"]]
    listed = page["values"][1]
    assert listed["stage"] == "FINISH" and listed["rowCount"] == 3
    assert {k: listed[k] for k in finished if k != "downloadLinks"} == {
        k: v for k, v in finished.items() if k != "downloadLinks"}
    [link] = listed["downloadLinks"]
    download = app.get(link, headers={"Authorization": ""})
    assert download.status_code == 200
    assert download.text.splitlines()[0] == '"gio_id","usr_gender"'


def test_jobs_page_by_limit_and_offset(app, seeded):
    token = seeded.tokens.create("pager")
    ids = [submit_as(app, token, {"properties": [p]})["id"]
           for p in ("usr_gender", "usr_age", "tag_rfm")]
    page = app.get("/v1/api/jobs?limit=2&offset=1", headers=bearer(token)).json()
    assert [j["id"] for j in page["values"]] == [ids[1], ids[0]]
    assert (page["totalCount"], page["hasNextPage"], page["hasPreviousPage"]) == (3, False, True)
    first = app.get("/v1/api/jobs?limit=1", headers=bearer(token)).json()
    assert [j["id"] for j in first["values"]] == [ids[2]] and first["hasNextPage"]


def test_an_admin_token_sees_every_tokens_jobs(app, seeded):
    one, two = seeded.tokens.create("one"), seeded.tokens.create("two")
    admin = seeded.tokens.create("ops", scopes=("admin",))
    ids = {submit_as(app, one, {})["id"], submit_as(app, two, {})["id"]}
    page = app.get("/v1/api/jobs", headers=bearer(admin)).json()
    assert {j["id"] for j in page["values"]} == ids and page["totalCount"] == 2
    assert app.get("/v1/api/jobs", headers=bearer(one)).json()["totalCount"] == 1


def test_a_failed_job_is_listed_with_its_error(app, seeded):
    token = seeded.tokens.create("canceller")
    owner = seeded.tokens.authenticate(token)
    job = seeded.jobs.submit(ExportRequest("tag_rfm", ["usr_gender"], "csv", "key"),
                             token_id=owner.id)
    seeded.jobs.cancel(job.id)
    [listed] = app.get("/v1/api/jobs", headers=bearer(token)).json()["values"]
    assert listed["stage"] == "ERROR" and listed["uris"] == []
    assert listed["error"] == {"code": "CANCELLED", "message": "cancelled by the client"}
    assert "downloadLinks" not in listed


@pytest.mark.parametrize("query, code", [("limit=0", "INVALID_LIMIT"),
                                         ("offset=-1", "INVALID_OFFSET"),
                                         ("offset=9223372036854775808", "INVALID_OFFSET")])
def test_a_bad_page_is_rejected(app, seeded, query, code):
    token = seeded.tokens.create("bad-page")
    response = app.get(f"/v1/api/jobs?{query}", headers=bearer(token))
    assert response.status_code == 400 and response.json()["code"] == code


def test_the_largest_offset_is_an_empty_page(app, seeded):
    token = seeded.tokens.create("far-page")
    response = app.get("/v1/api/jobs?offset=9223372036854775807", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["values"] == []


def submit_as(app, token, body):
    response = app.post("/v1/api/user_tags/tag_rfm/export_jobs", json=body,
                        headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


# -- the console's page and files ----------------------------------------------------


def test_the_console_page_is_served_with_a_strict_content_security_policy(app):
    page = app.get("/console")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert 'src="console/static/console.js"' in page.text
    assert 'href="console/static/console.css"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing external


def test_the_console_script_and_stylesheet_are_served_from_the_package(app):
    script = app.get("/console/static/console.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "sessionStorage" in script.text
    assert app.get("/console/static/console.css").status_code == 200
    assert app.get("/console/static/nope.js").status_code == 404


def test_console_with_a_slash_redirects_to_the_page(app):
    response = app.get("/console/", follow_redirects=False)
    assert response.status_code == 308 and response.headers["location"] == "/console"


# -- /docs, GET /v1/api/user_tags/{key}, GET /v1/api/user_events/{user_key}/{value} --


def test_docs_loads_swagger_ui_from_the_package_only(app):
    page = app.get("/docs")
    assert page.status_code == 200
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert f"/console/static/vendor/swagger-ui/{asset}" in page.text
        assert app.get(f"/console/static/vendor/swagger-ui/{asset}").status_code == 200
    assert "https://" not in page.text and "http://" not in page.text
    assert '"validatorUrl": null' in page.text
    assert app.get("/console/static/vendor/chart.js/chart.umd.min.js").status_code == 200
    assert app.get("/redoc").status_code == 404  # it loaded from a CDN


def test_one_tag_with_its_definition_or_none_for_a_loaded_tag(app, seeded):
    app.headers.update(bearer(seeded.tokens.create("reader")))
    tag = app.get("/v1/api/user_tags/tag_rfm").json()
    listed = app.get("/v1/api/user_tags").json()["values"][0]
    assert tag == {**listed, "compute": None, "scheduler": None, "definition": None}
    missing = app.get("/v1/api/user_tags/tag_nope")
    assert (missing.status_code, missing.json()["code"]) == (404, "TAG_NOT_FOUND")


def test_a_users_events_unknown_values_identities_and_limits(app, seeded):
    app.headers.update(bearer(seeded.tokens.create("reader")))
    assert app.get("/v1/api/user_events/$basic_userId/C001").json() == {
        "gioId": "1", "limit": 50, "values": []}  # the seed has no events
    assert app.get("/v1/api/user_events/$basic_userId/C404?limit=5").json() == {
        "gioId": "0", "limit": 5, "values": []}
    unknown = app.get("/v1/api/user_events/$nope/C001")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "IDENTITY_NOT_FOUND")
    too_many = app.get("/v1/api/user_events/$basic_userId/C001?limit=201")
    assert (too_many.status_code, too_many.json()["code"]) == (400, "INVALID_LIMIT")
