"""Shared result storage for real: `tagport serve` processes whose results go to S3 (a
moto server started by the test) or to a shared mount (`file://`), driven over HTTP,
with the Python client and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from tagport.api.download import content_disposition
from tagport.client import Client
from tests.acceptance.processes import TAGPORT, Api
from tests.conftest import SEED_CATALOG, SEED_USERS, write_jsonl
from tests.integration.test_api import CSV_KEY, JSON_LINES, SEED_PROPERTIES


def tagport(data: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([*TAGPORT, "--data-dir", str(data), *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})
    assert done.returncode == 0, f"tagport {args}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def prepared(tmp_path: Path) -> tuple[Path, str, str]:
    """A data dir with the seed catalog and users; two tokens."""
    data = tmp_path / "data"
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(SEED_CATALOG, ensure_ascii=False), encoding="utf-8")
    tagport(data, "catalog", "apply", str(catalog))
    tagport(data, "load", str(write_jsonl(tmp_path / "users.jsonl", SEED_USERS)))
    token = tagport(data, "token", "create", "owner").strip().splitlines()[-1]
    other = tagport(data, "token", "create", "other").strip().splitlines()[-1]
    return data, token, other


def file_name(result: dict) -> str:
    return unquote(result["uris"][0]).rsplit("/", 1)[1]


def test_results_in_s3_are_uploaded_and_downloads_redirect_to_them(prepared, s3, tmp_path):
    data, token, other = prepared
    bucket = s3.new_bucket()
    env = s3.env(f"s3://{bucket}/results")
    api = Api(data, token, env, tmp_path / "serve.log")
    try:
        result = api.wait(api.submit("tag_rfm", {"properties": SEED_PROPERTIES})["id"])
        assert result["stage"] == "FINISH", result
        name = file_name(result)
        assert s3.keys(bucket) == [f"results/{result['name']}/attempt-1/{name}"]
        assert list((data / "results").iterdir()) == []  # nothing stays on the worker's disk

        url = "/download?file=" + result["uris"][0]
        redirect = api.http.get(url)
        assert redirect.status_code == 307, redirect.text
        location = redirect.headers["location"]
        assert location.startswith(f"{s3.endpoint}/{bucket}/")
        fetched = httpx.get(location)
        assert fetched.content == CSV_KEY.encode()
        assert fetched.headers["content-type"] == "text/csv; charset=utf-8"
        assert fetched.headers["content-disposition"] == content_disposition(name)
        ranged = httpx.get(location, headers={"Range": "bytes=0-7"})
        assert (ranged.status_code, ranged.content) == (206, CSV_KEY.encode()[:8])

        for headers, status in (({"Authorization": f"Bearer {other}"}, 404),
                                ({"Authorization": "Bearer not-a-token"}, 401)):
            refused = api.http.get(url, headers=headers)
            assert refused.status_code == status and "location" not in refused.headers
            assert set(refused.json()) == {"code", "message"}

        # the Python client follows the redirect (without sending its token to S3)
        with Client(str(api.http.base_url), token) as client:
            [path] = client.export_tag("tag_rfm", SEED_PROPERTIES, file_format="json",
                                       dest=tmp_path / "client")
        assert path.read_bytes() == JSON_LINES.encode()

        # `tagport export` runs on the server, then fetches the object
        out = tmp_path / "cli.csv"
        tagport(data, "export", "tag_rfm", "-p", ",".join(SEED_PROPERTIES), "-o", str(out),
                env=env)
        assert out.read_bytes() == CSV_KEY.encode()
        shown = json.loads(tagport(data, "jobs", "show", result["id"], env=env))
        assert shown["files"] == [f"s3://{bucket}/results/{result['name']}/attempt-1/{name}"]
    finally:
        api.stop()


def test_retention_deletes_the_objects_and_the_download_answers_410(prepared, s3, tmp_path):
    data, token, _ = prepared
    bucket = s3.new_bucket()
    env = {**s3.env(f"s3://{bucket}/results"), "TAGPORT_RESULT_TTL": "3",
           "TAGPORT_RETENTION_INTERVAL": "0.2"}
    api = Api(data, token, env, tmp_path / "serve.log")
    try:
        result = api.wait(api.submit("tag_rfm", {})["id"])
        assert result["stage"] == "FINISH", result
        assert len(s3.keys(bucket)) == 1
        deadline = time.monotonic() + 30
        while s3.keys(bucket) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert s3.keys(bucket) == []
        gone = api.http.get("/download?file=" + result["uris"][0])
        assert gone.status_code == 410 and gone.json()["code"] == "FILE_EXPIRED"
        assert api.result(result["id"])["expired"] is True
    finally:
        api.stop()


def test_a_job_that_cannot_upload_fails_for_good_with_the_cause(prepared, s3, tmp_path):
    data, token, _ = prepared
    env = {**s3.env("s3://no-such-bucket/results"), "TAGPORT_MAX_ATTEMPTS": "2"}
    api = Api(data, token, env, tmp_path / "serve.log")
    try:
        result = api.wait(api.submit("tag_rfm", {})["id"])
        assert result["stage"] == "ERROR" and result["uris"] == []
        assert result["error"]["code"] == "STORAGE_ERROR"
        assert result["error"]["message"] == (
            "uploading the result to s3://no-such-bucket/results failed: FileNotFoundError: "
            "The specified bucket does not exist (attempt 2 of 2)")
        assert list((data / "results").iterdir()) == []
        assert "no-such-bucket" not in [b["Name"] for b in s3.client.list_buckets()["Buckets"]]
    finally:
        api.stop()


def test_results_on_a_shared_mount_land_there_and_stream_from_there(prepared, tmp_path):
    data, token, _ = prepared
    mount = tmp_path / "mount"
    api = Api(data, token, {"TAGPORT_RESULT_URL": f"file://{mount}/results"},
              tmp_path / "serve.log")
    try:
        result = api.wait(api.submit("tag_rfm", {"properties": SEED_PROPERTIES})["id"])
        assert result["stage"] == "FINISH", result
        name = file_name(result)
        assert [p.name for p in (mount / "results" / result["name"]).iterdir()] == [name]
        assert list((data / "results").iterdir()) == []
        response = api.http.get("/download?file=" + result["uris"][0])
        assert response.status_code == 200 and response.content == CSV_KEY.encode()
        assert response.headers["content-disposition"] == content_disposition(name)
        part = api.http.get("/download?file=" + result["uris"][0], headers={"Range": "bytes=0-7"})
        assert (part.status_code, part.content) == (206, CSV_KEY.encode()[:8])
    finally:
        api.stop()
