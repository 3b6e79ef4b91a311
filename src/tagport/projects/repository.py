"""All SQL on projects."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tagport.db import as_utc
from tagport.db import projects as p
from tagport.projects.models import Project


def _project(row: sa.Row) -> Project:
    return Project(row.id, row.name, as_utc(row.created_at))  # type: ignore[arg-type]


def list_projects(conn: Connection, limit: int | None = None, offset: int = 0) -> list[Project]:
    """Oldest first (the default project leads)."""
    query = sa.select(p).order_by(p.c.created_at, p.c.id).offset(offset).limit(limit)
    return [_project(r) for r in conn.execute(query)]


def count(conn: Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(p)).scalar_one()


def by_id(conn: Connection, project_id: str) -> Project | None:
    row = conn.execute(sa.select(p).where(p.c.id == project_id)).first()
    return _project(row) if row else None


def name_taken(conn: Connection, name: str) -> bool:
    return conn.execute(sa.select(p.c.id).where(p.c.name == name)).first() is not None


def insert(conn: Connection, project_id: str, name: str, created_at: datetime) -> None:
    conn.execute(p.insert().values(id=project_id, name=name, created_at=created_at))
