"""The Python client, `tagport remote export`, `tagport jobs`, metrics and JSON logs,
against the real server (`tagport serve` on a free port, TAGPORT_LOG_FORMAT=json, access log on)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tagport.client import (
    BadRequestError,
    Client,
    NotFoundError,
    TagportAPIError,
    UnauthorizedError,
)
from tests.acceptance.processes import serving
from tests.acceptance.test_cli_and_server import TAGPORT, tagport
from tests.conftest import SEED_CATALOG, SEED_USERS, write_jsonl
from tests.integration.test_api import CSV_KEY, JSON_LINES

SEED_PROPERTIES = ["id_$basic_userId", "usr_gender", "tag_rfm"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A served data dir with the seed data; yields (data dir, url, token, log file)."""
    tmp = tmp_path_factory.mktemp("served")
    data = tmp / "data"
    catalog = tmp / "catalog.json"
    catalog.write_text(json.dumps(SEED_CATALOG, ensure_ascii=False), encoding="utf-8")
    tagport(data, "catalog", "apply", str(catalog))
    tagport(data, "load", str(write_jsonl(tmp / "users.jsonl", SEED_USERS)))
    token = tagport(data, "token", "create", "client").stdout.strip().splitlines()[-1]
    log_file = tmp / "server.log"
    env = {"TAGPORT_LOG_FORMAT": "json", "TAGPORT_ACCESS_LOG": "true"}  # off by default
    with serving(data, log_file, env=env, stdout=tmp / "server.out") as url:
        yield data, url, token, log_file


@pytest.fixture
def client(server):
    _, url, token, _ = server
    with Client(url, token, poll_interval=0.05) as c:
        yield c


class CutStream(httpx.SyncByteStream):
    """A response body that stops after `limit` bytes: the connection is closed under
    the client, as when a network drops mid-download."""

    def __init__(self, inner: httpx.SyncByteStream, limit: int) -> None:
        self.inner, self.limit = inner, limit

    def __iter__(self):
        sent = 0
        for chunk in self.inner:
            piece = chunk[: self.limit - sent]
            sent += len(piece)
            if piece:
                yield piece
            if sent >= self.limit:
                self.inner.close()
                raise httpx.ReadError("connection dropped mid-body")

    def close(self) -> None:
        self.inner.close()


class CutDownloads(httpx.HTTPTransport):
    """The real network transport; the first downloads are cut after the given sizes."""

    def __init__(self, *cuts: int) -> None:
        super().__init__()
        self.cuts = list(cuts)
        self.ranges: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path != "/download":
            return response
        self.ranges.append(request.headers.get("Range"))
        if not self.cuts:
            return response
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=CutStream(response.stream, self.cuts.pop(0)),
                              extensions=response.extensions)


def test_export_tag_downloads_the_file_and_returns_its_path(client, tmp_path):
    [path] = client.export_tag("tag_rfm", SEED_PROPERTIES, dest=tmp_path)
    assert path.parent == tmp_path and path.name.endswith("_UserList.csv")
    assert path.read_bytes() == CSV_KEY.encode()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_export_tag_to_a_file_name_in_json(client, tmp_path):
    dest = tmp_path / "sub" / "rfm.jsonl"
    assert client.export_tag("tag_rfm", SEED_PROPERTIES, "json", dest=dest) == [dest]
    assert dest.read_bytes() == JSON_LINES.encode()


def test_a_broken_download_resumes_with_range_requests(server, tmp_path):
    _, url, token, _ = server
    transport = CutDownloads(30, 25)
    seen = []
    with Client(url, token, transport=transport, poll_interval=0.05) as c:
        [path] = c.export_tag("tag_rfm", SEED_PROPERTIES, dest=tmp_path / "resumed.csv",
                              on_progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == CSV_KEY.encode()
    assert transport.ranges == [None, "bytes=30-", "bytes=55-"]
    size = len(CSV_KEY.encode())
    assert seen[0] == (30, size) and seen[-1] == (size, size)


def test_a_download_that_keeps_breaking_gives_up_and_leaves_nothing(server, tmp_path):
    _, url, token, _ = server
    with Client(url, token, transport=CutDownloads(*[5] * 10), poll_interval=0.05,
                download_retries=2) as c:
        with pytest.raises(httpx.ReadError):
            c.export_tag("tag_rfm", SEED_PROPERTIES, dest=tmp_path / "never.csv")
    assert list(tmp_path.iterdir()) == []


def test_list_tags_tag_users_and_user(client):
    tags = {t["key"]: t for t in client.list_tags(page_size=1)}
    assert list(tags) == ["tag_rfm", "tag_interests"]
    assert tags["tag_rfm"]["detector"]["totalUsers"] == 3
    page = client.tag_users("tag_rfm", ["ids_$basic_userId"], limit=2)
    assert [u["identifications"]["id_$basic_userId"] for u in page["values"]] == [
        ["C001"], ["C004", "C005"]]
    assert page["hasNextPage"] and page["totalCount"] == 3
    assert [u["gioId"] for u in client.iter_tag_users("tag_rfm", page_size=2)] == ["1", "3", "4"]
    user = client.user("$basic_userId", "C004")
    assert user["gioId"] == "3" and user["properties"]["tag_interests"] == ["数码", "美妆"]
    assert client.user("$basic_userId", "C999") is None


def test_server_errors_are_typed_exceptions_with_code_and_message(server, client):
    with pytest.raises(NotFoundError) as unknown_tag:
        client.export_tag("tag_nope")
    assert unknown_tag.value.status == 404 and unknown_tag.value.code == "TAG_NOT_FOUND"
    assert unknown_tag.value.message == "user tag 'tag_nope' does not exist"
    with pytest.raises(BadRequestError) as bad:
        client.submit_export("tag_rfm", ["usr_nope"])
    assert bad.value.code == "UNKNOWN_PROPERTIES"
    with pytest.raises(NotFoundError) as nobody:
        client.user("usr_gender", "男")
    assert nobody.value.code == "IDENTITY_NOT_FOUND"
    _, url, _, _ = server
    with Client(url, "4aaa22c7-679f-49be-b97d-073dad5dfc15", language="US") as stranger:
        with pytest.raises(UnauthorizedError) as denied:
            stranger.list_tags()
    assert isinstance(denied.value, TagportAPIError)
    assert (denied.value.code, denied.value.message) == (
        "INVALID_TOKEN", "the token is unknown or revoked")


def test_remote_export_command_prints_where_the_file_went(server, tmp_path):
    data, url, token, _ = server
    env = dict(os.environ, TAGPORT_URL=url, TAGPORT_TOKEN=token)
    result = subprocess.run(
        [*TAGPORT, "remote", "export", "tag_rfm", "-p", ",".join(SEED_PROPERTIES),
         "-o", str(tmp_path) + "/"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    size, _, where = line.partition(" bytes written to ")
    assert int(size) == len(CSV_KEY.encode())
    assert Path(where).parent == tmp_path and Path(where).read_bytes() == CSV_KEY.encode()


def test_remote_export_reports_a_server_error(server):
    _, url, token, _ = server
    result = subprocess.run([*TAGPORT, "remote", "export", "tag_nope", "--url", url,
                             "--token", token], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: TAG_NOT_FOUND: user tag 'tag_nope' does not exist"


def test_remote_export_needs_a_url_and_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TAGPORT_URL", "TAGPORT_TOKEN")}
    result = subprocess.run([*TAGPORT, "remote", "export", "tag_rfm"], capture_output=True,
                            text=True, env=env, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert "give --url and --token" in result.stderr


def test_jobs_list_and_show(server, client, tmp_path):
    data = server[0]
    job = client.submit_export("tag_rfm", SEED_PROPERTIES)
    client.wait(job["id"])
    listed = tagport(data, "jobs", "list", "--json").stdout.splitlines()
    mine = [json.loads(line) for line in listed if json.loads(line)["id"] == job["id"]]
    assert mine and mine[0]["stage"] == "FINISH" and mine[0]["rowCount"] == 3
    table = tagport(data, "jobs", "list").stdout
    assert job["id"] in table and "FINISH" in table
    shown = json.loads(tagport(data, "jobs", "show", job["id"]).stdout)
    assert shown["name"] == job["name"] and shown["properties"] == SEED_PROPERTIES
    assert Path(shown["files"][0]).read_bytes() == CSV_KEY.encode()
    missing = tagport(data, "jobs", "show", "nosuchjb", check=False)
    assert missing.returncode == 1 and "job 'nosuchjb' does not exist" in missing.stderr


def test_metrics_and_health_over_http(server, client):
    _, url, _, _ = server
    job = client.submit_export("tag_rfm", [])
    client.wait(job["id"])
    assert httpx.get(url + "/readyz").json()["status"] == "ready"
    metrics = httpx.get(url + "/metrics").text
    assert 'tagport_jobs{stage="FINISH"}' in metrics
    assert "tagport_export_duration_seconds_count" in metrics
    assert ('tagport_http_requests_total{method="POST",'
            'route="/v1/api/user_tags/{tag_key}/export_jobs",status="200"}') in metrics


def test_json_log_lines_about_a_job_carry_its_id(server, client):
    _, _, _, log_file = server
    job = client.submit_export("tag_rfm", [])
    client.wait(job["id"])
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(line) for line in log_file.read_text().splitlines() if line]
        about = [line for line in lines if line.get("job_id") == job["id"]]
        if len(about) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    loggers = {line["logger"] for line in about}
    assert "tagport.jobs" in loggers  # "job <id> finished: ... rows"
    assert "uvicorn.access" in loggers  # GET /v1/api/job/result/<id>
    polled = next(line for line in about if line["logger"] == "uvicorn.access")
    assert polled["method"] == "GET" and polled["status"] == 200
