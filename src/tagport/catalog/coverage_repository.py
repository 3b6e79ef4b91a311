"""All SQL on tag coverage (the `tag_coverage` table)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tagport.catalog.models import StoredCoverage
from tagport.db import as_utc
from tagport.db import tag_coverage as t


def measured_at(conn: Connection) -> dict[str, datetime]:
    """When each tag's stored coverage was measured."""
    return {key: as_utc(at) for key, at in  # type: ignore[misc]
            conn.execute(sa.select(t.c.tag_key, t.c.measured_at))}


def insert(conn: Connection, coverage: StoredCoverage) -> None:
    conn.execute(t.insert().values(tag_key=coverage.tag_key, **_values(coverage)))


def update(conn: Connection, coverage: StoredCoverage) -> None:
    conn.execute(t.update().where(t.c.tag_key == coverage.tag_key).values(**_values(coverage)))


def _values(coverage: StoredCoverage) -> dict[str, object]:
    return {"covered_users": coverage.covered_users, "all_users": coverage.all_users,
            "measured_at": coverage.measured_at}


def all_coverage(conn: Connection) -> dict[str, StoredCoverage]:
    return {
        r.tag_key: StoredCoverage(r.tag_key, r.covered_users, r.all_users,
                                  as_utc(r.measured_at))  # type: ignore[arg-type]
        for r in conn.execute(sa.select(t))
    }


def delete(conn: Connection, key: str) -> None:
    conn.execute(t.delete().where(t.c.tag_key == key))
