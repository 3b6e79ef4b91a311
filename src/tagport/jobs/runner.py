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
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine as DbEngine

from tagport.catalog.service import CatalogService
from tagport.durable import fsync_path
from tagport.engines.base import Engine
from tagport.engines.on_demand import EngineSource, engine_source
from tagport.errors import StorageError, StoreBusy, TagportError
from tagport.exports import naming
from tagport.exports.plan import ExportStopped
from tagport.exports.spec import plan_export
from tagport.jobs import repository
from tagport.jobs.flush import FlushBehind
from tagport.jobs.lease import LeaseKeeper
from tagport.jobs.models import ExportJob
from tagport.results import ResultStore
from tagport.results.directory import WORK_DIR_PREFIX

log = logging.getLogger("tagport.jobs")

RETRY_DELAY = 0.5  # seconds before the first retry of a failed attempt; doubles each time


class Turn(Enum):
    """What one `JobRunner.run_next` did."""

    IDLE = "idle"  # nothing was claimable
    RAN = "ran"  # a job was claimed and run to FINISH, ERROR or a later retry
    HANDED_BACK = "handed back"  # claimed, but no engine (or stopping): back in the queue


def worker_id(label: str) -> str:
    """A worker's name in `jobs.claimed_by`: `host:pid:label`, so that a restarted process
    can tell the claims of a dead process of its own machine."""
    return f"{socket.gethostname()}:{os.getpid()}:{label}"


EngineFault = Callable[[str, Exception], None]
"""Told (job id, cause) when a claimed job went back to the queue unrun: no engine."""

JobHandler = Callable[[ExportJob, Engine, threading.Event], int]
"""Runs a job of a non-export kind on the engine; returns its count (users computed).
Raises on failure (retried unless a 4xx TagportError), ExportStopped once the event is set."""


class JobRunner:
    def __init__(self, db: DbEngine, catalog: CatalogService, results: ResultStore, *,
                 lease_seconds: float = 30.0, max_attempts: int = 3) -> None:
        self.db = db
        self.catalog = catalog
        self.results = results
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        # job id -> (worker, stop of its export) while it runs in this process
        self._running: dict[str, tuple[str, threading.Event]] = {}
        # how jobs of kinds other than exports run, registered by the services that
        # queue them (the composition root wires them: core.py)
        self.handlers: dict[str, JobHandler] = {}

    # -- claims ------------------------------------------------------------------------

    def claim_next(self, worker: str, kinds: Iterable[str] | None = None) -> str | None:
        """Claim the oldest claimable job (of `kinds`, default any) for `worker`; first
        end the jobs that have no attempt left (their last run was interrupted) in ERROR."""
        with self.db.begin() as conn:
            given_up = [job for job in repository.exhausted(conn, self.max_attempts)
                        if repository.give_up(conn, job, "INTERRUPTED", _interrupted(job))]
            job_id = repository.claim_next(conn, worker, self.lease_seconds, self.max_attempts,
                                           kinds)
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

    def run_next(self, worker: str, engine: Engine | EngineSource, *,
                 job_id: str | None = None, stopping: threading.Event | None = None,
                 kinds: Iterable[str] | None = None,
                 on_unavailable: EngineFault | None = None) -> Turn:
        """The way in for every worker (the pool's threads, `tagport export`): claim a job
        for `worker` (`job_id`, or the oldest claimable), open the engine and run the job
        to FINISH, ERROR or a later retry. A claim made as `stopping` is set, or that the
        engine cannot serve, goes back to the queue. `kinds`: the kinds of job this worker
        takes (a read-only engine takes only exports). `on_unavailable` is told why the
        engine could not be opened, instead of a log line per try (a pool says it once)."""
        if job_id is None:
            claimed = self.claim_next(worker, kinds)
        else:
            claimed = job_id if self.claim(job_id, worker) else None
        if claimed is None:
            return Turn.IDLE
        if stopping is not None and stopping.is_set():  # claimed as the stop began
            self.hand_back(claimed, worker, refund=True)
            return Turn.HANDED_BACK
        with ExitStack() as stack:
            try:
                opened = stack.enter_context(engine_source(engine).use())
            except StoreBusy as busy:  # a load is writing: nothing ran, the try is free
                self.hand_back(claimed, worker, refund=True)
                if on_unavailable is not None:
                    on_unavailable(claimed, busy)
                else:
                    log.warning("job %s: the profile store is busy, handed back: %s",
                                claimed, busy.message)
                return Turn.HANDED_BACK
            except Exception as exc:  # counts as an attempt, so a broken store ends in ERROR
                self.hand_back(claimed, worker)
                if on_unavailable is not None:
                    on_unavailable(claimed, exc)
                else:
                    log.exception("job %s: opening the data engine failed; handed back",
                                  claimed)
                return Turn.HANDED_BACK
            self.run_claimed(claimed, opened, worker)
        return Turn.RAN

    def run_claimed(self, job_id: str, engine: Engine, worker: str) -> None:
        """Run a job already claimed by `worker` to FINISH, ERROR, or a later retry,
        renewing the lease meanwhile (run_next's second half)."""
        with self.db.connect() as conn:
            job = repository.get(conn, job_id)
        if job is None:
            return
        with LeaseKeeper(self.db, job_id, worker, self.lease_seconds) as keeper:
            # the claim is lost: the export is in vain
            self._running[job_id] = (worker, keeper.lost)
            try:
                self._attempt(job, engine, worker, keeper.lost)
            finally:
                self._running.pop(job_id, None)

    def stop_local(self, job_id: str) -> None:
        """Stop this process's running export of `job_id` now (the job was cancelled)."""
        if (running := self._running.get(job_id)) is not None:
            running[1].set()

    def hand_back_running(self, workers: Iterable[str]) -> list[str]:
        """Hand back the jobs that these workers of this process are running (a stop past
        its grace period); the ids of those handed back."""
        mine = set(workers)
        return [job_id for job_id, (worker, _) in list(self._running.items())
                if worker in mine and self.hand_back(job_id, worker)]

    def _attempt(self, job: ExportJob, engine: Engine, worker: str,
                 stop: threading.Event) -> None:
        if not job.is_export:
            self._run_handler(job, engine, worker, stop)
            return
        job_dir = self.results.work_root / job.name
        work_dir = job_dir / f"{WORK_DIR_PREFIX}{job.attempts}"
        try:
            if not self._move(repository.start, job.id, worker):
                return  # no longer ours (cancelled, or taken after our lease lapsed)
            plan = plan_export(job.request(), self.catalog.by_key(), engine.capabilities,
                               self.catalog.segment(job.tag_key))
            file_name = naming.result_file_name(
                plan.selection.display_name, job.created_at.astimezone(), plan.output
            )
            _remove_work_dirs(job_dir)  # left by interrupted attempts
            work_dir.mkdir(parents=True)
            with FlushBehind(work_dir):  # so that the fsync below has little left to do
                output = engine.export(plan, work_dir, file_name, stop)
            if not self._move(repository.rows_written, job.id, worker, output.row_count):
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

    def _run_handler(self, job: ExportJob, engine: Engine, worker: str,
                     stop: threading.Event) -> None:
        """A job of another kind (a computation): its handler does the work on the
        engine, and the job moves through the same stages, leases and retries, with no
        files: RUNNING while the handler runs, then DATA_READY and FINISH."""
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise TagportError(f"no handler for jobs of kind {job.kind!r} in this process")
            if not self._move(repository.start, job.id, worker):
                return
            count = handler(job, engine, stop)
            if not (self._move(repository.rows_written, job.id, worker, count)
                    and self._move(repository.finish, job.id, worker, 0)):
                log.warning("job %s: %s no longer holds it", job.id, worker)
                return
            log.info("job %s (%s) finished: %s (attempt %d by %s)", job.id, job.kind, count,
                     job.attempts, worker)
        except ExportStopped as stopped:
            log.info("job %s: %s stopped it (%s): cancelled or taken over", job.id, worker,
                     stopped)
        except Exception as exc:  # the attempt fails, the worker goes on
            self._fail(job, worker, exc)

    def _move(self, move: Callable[..., bool], job_id: str, *args: Any) -> bool:
        """Make a repository move in a transaction of its own; True when it moved."""
        with self.db.begin() as conn:
            return move(conn, job_id, *args)

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
            finished = repository.finish(conn, job.id, worker, sum(sizes))
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
        failed = self._move(repository.fail, job.id, worker, code, message)
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
