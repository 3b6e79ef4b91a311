"""Alembic migrations build exactly the tables db.py declares, and go down and up again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from tagport.db import MIGRATIONS_DIR, create_db_engine, metadata, migrate


def _config(conn) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    return cfg


def test_migrations_match_the_declared_tables(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migrations_downgrade_and_upgrade_again(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    migrate(engine)
    with engine.begin() as conn:
        command.downgrade(_config(conn), "base")
    with engine.begin() as conn:
        command.upgrade(_config(conn), "head")
    migrate(engine)  # idempotent
