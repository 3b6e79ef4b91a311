"""A project's record."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_ID_ALPHABET = string.ascii_letters + string.digits


def new_project_id() -> str:
    """8 letters/digits, like a job id (`kqQeWeGr`)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    created_at: datetime

    @property
    def line(self) -> str:
        """`id name`, as `tagport project list` prints it."""
        return f"{self.id} {self.name}"

    def document(self) -> dict[str, Any]:
        """The project in `GET /v1/api/projects`."""
        return {"id": self.id, "name": self.name,
                "createdAt": self.created_at.isoformat(timespec="milliseconds")}
