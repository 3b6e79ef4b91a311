"""Projects: list, create, look one up. The default project comes with the store
(migration 0006); users, identities, attributes and tags are shared by all projects."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tagport.errors import BadRequest, Conflict, NotFound
from tagport.projects import repository
from tagport.projects.models import Project, new_project_id

MAX_NAME_CHARS = 200


class ProjectService:
    def __init__(self, db: Engine) -> None:
        self.db = db

    def list(self, limit: int | None = None, offset: int = 0) -> list[Project]:
        """The projects, oldest first."""
        with self.db.connect() as conn:
            return repository.list_projects(conn, limit, offset)

    def count(self) -> int:
        with self.db.connect() as conn:
            return repository.count(conn)

    def get(self, project_id: str) -> Project:
        """The project, or 404 `PROJECT_NOT_FOUND`."""
        with self.db.connect() as conn:
            project = repository.by_id(conn, project_id)
        if project is None:
            raise NotFound(f"project {project_id!r} does not exist", code="PROJECT_NOT_FOUND")
        return project

    def create(self, name: str) -> Project:
        """A new project; its name must be non-empty and unused."""
        name = name.strip()
        if not name:
            raise BadRequest("a project needs a name", code="INVALID_PROJECT_NAME")
        if len(name) > MAX_NAME_CHARS:
            raise BadRequest(f"a project name has at most {MAX_NAME_CHARS} characters",
                             code="INVALID_PROJECT_NAME")
        project = Project(new_project_id(), name, datetime.now(UTC))
        try:
            with self.db.begin() as conn:
                if repository.name_taken(conn, name):
                    raise _taken(name)
                repository.insert(conn, project.id, project.name, project.created_at)
        except sa.exc.IntegrityError:  # created by another process meanwhile
            raise _taken(name) from None
        return project


def _taken(name: str) -> Conflict:
    return Conflict(f"a project named {name!r} already exists", code="PROJECT_EXISTS")
