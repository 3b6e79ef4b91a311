"""Issue 5 over HTTP: retention, back-pressure, identical requests, cancelling, scopes,
signed links."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from tagport.api.app import create_app
from tests.integration.test_api import CSV_KEY, SEED_PROPERTIES, export_bytes, submit


@pytest.fixture
def tokens(seeded):
    return {"a": seeded.tokens.create("a"), "b": seeded.tokens.create("b"),
            "admin": seeded.tokens.create("root", ("admin",))}


def client_for(app, token):
    c = TestClient(app)
    c.headers["Authorization"] = f"Bearer {token}"
    return c


@pytest.fixture
def running(seeded, tokens):
    app = create_app(seeded)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {tokens['a']}"
        yield app, c


@pytest.fixture
def idle(seeded, tokens):
    """The API without workers: jobs stay where they are put."""
    app = create_app(seeded, run_workers=False)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {tokens['a']}"
        yield app, c


# -- retention ---------------------------------------------------------------------


def test_expired_job_answers_410_and_its_result_says_so(running, seeded):
    _, c = running
    _, result, _ = export_bytes(c, {"properties": SEED_PROPERTIES})
    assert result["expired"] is False and result["expiresAt"] > result["finishedAt"]
    job_dir = seeded.settings.results_path / unquote(result["uris"][0]).split("/")[3]
    assert job_dir.is_dir()
    assert seeded.jobs.sweep_expired(now=datetime.now(UTC) + timedelta(days=8)) == 1
    assert not job_dir.exists()
    after = c.get(f"/v1/api/job/result/{result['id']}").json()
    assert after["stage"] == "FINISH" and after["uris"] == result["uris"]
    assert after["expired"] is True and "downloadLinks" not in after
    gone = c.get("/download?file=" + result["uris"][0])
    assert gone.status_code == 410 and gone.json()["code"] == "FILE_EXPIRED"


def test_the_background_sweep_deletes_files_past_their_ttl(seeded, tokens):
    seeded.settings.retention_interval = 0.1
    seeded.jobs.result_ttl = timedelta(seconds=0.5)
    with client_for(create_app(seeded), tokens["a"]) as c:
        _, result, _ = export_bytes(c, {})
        deadline = time.monotonic() + 10
        while not c.get(f"/v1/api/job/result/{result['id']}").json()["expired"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for _ in range(50):  # the result says expired at once; the sweep follows
            if not any(seeded.settings.results_path.iterdir()):
                break
            time.sleep(0.1)
        assert list(seeded.settings.results_path.iterdir()) == []
        assert c.get("/download?file=" + result["uris"][0]).status_code == 410


# -- back-pressure and identical requests -------------------------------------------


def test_a_token_beyond_its_queue_limit_gets_429_with_retry_after(idle, seeded, tokens):
    app, c = idle
    seeded.jobs.max_queued_per_token = 2
    assert submit(c, {"properties": ["usr_gender"]}).status_code == 200
    assert submit(c, {"properties": ["usr_age"]}).status_code == 200
    third = submit(c, {"properties": ["tag_rfm"]})
    assert third.status_code == 429
    assert third.headers["retry-after"] == "5"
    assert third.json()["code"] == "TOO_MANY_JOBS"
    other = client_for(app, tokens["b"])
    assert submit(other, {"properties": ["tag_rfm"]}).status_code == 200


def test_an_identical_unfinished_request_returns_the_same_job(idle, seeded, tokens):
    app, c = idle
    first = submit(c, {"properties": ["ids_$basic_userId", "usr_gender"]}).json()
    again = submit(c, {"properties": ["id_$basic_userId", "usr_gender", "gio_id"],
                       "fileFormat": "CSV"}).json()
    assert again == first
    assert submit(c, {"properties": ["usr_gender", "id_$basic_userId"]}).json() != first
    assert submit(client_for(app, tokens["b"]), {"properties": ["ids_$basic_userId", "usr_gender"]}).json() != first
    seeded.jobs.runner.run_next("test", seeded.engine, job_id=first["id"])
    assert submit(c, {"properties": ["ids_$basic_userId", "usr_gender"]}).json() != first


def test_an_oversized_body_is_413(idle):
    _, c = idle
    big = {"properties": ["usr_gender"] * 20000}
    response = submit(c, big)
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_an_oversized_chunked_body_is_413(idle):
    _, c = idle

    def chunks():
        yield b'{"properties": ['
        for _ in range(20000):
            yield b'"usr_gender",'
        yield b'"usr_gender"]}'

    response = c.post("/v1/api/user_tags/tag_rfm/export_jobs", content=chunks(),
                      headers={"Content-Type": "application/json"})
    assert response.status_code == 413


# -- cancelling ----------------------------------------------------------------------


def test_cancelling_a_waiting_job_ends_it_in_error_cancelled(idle):
    _, c = idle
    job_id = submit(c, {}).json()["id"]
    response = c.delete(f"/v1/api/job/{job_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["stage"] == "ERROR" and body["uris"] == []
    assert body["error"] == {"code": "CANCELLED", "message": "cancelled by the client"}
    again = c.delete(f"/v1/api/job/{job_id}")
    assert again.status_code == 409 and again.json()["code"] == "JOB_FINISHED"


def test_a_cancelled_claimed_job_is_not_run_and_leaves_no_file(idle, seeded):
    _, c = idle
    job_id = submit(c, {}).json()["id"]
    assert seeded.jobs.runner.claim(job_id, "test")
    assert c.delete(f"/v1/api/job/{job_id}").json()["stage"] == "ERROR"
    seeded.jobs.runner.run_claimed(job_id, seeded.engine, "test")
    assert seeded.jobs.get(job_id).error_code == "CANCELLED"
    assert list(seeded.settings.results_path.iterdir()) == []


def test_cancelling_unknown_or_foreign_jobs_is_404(idle, tokens):
    app, c = idle
    assert c.delete("/v1/api/job/nosuchjb").status_code == 404
    job_id = submit(c, {}).json()["id"]
    assert client_for(app, tokens["b"]).delete(f"/v1/api/job/{job_id}").status_code == 404


# -- scopes ----------------------------------------------------------------------------


def test_an_admin_token_sees_and_downloads_every_tokens_jobs(running, tokens):
    app, c = running
    _, result, _ = export_bytes(c, {"properties": SEED_PROPERTIES})
    admin = client_for(app, tokens["admin"])
    assert admin.get(f"/v1/api/job/result/{result['id']}").json()["stage"] == "FINISH"
    assert admin.get("/download?file=" + result["uris"][0]).content == CSV_KEY.encode()
    other = client_for(app, tokens["b"])
    assert other.get(f"/v1/api/job/result/{result['id']}").status_code == 404
    assert other.get("/download?file=" + result["uris"][0]).status_code == 404


def test_unknown_scopes_are_refused(seeded):
    from tagport.errors import BadRequest

    with pytest.raises(BadRequest):
        seeded.tokens.create("x", ("root",))


# -- signed links ------------------------------------------------------------------------


def test_a_signed_link_downloads_without_a_token(running):
    app, c = running
    _, result, _ = export_bytes(c, {"properties": SEED_PROPERTIES})
    [link] = result["downloadLinks"]
    anonymous = TestClient(app)
    assert anonymous.get(link).content == CSV_KEY.encode()
    assert anonymous.get("/download?file=" + result["uris"][0]).status_code == 401


@pytest.mark.parametrize("change", [
    lambda link: link.replace("signature=", "signature=0"),
    lambda link: link.replace("expires=", "expires=9"),
    lambda link: link.replace("UserList.csv", "UserList.json"),
    lambda link: link.split("&signature=")[0] + "&signature=",
])
def test_a_changed_signed_link_is_refused(running, change):
    app, c = running
    _, result, _ = export_bytes(c, {"properties": SEED_PROPERTIES})
    response = TestClient(app).get(change(result["downloadLinks"][0]))
    assert response.status_code in (403, 404)
    assert response.json()["code"] in ("BAD_SIGNATURE", "FILE_NOT_FOUND")


def test_an_expired_signed_link_is_refused(running):
    app, c = running
    _, result, _ = export_bytes(c, {"properties": SEED_PROPERTIES})
    link = app.state.signer.link(unquote(result["uris"][0]), now=time.time() - 3600)
    response = TestClient(app).get(link)
    assert response.status_code == 403 and response.json()["code"] == "LINK_EXPIRED"


def test_a_non_ascii_signature_is_refused_not_a_server_error(running):
    app, _ = running
    response = TestClient(app).get("/download?file=x&expires=0&signature=%C2%80")
    assert response.status_code == 403 and response.json()["code"] == "BAD_SIGNATURE"


def test_a_non_ascii_control_secret_is_refused(running):
    app, _ = running
    response = TestClient(app).post("/internal/loads", json={"path": "/nonexistent"},
                                    headers={"X-Tagport-Control": "é".encode()})
    assert response.status_code == 403
