"""All SQL on jobs. Every stage change is a guarded update: zero rows, no transition."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tagport.db import job_files
from tagport.db import jobs as t
from tagport.jobs.models import CLAIMED, UNFINISHED, ExportJob, JobStage, as_utc


def _job(row: sa.Row, files: tuple[str, ...] = ()) -> ExportJob:
    return ExportJob(
        id=row.id, name=row.name, token_id=row.token_id, tag_key=row.tag_key,
        properties=list(row.properties), file_format=row.file_format,
        header_type=row.header_type, stage=JobStage(row.stage),
        created_at=as_utc(row.created_at),  # type: ignore[arg-type]
        started_at=as_utc(row.started_at), finished_at=as_utc(row.finished_at),
        attempts=row.attempts, files=files, row_count=row.row_count,
        byte_count=row.byte_count, error_code=row.error_code, error_message=row.error_message,
        expired_at=as_utc(row.expired_at),
    )


def insert(conn: Connection, job: ExportJob) -> None:
    conn.execute(
        t.insert().values(
            id=job.id, name=job.name, token_id=job.token_id, tag_key=job.tag_key,
            properties=job.properties, file_format=job.file_format,
            header_type=job.header_type, stage=job.stage.value, created_at=job.created_at,
            updated_at=job.created_at, attempts=0, request_key=job.request_key,
        )
    )


def _files(conn: Connection, job_id: str) -> tuple[str, ...]:
    rows = conn.execute(
        sa.select(job_files.c.path).where(job_files.c.job_id == job_id)
        .order_by(job_files.c.position)
    )
    return tuple(rows.scalars())


def get(conn: Connection, job_id: str) -> ExportJob | None:
    row = conn.execute(sa.select(t).where(t.c.id == job_id)).first()
    if row is None:
        return None
    return _job(row, _files(conn, job_id) if row.stage == JobStage.FINISH.value else ())


def by_file_path(conn: Connection, path: str) -> ExportJob | None:
    """The finished job that owns the result file at API path `path`."""
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


def transition(
    conn: Connection, job_id: str, allowed: Iterable[JobStage], new: JobStage, **values: Any
) -> bool:
    """Move a job to `new` if it is in one of `allowed`; True when it moved."""
    result = conn.execute(
        t.update()
        .where(t.c.id == job_id, t.c.stage.in_([s.value for s in allowed]))
        .values(stage=new.value, updated_at=datetime.now(UTC), **values)
    )
    return result.rowcount == 1


def claim(conn: Connection, job_id: str, worker: str) -> bool:
    return transition(conn, job_id, [JobStage.NONE], JobStage.READY, claimed_by=worker,
                      attempts=t.c.attempts + 1)


def claim_next(conn: Connection, worker: str) -> str | None:
    """Claim the oldest waiting job for `worker` (NONE -> READY); its id, or None."""
    candidates = conn.execute(
        sa.select(t.c.id).where(t.c.stage == JobStage.NONE.value)
        .order_by(t.c.created_at, t.c.id).limit(5)
    ).scalars().all()
    for job_id in candidates:
        if claim(conn, job_id, worker):
            return job_id
    return None


def release_claimed(conn: Connection) -> int:
    """Hand every claimed, unfinished job back to the queue (after a crash)."""
    result = conn.execute(
        t.update().where(t.c.stage.in_([s.value for s in CLAIMED]))
        .values(stage=JobStage.NONE.value, claimed_by=None, updated_at=datetime.now(UTC))
    )
    return result.rowcount


# -- submitting: per-token limits and identical requests -----------------------------


def lock_token(conn: Connection, token_id: int | None) -> None:
    """Serialise submits of one token until the transaction ends (a row lock on
    PostgreSQL, the write lock on SQLite), so its limit and de-duplication hold."""
    from tagport.db import tokens

    if token_id is not None:
        conn.execute(tokens.update().where(tokens.c.id == token_id).values(id=tokens.c.id))


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
                           t.c.expired_at.is_(None))
    )
    return [_job(r) for r in rows]


def mark_expired(conn: Connection, job_id: str, when: datetime) -> None:
    conn.execute(t.update().where(t.c.id == job_id, t.c.expired_at.is_(None))
                 .values(expired_at=when))
