"""Jobs whose results live in S3 (a real moto server): the runner uploads before FINISH,
the download redirects to a presigned URL, retention and failures delete the objects.
Every test runs on both metadata stores."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import httpx
import pytest
from fastapi.testclient import TestClient

from tagport.api.app import create_app
from tagport.api.download import content_disposition
from tagport.catalog.service import entries_from_file, read_catalog_file
from tagport.config import Settings
from tagport.core import Tagport
from tagport.exports.spec import ExportRequest
from tagport.jobs.models import JobStage
from tagport.jobs.runner import JobRunner
from tagport.results import StoredObject
from tagport.results.objects import ObjectResultStore
from tests.integration.test_api import CSV_KEY, SEED_PROPERTIES

A, B = "host-a:1:a", "host-b:2:b"
GIO_IDS = b'"gio_id"\n1\n3\n4\n'


@pytest.fixture
def make_core(tmp_path, metadata_url, s3, catalog_file, users_file):
    cores = []

    def make(url: str, **overrides) -> Tagport:
        core = Tagport(Settings(data_dir=tmp_path / "data", database_url=metadata_url,
                                poll_interval=0.05, result_url=url,
                                result_storage_options=s3.storage_options, **overrides))
        cores.append(core)
        core.catalog.apply(entries_from_file(read_catalog_file(catalog_file)))
        assert core.profiles.load(users_file).inserted == 5
        return core

    yield make
    for core in cores:
        core.close()


@pytest.fixture
def bucket(s3):
    return s3.new_bucket()


@pytest.fixture
def core(make_core, bucket):
    return make_core(f"s3://{bucket}/results")


@pytest.fixture
def client(core):
    token = core.tokens.create("tester")
    with TestClient(create_app(core), follow_redirects=False) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def run(client, body):
    job_id = client.post("/v1/api/user_tags/tag_rfm/export_jobs", json=body).json()["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = client.get(f"/v1/api/job/result/{job_id}").json()
        if result["stage"] in ("FINISH", "ERROR"):
            return result
        time.sleep(0.05)
    raise AssertionError(result)


def leftovers(core) -> list[str]:
    return [str(p) for p in core.settings.results_path.rglob("*")]


def test_a_finished_job_is_an_object_and_its_download_redirects_to_it(client, core, s3, bucket):
    result = run(client, {"properties": SEED_PROPERTIES})
    assert result["stage"] == "FINISH", result
    name = unquote(result["uris"][0]).rsplit("/", 1)[1]
    assert s3.keys(bucket) == [f"results/{result['name']}/attempt-1/{name}"]
    assert leftovers(core) == []  # the local work dir is gone

    response = client.get("/download?file=" + result["uris"][0])
    assert response.status_code == 307
    location = response.headers["location"]
    assert location.startswith(f"{s3.endpoint}/{bucket}/results/{result['name']}/attempt-1/")
    fetched = httpx.get(location)
    assert fetched.status_code == 200
    assert fetched.content == CSV_KEY.encode()
    assert fetched.headers["content-type"] == "text/csv; charset=utf-8"
    assert fetched.headers["content-disposition"] == content_disposition(name)


def test_a_signed_link_redirects_too(client, core):
    result = run(client, {"properties": SEED_PROPERTIES, "fileFormat": "json"})
    link = result["downloadLinks"][0]
    response = client.get(link, headers={"Authorization": ""})
    assert response.status_code == 307
    fetched = httpx.get(response.headers["location"])
    assert fetched.headers["content-type"] == "application/x-ndjson; charset=utf-8"
    assert fetched.content.startswith(b'{"gio_id":1,')


def test_another_tokens_download_is_404_and_no_redirect(client, core):
    result = run(client, {})
    other = core.tokens.create("other")
    response = client.get("/download?file=" + result["uris"][0],
                          headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 404 and "location" not in response.headers
    assert response.json()["code"] == "FILE_NOT_FOUND"
    bad = client.get("/download?file=" + result["uris"][0], headers={"Authorization": "Bearer x"})
    assert bad.status_code == 401 and "location" not in bad.headers


def test_expired_files_are_deleted_from_the_bucket_and_answer_410(client, core, s3, bucket):
    result = run(client, {})
    assert len(s3.keys(bucket)) == 1
    assert core.jobs.sweep_expired(datetime.now(UTC) + timedelta(days=8)) == 1
    assert s3.keys(bucket) == []
    response = client.get("/download?file=" + result["uris"][0])
    assert response.status_code == 410 and response.json()["code"] == "FILE_EXPIRED"


def test_an_object_removed_behind_our_back_is_404(client, s3, bucket):
    result = run(client, {})
    for key in s3.keys(bucket):
        s3.client.delete_object(Bucket=bucket, Key=key)
    response = client.get("/download?file=" + result["uris"][0])
    assert response.status_code == 404 and "location" not in response.headers


def test_a_missing_bucket_ends_the_job_in_storage_error_with_the_cause(make_core):
    core = make_core("s3://no-such-bucket/results", max_attempts=1)
    token = core.tokens.create("tester")
    with TestClient(create_app(core)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        result = run(client, {})
        assert result["stage"] == "ERROR" and result["uris"] == []
        assert result["error"]["code"] == "STORAGE_ERROR"
        assert result["error"]["message"].startswith(
            "uploading the result to s3://no-such-bucket/results failed: ")
        assert leftovers(core) == []


class UploadThen(ObjectResultStore):
    """The real S3 store; `then()` runs right after an upload, as if another process
    acted while the upload was in flight."""

    def __init__(self, store: ObjectResultStore, then) -> None:
        super().__init__(store.fs, store.root, store.url, store.work_root)
        self.then = then

    def upload(self, job_name, attempt, files):
        super().upload(job_name, attempt, files)
        self.then()


def submit(core):
    return core.jobs.submit(ExportRequest("tag_rfm", [], "csv", "key"), None)


def test_a_cancel_during_the_upload_leaves_no_object(core, s3, bucket):
    job = submit(core)
    store = UploadThen(core.results, lambda: core.jobs.cancel(job.id))
    runner = JobRunner(core.db, core.catalog, store)
    assert runner.claim_next(A) == job.id
    runner.run_claimed(job.id, core.engine, A)
    done = core.jobs.get(job.id)
    assert (done.stage, done.error_code) == (JobStage.ERROR, "CANCELLED")
    assert s3.keys(bucket) == [] and leftovers(core) == []


def test_a_worker_that_lost_its_job_during_its_upload_removes_only_its_own(core, s3, bucket):
    job = submit(core)
    plain = JobRunner(core.db, core.catalog, core.results)

    def another_worker_takes_over() -> None:  # A was handed back (shutdown past its grace)
        assert plain.hand_back(job.id, A)
        assert plain.claim_next(B) == job.id
        plain.run_claimed(job.id, core.engine, B)

    late = JobRunner(core.db, core.catalog, UploadThen(core.results, another_worker_takes_over))
    assert late.claim_next(A) == job.id
    late.run_claimed(job.id, core.engine, A)  # A's FINISH is refused after B's
    done = core.jobs.get(job.id)
    assert (done.stage, done.attempts, done.claimed_by) == (JobStage.FINISH, 2, B)
    name = done.files[0].rsplit("/", 1)[1]
    assert s3.keys(bucket) == [f"results/{job.name}/attempt-2/{name}"]
    _, found = core.jobs.file_for(done.files[0], None)
    assert isinstance(found, StoredObject)
    core.results.fetch(found, core.settings.resolved_data_dir / "out.csv")
    assert (core.settings.resolved_data_dir / "out.csv").read_bytes() == GIO_IDS
