"""Submitting export jobs, running one, and reading a job's result."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as DbEngine

from tagport.catalog.service import CatalogService, CatalogSnapshot
from tagport.errors import Conflict, Gone, NotFound, TagportError, TooManyRequests
from tagport.exports import naming
from tagport.exports.capabilities import EngineCapabilities
from tagport.exports.result import job_result
from tagport.exports.spec import ExportRequest, plan_export
from tagport.jobs import repository
from tagport.jobs.models import COMPUTE, ExportJob, JobPage, JobStage
from tagport.jobs.runner import JobRunner
from tagport.jobs.submits import SubmitWriter
from tagport.results import ResultStore, StoredObject

log = logging.getLogger("tagport.jobs")

LIVE_WORKERS_CACHE = 1.0  # seconds the live workers' count is reused


@dataclass(frozen=True)
class Submit:
    """A validated export request, to be stored as a job (or matched to one)."""

    request: ExportRequest
    catalog_version: tuple[int, object]  # of the catalog it was validated against
    token_id: int | None
    tag_key: str
    properties: list[str]
    file_format: str
    header_type: str
    compression: str
    charset: str
    request_key: str


class JobService:
    def __init__(
        self, db: DbEngine, catalog: CatalogService, results: ResultStore, *,
        max_queued_per_token: int = 20, result_ttl: timedelta = timedelta(days=7),
        lease_seconds: float = 30.0, max_attempts: int = 3,
        capabilities: EngineCapabilities | None = None,
    ) -> None:
        self.db = db
        self.capabilities = capabilities  # of the engine that will run the jobs
        self.catalog = catalog
        self.results = results
        self.runner = JobRunner(db, catalog, results, lease_seconds=lease_seconds,
                                max_attempts=max_attempts)
        self.max_queued_per_token = max_queued_per_token
        self.result_ttl = result_ttl
        # SQLite: this process's submits are committed together by one thread
        self.writer = SubmitWriter(db, self.store_batch) if db.dialect.name == "sqlite" else None
        self._live: tuple[float, list[frozenset[str] | None]] | None = None
        self._live_lock = threading.Lock()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.stop()

    # -- submitting and reading -------------------------------------------------

    def submit(self, request: ExportRequest, token_id: int | None) -> ExportJob:
        """Validate the request (raises 400/404 errors) and queue a job for it.

        The same token's identical request, while unfinished, gets the existing job; a
        token with `max_queued_per_token` unfinished jobs gets 429.
        """
        submit = self.prepare(request, token_id)
        if self.writer is not None:
            return self.writer.put(submit).result()
        with self.db.begin() as conn:
            repository.lock_token(conn, token_id)
            return self.store(conn, submit)

    async def submit_async(self, request: ExportRequest, token_id: int | None) -> ExportJob:
        """`submit` for the event loop. SQLite: validate here against the catalog last
        read, then wait for the writer's commit; PostgreSQL: the transaction waits on the
        token's row lock, in a thread."""
        if self.writer is None:
            return await anyio.to_thread.run_sync(self.submit, request, token_id)
        return await asyncio.wrap_future(
            self.writer.put(self.prepare_quickly(request, token_id)))

    def submit_compute(self, tag_keys: list[str], as_of: date, token_id: int | None,
                       check: Callable[[list[ExportJob]], None]) -> ExportJob:
        """Queue a computation of `tag_keys`, in that order, for `as_of`. `check` sees the
        unfinished computations first, in the same serialised transaction, and raises to
        refuse (409 while one of the tags is being computed)."""
        now = datetime.now(UTC)
        with self.db.begin() as conn:
            repository.lock_kind(conn)
            check(repository.unfinished_of_kind(conn, COMPUTE))
            for _ in range(10):
                job = ExportJob(
                    id=naming.new_job_id(), name=naming.new_compute_name(now.astimezone()),
                    token_id=token_id, tag_key=tag_keys[0] if len(tag_keys) == 1 else "*",
                    properties=list(tag_keys), file_format="", header_type="",
                    stage=JobStage.NONE, created_at=now, kind=COMPUTE, as_of=as_of)
                if repository.insert_if_new(conn, job):
                    return job
        raise TagportError("could not draw a unique job id")

    def unfinished(self, kind: str) -> list[ExportJob]:
        """The unfinished jobs of `kind`, oldest first."""
        with self.db.connect() as conn:
            return repository.unfinished_of_kind(conn, kind)

    def prepare(self, request: ExportRequest, token_id: int | None,
                catalog: CatalogSnapshot | None = None) -> Submit:
        """Validate the request against the catalog (raises 400/404 errors); by default
        the catalog as it is now."""
        catalog = catalog or self.catalog.snapshot()
        plan = plan_export(request, catalog.by_key, self.capabilities,
                           self.catalog.segment(request.tag_key))
        properties = [c.key for c in plan.columns]
        output = plan.output
        fields = [output.file_format.value, output.header_type.value,
                  output.compression.value, output.charset.value]
        key = _request_key(plan.selection.column.key, properties, fields)
        return Submit(request, catalog.version, token_id, plan.selection.column.key,
                      properties, *fields, key)

    def prepare_quickly(self, request: ExportRequest, token_id: int | None) -> Submit:
        """`prepare` against the catalog last read, without asking the store: for the
        writer's batches, which validate again if the catalog has changed since. A
        request it refuses is checked against the current catalog (a key added since)."""
        try:
            return self.prepare(request, token_id, self.catalog.last_snapshot())
        except TagportError:
            return self.prepare(request, token_id)

    def store(self, conn: Connection, submit: Submit) -> ExportJob:
        """In a transaction that serialises the token's submits: the existing unfinished
        identical job, or 429, or a new job."""
        existing = repository.unfinished_with_key(conn, submit.token_id, submit.request_key)
        if existing is not None:
            return existing
        self._check_queue(conn, submit.token_id)
        for _ in range(10):
            job = _new_job(submit)
            if repository.insert_if_new(conn, job):
                return job
        raise TagportError("could not draw a unique job id")

    def store_batch(self, conn: Connection, submits: list[Submit]) -> list[ExportJob | Exception]:
        """`store` for many submits in one transaction that holds the write lock, in a few
        statements: each submit sees the ones before it (dedupe, the per-token limit).
        A submit validated against an older catalog is validated again (400/404)."""
        catalog = self.catalog.snapshot(conn)
        queues = repository.unfinished_by_token(conn, {s.token_id for s in submits},
                                                {s.request_key for s in submits})
        answers: list[ExportJob | str | Exception] = []
        new: list[ExportJob] = []
        for submit in submits:
            if submit.catalog_version != catalog.version:
                try:
                    submit = self.prepare(submit.request, submit.token_id, catalog)
                except TagportError as exc:
                    answers.append(exc)
                    continue
            queue = queues[submit.token_id]
            if (same := queue.by_key.get(submit.request_key)) is not None:
                answers.append(same)
            elif submit.token_id is not None and queue.count >= self.max_queued_per_token:
                answers.append(self._too_many(queue.count))
            else:
                job = _new_job(submit)
                queue.add(job)
                new.append(job)
                answers.append(job)
        if not repository.insert_all_if_new(conn, new):  # an id or name was taken: redraw
            inserted = {id(job): self._insert_one(conn, job) for job in new}
            answers = [inserted.get(id(a), a) for a in answers]  # a duplicate: its job too
        return [_existing(conn, a) if isinstance(a, str) else a for a in answers]

    def _insert_one(self, conn: Connection, job: ExportJob) -> ExportJob | Exception:
        for _ in range(10):
            if repository.insert_if_new(conn, job):
                return job
            job = replace(job, id=naming.new_job_id(),
                          name=naming.new_job_name(job.created_at.astimezone()))
        return TagportError("could not draw a unique job id")

    def _check_queue(self, conn: Connection, token_id: int | None) -> None:
        if token_id is None:
            return
        waiting = repository.count_unfinished(conn, token_id)
        if waiting >= self.max_queued_per_token:
            raise self._too_many(waiting)

    def _too_many(self, waiting: int) -> TooManyRequests:
        return TooManyRequests(
            f"this token already has {waiting} unfinished jobs (the limit is "
            f"{self.max_queued_per_token}); retry when some have finished",
            code="TOO_MANY_JOBS",
        )

    def cancel(self, job_id: str, token_id: int | None = None) -> ExportJob:
        """Stop a job that has not finished: it ends in ERROR with code CANCELLED.

        A worker running it finds its next guarded stage change refused and removes
        what it wrote; its export stops at once in this process, and within a third of
        the lease in another (its next lease renewal).
        """
        job = self.get(job_id, token_id)
        if job.stage.is_final:
            raise Conflict(f"job {job_id!r} has already ended ({job.stage.value})",
                           code="JOB_FINISHED")
        with self.db.begin() as conn:
            moved = repository.cancel(conn, job_id)
        if not moved:  # it ended meanwhile
            raise Conflict(f"job {job_id!r} has already ended", code="JOB_FINISHED")
        self.runner.stop_local(job_id)
        return self.get(job_id)

    def sweep_expired(self, now: datetime | None = None) -> int:
        """Delete the files of jobs finished more than `result_ttl` ago; count them."""
        now = now or datetime.now(UTC)
        with self.db.connect() as conn:
            jobs = repository.finished_before(conn, now - self.result_ttl)
        for job in jobs:
            self.results.delete(job.name)
            with self.db.begin() as conn:
                repository.mark_expired(conn, job.id, now)
            log.info("job %s: result files expired and deleted", job.id)
        return len(jobs)

    def expires_at(self, job: ExportJob) -> datetime | None:
        return job.finished_at + self.result_ttl if job.finished_at else None

    def is_expired(self, job: ExportJob, now: datetime | None = None) -> bool:
        expires = self.expires_at(job)
        return job.expired_at is not None or (
            expires is not None and (now or datetime.now(UTC)) >= expires)

    def document(self, job: ExportJob, download_links: list[str] | None = None, *,
                 live_workers: int | None = None) -> dict[str, Any]:
        """The job-result document of `job` (exports.result), with its expiry, and for an
        unfinished job the live workers that take its kind when given (live_workers)."""
        return job_result(job, expires_at=self.expires_at(job), expired=self.is_expired(job),
                          download_links=download_links,
                          live_workers=None if job.stage.is_final else live_workers)

    def live_workers(self, kind: str) -> int:
        """How many live worker pools (the server's, `tagport worker`s) take jobs of
        `kind`, by their heartbeats; read at most once a second (a poll asks often)."""
        now = time.monotonic()
        with self._live_lock:
            if self._live is None or now - self._live[0] > LIVE_WORKERS_CACHE:
                with self.db.connect() as conn:
                    self._live = (now, repository.live_worker_kinds(conn))
            pools = self._live[1]
        return sum(1 for kinds in pools if kinds is None or kind in kinds)

    def get(self, job_id: str, token_id: int | None = None) -> ExportJob:
        """The job, if it exists and (when a token is given) belongs to that token."""
        with self.db.connect() as conn:
            job = repository.get(conn, job_id)
        if job is None or (token_id is not None and job.token_id != token_id):
            raise NotFound(f"job {job_id!r} does not exist", code="JOB_NOT_FOUND")
        return job

    def list(self, limit: int = 100) -> list[ExportJob]:
        with self.db.connect() as conn:
            return repository.list_jobs(conn, limit)

    def page(self, owner: int | None, limit: int, offset: int) -> JobPage:
        """The jobs of token `owner` (every job when None), newest first, with their files."""
        with self.db.connect() as conn:
            return repository.page(conn, owner, limit, offset)

    def file_for(self, path: str, token_id: int | None) -> tuple[ExportJob, Path | StoredObject]:
        """The finished job owning the file at API path `path`, and the file: on disk, or
        an object in the result store."""
        with self.db.connect() as conn:
            job = repository.by_file_path(conn, path)
        if job is None or (token_id is not None and job.token_id != token_id):
            raise NotFound("no such file", code="FILE_NOT_FOUND")
        if self.is_expired(job):
            raise Gone(f"the files of job {job.id!r} have expired and were deleted",
                       code="FILE_EXPIRED")
        file_name = path[len(naming.result_path(job.name, "")):]
        found = self.results.locate(job.name, job.attempts, file_name)
        if found is None:
            raise NotFound("the file of this job is no longer on disk", code="FILE_NOT_FOUND")
        return job, found



def _new_job(submit: Submit) -> ExportJob:
    now = datetime.now(UTC)
    return ExportJob(
        id=naming.new_job_id(), name=naming.new_job_name(now.astimezone()),
        token_id=submit.token_id, tag_key=submit.tag_key, properties=submit.properties,
        file_format=submit.file_format, header_type=submit.header_type,
        compression=submit.compression, charset=submit.charset, stage=JobStage.NONE,
        created_at=now, request_key=submit.request_key,
    )


def _existing(conn: Connection, job_id: str) -> ExportJob:
    job = repository.get(conn, job_id)
    assert job is not None  # read under the write lock that found it
    return job


def _request_key(tag_key: str, properties: list[str], output: list[str]) -> str:
    """What makes two requests identical: tag, properties in order, format, header,
    compression and charset."""
    text = json.dumps([tag_key, properties, *output], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
