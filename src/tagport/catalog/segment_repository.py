"""All SQL on segments."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tagport.catalog.segments import CreatedBy, Segment
from tagport.db import as_utc
from tagport.db import segments as t


def _segment(row: sa.Row) -> Segment:
    return Segment(
        key=row.key, project_id=row.project_id, name=row.name, description=row.description,
        scheduler=row.scheduler, created_by=CreatedBy(row.created_by),
        definition=row.definition, creator_id=row.creator_id,
        created_at=as_utc(row.created_at),  # type: ignore[arg-type]
        updater_id=row.updater_id, updated_at=as_utc(row.updated_at),  # type: ignore[arg-type]
    )


def by_key(conn: Connection, key: str) -> Segment | None:
    row = conn.execute(sa.select(t).where(t.c.key == key)).first()
    return _segment(row) if row else None


def of_project(conn: Connection, project_id: str, limit: int | None = None,
               offset: int = 0) -> list[Segment]:
    """Oldest first."""
    query = (sa.select(t).where(t.c.project_id == project_id)
             .order_by(t.c.created_at, t.c.key).offset(offset).limit(limit))
    return [_segment(r) for r in conn.execute(query)]


def count_of_project(conn: Connection, project_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(t).where(t.c.project_id == project_id)
    return conn.execute(query).scalar_one()


def every(conn: Connection) -> list[Segment]:
    return [_segment(r) for r in conn.execute(sa.select(t).order_by(t.c.created_at, t.c.key))]


def insert(conn: Connection, segment: Segment) -> None:
    conn.execute(t.insert().values(
        key=segment.key, project_id=segment.project_id, name=segment.name,
        description=segment.description, scheduler=segment.scheduler,
        created_by=segment.created_by.value, definition=segment.definition,
        creator_id=segment.creator_id, created_at=segment.created_at,
        updater_id=segment.updater_id, updated_at=segment.updated_at))


def update(conn: Connection, segment: Segment) -> None:
    conn.execute(t.update().where(t.c.key == segment.key).values(
        name=segment.name, description=segment.description, scheduler=segment.scheduler,
        created_by=segment.created_by.value, definition=segment.definition,
        updater_id=segment.updater_id, updated_at=segment.updated_at))


def delete(conn: Connection, key: str) -> None:
    conn.execute(t.delete().where(t.c.key == key))
