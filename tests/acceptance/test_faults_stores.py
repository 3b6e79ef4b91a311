"""The profile store held by a second process or damaged, a server that dies while a
command waits on its job, a result dir that is gone: for real, with `python -m tagport`
processes, a second process holding the DuckDB file, and SIGKILL.

Each fault ends the command with one line saying the cause and what to do (no traceback);
the API answers 503 ENGINE_UNAVAILABLE with Retry-After.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tagport.catalog.service import entries_from_file, events_from_file, read_catalog_file
from tagport.config import Settings
from tagport.core import Tagport
from tagport.demo import write_catalog, write_events, write_users
from tagport.exports.spec import ExportRequest
from tagport.tags import repository as tag_runs
from tagport.tags.schedule import DAILY_TAGS
from tests.acceptance.processes import TAGPORT, Api, TagportProcess, free_port, one_line

HOLD = ("import duckdb, sys\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "print('holding', flush=True)\n"
        "sys.stdin.read()\n")


@pytest.fixture
def setup(tmp_path):
    """A data dir (catalog, 2,000 users, 20,000 events, a token) and its input files."""
    data = tmp_path / "data"
    tp = Tagport(Settings(data_dir=data))
    spec = read_catalog_file(write_catalog(tmp_path / "c.json"))
    tp.catalog.apply(entries_from_file(spec), events_from_file(spec))
    users = write_users(tmp_path / "u.parquet", 2_000)
    events = write_events(tmp_path / "e.parquet", 2_000, 20_000)
    tp.profiles.load(users)
    token = tp.tokens.create("t")
    tp.close()
    return {"tmp": tmp_path, "data": data, "users": users, "events": events, "token": token,
            "store": data / "profiles.duckdb"}


def run(setup, *args: str, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TAGPORT, "--data-dir", str(setup["data"]), *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)



def commands(setup) -> dict[str, list[str]]:
    return {"load": ["load", str(setup["users"])],
            "events load": ["events", "load", str(setup["events"])],
            "export": ["export", "tag_rfm", "-o", str(setup["tmp"] / "out.csv")],
            "compute": ["compute"],
            "serve": ["serve", "--port", str(free_port())]}


def users(store: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute("SELECT * FROM users ORDER BY gio_id").fetchall()
    finally:
        con.close()


class Holder:
    """A second process that holds the DuckDB file open for writing."""

    def __init__(self, store: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD, str(store)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "holding\n"

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def test_a_store_held_by_another_process_ends_every_command_in_one_line(setup):
    before = users(setup["store"])
    holder = Holder(setup["store"])
    try:
        for name, args in commands(setup).items():
            what = {"events load": "load", "compute": "computation"}.get(name, name)
            if name == "serve":
                one_line(run(setup, *args), f"the profile store {setup['store']} is open in "
                         "another process")
            else:
                one_line(run(setup, *args), f"the profile store {setup['store']} is held by "
                         f"process {holder.proc.pid}", f"to hand the {what} to",
                         "retry when their exports are done")
    finally:
        holder.release()
    assert users(setup["store"]) == before
    assert "inserted=0 updated=2000" in run(setup, "load", str(setup["users"])).stdout


def test_a_worker_beside_a_held_store_says_it_once_and_once_when_it_works_again(setup):
    holder = Holder(setup["store"])
    worker = TagportProcess(setup["data"], ["worker", "--threads", "2"], {},
                            setup["tmp"] / "worker.log")
    tp = Tagport(Settings(data_dir=setup["data"]))
    try:
        job = tp.jobs.submit(ExportRequest("tag_rfm", ["usr_city"]), token_id=None)
        deadline = time.monotonic() + 60
        while "handed back" not in worker.output():
            assert time.monotonic() < deadline and worker.proc.poll() is None, worker.output()
            time.sleep(0.1)
        time.sleep(3.5)  # three more tries at least, each a second apart: none says it again
        assert worker.output().count("handed back") == 1, worker.output()
        holder.release()
        while not tp.jobs.get(job.id).stage.is_final:
            assert time.monotonic() < deadline + 60, worker.output()
            time.sleep(0.1)
        assert tp.jobs.get(job.id).stage.value == "FINISH"
    finally:
        if holder.proc.poll() is None:
            holder.release()
        assert worker.stop() == 0
        tp.close()
    out = worker.output()
    assert "Traceback" not in out, out
    said = [line for line in out.splitlines() if "handed back" in line]
    assert len(said) == 1 and f"the profile store {setup['store']}" in said[0], out
    assert out.count("the profile store can be used again") == 1, out


def test_an_api_only_server_answers_a_held_store_with_503_engine_unavailable(setup):
    api = Api(setup["data"], setup["token"], {}, setup["tmp"] / "serve.log", "--no-worker")
    try:
        user = "/v1/api/users/$basic_userId/U00000001"
        assert api.http.get(user).status_code == 200
        holder = Holder(setup["store"])
        try:
            for route in (user, "/v1/api/user_tags/tag_rfm/users?limit=5"):
                response = api.http.get(route)
                assert response.status_code == 503, response.text
                assert response.json()["code"] == "ENGINE_UNAVAILABLE"
                assert "is open in another process" in response.json()["message"]
                assert int(response.headers["Retry-After"]) > 0
        finally:
            holder.release()
        assert api.http.get(user).status_code == 200  # and again once it is free
    finally:
        api.stop()
    assert "Traceback" not in api.output(), api.output()


def test_a_damaged_store_ends_every_command_in_one_line(setup):
    kept = setup["tmp"] / "kept.duckdb"
    shutil.move(setup["store"], kept)
    setup["store"].write_bytes(b"this is not a DuckDB file\n" * 1000)
    try:
        for args in commands(setup).values():
            one_line(run(setup, *args), "ENGINE_UNAVAILABLE: ",
                     f"the profile store {setup['store']} cannot be opened: ",
                     "the file is damaged or unreadable, or not a DuckDB file")
    finally:
        shutil.move(kept, setup["store"])
    assert len(users(setup["store"])) == 2_000


def daily_computation_done(setup) -> None:
    """Record today's daily computation as done, so that a server starting queues none."""
    tp = Tagport(Settings(data_dir=setup["data"]))
    try:
        with tp.db.begin() as conn:
            tag_runs.claim_run(conn, DAILY_TAGS, tp.tag_computes.today(), "test")
    finally:
        tp.close()


@pytest.mark.parametrize("command", ["export", "compute"])
def test_a_command_waiting_on_a_server_that_dies_says_so_and_stops(setup, command):
    # the server looks for other processes' jobs once a minute: the job stays queued
    daily_computation_done(setup)  # the server queues none of its own
    server = Api(setup["data"], setup["token"], {"TAGPORT_POLL_INTERVAL": "60"},
                 setup["tmp"] / "serve.log")
    waiting = TagportProcess(setup["data"], commands(setup)[command], {},
                             setup["tmp"] / "cli.log")
    try:
        deadline = time.monotonic() + 60
        while "runs there" not in waiting.output():
            assert time.monotonic() < deadline and waiting.proc.poll() is None, \
                waiting.output()
            time.sleep(0.1)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=30)
        killed = time.monotonic()
        assert waiting.proc.wait(timeout=60) == 1
        assert time.monotonic() - killed < 30
    finally:
        server.stop()
        waiting.stop()
    out = waiting.output()
    assert "Traceback" not in out, out
    assert out.strip().splitlines()[-1].startswith("error: job "), out
    assert "and the server that held the profile store has stopped: start it again" in out


def test_a_cli_export_beside_an_api_only_server_runs_its_job_itself(setup):
    api = Api(setup["data"], setup["token"], {}, setup["tmp"] / "serve.log", "--no-worker")
    try:
        done = run(setup, *commands(setup)["export"], timeout=60)
    finally:
        api.stop()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"written to {setup['tmp'] / 'out.csv'}")


def test_a_remote_export_that_no_worker_takes_says_so_then_finishes_once_one_runs(setup):
    """And says so again once that worker is killed."""
    api = Api(setup["data"], setup["token"], {}, setup["tmp"] / "serve.log", "--no-worker")
    out = setup["tmp"] / "remote.csv"
    remote = ["remote", "export", "tag_rfm", "-p", "usr_city", "-o", str(out),
              "--url", str(api.http.base_url), "--token", setup["token"]]
    env = {"TAGPORT_NO_WORKER_GRACE": "2"}
    worker = None
    try:
        line = one_line(run(setup, *remote, env=env, timeout=60), "error: NO_WORKER: job ",
                        "no live worker has taken jobs of its kind for 2 s",
                        "start `tagport worker`")
        job_id = line.split()[3]
        assert api.result(job_id)["liveWorkers"] == 0  # still queued, for a worker to take
        worker = TagportProcess(setup["data"], ["worker"], {}, setup["tmp"] / "worker.log")
        deadline = time.monotonic() + 60
        while "export thread(s)" not in worker.output():  # its heartbeat is written
            assert time.monotonic() < deadline and worker.proc.poll() is None, worker.output()
            time.sleep(0.1)
        done = run(setup, *remote, env=env, timeout=120)
        assert api.result(job_id)["stage"] == "FINISH"
        worker.kill()  # a worker that dies: its heartbeat lapses on its own
        other = [*remote[:4], "usr_age", *remote[5:]]
        one_line(run(setup, *other, env=env, timeout=60), "error: NO_WORKER: job ")
    finally:
        if worker is not None:
            worker.stop()
        api.stop()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{out.stat().st_size} bytes written to {out}"
    assert out.read_text(encoding="utf-8").startswith('"gio_id","usr_city"\n')


def test_a_result_dir_gone_under_a_running_server(setup):
    results = setup["data"] / "results"
    api = Api(setup["data"], setup["token"], {}, setup["tmp"] / "serve.log")
    try:
        first = api.wait(api.submit("tag_rfm", {"properties": ["usr_city"]})["id"])
        shutil.rmtree(results)
        response = api.http.get("/download?file=" + first["uris"][0])
        assert response.status_code == 404
        assert response.json() == {"code": "FILE_NOT_FOUND",
                                   "message": "the file of this job is no longer on disk"}
        again = api.wait(api.submit("tag_rfm", {"properties": ["usr_age"]})["id"])
        assert again["stage"] == "FINISH"  # the result dir is made again
        assert api.download(again).startswith(b"gio_id,usr_age\n") or api.download(again)
    finally:
        api.stop()
    assert "Traceback" not in api.output(), api.output()


def test_a_result_dir_that_cannot_be_a_directory_ends_the_command_in_one_line(setup):
    blocker = setup["tmp"] / "a-file"
    blocker.write_text("")
    one_line(run(setup, *commands(setup)["export"],
                 env={"TAGPORT_RESULT_DIR": str(blocker / "results")}),
             "error: STORAGE_ERROR: Not a directory: ", "check that TAGPORT_DATA_DIR and "
             "TAGPORT_RESULT_DIR name directories")
