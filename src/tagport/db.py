"""The metadata store: tables, the SQLAlchemy engine and migrations.

SQLite by default; every statement is plain SQLAlchemy Core so that PostgreSQL is a
URL change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

catalog_entries = sa.Table(
    "catalog_entries",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # identity | attribute | tag
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("name_en", sa.String(200)),
    sa.Column("value_type", sa.String(16), nullable=False),
    sa.Column("is_array", sa.Boolean, nullable=False, default=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("has_data", sa.Boolean, nullable=False, default=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # a computed tag's definition (spec section 6) and its trigger; NULL: loaded values
    sa.Column("compute", sa.JSON),
    sa.Column("scheduler", sa.String(8)),  # DAILY | ONCE
)

# the event catalog (spec section 5): events and their attributes
event_definitions = sa.Table(
    "event_definitions",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("name_en", sa.String(200)),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

event_attributes = sa.Table(
    "event_attributes",
    metadata,
    sa.Column("event_key", sa.String(200),
              sa.ForeignKey("event_definitions.key", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("name_en", sa.String(200)),
    sa.Column("value_type", sa.String(16), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)

# the last computation of each computed tag: its detector (spec section 6)
tag_computes = sa.Table(
    "tag_computes",
    metadata,
    sa.Column("tag_key", sa.String(200), primary_key=True),
    sa.Column("stage", sa.String(16), nullable=False),  # RUNNING | FINISH | ERROR
    sa.Column("job_id", sa.String(8)),
    sa.Column("as_of", sa.Date),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("covered_users", sa.BigInteger),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", sa.Text),
)

# a scheduled run claimed once across processes: (schedule name, day) is unique
schedule_runs = sa.Table(
    "schedule_runs",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("claimed_by", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("scopes", sa.String(100), nullable=False, server_default="export"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(8), primary_key=True),
    sa.Column("name", sa.String(40), nullable=False, unique=True),
    sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id")),
    sa.Column("tag_key", sa.String(200), nullable=False),
    sa.Column("properties", sa.JSON, nullable=False),
    sa.Column("file_format", sa.String(8), nullable=False),
    sa.Column("header_type", sa.String(8), nullable=False),
    sa.Column("compression", sa.String(8), nullable=False, server_default="none"),
    sa.Column("charset", sa.String(16), nullable=False, server_default="UTF-8"),
    sa.Column("kind", sa.String(16), nullable=False, server_default="export"),  # | compute
    sa.Column("as_of", sa.Date),  # a computation's compute date
    sa.Column("stage", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("claimed_by", sa.String(100)),
    sa.Column("lease_until", sa.DateTime(timezone=True)),  # a claim lapses after this
    sa.Column("request_key", sa.String(64), index=True),  # same token+request = same job
    sa.Column("expired_at", sa.DateTime(timezone=True)),  # files deleted by retention
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("row_count", sa.BigInteger),
    sa.Column("byte_count", sa.BigInteger),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Index("ix_jobs_token_stage", "token_id", "stage"),
)

# each live worker pool (the server's, `tagport worker`'s): it renews `alive_until` every
# few seconds and deletes its row when it stops; a row past its `alive_until` is a pool
# that died. `kinds`: the kinds of job it takes, comma-separated; NULL: any
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),  # the pool's name, host:pid:label
    sa.Column("kinds", sa.String(200)),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("alive_until", sa.DateTime(timezone=True), nullable=False),
)

job_files = sa.Table(
    "job_files",
    metadata,
    sa.Column("job_id", sa.String(8), sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("path", sa.String(1000), nullable=False, unique=True),  # "/jobs/results/..."
    sa.Column("byte_count", sa.BigInteger, nullable=False),
)

# each tag's coverage, measured by the engine after every load (GET /v1/api/user_tags)
tag_coverage = sa.Table(
    "tag_coverage",
    metadata,
    sa.Column("tag_key", sa.String(200), primary_key=True),
    sa.Column("covered_users", sa.BigInteger, nullable=False),
    sa.Column("all_users", sa.BigInteger, nullable=False),
    sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
)

# projects (spec section 8): users, identities, attributes and tags are shared by all of
# them; the default project is created by the migration that adds the table
projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.String(8), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# segments (spec section 8): a saved group of users in one project; its key names the
# membership column of the profile store, so keys are unique across projects
segments = sa.Table(
    "segments",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("project_id", sa.String(8), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("scheduler", sa.String(8), nullable=False),  # DAILY | ONCE
    sa.Column("created_by", sa.String(16), nullable=False),  # DIRECT | FROM_FILES
    sa.Column("definition", sa.JSON),  # the condition (spec section 7); NULL: FROM_FILES
    sa.Column("creator_id", sa.Integer),  # the token that created it
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updater_id", sa.Integer),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("segments_by_project", "project_id", "created_at"),
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


# Connections kept open per process. Every thread that touches the store at once needs
# one: the API's threadpool (40 threads), the export workers, the retention sweeper. A
# pool smaller than that opens and closes "overflow" connections per request under load.
SQLITE_POOL_SIZE = 64  # a SQLite connection is a file handle and a page cache
POSTGRESQL_POOL_SIZE = 10  # the server's max_connections is shared by every process
POSTGRESQL_MAX_OVERFLOW = 40


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; tagport stores UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def create_db_engine(url: str) -> Engine:
    """An engine for the metadata store; SQLite gets WAL and a busy timeout."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith(("postgresql:", "postgres:")):  # psycopg 3 is the driver tagport ships
        url = "postgresql+psycopg:" + url.split(":", 1)[1]
    if not url.startswith("postgresql"):
        return sa.create_engine(url, pool_pre_ping=True)
    # pre-ping: a server across the network may drop idle connections (restarts, proxies)
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=POSTGRESQL_POOL_SIZE,
                              max_overflow=POSTGRESQL_MAX_OVERFLOW)

    @sa.event.listens_for(engine, "connect")
    def _postgresql_session(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # timestamps come back in UTC, as from SQLite, whatever the server's zone
        with dbapi_conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute("SET application_name = 'tagport'")
        dbapi_conn.commit()

    return engine


def _sqlite_engine(url: str) -> Engine:
    """A local file: no pre-ping (nothing can drop the connection), a pool as large as
    the threads that use it, and only the per-connection PRAGMA on each new connection.
    The busy timeout is the driver's `timeout`; WAL is a property of the file, set once."""
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE,
    )

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.execute("PRAGMA foreign_keys=ON")

    if not url.endswith((":memory:", "sqlite://")):
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    return engine


MIGRATION_LOCK = 0x7461_6770  # "tagp": a PostgreSQL advisory lock id


def migrate(engine: Engine) -> None:
    """Bring the metadata store to the newest schema with Alembic (on PostgreSQL under
    an advisory lock, so processes starting together migrate one at a time)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
