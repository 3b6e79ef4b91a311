"""A page of export jobs, newest first, for `GET /v1/api/jobs` and the console.

Kept apart from `repository.py` (the queue's guarded updates) because it only reads:
one query for the page, one for its count, one for the finished jobs' files.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as DbEngine

from tagport.db import job_files
from tagport.db import jobs as t
from tagport.jobs.models import ExportJob, JobStage
from tagport.jobs.repository import _job as job_from_row


@dataclass(frozen=True)
class JobPage:
    jobs: list[ExportJob]
    total: int


def list_jobs_page(db: DbEngine, owner: int | None, limit: int, offset: int) -> JobPage:
    """The jobs of token `owner` (every job when None), newest first, with their files."""
    where = [] if owner is None else [t.c.token_id == owner]
    with db.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(t).where(*where)).scalar()
        rows = conn.execute(
            sa.select(t).where(*where)
            .order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit).offset(offset)
        ).all()
        files = _files_of(conn, [r.id for r in rows if r.stage == JobStage.FINISH.value])
    return JobPage([job_from_row(r, files.get(r.id, ())) for r in rows], int(total or 0))


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
