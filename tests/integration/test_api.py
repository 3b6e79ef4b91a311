"""The seed API over HTTP (in-process ASGI client), with the real worker pool and engine."""

from __future__ import annotations

import shutil
import time
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from tagport.api.app import create_app
from tagport.jobs.heartbeat import Heartbeat

CSV_KEY = (
    '"gio_id","id_$basic_userId","usr_gender","tag_rfm"\n'
    '1,"C001","男","高"\n'
    '3,"C004||C005","女","低"\n'
    '4,"C006",,"中"\n'
)
CSV_NAME = '"gio_id","用户ID","性别","会员等级"\n' + CSV_KEY.split("\n", 1)[1]
JSON_LINES = (
    '{"gio_id":1,"identifications":{"id_$basic_userId":"C001"},"properties":{"usr_gender":"男","tag_rfm":"高"}}\n'
    '{"gio_id":3,"identifications":{"id_$basic_userId":"C004||C005"},"properties":{"usr_gender":"女","tag_rfm":"低"}}\n'
    '{"gio_id":4,"identifications":{"id_$basic_userId":"C006"},"properties":{"usr_gender":null,"tag_rfm":"中"}}\n'
)
SEED_PROPERTIES = ["ids_$basic_userId", "usr_gender", "tag_rfm"]


@pytest.fixture
def token(seeded):
    return seeded.tokens.create("tester")


@pytest.fixture
def client(seeded, token):
    with TestClient(create_app(seeded)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def submit(client, body, tag="tag_rfm"):
    return client.post(f"/v1/api/user_tags/{tag}/export_jobs", json=body)


def wait(client, job_id, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = client.get(f"/v1/api/job/result/{job_id}").json()
        if result["stage"] in ("FINISH", "ERROR"):
            return result
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {result}")


def export_bytes(client, body, tag="tag_rfm"):
    created = submit(client, body, tag)
    assert created.status_code == 200, created.text
    result = wait(client, created.json()["id"])
    assert result["stage"] == "FINISH", result
    response = client.get("/download?file=" + result["uris"][0])
    assert response.status_code == 200
    return created.json(), result, response


def test_submit_answers_id_and_name_like_the_seed(client):
    body = submit(client, {"properties": SEED_PROPERTIES, "fileFormat": "json"}).json()
    assert set(body) == {"id", "name"}
    assert len(body["id"]) == 8 and body["id"].isalnum()
    assert body["name"].startswith("DES-") and len(body["name"]) == 30


def test_csv_with_key_header_is_byte_exact(client):
    _, _, response = export_bytes(client, {"properties": SEED_PROPERTIES})
    assert response.content == CSV_KEY.encode()


def test_csv_with_name_header_is_byte_exact(client):
    _, _, response = export_bytes(client, {"properties": SEED_PROPERTIES, "csvHeaderType": "name"})
    assert response.content == CSV_NAME.encode()


def test_json_lines_are_byte_exact(client):
    _, _, response = export_bytes(client, {"properties": SEED_PROPERTIES, "fileFormat": "json"})
    assert response.content == JSON_LINES.encode()


def test_empty_properties_give_the_gio_id_column_only(client):
    _, _, csv = export_bytes(client, {"properties": []})
    assert csv.content == b'"gio_id"\n1\n3\n4\n'
    _, _, js = export_bytes(client, {"properties": [], "fileFormat": "json"})
    assert js.content == (
        b'{"gio_id":1,"identifications":{},"properties":{}}\n'
        b'{"gio_id":3,"identifications":{},"properties":{}}\n'
        b'{"gio_id":4,"identifications":{},"properties":{}}\n'
    )


def test_no_body_at_all_is_a_csv_of_gio_ids(client):
    created = client.post("/v1/api/user_tags/tag_rfm/export_jobs")
    assert created.status_code == 200
    result = wait(client, created.json()["id"])
    assert client.get("/download?file=" + result["uris"][0]).content == b'"gio_id"\n1\n3\n4\n'


def test_ids_and_id_spellings_give_the_same_file(client):
    _, _, a = export_bytes(client, {"properties": ["ids_$basic_userId"]})
    _, _, b = export_bytes(client, {"properties": ["id_$basic_userId", "gio_id", "ids_$basic_userId"]})
    assert a.content == b.content == b'"gio_id","id_$basic_userId"\n1,"C001"\n3,"C004||C005"\n4,"C006"\n'


def test_array_tag_is_joined_in_csv_and_an_array_in_json(client):
    _, _, csv = export_bytes(client, {"properties": ["tag_interests", "usr_age"]})
    assert csv.content == b'"gio_id","tag_interests","usr_age"\n1,,30\n3,"\xe6\x95\xb0\xe7\xa0\x81||\xe7\xbe\x8e\xe5\xa6\x86",\n4,,\n'
    _, _, js = export_bytes(client, {"properties": ["tag_interests"], "fileFormat": "json"})
    assert js.content.decode().splitlines()[1] == (
        '{"gio_id":3,"identifications":{},"properties":{"tag_interests":["数码","美妆"]}}')


def test_an_array_tag_covers_users_with_a_non_empty_array(client):
    _, _, csv = export_bytes(client, {"properties": []}, tag="tag_interests")
    assert csv.content == b'"gio_id"\n3\n'


def test_result_uri_is_the_encoded_path_with_the_file_name(client):
    created, result, response = export_bytes(client, {"properties": SEED_PROPERTIES, "fileFormat": "json"})
    day = result["createdAt"][:10]
    assert result["uris"] == [
        f"%2Fjobs%2Fresults%2F{created['name']}%2F%E4%BC%9A%E5%91%98%E7%AD%89%E7%BA%A7_{day}_UserList.json"
    ]
    assert unquote(result["uris"][0]) == f"/jobs/results/{created['name']}/会员等级_{day}_UserList.json"
    assert result["rowCount"] == 3 and result["byteCount"] == len(response.content)


def test_download_headers_name_the_file_type_and_length(client):
    _, result, response = export_bytes(client, {"properties": SEED_PROPERTIES})
    day = result["createdAt"][:10]
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-length"] == str(len(CSV_KEY.encode()))
    assert response.headers["content-disposition"] == (
        f"attachment; filename=\"_____{day}_UserList.csv\"; "
        f"filename*=UTF-8''%E4%BC%9A%E5%91%98%E7%AD%89%E7%BA%A7_{day}_UserList.csv"
    )


def test_json_download_is_ndjson(client):
    _, _, response = export_bytes(client, {"fileFormat": "json"})
    assert response.headers["content-type"] == "application/x-ndjson; charset=utf-8"


def test_download_supports_ranges(client):
    _, result, _ = export_bytes(client, {"properties": SEED_PROPERTIES})
    part = client.get("/download?file=" + result["uris"][0], headers={"Range": "bytes=0-7"})
    assert part.status_code == 206
    assert part.content == CSV_KEY.encode()[:8]
    assert part.headers["content-range"] == f"bytes 0-7/{len(CSV_KEY.encode())}"


def test_stages_move_from_none_to_finish(seeded, token):
    # no worker pool: the stages can be watched one step at a time
    with TestClient(create_app(seeded, run_workers=False)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        job_id = submit(c, {}).json()["id"]
        assert c.get(f"/v1/api/job/result/{job_id}").json()["stage"] == "NONE"
        assert c.get(f"/v1/api/job/result/{job_id}").json()["uris"] == []
        assert seeded.jobs.runner.claim(job_id, "test")
        assert c.get(f"/v1/api/job/result/{job_id}").json()["stage"] == "READY"
        seeded.jobs.runner.run_claimed(job_id, seeded.engine, "test")
        assert c.get(f"/v1/api/job/result/{job_id}").json()["stage"] == "FINISH"


# -- errors ------------------------------------------------------------------------


def test_missing_token_is_401_json(client):
    response = client.post("/v1/api/user_tags/tag_rfm/export_jobs", json={},
                           headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.json() == {"code": "MISSING_TOKEN",
                               "message": "missing Authorization header: use 'Bearer <token>'"}


@pytest.mark.parametrize("path", ["/v1/api/job/result/abcdefgh", "/download?file=x"])
def test_wrong_token_is_401_everywhere(client, path):
    response = client.get(path, headers={"Authorization": "Bearer 4aaa22c7-679f-49be-b97d-073dad5dfc15"})
    assert response.status_code == 401
    assert response.json()["code"] == "INVALID_TOKEN"


def test_revoked_token_is_refused_at_the_next_request(client, seeded):
    assert client.get("/v1/api/job/result/abcdefgh").status_code == 404
    seeded.tokens.revoke("tester")
    assert client.get("/v1/api/job/result/abcdefgh").status_code == 401


def test_unknown_tag_is_404(client):
    response = submit(client, {}, tag="tag_nope")
    assert response.status_code == 404
    assert response.json() == {"code": "TAG_NOT_FOUND", "message": "user tag 'tag_nope' does not exist"}


def test_unknown_properties_are_400_with_their_keys(client):
    response = submit(client, {"properties": ["usr_gender", "usr_nope", "ids_nope"]})
    assert response.status_code == 400
    assert response.json() == {"code": "UNKNOWN_PROPERTIES",
                               "message": "properties: unknown keys: usr_nope, id_nope"}


def test_more_than_sixty_properties_is_400(client):
    response = submit(client, {"properties": [f"usr_x{i}" for i in range(61)]})
    assert response.status_code == 400
    assert response.json()["code"] == "TOO_MANY_PROPERTIES"


@pytest.mark.parametrize("body, code", [
    ({"fileFormat": "xlsx"}, "INVALID_FILE_FORMAT"),
    ({"csvHeaderType": "label"}, "INVALID_CSV_HEADER_TYPE"),
    ({"properties": "usr_gender"}, "BAD_REQUEST"),
    ({"properties": [1, 2]}, "BAD_REQUEST"),
])
def test_bad_body_fields_are_400(client, body, code):
    response = submit(client, body)
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_body_that_is_not_json_is_400(client):
    response = client.post("/v1/api/user_tags/tag_rfm/export_jobs", content=b"{nope",
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "BAD_REQUEST"


def test_unknown_job_is_404(client):
    response = client.get("/v1/api/job/result/nosuchjb")
    assert response.status_code == 404
    assert response.json() == {"code": "JOB_NOT_FOUND", "message": "job 'nosuchjb' does not exist"}


def test_another_tokens_job_is_404(client, seeded):
    job_id = submit(client, {}).json()["id"]
    other = seeded.tokens.create("other")
    response = client.get(f"/v1/api/job/result/{job_id}", headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 404


@pytest.mark.parametrize("file", [
    "%2Fjobs%2Fresults%2F..%2F..%2Ftagport.sqlite", "/etc/passwd", "..%2Ftagport.sqlite",
    "%252Fjobs%252Fresults", "tagport.sqlite", "%00",
])
def test_download_serves_only_job_files(client, file):
    response = client.get("/download?file=" + file)
    assert response.status_code == 404
    assert response.json()["code"] == "FILE_NOT_FOUND"


def test_download_without_file_is_400(client):
    assert client.get("/download").status_code == 400


def test_unknown_route_is_json_404(client):
    response = client.get("/v1/api/nothing")
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"


def test_failed_export_is_error_with_cause_and_leaves_no_file(client, seeded):
    results = seeded.settings.results_path
    shutil.rmtree(results)
    results.write_text("not a directory")  # the next job cannot create its folder
    result = wait(client, submit(client, {}).json()["id"])
    assert result["stage"] == "ERROR" and result["uris"] == []
    assert result["error"]["code"] == "STORAGE_ERROR"
    assert "writing the result failed" in result["error"]["message"]
    results.unlink()
    results.mkdir()
    # the service goes on serving
    assert wait(client, submit(client, {}).json()["id"])["stage"] == "FINISH"


def test_an_unfinished_jobs_result_counts_the_live_workers_that_take_its_kind(
        seeded, token, monkeypatch):
    monkeypatch.setattr("tagport.jobs.service.LIVE_WORKERS_CACHE", -1.0)  # read each time
    with TestClient(create_app(seeded, run_workers=False)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        job_id = submit(c, {}).json()["id"]

        def live():
            return c.get(f"/v1/api/job/result/{job_id}").json().get("liveWorkers")

        assert live() == 0  # an API-only server, no `tagport worker`: nobody runs it
        with Heartbeat(seeded.db, "computes-only", ["compute"]):
            assert live() == 0
            with Heartbeat(seeded.db, "any-kind", None):
                assert live() == 1
        assert live() == 0  # a stopped pool's row goes
        assert seeded.jobs.runner.run_next("test", seeded.engine, job_id=job_id).name == "RAN"
        assert "liveWorkers" not in c.get(f"/v1/api/job/result/{job_id}").json()
