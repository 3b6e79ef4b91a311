"""projects, and the default project every store starts with

Revision ID: 0006
Revises: 0005
"""

import secrets
import string
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DEFAULT_PROJECT_NAME = "默认项目"
_ID_ALPHABET = string.ascii_letters + string.digits


def upgrade() -> None:
    projects = op.create_table(
        "projects",
        sa.Column("id", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # here, not at each start: the migration runs once per store (on PostgreSQL under
    # the advisory lock), so processes starting together never make two defaults
    op.bulk_insert(projects, [{
        "id": "".join(secrets.choice(_ID_ALPHABET) for _ in range(8)),
        "name": DEFAULT_PROJECT_NAME,
        "created_at": datetime.now(UTC),
    }])


def downgrade() -> None:
    op.drop_table("projects")
