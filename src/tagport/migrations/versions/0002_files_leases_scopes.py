"""job files (several per job), leases, request keys, expiry, token scopes

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_files",
        sa.Column("job_id", sa.String(8), sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("path", sa.String(1000), nullable=False, unique=True),
        sa.Column("byte_count", sa.BigInteger, nullable=False),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("file_path")
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("request_key", sa.String(64)))
        batch.add_column(sa.Column("expired_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("cancel_requested", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
        batch.create_index("ix_jobs_request_key", ["request_key"])
        batch.create_index("ix_jobs_token_stage", ["token_id", "stage"])
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("scopes", sa.String(100), nullable=False,
                                   server_default="export"))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("scopes")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_token_stage")
        batch.drop_index("ix_jobs_request_key")
        batch.drop_column("cancel_requested")
        batch.drop_column("expired_at")
        batch.drop_column("request_key")
        batch.drop_column("lease_until")
        batch.add_column(sa.Column("file_path", sa.String(1000)))
        batch.create_unique_constraint("uq_jobs_file_path", ["file_path"])
    op.drop_table("job_files")
