"""Each tag's coverage, kept in the metadata store so listing tags never scans users.

The engine measures it after every load that commits (profiles.service); a measurement
only replaces an older one, so two loads finishing close together cannot leave the
earlier (staler) count behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tagport.db import tag_coverage as t
from tagport.engines.base import TagCoverage
from tagport.jobs.models import as_utc


@dataclass(frozen=True)
class StoredCoverage:
    tag_key: str
    covered_users: int
    all_users: int
    measured_at: datetime

    @property
    def ratio(self) -> float:
        """The share of all users the tag covers (0 when there are no users)."""
        return self.covered_users / self.all_users if self.all_users else 0.0


class CoverageStore:
    def __init__(self, db: Engine) -> None:
        self.db = db

    def save(self, coverage: TagCoverage, measured_at: datetime) -> None:
        """Record a measurement taken at `measured_at` (when its query started)."""
        with self.db.begin() as conn:
            known = {key: as_utc(at) for key, at in conn.execute(
                sa.select(t.c.tag_key, t.c.measured_at))}
            for key, covered in coverage.covered.items():
                values = {"covered_users": covered, "all_users": coverage.all_users,
                          "measured_at": measured_at}
                if key not in known:
                    conn.execute(t.insert().values(tag_key=key, **values))
                elif known[key] < measured_at:  # type: ignore[operator]
                    conn.execute(t.update().where(t.c.tag_key == key).values(**values))

    def all(self) -> dict[str, StoredCoverage]:
        with self.db.connect() as conn:
            rows = conn.execute(sa.select(t)).all()
        return {
            r.tag_key: StoredCoverage(r.tag_key, r.covered_users, r.all_users,
                                      as_utc(r.measured_at))  # type: ignore[arg-type]
            for r in rows
        }
