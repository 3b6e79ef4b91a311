"""Crash safety for real: `tagport serve` and `tagport worker` processes killed with
SIGKILL or stopped with SIGTERM in the middle of an export of 600,000 users."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from tagport.config import Settings
from tagport.core import Tagport
from tagport.exports.spec import ExportRequest
from tagport.jobs.models import JobStage
from tests.acceptance.processes import (
    Api,
    TagportProcess,
    leftovers,
    wait_for_partial_file,
)
from tests.big_dataset import BIG_REQUEST, BigProfiles

# one export at a time, on one DuckDB thread: an export lasts long enough to be hit
ENV = {"TAGPORT_WORKERS": "1", "TAGPORT_DUCKDB_THREADS": "1", "TAGPORT_POLL_INTERVAL": "0.1"}


@pytest.fixture
def data(tmp_path: Path, big_profiles: BigProfiles) -> tuple[Path, str]:
    """A data dir (SQLite metadata) holding the big store, its catalog and a token."""
    data = tmp_path / "data"
    big_profiles.install(data)
    big_profiles.apply_catalog(Settings(data_dir=data))
    tp = Tagport(Settings(data_dir=data))
    try:
        return data, tp.tokens.create("crash")
    finally:
        tp.close()


def job_in_store(data: Path, job_id: str):
    tp = Tagport(Settings(data_dir=data))
    try:
        return tp.jobs.get(job_id)
    finally:
        tp.close()


def test_a_server_killed_mid_export_finishes_the_job_after_restart_with_the_same_bytes(data, tmp_path):
    data_dir, token = data
    api = Api(data_dir, token, ENV, tmp_path / "serve-1.log")
    job = api.submit("tag_rfm", BIG_REQUEST)
    job_dir = data_dir / "results" / job["name"]
    partial = wait_for_partial_file(job_dir)
    api.kill()
    killed = job_in_store(data_dir, job["id"])
    assert (killed.stage, killed.attempts) == (JobStage.RUNNING, 1)  # killed mid-export
    partial_size = partial.stat().st_size

    api = Api(data_dir, token, ENV, tmp_path / "serve-2.log")
    try:
        result = api.wait(job["id"])
        assert result["stage"] == "FINISH", result
        assert job_in_store(data_dir, job["id"]).attempts == 2
        recovered = api.download(result)
        assert [p.name for p in job_dir.iterdir()] == [unquote(result["uris"][0]).rsplit("/")[-1]]
        assert leftovers(data_dir / "results") == []
        fresh = api.wait(api.submit("tag_rfm", BIG_REQUEST)["id"])  # an uninterrupted run
        assert recovered == api.download(fresh)
        assert result["rowCount"] == fresh["rowCount"] == recovered.count(b"\n") > 400_000
        assert partial_size < len(recovered)
    finally:
        api.stop()


def submit_locally(data: Path, body: dict, token_id: int | None = None) -> str:
    """Queue a job straight into the metadata store (no server is needed for workers)."""
    tp = Tagport(Settings(data_dir=data))
    try:
        request = ExportRequest("tag_rfm", body["properties"], body["fileFormat"], "key")
        return tp.jobs.submit(request, token_id).id
    finally:
        tp.close()


def wait_for_stage(data: Path, job_id: str, stages: set[JobStage], timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = job_in_store(data, job_id)
        if job.stage in stages:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stayed {job.stage}")


def has_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open."""
    fds = Path(f"/proc/{pid}/fd")
    return any(fd.resolve() == path.resolve() for fd in fds.iterdir())


def test_sigterm_lets_a_running_export_finish_before_the_worker_exits(data, tmp_path):
    data_dir, _ = data
    worker = TagportProcess(data_dir, ["worker"], ENV, tmp_path / "worker.log")
    job_id = submit_locally(data_dir, BIG_REQUEST)
    wait_for_partial_file(data_dir / "results" / job_in_store(data_dir, job_id).name)
    assert worker.stop(signal.SIGTERM) == 0
    done = job_in_store(data_dir, job_id)
    assert (done.stage, done.attempts) == (JobStage.FINISH, 1), worker.output()
    assert "stopping; running exports get 30 s to finish" in worker.output()


def test_sigterm_past_the_grace_period_hands_the_job_back_and_another_worker_runs_it(data, tmp_path):
    data_dir, _ = data
    impatient = {**ENV, "TAGPORT_SHUTDOWN_GRACE": "0"}
    worker = TagportProcess(data_dir, ["worker"], impatient, tmp_path / "worker-1.log")
    job_id = submit_locally(data_dir, BIG_REQUEST)
    job_dir = data_dir / "results" / job_in_store(data_dir, job_id).name
    wait_for_partial_file(job_dir)
    assert worker.stop(signal.SIGTERM) == 0
    back = job_in_store(data_dir, job_id)
    assert (back.stage, back.claimed_by, back.lease_until) == (JobStage.NONE, None, None)
    assert "handed back to the queue" in worker.output()

    second = TagportProcess(data_dir, ["worker"], ENV, tmp_path / "worker-2.log")
    try:
        done = wait_for_stage(data_dir, job_id, {JobStage.FINISH, JobStage.ERROR})
        assert (done.stage, done.attempts) == (JobStage.FINISH, 2), second.output()
        assert leftovers(data_dir / "results") == []
    finally:
        assert second.stop() == 0


def test_load_says_what_to_do_while_a_worker_reads_the_store_and_works_once_it_is_idle(
        data, tmp_path):
    data_dir, _ = data
    more = tmp_path / "more.jsonl"
    more.write_text('{"identifications": {"id_$basic_userId": "NEW-1"}, '
                    '"properties": {"tag_vip": "是"}}\n', encoding="utf-8")
    worker = TagportProcess(data_dir, ["worker"], ENV, tmp_path / "worker.log")
    try:
        job_id = submit_locally(data_dir, BIG_REQUEST)
        wait_for_partial_file(data_dir / "results" / job_in_store(data_dir, job_id).name)
        # frozen mid-export, the worker holds the store for as long as the load takes to
        # start and be refused (a timed queue of exports let the load in when it ran dry)
        worker.proc.send_signal(signal.SIGSTOP)
        try:
            assert has_open(worker.pid, data_dir / "profiles.duckdb")
            held = TagportProcess(data_dir, ["load", str(more)], {}, tmp_path / "load-1.log")
            assert held.proc.wait(60) == 1, held.output()
        finally:
            worker.proc.send_signal(signal.SIGCONT)
        message = " ".join(held.output().split())
        assert f"is held by process {worker.pid}" in message
        assert "`tagport worker` processes read it only while an export runs" in message
        assert wait_for_stage(data_dir, job_id, {JobStage.FINISH}).attempts == 1
        idle = TagportProcess(data_dir, ["load", str(more)], {}, tmp_path / "load-2.log")
        assert idle.proc.wait(60) == 0, idle.output()
        assert "inserted=1" in idle.output()
    finally:
        assert worker.stop() == 0


def test_a_server_stopped_mid_export_hands_the_job_back_and_runs_it_when_restarted(data, tmp_path):
    data_dir, token = data
    impatient = {**ENV, "TAGPORT_SHUTDOWN_GRACE": "0"}
    # the stop must land while the export runs; on a busy machine the server's own shutdown
    # can outlast the export, which then (rightly) finishes: try again with a fresh job
    for attempt in range(1, 4):
        api = Api(data_dir, token, impatient, tmp_path / f"serve-1-{attempt}.log")
        job = api.submit("tag_rfm", BIG_REQUEST)
        wait_for_partial_file(data_dir / "results" / job["name"])
        assert api.stop(signal.SIGINT) == 0  # (on SIGTERM uvicorn ends by that signal: -15)
        if job_in_store(data_dir, job["id"]).stage is not JobStage.FINISH:
            break
    assert "unfinished exports were handed back" in api.output()
    assert job_in_store(data_dir, job["id"]).stage is JobStage.NONE

    api = Api(data_dir, token, ENV, tmp_path / "serve-2.log")
    try:
        assert api.wait(job["id"])["stage"] == "FINISH"
        assert leftovers(data_dir / "results") == []
    finally:
        api.stop(signal.SIGINT)


def test_a_cancel_stops_the_running_export_at_once_and_leaves_nothing(data, tmp_path):
    data_dir, token = data
    api = Api(data_dir, token, ENV, tmp_path / "serve.log")
    try:
        job = api.submit("tag_rfm", BIG_REQUEST)
        wait_for_partial_file(data_dir / "results" / job["name"])
        response = api.http.delete(f"/v1/api/job/{job['id']}")
        assert response.status_code == 200, response.text
        assert response.json()["error"]["code"] == "CANCELLED"
        # the same request again (the cancelled job no longer answers it) runs to the end
        again = api.submit("tag_rfm", BIG_REQUEST)
        assert again["id"] != job["id"]
        done = api.wait(again["id"])
        assert done["stage"] == "FINISH"
        stopped = re.search(rf"job {job['id']}: \S+ stopped its export \(the export was "
                            r"stopped after (\d+) rows\)", api.output())
        assert stopped, api.output()
        assert int(stopped.group(1)) < done["rowCount"]
        assert api.result(job["id"])["stage"] == "ERROR"
        assert leftovers(data_dir / "results") == []
    finally:
        api.stop(signal.SIGINT)
