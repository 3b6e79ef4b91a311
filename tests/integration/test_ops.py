"""The operator's view over HTTP: /metrics, /healthz, /readyz, with the real worker pool."""

from __future__ import annotations

import re
import shutil
import time

import pytest
from fastapi.testclient import TestClient

from tagport.api.app import create_app
from tests.conftest import write_jsonl
from tests.integration.test_api import CSV_KEY, SEED_PROPERTIES


@pytest.fixture
def client(seeded):
    token = seeded.tokens.create("operator")
    with TestClient(create_app(seeded)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def finished(client, body, tag="tag_rfm"):
    job_id = client.post(f"/v1/api/user_tags/{tag}/export_jobs", json=body).json()["id"]
    for _ in range(600):
        result = client.get(f"/v1/api/job/result/{job_id}").json()
        if result["stage"] in ("FINISH", "ERROR"):
            return result
        time.sleep(0.05)
    raise AssertionError(result)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text format."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = "^" + re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + " (.+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"no sample {name}{{{want}}} in:\n{text}"
    return float(found.group(1))


def test_metrics_count_jobs_by_stage_rows_bytes_and_durations(client, seeded):
    assert finished(client, {"properties": SEED_PROPERTIES})["stage"] == "FINISH"
    assert finished(client, {})["stage"] == "FINISH"
    results = seeded.settings.results_path
    shutil.rmtree(results)
    results.write_text("not a directory")  # the next job fails
    assert finished(client, {})["stage"] == "ERROR"
    response = client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert sample(text, "tagport_jobs", stage="FINISH") == 2
    assert sample(text, "tagport_jobs", stage="ERROR") == 1
    assert sample(text, "tagport_jobs", stage="NONE") == 0
    assert sample(text, "tagport_failed_jobs", code="STORAGE_ERROR") == 1
    assert sample(text, "tagport_exported_rows_total") == 6
    assert sample(text, "tagport_exported_bytes_total") == len(CSV_KEY.encode()) + len(
        b'"gio_id"\n1\n3\n4\n')
    assert sample(text, "tagport_export_duration_seconds_count") == 2
    assert sample(text, "tagport_export_duration_seconds_bucket", le="+Inf") == 2
    assert sample(text, "tagport_export_duration_seconds_bucket", le="3600.0") == 2
    assert 0 <= sample(text, "tagport_export_duration_seconds_sum") < 60


def test_metrics_count_http_requests_by_route_template_and_status(client):
    client.get("/v1/api/job/result/aaaaaaaa")
    client.get("/v1/api/job/result/bbbbbbbb")
    client.get("/v1/api/user_tags?limit=0")
    client.get("/no/such/route")
    text = client.get("/metrics").text
    assert sample(text, "tagport_http_requests_total", method="GET",
                  route="/v1/api/job/result/{job_id}", status="404") == 2
    assert sample(text, "tagport_http_requests_total", method="GET",
                  route="/v1/api/user_tags", status="400") == 1
    assert sample(text, "tagport_http_requests_total", method="GET",
                  route="unmatched", status="404") == 1
    assert "aaaaaaaa" not in text


def test_metrics_count_loads_and_their_records(client, seeded, tmp_path):
    more = write_jsonl(tmp_path / "more.jsonl", [
        {"identifications": {"id_$basic_userId": "C001"}, "properties": {"usr_age": 31}},
        {"identifications": {"id_$basic_userId": "C100"}, "properties": {}},
    ])
    bad = write_jsonl(tmp_path / "bad.jsonl", [
        {"identifications": {"id_$basic_userId": "C101"}, "properties": {"usr_age": "old"}}])
    seeded.profiles.load(more)
    seeded.profiles.load(bad)
    text = client.get("/metrics").text
    # the seeded fixture's load ran on the same core before the app started
    assert sample(text, "tagport_loads_total", outcome="applied") == 2
    assert sample(text, "tagport_loads_total", outcome="refused") == 1
    assert sample(text, "tagport_load_records_total", result="inserted") == 6
    assert sample(text, "tagport_load_records_total", result="updated") == 1
    assert sample(text, "tagport_load_records_total", result="rejected") == 1


def test_healthz_answers_without_a_token(client):
    response = client.get("/healthz", headers={"Authorization": ""})
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_ready_when_the_stores_answer(client):
    response = client.get("/readyz", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"metadata": "ok", "engine": "ok"}}


def test_readyz_is_503_and_says_which_store_fails(seeded):
    with TestClient(create_app(seeded, run_workers=False)) as c:
        seeded.engine.close()  # the profile store is gone
        response = c.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not ready"
        assert body["checks"]["metadata"] == "ok"
        assert body["checks"]["engine"] != "ok"


def test_readyz_is_503_when_the_metadata_store_is_unreachable(seeded, request):
    with TestClient(create_app(seeded, run_workers=False)) as c:
        seeded.db.dispose()
        if seeded.settings.database_url:  # PostgreSQL: the database is dropped
            request.getfixturevalue("postgres").drop_database(seeded.settings.database_url)
        else:
            sqlite_file = seeded.settings.resolved_data_dir / "tagport.sqlite"
            for path in sqlite_file.parent.glob("tagport.sqlite*"):
                path.unlink()
            sqlite_file.mkdir()  # a directory where the database file was
        response = c.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["metadata"] != "ok"
        assert response.json()["checks"]["engine"] == "ok"
