"""Claims, leases, retries and hand-backs, on the real metadata stores (SQLite and
PostgreSQL: the `seeded` core runs on both) with the real DuckDB engine."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tagport.errors import StoreBusy
from tagport.exports.spec import ExportRequest
from tagport.jobs import repository
from tagport.jobs.lease import LeaseKeeper
from tagport.jobs.models import JobStage
from tagport.jobs.runner import JobRunner, Turn

A, B, C = "host-a:1:a", "host-b:2:b", "host-c:3:c"
GIO_IDS = b'"gio_id"\n1\n3\n4\n'


def runner(core, lease: float = 30.0, attempts: int = 3) -> JobRunner:
    return JobRunner(core.db, core.catalog, core.results,
                     lease_seconds=lease, max_attempts=attempts)


def submit(core, *properties: str):
    return core.jobs.submit(ExportRequest("tag_rfm", list(properties), "csv", "key"), None)


def files_of(core, job):
    return sorted(p.name for p in (core.settings.results_path / job.name).iterdir())


def test_a_claim_names_the_worker_and_sets_a_lease(seeded):
    job = submit(seeded)
    assert runner(seeded, lease=30).claim_next(A) == job.id
    claimed = seeded.jobs.get(job.id)
    assert (claimed.stage, claimed.claimed_by, claimed.attempts) == (JobStage.READY, A, 1)
    left = claimed.lease_until - datetime.now(UTC)
    assert timedelta(seconds=25) < left <= timedelta(seconds=30)


def test_a_job_under_a_live_lease_is_not_claimed_by_another_worker(seeded):
    submit(seeded)
    jobs = runner(seeded, lease=30)
    assert jobs.claim_next(A) is not None
    assert jobs.claim_next(B) is None


def test_a_lapsed_lease_lets_another_worker_claim_the_job_again(seeded):
    job = submit(seeded)
    jobs = runner(seeded, lease=0.3)
    assert jobs.claim_next(A) == job.id
    time.sleep(0.5)  # A died: nobody renews its lease
    assert jobs.claim_next(B) == job.id
    again = seeded.jobs.get(job.id)
    assert (again.stage, again.claimed_by, again.attempts) == (JobStage.READY, B, 2)


def test_a_worker_that_lost_its_claim_changes_nothing(seeded):
    job = submit(seeded)
    jobs = runner(seeded, lease=0.3)
    jobs.claim_next(A)
    time.sleep(0.5)
    jobs.claim_next(B)
    jobs.run_claimed(job.id, seeded.engine, A)  # A wakes up late
    assert seeded.jobs.get(job.id).stage is JobStage.READY
    assert not (seeded.settings.results_path / job.name).exists()
    jobs.run_claimed(job.id, seeded.engine, B)
    done = seeded.jobs.get(job.id)
    assert (done.stage, done.attempts) == (JobStage.FINISH, 2)
    _, path = seeded.jobs.file_for(done.files[0], None)
    assert path.read_bytes() == GIO_IDS


def test_finish_is_refused_to_a_worker_whose_job_was_taken_over(seeded):
    job = submit(seeded)
    jobs = runner(seeded, lease=0.3)
    jobs.claim_next(A)
    with seeded.db.begin() as conn:
        assert repository.start(conn, job.id, A)
        assert repository.rows_written(conn, job.id, A, 3)
    time.sleep(0.5)
    assert jobs.claim_next(B) == job.id  # a DATA_READY job whose lease lapsed: READY again
    with seeded.db.begin() as conn:
        assert not repository.finish(conn, job.id, A, 10)
        assert not repository.fail(conn, job.id, A, "EXPORT_FAILED", "late")
        assert not repository.start(conn, job.id, A)  # READY, but B's
        assert not repository.renew(conn, job.id, A, 30)
        assert not repository.hand_back(conn, job.id, A)
    assert seeded.jobs.get(job.id).claimed_by == B


def test_the_lease_is_renewed_while_the_job_runs(seeded):
    job = submit(seeded)
    jobs = runner(seeded, lease=0.3)
    jobs.claim_next(A)
    with LeaseKeeper(seeded.db, job.id, A, 0.3) as keeper:
        time.sleep(1.0)  # three leases long
        assert jobs.claim_next(B) is None
        assert not keeper.lost.is_set()
    time.sleep(0.5)  # the keeper stopped: the lease lapses
    assert jobs.claim_next(B) == job.id


def test_a_keeper_notices_that_its_claim_was_taken(seeded):
    job = submit(seeded)
    jobs = runner(seeded, lease=0.3)
    jobs.claim_next(A)
    time.sleep(0.5)
    jobs.claim_next(B)
    with LeaseKeeper(seeded.db, job.id, A, 0.3) as keeper:
        assert keeper.lost.wait(2)


def test_a_job_interrupted_max_attempts_times_ends_in_error(seeded):
    job = submit(seeded)
    jobs = runner(seeded, lease=0.2, attempts=2)
    assert jobs.claim_next(A) == job.id
    time.sleep(0.3)
    assert jobs.claim_next(B) == job.id
    time.sleep(0.3)
    assert jobs.claim_next(C) is None
    failed = seeded.jobs.get(job.id)
    assert (failed.stage, failed.error_code, failed.attempts) == (JobStage.ERROR, "INTERRUPTED", 2)
    assert failed.error_message.startswith("the export was interrupted 2 times")


def test_a_failed_attempt_is_retried_later_and_can_then_finish(seeded):
    results = seeded.settings.results_path
    results.rmdir()
    results.write_text("not a directory")  # the attempt cannot make its work dir
    job = submit(seeded)
    jobs = runner(seeded)
    jobs.claim_next(A)
    jobs.run_claimed(job.id, seeded.engine, A)
    waiting = seeded.jobs.get(job.id)
    assert (waiting.stage, waiting.claimed_by, waiting.error_code) == (
        JobStage.NONE, None, "STORAGE_ERROR")
    assert jobs.claim_next(B) is None  # not before its retry delay
    results.unlink()
    results.mkdir()
    time.sleep(0.6)
    assert jobs.claim_next(B) == job.id
    jobs.run_claimed(job.id, seeded.engine, B)
    done = seeded.jobs.get(job.id)
    assert (done.stage, done.attempts, done.error_code) == (JobStage.FINISH, 2, None)


def test_a_failure_on_every_attempt_ends_in_error_with_the_last_cause(seeded):
    results = seeded.settings.results_path
    results.rmdir()
    results.write_text("not a directory")
    job = submit(seeded)
    jobs = runner(seeded, attempts=2)
    for worker in (A, B):
        deadline = time.monotonic() + 5
        while jobs.claim_next(worker) != job.id:  # waits out the retry delay
            assert time.monotonic() < deadline
            time.sleep(0.05)
        jobs.run_claimed(job.id, seeded.engine, worker)
    failed = seeded.jobs.get(job.id)
    assert (failed.stage, failed.attempts, failed.error_code) == (
        JobStage.ERROR, 2, "STORAGE_ERROR")
    assert failed.error_message.endswith("(attempt 2 of 2)")


def test_an_attempt_removes_the_work_dirs_of_earlier_attempts(seeded):
    job = submit(seeded)
    stale = seeded.settings.results_path / job.name / ".work-7"
    stale.mkdir(parents=True)
    (stale / "half.csv").write_text('"gio_id"\n1\n')  # what a killed attempt leaves
    jobs = runner(seeded)
    jobs.claim_next(A)
    jobs.run_claimed(job.id, seeded.engine, A)
    done = seeded.jobs.get(job.id)
    assert done.stage is JobStage.FINISH
    assert files_of(seeded, done) == [done.files[0].rsplit("/", 1)[1]]


def test_orphans_of_exited_processes_of_this_machine_are_handed_back(seeded):
    exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                            capture_output=True, text=True, check=True).stdout.strip()
    alive = str(os.getppid())
    here = socket.gethostname()
    owners = {"dead": f"{here}:{exited}:x-0", "alive": f"{here}:{alive}:x-0",
              "elsewhere": f"not-{here}:{exited}:x-0"}
    jobs = runner(seeded)
    ids = {}
    for n, (name, owner) in enumerate(owners.items()):
        ids[name] = submit(seeded, *["usr_gender", "usr_age", "tag_rfm"][:n]).id
        assert jobs.claim(ids[name], owner)
    assert jobs.release_orphans() == 1
    dead = seeded.jobs.get(ids["dead"])
    assert (dead.stage, dead.claimed_by, dead.lease_until, dead.attempts) == (
        JobStage.NONE, None, None, 1)
    for name in ("alive", "elsewhere"):  # their leases decide
        assert seeded.jobs.get(ids[name]).claimed_by == owners[name]


class BusyStore:
    """An engine source whose store another process is writing."""

    @contextmanager
    def use(self):
        raise StoreBusy("a load holds the profile store")
        yield


def test_run_next_claims_the_oldest_job_and_runs_it_to_finish(seeded):
    first, second = submit(seeded, "usr_gender"), submit(seeded, "usr_age")
    assert runner(seeded).run_next(A, seeded.engine) is Turn.RAN
    assert seeded.jobs.get(first.id).stage is JobStage.FINISH
    assert seeded.jobs.get(second.id).stage is JobStage.NONE


def test_run_next_runs_the_given_job_or_nothing_when_another_worker_has_it(seeded):
    first, second = submit(seeded, "usr_gender"), submit(seeded, "usr_age")
    jobs = runner(seeded)
    assert jobs.run_next(A, seeded.engine, job_id=second.id) is Turn.RAN
    assert seeded.jobs.get(second.id).stage is JobStage.FINISH
    assert jobs.claim(first.id, B)
    assert jobs.run_next(A, seeded.engine, job_id=first.id) is Turn.IDLE
    assert seeded.jobs.get(first.id).claimed_by == B


def test_a_job_claimed_while_the_store_is_busy_is_handed_back_free_of_charge(seeded):
    job = submit(seeded)
    assert runner(seeded).run_next(A, BusyStore()) is Turn.HANDED_BACK
    back = seeded.jobs.get(job.id)
    assert (back.stage, back.claimed_by, back.attempts) == (JobStage.NONE, None, 0)


def test_a_job_claimed_as_the_worker_stops_is_handed_back_unrun(seeded):
    job = submit(seeded)
    stopping = threading.Event()
    stopping.set()
    assert runner(seeded).run_next(A, seeded.engine, stopping=stopping) is Turn.HANDED_BACK
    back = seeded.jobs.get(job.id)
    assert (back.stage, back.claimed_by, back.attempts) == (JobStage.NONE, None, 0)


def test_postgresql_claims_skip_rows_locked_by_another_claim(seeded):
    if not seeded.settings.database_url:
        pytest.skip("SELECT ... FOR UPDATE SKIP LOCKED is PostgreSQL's; SQLite has one writer")
    first, second = submit(seeded, "usr_gender"), submit(seeded, "usr_age")
    with seeded.db.connect() as one, seeded.db.connect() as two:
        one.begin()
        assert repository.claim_next(one, A, 30, 3) == first.id  # not committed yet
        two.begin()
        two.execute(sa.text("SET LOCAL lock_timeout = '2s'"))  # waiting would fail
        assert repository.claim_next(two, B, 30, 3) == second.id
        two.commit()
        one.commit()
    assert seeded.jobs.get(first.id).claimed_by == A
    assert seeded.jobs.get(second.id).claimed_by == B
