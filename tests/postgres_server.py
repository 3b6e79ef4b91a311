"""A real PostgreSQL 15 for the test session: a throwaway cluster in a temporary dir.

`TAGPORT_TEST_DATABASE_URL` (a URL of a database whose user may CREATE DATABASE) uses an
existing server instead. Otherwise the cluster is made with the binaries of
/usr/lib/postgresql/15/bin (else the newest installed, or `TAGPORT_TEST_PG_BIN`); initdb
refuses root, so as root it runs as the `postgres` user. It listens on a Unix socket only, in its own dir.
Each test gets a new database cloned from a template that is already migrated.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tagport.db import create_db_engine, migrate


def _pg_bin() -> Path:
    """TAGPORT_TEST_PG_BIN, else PostgreSQL 15's, else the newest installed."""
    if chosen := os.environ.get("TAGPORT_TEST_PG_BIN"):
        return Path(chosen)
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                       key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    preferred = Path("/usr/lib/postgresql/15/bin")
    if (preferred / "initdb").exists() or not installed:
        return preferred
    return installed[-1].parent


PG_BIN = _pg_bin()
TEMPLATE = "tagport_template"


class Unavailable(Exception):
    """No PostgreSQL can be had here; the message says why (a skip reason)."""


class PostgresServer:
    def __init__(self, admin_url: str, cluster: Path | None = None) -> None:
        self.admin_url = admin_url  # a database to run CREATE DATABASE from
        self.cluster = cluster  # our own cluster's dir, None for an existing server
        self._names = itertools.count(1)
        self._admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT",
                                       poolclass=sa.pool.NullPool)
        self._template_ready = False
        self.options = ""  # the server's start options, for `resume`

    def url(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(
            hide_password=False)

    def new_database(self) -> str:
        """The URL of a new, migrated database of its own."""
        if not self._template_ready:
            self._create(TEMPLATE)
            engine = create_db_engine(self.url(TEMPLATE))
            migrate(engine)
            engine.dispose()
            self._template_ready = True
        name = f"tagport_test_{os.getpid()}_{next(self._names)}"
        self._create(name, template=TEMPLATE)
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of `url`, ending its sessions."""
        name = make_url(url).database
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def _create(self, name: str, template: str | None = None) -> None:
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            clause = f' TEMPLATE "{template}"' if template else ""
            conn.execute(sa.text(f'CREATE DATABASE "{name}"{clause}'))

    def pause(self) -> None:
        """Stop our own cluster's server, keeping its data (a PostgreSQL that went away)."""
        assert self.cluster is not None, "only a cluster of our own can be stopped"
        self._admin.dispose()
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.cluster / "data"), "-m", "fast",
                      "-w", "stop"])

    def resume(self) -> None:
        """Start the paused server again, as it was."""
        assert self.cluster is not None
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.cluster / "data"), "-o",
                      self.options, "-l", str(self.cluster / "log"), "-w", "-t", "60",
                      "start"])

    def stop(self) -> None:
        self._admin.dispose()
        if self.cluster is not None:
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.cluster / "data"),
                          "-m", "immediate", "stop"], check=False)
            shutil.rmtree(self.cluster, ignore_errors=True)


def start() -> PostgresServer:
    """An existing server (TAGPORT_TEST_DATABASE_URL) or a new cluster; Unavailable if
    neither can be had."""
    if url := os.environ.get("TAGPORT_TEST_DATABASE_URL"):
        return PostgresServer(url)
    if not (PG_BIN / "initdb").exists():
        raise Unavailable(f"PostgreSQL binaries not found in {PG_BIN} (apt-get install "
                          "postgresql-15, or set TAGPORT_TEST_DATABASE_URL)")
    cluster = Path(tempfile.mkdtemp(prefix="tagport-pg-"))
    try:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(cluster, user.pw_uid, user.pw_gid)
        port = _free_port()
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(cluster / "data"), "-A", "trust",
                      "-U", "postgres", "-E", "UTF8", "--no-sync"])
        # durability is not under test: fsync off keeps CREATE DATABASE fast
        options = (f"-p {port} -k {cluster} -c listen_addresses='' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(cluster / "data"), "-o", options,
                      "-l", str(cluster / "log"), "-w", "-t", "60", "start"])
    except (KeyError, OSError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(cluster, ignore_errors=True)
        raise Unavailable(f"could not start a PostgreSQL cluster: {exc}") from exc
    server = PostgresServer(
        f"postgresql+psycopg://postgres@/postgres?host={cluster}&port={port}", cluster)
    server.options = options
    return server


def _as_postgres(args: list[str], check: bool = True) -> None:
    """Run a PostgreSQL program, as the postgres user when we are root."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    done = subprocess.run(args, capture_output=True, text=True, check=False, cwd="/")
    if check and done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, args, done.stdout, done.stderr)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
