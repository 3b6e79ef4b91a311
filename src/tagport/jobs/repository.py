"""All SQL on jobs. Every stage change is a guarded update: zero rows, no transition."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tagport.db import as_utc, job_files, workers
from tagport.db import jobs as t
from tagport.jobs.models import CLAIMED, EXPORT, UNFINISHED, ExportJob, JobPage, JobStage


def _job(row: sa.Row, files: tuple[str, ...] = ()) -> ExportJob:
    return ExportJob(
        id=row.id, name=row.name, token_id=row.token_id, tag_key=row.tag_key,
        properties=list(row.properties), file_format=row.file_format,
        header_type=row.header_type, stage=JobStage(row.stage),
        created_at=as_utc(row.created_at),  # type: ignore[arg-type]
        started_at=as_utc(row.started_at), finished_at=as_utc(row.finished_at),
        attempts=row.attempts, files=files, row_count=row.row_count,
        byte_count=row.byte_count, error_code=row.error_code, error_message=row.error_message,
        expired_at=as_utc(row.expired_at), claimed_by=row.claimed_by,
        lease_until=as_utc(row.lease_until), compression=row.compression,
        charset=row.charset, kind=row.kind, as_of=row.as_of,
    )


def _row(job: ExportJob) -> dict[str, Any]:
    return dict(
        id=job.id, name=job.name, token_id=job.token_id, tag_key=job.tag_key,
        properties=job.properties, file_format=job.file_format,
        header_type=job.header_type, compression=job.compression, charset=job.charset,
        stage=job.stage.value, created_at=job.created_at, updated_at=job.created_at,
        attempts=0, request_key=job.request_key, cancel_requested=False, kind=job.kind,
        as_of=job.as_of,
    )


def insert(conn: Connection, job: ExportJob) -> None:
    conn.execute(t.insert().values(**_row(job)))


def insert_if_new(conn: Connection, job: ExportJob) -> bool:
    """Insert `job` unless its id or name is taken (False). In a savepoint on PostgreSQL,
    where a failed statement would abort the transaction; SQLite undoes the statement."""
    try:
        if conn.dialect.name == "postgresql":
            with conn.begin_nested():
                insert(conn, job)
        else:
            insert(conn, job)
    except IntegrityError:
        return False
    return True


def insert_all_if_new(conn: Connection, jobs: list[ExportJob]) -> bool:
    """Insert all of `jobs` in one statement, or none when an id or name is taken (False;
    SQLite undoes the statement; for SQLite's batches only)."""
    if not jobs:
        return True
    try:
        conn.execute(t.insert(), [_row(job) for job in jobs])
    except IntegrityError:
        return False
    return True


def _files(conn: Connection, job_id: str) -> tuple[str, ...]:
    rows = conn.execute(
        sa.select(job_files.c.path).where(job_files.c.job_id == job_id)
        .order_by(job_files.c.position)
    )
    return tuple(rows.scalars())


# One statement built once (a poll runs it hundreds of times a second: building and
# hashing a new select each time cost as much as running it), files joined in.
_JOB_WITH_FILES = (
    sa.select(t, job_files.c.path.label("file_path"))
    .outerjoin(job_files, job_files.c.job_id == t.c.id)
    .where(t.c.id == sa.bindparam("job_id"))
    .order_by(job_files.c.position)
)


def get(conn: Connection, job_id: str) -> ExportJob | None:
    if "\x00" in job_id:  # no key holds one, and PostgreSQL refuses them in text
        return None
    rows = conn.execute(_JOB_WITH_FILES, {"job_id": job_id}).all()
    if not rows:
        return None
    finished = rows[0].stage == JobStage.FINISH.value
    files = tuple(r.file_path for r in rows if r.file_path is not None) if finished else ()
    return _job(rows[0], files)


def by_file_path(conn: Connection, path: str) -> ExportJob | None:
    """The finished job that owns the result file at API path `path`."""
    if "\x00" in path:
        return None
    row = conn.execute(
        sa.select(t).join(job_files, job_files.c.job_id == t.c.id)
        .where(job_files.c.path == path, t.c.stage == JobStage.FINISH.value)
    ).first()
    return _job(row, _files(conn, row.id)) if row else None


def add_files(conn: Connection, job_id: str, files: list[tuple[str, int]]) -> None:
    """Record a job's result files (API path, size), in order."""
    conn.execute(job_files.insert(), [
        {"job_id": job_id, "position": n, "path": path, "byte_count": size}
        for n, (path, size) in enumerate(files)
    ])


def list_jobs(conn: Connection, limit: int = 100) -> list[ExportJob]:
    rows = conn.execute(sa.select(t).order_by(t.c.created_at.desc()).limit(limit))
    return [_job(r) for r in rows]


def page(conn: Connection, owner: int | None, limit: int, offset: int) -> JobPage:
    """The jobs of token `owner` (every job when None), newest first, with their files:
    one query for the page, one for its count, one for the finished jobs' files."""
    where = [] if owner is None else [t.c.token_id == owner]
    total = conn.execute(sa.select(sa.func.count()).select_from(t).where(*where)).scalar()
    rows = conn.execute(
        sa.select(t).where(*where)
        .order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit).offset(offset)
    ).all()
    files = _files_of(conn, [r.id for r in rows if r.stage == JobStage.FINISH.value])
    return JobPage([_job(r, files.get(r.id, ())) for r in rows], int(total or 0))


def _files_of(conn: Connection, job_ids: list[str]) -> dict[str, tuple[str, ...]]:
    if not job_ids:
        return {}
    rows = conn.execute(
        sa.select(job_files.c.job_id, job_files.c.path)
        .where(job_files.c.job_id.in_(job_ids))
        .order_by(job_files.c.job_id, job_files.c.position)
    )
    found: dict[str, list[str]] = {}
    for job_id, path in rows:
        found.setdefault(job_id, []).append(path)
    return {job_id: tuple(paths) for job_id, paths in found.items()}


# -- claims and leases -------------------------------------------------------------------
#
# A claim is (claimed_by, lease_until). A job is claimable when it waits (NONE) or is
# claimed (READY, RUNNING, DATA_READY), and its lease_until is NULL or past: for a
# claimed job that means its worker stopped renewing (it died or hangs); for a waiting
# job lease_until is the earliest time of its retry after a failed attempt.
# On PostgreSQL the clock is the database's, so workers on machines whose clocks
# disagree still agree on when a lease lapses.


def _now(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return sa.func.now()
    return datetime.now(UTC)


def _after(conn: Connection, seconds: float) -> Any:
    if conn.dialect.name == "postgresql":
        return sa.func.now() + sa.literal(timedelta(seconds=seconds), sa.Interval())
    return datetime.now(UTC) + timedelta(seconds=seconds)


def _lease_free(conn: Connection) -> sa.ColumnElement[bool]:
    return sa.or_(t.c.lease_until.is_(None), t.c.lease_until < _now(conn))


def _claimable(conn: Connection) -> sa.ColumnElement[bool]:
    return sa.and_(t.c.stage.in_([s.value for s in UNFINISHED]), _lease_free(conn))


def _claimed_by(job_id: str, worker: str) -> list[sa.ColumnElement[bool]]:
    return [t.c.id == job_id, t.c.claimed_by == worker,
            t.c.stage.in_([s.value for s in CLAIMED])]


# -- the moves: every stage change a job can make, each with the stages it may start from
#
# `_move` is the one guarded update: `UPDATE jobs SET stage=:to ... WHERE id=:id AND
# stage IN (:from) [AND claimed_by=:worker] [AND ...]`; zero rows means the move was
# refused (the job is in another stage, or no longer the worker's). docs/design.md draws
# the same table.

MOVES: dict[str, tuple[tuple[JobStage, ...], JobStage]] = {
    "claim": (UNFINISHED, JobStage.READY),  # and its lease is NULL or past
    "start": ((JobStage.READY,), JobStage.RUNNING),
    "rows_written": ((JobStage.RUNNING,), JobStage.DATA_READY),
    "finish": ((JobStage.DATA_READY,), JobStage.FINISH),
    "fail": (CLAIMED, JobStage.ERROR),
    "retry_later": (CLAIMED, JobStage.NONE),
    "hand_back": (CLAIMED, JobStage.NONE),
    "give_up": (UNFINISHED, JobStage.ERROR),  # and its lease is NULL or past
    "cancel": (UNFINISHED, JobStage.ERROR),
}


def _move(conn: Connection, move: str, job_id: str, *, worker: str | None = None,
          guard: Iterable[sa.ColumnElement[bool]] = (), **values: Any) -> bool:
    """Make `move` on the job if it is in one of the move's from-stages (and, with
    `worker`, still claimed by that worker, and `guard` holds); True when it moved."""
    allowed, to = MOVES[move]
    where = [t.c.id == job_id, t.c.stage.in_([s.value for s in allowed]), *guard]
    if worker is not None:
        where.append(t.c.claimed_by == worker)
    result = conn.execute(
        t.update().where(*where).values(stage=to.value, updated_at=datetime.now(UTC), **values)
    )
    return result.rowcount == 1


def claim(conn: Connection, job_id: str, worker: str, lease_seconds: float, *,
          attempts: int | None = None) -> bool:
    """Take a claimable job for `worker`: READY, a lease, one more attempt. With
    `attempts`, only if the job has made exactly that many (the row read is current)."""
    guard = [_lease_free(conn)]
    if attempts is not None:
        guard.append(t.c.attempts == attempts)
    return _move(conn, "claim", job_id, guard=guard, claimed_by=worker,
                 lease_until=_after(conn, lease_seconds), attempts=t.c.attempts + 1)


def start(conn: Connection, job_id: str, worker: str) -> bool:
    """The worker begins the export: READY -> RUNNING."""
    return _move(conn, "start", job_id, worker=worker, started_at=datetime.now(UTC))


def rows_written(conn: Connection, job_id: str, worker: str, row_count: int) -> bool:
    """The engine wrote the rows: RUNNING -> DATA_READY."""
    return _move(conn, "rows_written", job_id, worker=worker, row_count=row_count)


def finish(conn: Connection, job_id: str, worker: str, byte_count: int) -> bool:
    """The files are published: DATA_READY -> FINISH, the claim and any earlier
    attempt's error cleared. Files are recorded in the same transaction (add_files)."""
    return _move(conn, "finish", job_id, worker=worker, byte_count=byte_count,
                 finished_at=datetime.now(UTC), lease_until=None, error_code=None,
                 error_message=None)


def fail(conn: Connection, job_id: str, worker: str, code: str, message: str) -> bool:
    """The worker's attempt failed for good: a claimed stage -> ERROR."""
    return _move(conn, "fail", job_id, worker=worker, error_code=code, error_message=message,
                 finished_at=datetime.now(UTC), lease_until=None)


def cancel(conn: Connection, job_id: str) -> bool:
    """A client stops a job that has not finished, whoever holds it: -> ERROR CANCELLED."""
    return _move(conn, "cancel", job_id, cancel_requested=True, error_code="CANCELLED",
                 error_message="cancelled by the client", finished_at=datetime.now(UTC))


def claim_next(conn: Connection, worker: str, lease_seconds: float,
               max_attempts: int, kinds: Iterable[str] | None = None) -> str | None:
    """Claim the oldest claimable job that has attempts left, of one of `kinds` (default
    any); its id, or None.

    PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED`, so workers never queue behind each
    other's candidate; SQLite has one writer, and the guarded UPDATE decides.
    """
    query = (
        sa.select(t.c.id, t.c.attempts)
        .where(_claimable(conn), t.c.attempts < max_attempts)
        .order_by(t.c.created_at, t.c.id)
    )
    if kinds is not None:
        query = query.where(t.c.kind.in_(list(kinds)))
    if conn.dialect.name == "postgresql":
        query = query.limit(1).with_for_update(skip_locked=True)
    else:
        query = query.limit(5)
    for job_id, attempts in conn.execute(query).all():
        if claim(conn, job_id, worker, lease_seconds, attempts=attempts):
            return str(job_id)
    return None


def exhausted(conn: Connection, max_attempts: int) -> list[ExportJob]:
    """Claimable jobs with no attempt left: their last run was interrupted."""
    query = sa.select(t).where(_claimable(conn), t.c.attempts >= max_attempts)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [_job(row) for row in conn.execute(query)]


def give_up(conn: Connection, job: ExportJob, code: str, message: str) -> bool:
    """End an exhausted job in ERROR, unless someone claimed it since it was read."""
    return _move(conn, "give_up", job.id,
                 guard=[_lease_free(conn), t.c.attempts == job.attempts], error_code=code,
                 error_message=message, lease_until=None, finished_at=datetime.now(UTC))


def renew(conn: Connection, job_id: str, worker: str, lease_seconds: float) -> bool:
    """Extend `worker`'s lease on a job; False when the job is no longer its own."""
    result = conn.execute(t.update().where(*_claimed_by(job_id, worker)).values(
        lease_until=_after(conn, lease_seconds)))
    return result.rowcount == 1


def hand_back(conn: Connection, job_id: str, worker: str, *, refund: bool = False) -> bool:
    """Put `worker`'s job back in the queue (NONE, no claim); with `refund`, the attempt
    does not count (it never started)."""
    values: dict[str, Any] = {"claimed_by": None, "lease_until": None}
    if refund:
        values["attempts"] = t.c.attempts - 1
    return _move(conn, "hand_back", job_id, worker=worker, **values)


def retry_later(conn: Connection, job_id: str, worker: str, delay: float,
                code: str, message: str) -> bool:
    """After a failed attempt: back to NONE, claimable again in `delay` seconds; the
    cause is kept as the job's last error."""
    return _move(conn, "retry_later", job_id, worker=worker, claimed_by=None,
                 lease_until=_after(conn, delay), error_code=code, error_message=message)


def claims(conn: Connection) -> list[tuple[str, str | None]]:
    """(job id, worker) of every claimed, unfinished job."""
    rows = conn.execute(sa.select(t.c.id, t.c.claimed_by)
                        .where(t.c.stage.in_([s.value for s in CLAIMED])))
    return [(row.id, row.claimed_by) for row in rows]


# -- workers' heartbeats -------------------------------------------------------------


def beat(conn: Connection, worker: str, kinds: Iterable[str] | None, seconds: float) -> None:
    """Say that pool `worker` (taking `kinds`, default any) is alive for `seconds` more;
    rows of pools dead for a day go."""
    until = _after(conn, seconds)
    if not conn.execute(workers.update().where(workers.c.id == worker)
                        .values(alive_until=until)).rowcount:
        conn.execute(workers.insert().values(
            id=worker, kinds=None if kinds is None else ",".join(sorted(kinds)),
            started_at=datetime.now(UTC), alive_until=until))
        conn.execute(workers.delete().where(workers.c.alive_until < _after(conn, -86400)))


def forget_worker(conn: Connection, worker: str) -> None:
    """Pool `worker` stopped."""
    conn.execute(workers.delete().where(workers.c.id == worker))


def live_worker_kinds(conn: Connection) -> list[frozenset[str] | None]:
    """The kinds each live pool takes (None: any)."""
    rows = conn.execute(sa.select(workers.c.kinds).where(workers.c.alive_until > _now(conn)))
    return [None if kinds is None else frozenset(kinds.split(",")) for (kinds,) in rows]


# -- submitting: per-token limits and identical requests -----------------------------


def lock_token(conn: Connection, token_id: int | None) -> None:
    """Serialise submits of one token until the transaction ends (a row lock on
    PostgreSQL, the write lock on SQLite), so its limit and de-duplication hold."""
    from tagport.db import tokens

    if token_id is not None:
        conn.execute(tokens.update().where(tokens.c.id == token_id).values(id=tokens.c.id))


@dataclass
class TokenQueue:
    """One token's unfinished jobs, as a batch of submits sees them: how many, and the
    oldest job id (or new job) per request key."""

    count: int = 0
    by_key: dict[str, str | ExportJob] = field(default_factory=dict)

    def add(self, job: ExportJob) -> None:
        self.count += 1
        self.by_key.setdefault(job.request_key or "", job)


def unfinished_by_token(conn: Connection, token_ids: set[int | None],
                        request_keys: set[str]) -> dict[int | None, TokenQueue]:
    """How many unfinished jobs each of these tokens has (None: jobs without a token),
    and the oldest with each of `request_keys`: two statements whatever the numbers."""
    queues: dict[int | None, TokenQueue] = {token_id: TokenQueue() for token_id in token_ids}
    ids = [i for i in token_ids if i is not None]
    owner = t.c.token_id.in_(ids)
    if None in token_ids:
        owner = sa.or_(owner, t.c.token_id.is_(None))
    unfinished = t.c.stage.in_([s.value for s in UNFINISHED])
    counts = conn.execute(sa.select(t.c.token_id, sa.func.count())
                          .where(owner, unfinished).group_by(t.c.token_id))
    for token_id, count in counts:
        queues[token_id].count = count
    same = conn.execute(
        sa.select(t.c.token_id, t.c.request_key, t.c.id)
        .where(owner, unfinished, t.c.request_key.in_(sorted(request_keys)))
        .order_by(t.c.created_at)
    )
    for token_id, request_key, job_id in same:
        queues[token_id].by_key.setdefault(request_key, job_id)
    return queues


def count_unfinished(conn: Connection, token_id: int) -> int:
    return conn.execute(
        sa.select(sa.func.count()).select_from(t)
        .where(t.c.token_id == token_id, t.c.stage.in_([s.value for s in UNFINISHED]))
    ).scalar_one()


def unfinished_with_key(conn: Connection, token_id: int | None, key: str) -> ExportJob | None:
    owner = t.c.token_id.is_(None) if token_id is None else t.c.token_id == token_id
    row = conn.execute(
        sa.select(t).where(owner, t.c.request_key == key,
                           t.c.stage.in_([s.value for s in UNFINISHED]))
        .order_by(t.c.created_at).limit(1)
    ).first()
    return _job(row) if row else None


# -- retention ---------------------------------------------------------------------------


def finished_before(conn: Connection, cutoff: datetime) -> list[ExportJob]:
    """Finished jobs older than `cutoff` whose files have not been swept yet."""
    rows = conn.execute(
        sa.select(t).where(t.c.stage == JobStage.FINISH.value, t.c.finished_at < cutoff,
                           t.c.expired_at.is_(None), t.c.kind == EXPORT)
    )
    return [_job(r) for r in rows]


def mark_expired(conn: Connection, job_id: str, when: datetime) -> None:
    conn.execute(t.update().where(t.c.id == job_id, t.c.expired_at.is_(None))
                 .values(expired_at=when))


def unfinished_of_kind(conn: Connection, kind: str) -> list[ExportJob]:
    """The unfinished jobs of `kind` (e.g. the computations queued or running)."""
    rows = conn.execute(sa.select(t).where(t.c.kind == kind,
                                           t.c.stage.in_([s.value for s in UNFINISHED]))
                        .order_by(t.c.created_at)).all()
    return [_job(row) for row in rows]


COMPUTE_LOCK = 0x7461_6763  # "tagc": a PostgreSQL advisory lock id


def lock_kind(conn: Connection) -> None:
    """Serialise the submits of non-export jobs until the transaction ends (an advisory
    lock on PostgreSQL; on SQLite a write, which takes the database's write lock), so
    that "one computation of a tag at a time" holds across processes."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": COMPUTE_LOCK})
    else:
        conn.execute(t.update().where(sa.false()).values(id=t.c.id))
