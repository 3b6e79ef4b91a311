"""The operator's SQL: the summary of the jobs table for `/metrics`, in one query per
scrape, and the check that the metadata store answers (`/readyz`).

Export metrics are read from the table rather than counted in memory, so they are true
for every process that runs jobs (the server's workers, `tagport export`, separate
workers) and survive restarts.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tagport.db import jobs as t
from tagport.jobs.models import JobStage

# seconds; exports run from well under a second to an hour
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
                    1800.0, 3600.0)


@dataclass(frozen=True)
class JobStats:
    by_stage: dict[str, int]
    errors_by_code: dict[str, int]
    duration_buckets: list[int]  # cumulative counts, one per DURATION_BUCKETS entry
    duration_count: int
    duration_sum: float
    rows: int
    bytes: int


def _seconds(conn: Connection) -> sa.ColumnElement[float]:
    """finished_at - started_at in seconds, in the metadata store's own dialect."""
    if conn.dialect.name == "sqlite":
        return (sa.func.julianday(t.c.finished_at) - sa.func.julianday(t.c.started_at)) * 86400.0
    return sa.extract("epoch", t.c.finished_at - t.c.started_at)


def job_stats(conn: Connection) -> JobStats:
    by_stage = {s.value: 0 for s in JobStage}
    by_stage.update(dict(conn.execute(  # type: ignore[arg-type]
        sa.select(t.c.stage, sa.func.count()).group_by(t.c.stage)).all()))
    errors = dict(conn.execute(
        sa.select(sa.func.coalesce(t.c.error_code, "UNKNOWN"), sa.func.count())
        .where(t.c.stage == JobStage.ERROR.value).group_by(t.c.error_code)).all())
    finished = t.c.stage == JobStage.FINISH.value
    seconds = _seconds(conn)
    timed = sa.and_(finished, t.c.started_at.is_not(None), t.c.finished_at.is_not(None))
    row = conn.execute(sa.select(
        *[sa.func.sum(sa.case((sa.and_(timed, seconds <= b), 1), else_=0))
          for b in DURATION_BUCKETS],
        sa.func.sum(sa.case((timed, 1), else_=0)),
        sa.func.sum(sa.case((timed, seconds), else_=0.0)),
        sa.func.sum(sa.case((finished, t.c.row_count), else_=0)),
        sa.func.sum(sa.case((finished, t.c.byte_count), else_=0)),
    )).one()
    n = len(DURATION_BUCKETS)
    return JobStats(
        by_stage=by_stage, errors_by_code=errors,  # type: ignore[arg-type]
        duration_buckets=[int(v or 0) for v in row[:n]], duration_count=int(row[n] or 0),
        duration_sum=float(row[n + 1] or 0.0), rows=int(row[n + 2] or 0),
        bytes=int(row[n + 3] or 0),
    )


def ping(conn: Connection) -> None:
    """A statement that any answering metadata store runs."""
    conn.execute(sa.text("SELECT 1"))
