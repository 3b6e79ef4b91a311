"""All SQL on computed tags' detectors (`tag_computes`) and on scheduled runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tagport.db import as_utc, schedule_runs, tag_computes


@dataclass(frozen=True)
class ComputeState:
    """A computed tag's last computation that ended: FINISH or ERROR."""

    tag_key: str
    stage: str
    job_id: str | None
    as_of: date | None
    finished_at: datetime | None
    covered_users: int | None
    error_code: str | None = None
    error_message: str | None = None


def save_state(conn: Connection, state: ComputeState) -> None:
    values = dict(stage=state.stage, job_id=state.job_id, as_of=state.as_of,
                  finished_at=state.finished_at, covered_users=state.covered_users,
                  error_code=state.error_code, error_message=state.error_message)
    updated = conn.execute(tag_computes.update()
                           .where(tag_computes.c.tag_key == state.tag_key).values(**values))
    if updated.rowcount == 0:
        conn.execute(tag_computes.insert().values(tag_key=state.tag_key, **values))


def all_states(conn: Connection) -> dict[str, ComputeState]:
    rows = conn.execute(sa.select(tag_computes)).all()
    return {r.tag_key: ComputeState(r.tag_key, r.stage, r.job_id, r.as_of,
                                    as_utc(r.finished_at), r.covered_users, r.error_code,
                                    r.error_message) for r in rows}


def delete_state(conn: Connection, key: str) -> None:
    conn.execute(tag_computes.delete().where(tag_computes.c.tag_key == key))


def claim_run(conn: Connection, name: str, day: date, claimed_by: str) -> bool:
    """Record the run of schedule `name` for `day`; False when a process already did
    (the primary key makes it once across processes). In a savepoint on PostgreSQL."""
    values = dict(name=name, day=day, claimed_by=claimed_by, created_at=datetime.now(UTC))
    try:
        if conn.dialect.name == "postgresql":
            with conn.begin_nested():
                conn.execute(schedule_runs.insert().values(**values))
        else:
            conn.execute(schedule_runs.insert().values(**values))
    except IntegrityError:
        return False
    return True


def last_run(conn: Connection, name: str) -> date | None:
    return conn.execute(sa.select(sa.func.max(schedule_runs.c.day))
                        .where(schedule_runs.c.name == name)).scalar()
