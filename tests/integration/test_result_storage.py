"""The result store (results/) against a real S3-compatible server (moto's, started by
the session fixture `s3`), a directory, and a shared-mount `file://` URL."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tagport.config import Settings
from tagport.errors import ConfigError, StorageError
from tagport.results import StoredObject, open_result_store
from tagport.results.directory import DirectoryResultStore
from tagport.results.objects import ObjectResultStore

JOB = "DES-202605010930-0000000000001"
DISPOSITION = "attachment; filename=\"___ _2026-05-01_UserList.csv\"; filename*=UTF-8''%E4%BC%9A%E5%91%98%E7%AD%89%E7%BA%A7%20_2026-05-01_UserList.csv"


def s3_store(tmp_path: Path, s3, bucket: str) -> ObjectResultStore:
    settings = Settings(data_dir=tmp_path / "data", result_url=f"s3://{bucket}/results",
                        result_storage_options=s3.storage_options)
    store = open_result_store(settings)
    assert isinstance(store, ObjectResultStore)
    return store


def written(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / "work" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_an_upload_is_found_under_the_attempt_that_made_it_only(tmp_path, s3):
    bucket = s3.new_bucket()
    store = s3_store(tmp_path, s3, bucket)
    store.upload(JOB, 2, [written(tmp_path, "a.csv", b"x\n1\n")])
    assert s3.keys(bucket) == [f"results/{JOB}/attempt-2/a.csv"]
    assert store.locate(JOB, 2, "a.csv") == StoredObject("a.csv", f"{bucket}/results/{JOB}/attempt-2/a.csv")
    assert store.locate(JOB, 1, "a.csv") is None
    assert store.locate(JOB, 2, "b.csv") is None
    assert store.location(JOB, 2, "a.csv") == f"s3://{bucket}/results/{JOB}/attempt-2/a.csv"


def test_a_presigned_url_serves_the_bytes_with_our_content_type_and_disposition(tmp_path, s3):
    store = s3_store(tmp_path, s3, s3.new_bucket())
    name = "会员等级 _2026-05-01_UserList.csv"
    store.upload(JOB, 1, [written(tmp_path, name, b'"gio_id"\n1\n')])
    url = store.presigned_url(store.locate(JOB, 1, name), "text/csv; charset=utf-8",
                              DISPOSITION, timedelta(minutes=15))
    assert url.startswith(f"{s3.endpoint}/") and "X-Amz-Expires=900" in url
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b'"gio_id"\n1\n'
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == DISPOSITION


def test_discard_removes_only_the_upload_of_that_attempt(tmp_path, s3):
    bucket = s3.new_bucket()
    store = s3_store(tmp_path, s3, bucket)
    store.upload(JOB, 1, [written(tmp_path, "a.csv", b"1")])
    store.upload(JOB, 2, [written(tmp_path, "a.csv", b"2")])  # removes attempt 1's
    assert s3.keys(bucket) == [f"results/{JOB}/attempt-2/a.csv"]
    store.discard(JOB, 3)  # nothing of attempt 3: no error
    store.upload(JOB, 1, [written(tmp_path, "a.csv", b"late")])  # a late worker
    store.discard(JOB, 1)
    assert s3.keys(bucket) == [f"results/{JOB}/attempt-2/a.csv"]


def test_delete_removes_every_object_of_the_job_and_no_other(tmp_path, s3):
    bucket = s3.new_bucket()
    store = s3_store(tmp_path, s3, bucket)
    other = JOB[:-1] + "2"
    store.upload(JOB, 1, [written(tmp_path, "a-00001.csv", b"1"), written(tmp_path, "a-00002.csv", b"2")])
    store.upload(other, 1, [written(tmp_path, "a.csv", b"3")])
    store.delete(JOB)
    store.delete(JOB)  # already gone: no error
    assert s3.keys(bucket) == [f"results/{other}/attempt-1/a.csv"]


def test_fetch_copies_an_object_to_a_local_file(tmp_path, s3):
    store = s3_store(tmp_path, s3, s3.new_bucket())
    store.upload(JOB, 1, [written(tmp_path, "a.csv", b"abc\n" * 1000)])
    store.fetch(store.locate(JOB, 1, "a.csv"), tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == b"abc\n" * 1000


def test_an_upload_to_a_missing_bucket_is_a_storage_error_naming_the_url(tmp_path, s3):
    store = s3_store(tmp_path, s3, "no-such-bucket")
    with pytest.raises(StorageError) as caught:
        store.upload(JOB, 1, [written(tmp_path, "a.csv", b"1")])
    assert caught.value.code == "STORAGE_ERROR"
    assert caught.value.message.startswith("uploading the result to s3://no-such-bucket/results failed: ")


def test_no_result_url_is_the_result_dir(tmp_path):
    store = open_result_store(Settings(data_dir=tmp_path / "data"))
    assert isinstance(store, DirectoryResultStore)
    assert store.work_root == (tmp_path / "data" / "results").resolve()


def test_a_file_url_is_a_directory_store_at_that_path(tmp_path):
    mount = tmp_path / "shared mount"
    # the path as written, as fsspec reads it (no percent-decoding)
    store = open_result_store(Settings(data_dir=tmp_path / "data",
                                       result_url=f"file://{mount}/results"))
    assert isinstance(store, DirectoryResultStore)
    assert store.work_root == mount / "results"


def test_an_unsupported_url_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="only a directory .* or s3:// is supported"):
        open_result_store(Settings(data_dir=tmp_path / "data", result_url="memory://results"))


def test_s3_without_s3fs_stops_startup_naming_the_extra(tmp_path):
    # a real `tagport` process in which s3fs cannot be imported
    code = ("import sys; sys.modules['s3fs'] = None; sys.argv[0] = 'tagport'; "
            "from tagport.cli.main import app; app()")
    done = subprocess.run([sys.executable, "-c", code, "--data-dir", str(tmp_path / "data"),
                           "token", "list"], capture_output=True, text=True, timeout=60,
                          env={"TAGPORT_RESULT_URL": "s3://bucket/results", "PATH": ""})
    assert done.returncode == 1
    assert "TAGPORT_RESULT_URL='s3://bucket/results' needs the S3 support: pip install 'tagport[s3]'" in done.stderr
