"""Storage faults for real: the result dir on a small tmpfs, or remounted read-only.

Needs root (to mount); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tagport.api.app import create_app
from tagport.catalog.service import entries_from_file, events_from_file, read_catalog_file
from tagport.config import Settings
from tagport.core import Tagport
from tagport.demo import write_catalog, write_users

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")

ALL = ["id_$basic_userId", "id_$basic_deviceId", "usr_gender", "usr_age", "usr_city",
       "usr_is_vip", "usr_balance", "usr_birthday", "usr_register_time", "usr_channel",
       "tag_rfm", "tag_active_days", "tag_ltv", "tag_interests", "tag_last_purchase"]


@pytest.fixture
def small_fs(tmp_path):
    mount = tmp_path / "results"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def client(tmp_path, small_fs):
    tp = Tagport(Settings(data_dir=tmp_path / "data", result_dir=small_fs, poll_interval=0.05))
    spec = read_catalog_file(write_catalog(tmp_path / "c.json"))
    tp.catalog.apply(entries_from_file(spec), events_from_file(spec))
    assert tp.profiles.load(write_users(tmp_path / "u.parquet", 20_000)).inserted == 20_000
    token = tp.tokens.create("t")
    with TestClient(create_app(tp)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield c
    tp.close()


def run(client, body):
    job_id = client.post("/v1/api/user_tags/tag_rfm/export_jobs", json=body).json()["id"]
    for _ in range(400):
        result = client.get(f"/v1/api/job/result/{job_id}").json()
        if result["stage"] in ("FINISH", "ERROR"):
            return result
        time.sleep(0.05)
    raise AssertionError(result)


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_a_full_disk_ends_the_job_in_storage_full_and_leaves_nothing(client, small_fs, file_format):
    result = run(client, {"properties": ALL, "fileFormat": file_format})
    assert result["stage"] == "ERROR" and result["uris"] == []
    assert result["error"]["code"] == "STORAGE_FULL"
    assert list(Path(small_fs).iterdir()) == []  # the partial file is gone
    # the service keeps serving, and a file that fits is written
    small = run(client, {"properties": []})
    assert small["stage"] == "FINISH"
    assert client.get("/download?file=" + small["uris"][0]).content.startswith(b'"gio_id"\n')


def test_a_read_only_result_dir_ends_the_job_in_storage_unwritable(client, small_fs):
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    result = run(client, {"properties": []})
    assert result["stage"] == "ERROR"
    assert result["error"]["code"] == "STORAGE_UNWRITABLE"
    subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    assert run(client, {"properties": []})["stage"] == "FINISH"


def test_a_cli_export_on_a_full_disk_runs_its_attempts_and_ends_with_the_error(
        tmp_path, small_fs):
    import sys

    env = {**os.environ, "TAGPORT_RESULT_DIR": str(small_fs), "TAGPORT_MAX_ATTEMPTS": "2"}
    tagport = [sys.executable, "-m", "tagport", "--data-dir", str(tmp_path / "data")]
    for args in (["catalog", "apply", str(write_catalog(tmp_path / "c.json"))],
                 ["load", str(write_users(tmp_path / "u.parquet", 20_000))]):
        subprocess.run([*tagport, *args], env=env, check=True, capture_output=True)
    started = time.monotonic()
    done = subprocess.run([*tagport, "export", "tag_rfm", "-p", ",".join(ALL),
                           "-o", str(tmp_path / "out.csv")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and time.monotonic() - started < 60
    assert done.stderr.strip().splitlines()[-1].startswith(
        "error: export failed: STORAGE_FULL: writing the result failed: ")
    assert done.stderr.strip().endswith("(attempt 2 of 2)")
    assert "Traceback" not in done.stderr and not (tmp_path / "out.csv").exists()
