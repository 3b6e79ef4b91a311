"""An API token's record and the scopes a token can hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SCOPES = ("export", "admin")


@dataclass(frozen=True)
class Token:
    """A token's record. Scopes: `export` submits, polls and downloads its own jobs;
    `admin` does everything, other tokens' jobs included."""

    id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None
    scopes: frozenset[str] = frozenset({"export"})

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    @property
    def job_owner(self) -> int | None:
        """The owner to filter jobs by: this token, or None (all jobs) for an admin."""
        return None if self.is_admin else self.id
