"""The console's own reads (api/console_reads.py) over HTTP: who the caller is, any
attribute's or tag's distribution, and the project's segments a user is a member of (a
segment never computed, an unknown user, an unknown identity or project)."""

from __future__ import annotations

import pytest

from tests.integration.test_segments import (  # noqa: F401  (fixtures)
    MARKETERS,
    MEN,
    api,
    client_for,
    define,
    pid,
    run_queued,
    tp,
)


def test_whoami_says_whether_the_token_may_define_segments(api, tp):  # noqa: F811
    assert api.get("/v1/api/whoami").json() == {"name": "运营", "scopes": ["admin"], "admin": True}
    with client_for(tp, tp.tokens.create("reader")) as reader:
        assert reader.get("/v1/api/whoami").json() == {
            "name": "reader", "scopes": ["export"], "admin": False}
        assert reader.get("/v1/api/whoami", headers={"Authorization": "Bearer x"}).status_code == 401


def test_an_attributes_distribution_is_the_tag_distributions_document(api):  # noqa: F811
    city = api.get("/v1/api/catalog/usr_city/distribution").json()
    assert city["key"] == "usr_city" and city["name"] == "城市"
    assert (city["totalUsers"], city["coveredUsers"]) == (5, 4)
    assert city["values"] == [{"value": "北京", "users": 2, "ratio": 0.4},
                              {"value": "上海", "users": 1, "ratio": 0.2},
                              {"value": "广州", "users": 1, "ratio": 0.2}]
    age = api.get("/v1/api/catalog/usr_age/distribution", params={"bins": 2}).json()
    assert age["values"] == [] and [b["users"] for b in age["bins"]] == [1, 2]
    assert (api.get("/v1/api/catalog/tag_rfm/distribution").json()
            == api.get("/v1/api/user_tags/tag_rfm/distribution").json())
    assert api.get("/v1/api/catalog/usr_city/distribution",
                   headers={"language": "US"}).json()["name"] == "城市"  # no name_en
    for key, status, code in [("id_uid", 404, "KEY_NOT_FOUND"), ("usr_nope", 404, "KEY_NOT_FOUND")]:
        response = api.get(f"/v1/api/catalog/{key}/distribution")
        assert (response.status_code, response.json()["code"]) == (status, code)
    response = api.get("/v1/api/catalog/usr_city/distribution", params={"top": 0})
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_DISTRIBUTION")


def test_a_users_segments_are_those_it_is_a_member_of(api, tp, pid):  # noqa: F811
    define(api, pid, "seg_buyers", MARKETERS)
    define(api, pid, "seg_men", MEN)
    run_queued(tp)
    # defined, never computed: no membership column yet
    define(api, pid, "seg_later", MEN)

    def keys(value, identity="id_uid"):
        response = api.get(f"/v1/api/projects/{pid}/user_segments/{identity}/{value}")
        assert response.status_code == 200, response.text
        found = response.json()
        return found["gioId"], [s["key"] for s in found["values"]]

    assert keys("u1") == ("1", ["seg_buyers", "seg_men"])
    assert keys("u2", "uid") == keys("u2", "ids_uid") == ("2", ["seg_men"])  # as /users takes it
    assert keys("u3") == ("3", [])
    assert keys("nobody") == ("0", [])
    listed = api.get(f"/v1/api/projects/{pid}/user_segments/id_uid/u4").json()["values"][0]
    assert listed["key"] == "seg_buyers" and listed["detector"]["stage"] == "FINISH"
    run_queued(tp)
    assert keys("u1") == ("1", ["seg_buyers", "seg_men", "seg_later"])
    for path, code in [(f"{pid}/user_segments/id_nope/u1", "IDENTITY_NOT_FOUND"),
                       ("nope1234/user_segments/id_uid/u1", "PROJECT_NOT_FOUND")]:
        response = api.get(f"/v1/api/projects/{path}")
        assert (response.status_code, response.json()["code"]) == (404, code)


@pytest.mark.parametrize("path", ["/v1/api/whoami", "/v1/api/catalog/usr_city/distribution"])
def test_the_console_reads_need_a_token(tp, path):  # noqa: F811
    with client_for(tp, "not-a-token") as client:
        assert client.get(path).status_code == 401
