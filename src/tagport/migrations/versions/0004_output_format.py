"""jobs: the output's compression and charset (spec section 9)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("compression", sa.String(8), nullable=False,
                                   server_default="none"))
        batch.add_column(sa.Column("charset", sa.String(16), nullable=False,
                                   server_default="UTF-8"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("charset")
        batch.drop_column("compression")
