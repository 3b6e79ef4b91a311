"""segments (spec section 8): saved groups of users, one project each

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("project_id", sa.String(8), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("scheduler", sa.String(8), nullable=False),
        sa.Column("created_by", sa.String(16), nullable=False),
        sa.Column("definition", sa.JSON),
        sa.Column("creator_id", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updater_id", sa.Integer),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("segments_by_project", "segments", ["project_id", "created_at"])


def downgrade() -> None:
    op.drop_index("segments_by_project", "segments")
    op.drop_table("segments")
