"""Each tag's coverage, kept in the metadata store so listing tags never scans users.

The engine measures it after every load that commits (profiles.service); a measurement
only replaces an older one, so two loads finishing close together cannot leave the
earlier (staler) count behind.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from tagport.catalog import coverage_repository as repository
from tagport.catalog.models import StoredCoverage, TagCoverage


class CoverageStore:
    def __init__(self, db: Engine) -> None:
        self.db = db

    def save(self, coverage: TagCoverage, measured_at: datetime) -> None:
        """Record a measurement taken at `measured_at` (when its query started)."""
        with self.db.begin() as conn:
            known = repository.measured_at(conn)
            for key, covered in coverage.covered.items():
                stored = StoredCoverage(key, covered, coverage.all_users, measured_at)
                if key not in known:
                    repository.insert(conn, stored)
                elif known[key] < measured_at:
                    repository.update(conn, stored)

    def all(self) -> dict[str, StoredCoverage]:
        with self.db.connect() as conn:
            return repository.all_coverage(conn)

    def forget(self, key: str) -> None:
        """Drop a key's measurement (a deleted segment's)."""
        with self.db.begin() as conn:
            repository.delete(conn, key)
