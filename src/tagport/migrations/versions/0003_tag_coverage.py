"""tag coverage: users covered by each tag, measured after every load

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tag_coverage",
        sa.Column("tag_key", sa.String(200), primary_key=True),
        sa.Column("covered_users", sa.BigInteger, nullable=False),
        sa.Column("all_users", sa.BigInteger, nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tag_coverage")
