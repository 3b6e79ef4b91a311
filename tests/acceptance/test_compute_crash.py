"""Crash safety of computations for real: a `tagport serve` killed with SIGKILL while a
compute job runs leaves the tag's previous values whole, and after a restart the job runs
again and finishes with the values of an uninterrupted run (spec section 6: "a kill -9 in
the middle of a computation leaves the previous values whole").

`tagport worker` does not run computations on DuckDB (a single-writer engine it opens
read-only), so the server is the process killed. The computation is made long with a
small dataset: a SQL tag pairing every event with every other user's events (a quadratic
join, one DuckDB thread). If it still outruns the kill, the scenario is run again with
twice the events, so the test never depends on timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from tagport.config import Settings
from tagport.core import Tagport
from tagport.jobs.models import JobStage
from tests.acceptance.processes import TAGPORT, Api

ENV = {"TAGPORT_WORKERS": "1", "TAGPORT_DUCKDB_THREADS": "1", "TAGPORT_POLL_INTERVAL": "0.1",
       "TAGPORT_JOB_LEASE_SECONDS": "2", "TAGPORT_TIMEZONE": "UTC"}
TAG = "tag_pairs"
FIRST_DAY, DAYS = date(2026, 11, 1), 10
BEFORE, AFTER = FIRST_DAY + timedelta(days=5), FIRST_DAY + timedelta(days=DAYS)  # as of
USERS = 40
# each user's events before the compute date, times the events of the other users
SQL = ("SELECT a.gio_id AS gio_id, count() AS tag_value FROM olap.event AS a, olap.event AS b"
       " WHERE a.gio_id != b.gio_id AND a.dt < today() AND b.dt < today() GROUP BY a.gio_id")
CATALOG = {
    "identities": [{"key": "id_uid", "name": "用户ID"}],
    "tags": [{"key": TAG, "name": "配对", "type": "int", "scheduler": "ONCE",
              "compute": {"type": "SQL", "sql": SQL}}],
    "events": [{"key": "visit", "name": "访问", "attributes": []}],
}


def run(data: Path, *args: str) -> None:
    done = subprocess.run([*TAGPORT, "--data-dir", str(data), *args], capture_output=True,
                          text=True, env={**os.environ, **ENV})
    assert done.returncode == 0, done.stdout + done.stderr


def events_of(n: int) -> list[tuple[str, date]]:
    """n events: (user, day), spread over USERS users and DAYS days."""
    return [(f"u{i % USERS}", FIRST_DAY + timedelta(days=(i // USERS) % DAYS))
            for i in range(n)]


def expected(events: list[tuple[str, date]], as_of: date) -> dict[str, int]:
    before = Counter(user for user, day in events if day < as_of)
    total = sum(before.values())
    return {user: k * (total - k) for user, k in before.items()}


def stored_values(data: Path) -> dict[str, int | None]:
    """The tag's committed values by user id, read from the store file (no server)."""
    con = duckdb.connect(str(data / "profiles.duckdb"), read_only=True)
    try:
        columns = {r[0] for r in con.execute("DESCRIBE users").fetchall()}
        if TAG not in columns:
            return {}
        return dict(con.execute(f'SELECT "id_uid", "{TAG}" FROM users').fetchall())
    finally:
        con.close()


def job_of(data: Path, job_id: str):
    tp = Tagport(Settings(data_dir=data))
    try:
        return tp.jobs.get(job_id)
    finally:
        tp.close()


def prepare(root: Path, n: int) -> tuple[Path, str, list[tuple[str, date]]]:
    data = root / f"data-{n}"
    (root / "catalog.json").write_text(json.dumps(CATALOG, ensure_ascii=False), "utf-8")
    events = events_of(n)
    path = root / f"events-{n}.jsonl"
    path.write_text("".join(json.dumps(
        {"event": "visit", "time": f"{day}T12:00:00Z", "identifications": {"id_uid": user}})
        + "\n" for user, day in events), "utf-8")
    run(data, "catalog", "apply", str(root / "catalog.json"))
    run(data, "events", "load", str(path))
    run(data, "compute", TAG, "--as-of", BEFORE.isoformat())  # the previous values
    assert stored_values(data) == expected(events, BEFORE)
    tp = Tagport(Settings(data_dir=data))
    try:
        return data, tp.tokens.create("crash"), events
    finally:
        tp.close()


def kill_mid_compute(data: Path, token: str, tmp: Path) -> tuple[str, bool]:
    """Start a server, queue the computation as of AFTER, SIGKILL the server while the job
    runs; the job's id and whether the kill came before the computation ended."""
    tp = Tagport(Settings(data_dir=data))
    try:
        job_id = tp.tag_computes.trigger([TAG], as_of=AFTER).id
    finally:
        tp.close()
    api = Api(data, token, ENV, tmp / f"{data.name}-serve-1.log")
    deadline = time.monotonic() + 120
    while job_of(data, job_id).stage is JobStage.NONE:
        assert time.monotonic() < deadline, api.output()
        time.sleep(0.05)
    time.sleep(0.5)  # the job has claimed the store and is in its query
    api.kill()
    killed = job_of(data, job_id)
    return job_id, (killed.stage, killed.attempts) == (JobStage.RUNNING, 1)


def test_a_server_killed_mid_compute_keeps_the_values_and_the_job_finishes_after_restart(
        tmp_path):
    for n in (8000, 16000, 32000):
        data, token, loaded = prepare(tmp_path, n)
        job_id, in_the_middle = kill_mid_compute(data, token, tmp_path)
        if in_the_middle:
            break
    else:
        pytest.fail("the computation outran the kill at every size")
    # the killed computation's transaction never committed: the old values, whole
    assert stored_values(data) == expected(loaded, BEFORE)

    api = Api(data, token, ENV, tmp_path / "serve-2.log")
    try:
        deadline = time.monotonic() + 180
        while (job := job_of(data, job_id)).stage not in (JobStage.FINISH, JobStage.ERROR):
            assert time.monotonic() < deadline, api.output()
            time.sleep(0.1)
        assert (job.stage, job.attempts) == (JobStage.FINISH, 2), (job, api.output())
    finally:
        api.stop()
    assert stored_values(data) == expected(loaded, AFTER)
