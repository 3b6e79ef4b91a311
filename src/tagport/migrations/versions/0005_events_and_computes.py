"""the event catalog, computed tags' definitions and detectors, compute jobs, schedules

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_entries") as batch:
        batch.add_column(sa.Column("compute", sa.JSON))
        batch.add_column(sa.Column("scheduler", sa.String(8)))
    op.create_table(
        "event_definitions",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_en", sa.String(200)),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "event_attributes",
        sa.Column("event_key", sa.String(200),
                  sa.ForeignKey("event_definitions.key", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_en", sa.String(200)),
        sa.Column("value_type", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        "tag_computes",
        sa.Column("tag_key", sa.String(200), primary_key=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(8)),
        sa.Column("as_of", sa.Date),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("covered_users", sa.BigInteger),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
    )
    op.create_table(
        "schedule_runs",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("claimed_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False,
                                   server_default="export"))
        batch.add_column(sa.Column("as_of", sa.Date))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("as_of")
        batch.drop_column("kind")
    op.drop_table("schedule_runs")
    op.drop_table("tag_computes")
    op.drop_table("event_attributes")
    op.drop_table("event_definitions")
    with op.batch_alter_table("catalog_entries") as batch:
        batch.drop_column("scheduler")
        batch.drop_column("compute")
