"""Running export jobs: claims, leases, and the one place that decides a job's outcome.

A worker claims a job (READY, a lease of `lease_seconds`, one more attempt), renews the
lease while the export runs, and moves the job on with guarded updates that also check
the claim is still its own. A worker that lost its claim (its lease lapsed and another
worker took the job, or the job was cancelled) can therefore change nothing, and never
publishes; its running export is stopped (ExportStopped) as soon as it knows: at once
for a cancel in the same process, at its next lease renewal (a third of the lease)
otherwise. A failed attempt is retried; after `max_attempts` failed or interrupted
attempts the job ends in ERROR with the last cause.

Files: an attempt writes into `<job dir>/.work-<attempt>` (attempt numbers only grow, so
no two runs ever share a work dir), and the result store (results/) publishes them: a
directory moves them into place inside the FINISH transaction, while it holds the job's
row; an object store uploads them before it, and a refused FINISH deletes the upload.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine as DbEngine

from tagport.catalog.service import CatalogService
from tagport.durable import fsync_path
from tagport.engines.base import Engine
from tagport.errors import StorageError, TagportError
from tagport.exports import naming
from tagport.exports.plan import ExportStopped
from tagport.exports.spec import ExportRequest, plan_export
from tagport.jobs import repository
from tagport.jobs.flush import FlushBehind
from tagport.jobs.lease import LeaseKeeper
from tagport.jobs.models import CLAIMED, ExportJob, JobStage
from tagport.results import ResultStore
from tagport.results.directory import WORK_DIR_PREFIX

log = logging.getLogger("tagport.jobs")

RETRY_DELAY = 0.5  # seconds before the first retry of a failed attempt; doubles each time


def worker_id(label: str) -> str:
    """A worker's name in `jobs.claimed_by`: `host:pid:label`, so that a restarted process
    can tell the claims of a dead process of its own machine."""
    return f"{socket.gethostname()}:{os.getpid()}:{label}"


class JobRunner:
    def __init__(self, db: DbEngine, catalog: CatalogService, results: ResultStore, *,
                 lease_seconds: float = 30.0, max_attempts: int = 3) -> None:
        self.db = db
        self.catalog = catalog
        self.results = results
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._stops: dict[str, threading.Event] = {}  # job id -> stop of its export here

    # -- claims ------------------------------------------------------------------------

    def claim_next(self, worker: str) -> str | None:
        """Claim the oldest claimable job for `worker`; first end the jobs that have no
        attempt left (their last run was interrupted) in ERROR."""
        with self.db.begin() as conn:
            given_up = [job for job in repository.exhausted(conn, self.max_attempts)
                        if repository.give_up(conn, job, "INTERRUPTED", _interrupted(job))]
            job_id = repository.claim_next(conn, worker, self.lease_seconds, self.max_attempts)
        for job in given_up:
            log.error("job %s failed: %s", job.id, _interrupted(job))
            self._drop(job.name)
        return job_id

    def claim(self, job_id: str, worker: str) -> bool:
        """Claim one given job; False when it is not claimable (someone else has it)."""
        with self.db.begin() as conn:
            return repository.claim(conn, job_id, worker, self.lease_seconds)

    def hand_back(self, job_id: str, worker: str, *, refund: bool = False) -> bool:
        """Return `worker`'s job to the queue; with `refund` the attempt does not count."""
        with self.db.begin() as conn:
            return repository.hand_back(conn, job_id, worker, refund=refund)

    def release_orphans(self) -> int:
        """Hand back the jobs claimed by processes of this machine that have exited (a
        crash, a kill -9), so they run again now rather than when their lease lapses.
        Claims of live processes and of other machines are left to their leases."""
        released = 0
        with self.db.begin() as conn:
            for job_id, worker in repository.claims(conn):
                if worker and _process_gone(worker) and repository.hand_back(conn, job_id, worker):
                    released += 1
        return released

    # -- running -----------------------------------------------------------------------

    def run(self, job_id: str, engine: Engine, worker: str | None = None) -> None:
        """Run a job claimed by `worker` (default: whoever claimed it) to FINISH, ERROR,
        or a later retry, renewing the lease meanwhile."""
        with self.db.connect() as conn:
            job = repository.get(conn, job_id)
        worker = worker or (job.claimed_by if job else None)
        if job is None or worker is None:
            return
        with LeaseKeeper(self.db, job_id, worker, self.lease_seconds) as keeper:
            self._stops[job_id] = keeper.lost  # the claim is lost: the export is in vain
            try:
                self._attempt(job, engine, worker, keeper.lost)
            finally:
                self._stops.pop(job_id, None)

    def stop_local(self, job_id: str) -> None:
        """Stop this process's running export of `job_id` now (the job was cancelled)."""
        if (stop := self._stops.get(job_id)) is not None:
            stop.set()

    def _attempt(self, job: ExportJob, engine: Engine, worker: str,
                 stop: threading.Event) -> None:
        job_dir = self.results.work_root / job.name
        work_dir = job_dir / f"{WORK_DIR_PREFIX}{job.attempts}"
        try:
            if not self._move(job.id, JobStage.READY, JobStage.RUNNING, worker,
                              started_at=datetime.now(UTC)):
                return  # no longer ours (cancelled, or taken after our lease lapsed)
            plan = plan_export(job.request(), self.catalog.by_key(), engine.capabilities)
            file_name = naming.result_file_name(
                plan.selection.display_name, job.created_at.astimezone(), plan.output
            )
            _remove_work_dirs(job_dir)  # left by interrupted attempts
            work_dir.mkdir(parents=True)
            with FlushBehind(work_dir):  # so that the fsync below has little left to do
                output = engine.export(plan, work_dir, file_name, stop)
            if not self._move(job.id, JobStage.RUNNING, JobStage.DATA_READY, worker,
                              row_count=output.row_count):
                log.warning("job %s: %s no longer holds it; its rows are dropped", job.id, worker)
                return
            for path in output.files:
                fsync_path(path)
            if self._finish(job, worker, work_dir, output.files):
                log.info("job %s finished: %s rows (attempt %d by %s)", job.id,
                         output.row_count, job.attempts, worker)
            else:
                log.warning("job %s: %s no longer holds it; not published", job.id, worker)
        except ExportStopped as stopped:  # the job is someone else's now, or ended
            log.info("job %s: %s stopped its export (%s): the job was cancelled or taken "
                     "over", job.id, worker, stopped)
        except Exception as exc:  # the attempt fails, the worker goes on
            _remove_work_dir(work_dir)  # before the job can be seen to end
            self._fail(job, worker, exc)
        finally:
            _remove_work_dir(work_dir)

    def _move(self, job_id: str, old: JobStage, new: JobStage, worker: str,
              **values: Any) -> bool:
        with self.db.begin() as conn:
            return repository.transition(conn, job_id, [old], new, owner=worker, **values)

    def _finish(self, job: ExportJob, worker: str, work_dir: Path, files: list[Path]) -> bool:
        """Publish the files: upload them (object stores), then DATA_READY -> FINISH with
        the files placed (directories) and recorded, in one transaction.

        The guarded update holds the job's row (PostgreSQL) or the database (SQLite) until
        the commit, so no other worker can claim the job while the files move, and a
        worker that lost its claim never gets as far as moving its files. Uploaded objects
        are unreachable until recorded; a refused FINISH deletes them. The work dir goes
        before the commit, so a client that sees FINISH never sees it.
        """
        sizes = [path.stat().st_size for path in files]
        try:
            self.results.upload(job.name, job.attempts, files)
        except StorageError:
            self._discard(job)  # a partial upload
            raise
        with self.db.begin() as conn:
            finished = repository.transition(
                conn, job.id, [JobStage.DATA_READY], JobStage.FINISH, owner=worker,
                byte_count=sum(sizes), finished_at=datetime.now(UTC), lease_until=None,
                error_code=None, error_message=None,
            )
            if finished:
                self.results.place(job.name, job.attempts, files)
                repository.add_files(conn, job.id, [
                    (naming.result_path(job.name, path.name), size)
                    for path, size in zip(files, sizes, strict=True)
                ])
                _remove_work_dir(work_dir)
        if not finished:
            self._discard(job)
        return finished

    def _discard(self, job: ExportJob) -> None:
        """Remove what this attempt uploaded; a failure leaves it to retention."""
        try:
            self.results.discard(job.name, job.attempts)
        except StorageError as exc:
            log.warning("job %s: attempt %d's upload not removed: %s", job.id, job.attempts,
                        exc.message)

    def _drop(self, job_name: str) -> None:
        """Remove every file of a job that ended in ERROR: work dirs and published files."""
        shutil.rmtree(self.results.work_root / job_name, ignore_errors=True)
        try:
            self.results.delete(job_name)
        except StorageError as exc:
            log.warning("job %s: files not removed: %s", job_name, exc.message)

    def _fail(self, job: ExportJob, worker: str, exc: Exception) -> None:
        code, message = _cause(exc)
        permanent = isinstance(exc, TagportError) and exc.status < 500  # a bad request
        if not permanent and job.attempts < self.max_attempts:
            delay = RETRY_DELAY * 2 ** (job.attempts - 1)
            with self.db.begin() as conn:
                moved = repository.retry_later(conn, job.id, worker, delay, code, message)
            if moved:
                log.warning("job %s: attempt %d of %d failed, retrying in %.1f s: %s", job.id,
                            job.attempts, self.max_attempts, delay, message, exc_info=exc)
            else:
                log.warning("job %s: %s no longer holds it; its failure is ignored: %s",
                            job.id, worker, message)
            return
        if job.attempts > 1:
            message = f"{message} (attempt {job.attempts} of {self.max_attempts})"
        with self.db.begin() as conn:
            failed = repository.transition(
                conn, job.id, CLAIMED, JobStage.ERROR, owner=worker, error_code=code,
                error_message=message, finished_at=datetime.now(UTC), lease_until=None,
            )
        if failed:  # final now: nothing of it may stay
            log.error("job %s failed: %s", job.id, message, exc_info=exc)
            self._drop(job.name)
        else:
            log.warning("job %s: %s no longer holds it; its failure is ignored: %s",
                        job.id, worker, message)


def _interrupted(job: ExportJob) -> str:
    message = (f"the export was interrupted {job.attempts} times (its worker stopped or "
               "lost its lease)")
    if job.error_code:
        message += f"; an earlier attempt failed with {job.error_code}: {job.error_message}"
    return message


def _cause(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, TagportError):
        return exc.code, exc.message
    if (code := storage_error_code(exc)) is not None:
        return code, f"writing the result failed: {exc}"
    return "EXPORT_FAILED", f"{type(exc).__name__}: {exc}"


_FULL = (errno.ENOSPC, errno.EDQUOT)
_UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def storage_error_code(exc: BaseException) -> str | None:
    """STORAGE_FULL, STORAGE_UNWRITABLE or STORAGE_ERROR for a failed write, else None.

    DuckDB's and Arrow's writers report the OS error in their message rather than as an
    OSError with an errno, so the message is read too.
    """
    text = str(exc)
    number = exc.errno if isinstance(exc, OSError) else None
    if number in _FULL or "No space left on device" in text or "Disk quota exceeded" in text:
        return "STORAGE_FULL"
    if number in _UNWRITABLE or "Read-only file system" in text or "Permission denied" in text:
        return "STORAGE_UNWRITABLE"
    if isinstance(exc, OSError) or type(exc).__name__ == "IOException":
        return "STORAGE_ERROR"
    return None


def _process_gone(worker: str) -> bool:
    """True when `worker` (`host:pid:...`) was a process of this machine that has exited."""
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, but not ours to signal
        return False
    return False


def _remove_work_dirs(job_dir: Path) -> None:
    if job_dir.is_dir():
        for entry in job_dir.iterdir():
            if entry.name.startswith(WORK_DIR_PREFIX):
                shutil.rmtree(entry, ignore_errors=True)


def _remove_work_dir(work_dir: Path) -> None:
    """Remove an attempt's work dir, and its job's dir if nothing else is in it."""
    shutil.rmtree(work_dir, ignore_errors=True)
    try:
        work_dir.parent.rmdir()
    except OSError:  # not empty (a result, another attempt), or gone
        pass
