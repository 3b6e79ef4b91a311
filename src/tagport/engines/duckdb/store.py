"""The DuckDB profile store: one file, one writer process, the schema of the data model.

Tables:
- `users(gio_id UBIGINT, <one column per catalog key that has been loaded>)`, stored in
  ascending gio_id order so that an export can scan it without a sort. Attributes and
  scalar tags are typed; identities are VARCHAR with the user's values joined by `||`
  (the export's own form; the identity map holds them one by one); array tags are JSON
  text (`["a","b"]`, `[3,1]`). Every column is a scalar because DuckDB updates scalar
  columns in place but moves a row whose LIST column is updated to the end of the table,
  which would break the order. Empty arrays are stored as NULL.
- `identity_map(id_key, id_value, gio_id)`: each (identity key, value) pair belongs to
  at most one user; the loader keeps it unique.
- `events(gio_id UBIGINT, event VARCHAR, "time" TIMESTAMP, dt DATE, id VARCHAR, seq BIGINT,
  <one typed column per event attribute key that has been loaded>)`: the layout of
  engines/base.py. Each load appends its events ordered by (dt, time, seq), so a load's
  rows of one day sit together and DuckDB's zone maps on `dt` skip the row groups of
  other days: a 30-day window reads ~30 days of row groups.
Columns are added when a load first brings a key, so applying the catalog never needs
the single writer.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from tagport.catalog.models import CatalogEntry
from tagport.engines.staging.events import AttributeColumn
from tagport.engines.staging.sql import SQL_TYPES, ident, literal
from tagport.errors import (
    EngineUnavailable,
    InvalidInput,
    StorageFull,
    StorageUnwritable,
    StoreBusy,
    TagportError,
    fault_of,
)

EVENTS_TABLE = ('CREATE TABLE IF NOT EXISTS events (gio_id UBIGINT NOT NULL,'
                ' event VARCHAR NOT NULL, "time" TIMESTAMP NOT NULL, dt DATE NOT NULL,'
                ' id VARCHAR, seq BIGINT NOT NULL)')


def sql_type(entry: CatalogEntry) -> str:
    """The DuckDB column type that holds `entry`'s values."""
    if entry.is_identity:
        return "VARCHAR"
    return "JSON" if entry.is_array else SQL_TYPES[entry.value_type]


def _open_fault(path: Path, exc: duckdb.Error) -> TagportError:
    """Why the store could not be opened, in one line: a full or read-only disk, or a file
    DuckDB cannot use (damaged, not a DuckDB file, unreadable)."""
    fault = fault_of(exc)
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(fault, StorageFull | StorageUnwritable):
        return type(fault)(f"the profile store {path} cannot be opened: {detail}")
    return EngineUnavailable(f"the profile store {path} cannot be opened: {detail}")


def restore_gio_order(cur: duckdb.DuckDBPyConnection) -> bool:
    """Rewrite `users` in gio_id order if its rows are out of order; True when it did.

    Loads append new users in order and update in place, so this is a safety net that
    costs one scan of two columns (~0.2 s per 2M users).
    """
    back = cur.execute(
        "SELECT count(*) FROM (SELECT gio_id < lag(gio_id) OVER (ORDER BY rowid) AS back"
        " FROM users) WHERE back"
    ).fetchall()[0][0]
    if not back:
        return False
    cur.execute("CREATE TABLE users_sorted AS SELECT * FROM users ORDER BY gio_id")
    cur.execute("DROP TABLE users")
    cur.execute("ALTER TABLE users_sorted RENAME TO users")
    return True


class DuckDBStore:
    """Owns the DuckDB connection; hands out cursors to threads."""

    def __init__(
        self, path: Path, *, threads: int = 2, memory_limit: str = "128MB",
        load_memory_limit: str = "2GB", temp_directory: Path | None = None,
        read_only: bool = False,
    ) -> None:
        """`read_only`: share the file with other reading processes (`tagport worker`);
        DuckDB lets several processes read a file, or one process write it.
        `memory_limit` holds for exports and queries, `load_memory_limit` while a load
        runs (see `load_memory`)."""
        self.path = path
        self.memory_limit = memory_limit
        self.load_memory_limit = load_memory_limit
        path.parent.mkdir(parents=True, exist_ok=True)
        if read_only and not path.exists():  # an empty store, as a writer would make it
            DuckDBStore(path, threads=threads, memory_limit=memory_limit).close()
        config = {"threads": threads, "memory_limit": memory_limit}
        if temp_directory is not None:
            temp_directory.mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = str(temp_directory)
        try:
            self._con = duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.Error as exc:
            if "lock" in str(exc).lower():
                raise StoreBusy(
                    f"the profile store {path} is open in another process ({exc})"
                ) from exc
            raise _open_fault(path, exc) from exc
        # all writes (loads, schema changes) go through this lock: one writer at a time
        self.write_lock = threading.Lock()
        # a load failed: the blocks it wrote into the file are reused only after a
        # CHECKPOINT, which the next load makes (see load.py: reclaim_failed_load)
        self.reclaim_pending = False
        # a reader's own spill folder goes when it closes
        self._own_spill = temp_directory if read_only else None
        if not read_only:
            self._create_schema()

    def _create_schema(self) -> None:
        cur = self.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS users (gio_id UBIGINT NOT NULL)")
        cur.execute(
            "CREATE TABLE IF NOT EXISTS identity_map ("
            " id_key VARCHAR NOT NULL, id_value VARCHAR NOT NULL, gio_id UBIGINT NOT NULL)"
        )
        cur.execute(EVENTS_TABLE)
        cur.close()

    @contextmanager
    def load_memory(self) -> Iterator[None]:
        """Raise DuckDB's memory limit to `load_memory_limit` for a load, then lower it.

        The limit is the database's, not the connection's: exports that run meanwhile
        may use the higher limit too. Loads hold the write lock, so they do not overlap.
        """
        self._set_memory_limit(self.load_memory_limit)
        try:
            yield
        finally:
            self._set_memory_limit(self.memory_limit)

    def _set_memory_limit(self, limit: str) -> None:
        cur = self.cursor()
        try:
            cur.execute(f"SET GLOBAL memory_limit = {literal(limit)}")
        finally:
            cur.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for the calling thread."""
        return self._con.cursor()

    def user_columns(self, cur: duckdb.DuckDBPyConnection) -> dict[str, str]:
        """Column name -> DuckDB type of the users table."""
        return self._columns(cur, "users")

    def event_columns(self, cur: duckdb.DuckDBPyConnection) -> dict[str, str]:
        """Column name -> DuckDB type of the events table."""
        return self._columns(cur, "events")

    @staticmethod
    def _columns(cur: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
        rows = cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            f" WHERE table_name = {literal(table)} ORDER BY ordinal_position"
        ).fetchall()
        return {name: dtype for name, dtype in rows}

    def ensure_event_columns(self, cur: duckdb.DuckDBPyConnection,
                             attributes: list[AttributeColumn]) -> None:
        """Add an events column for each attribute that lacks one; an attribute stored
        with another type than the event catalog's now refuses the load."""
        existing = self.event_columns(cur)
        for attribute in attributes:
            want, have = SQL_TYPES[attribute.value_type], existing.get(attribute.key)
            if have is None:
                cur.execute(f"ALTER TABLE events ADD COLUMN {ident(attribute.key)} {want}")
            elif have != want:
                raise InvalidInput(
                    f"event attribute {attribute.key!r} is stored as {have.lower()}, but the"
                    f" event catalog now says {attribute.value_type.value}: an attribute's type"
                    " cannot change once a load has brought it")

    def ensure_columns(self, cur: duckdb.DuckDBPyConnection, entries: list[CatalogEntry]) -> None:
        """Add a users column for each entry that lacks one; retype all-null columns.

        A type can only change in the catalog while the key holds no data, so a column
        whose type differs holds only NULLs and is recreated.
        """
        existing = self.user_columns(cur)
        for entry in entries:
            want = sql_type(entry)
            have = existing.get(entry.key)
            if have == want:
                continue
            if have is not None:
                cur.execute(f"ALTER TABLE users DROP COLUMN {ident(entry.key)}")
            cur.execute(f"ALTER TABLE users ADD COLUMN {ident(entry.key)} {want}")

    def room(self) -> tuple[int, int]:
        """(bytes free on the store's disk, bytes of free blocks inside the file): what a
        load can take (DuckDB writes into its file's free blocks before growing it)."""
        cur = self.cursor()
        try:
            block_size, free_blocks = cur.execute(
                "SELECT block_size, free_blocks FROM pragma_database_size()"
                " WHERE database_name = current_database()").fetchall()[0]
        finally:
            cur.close()
        return shutil.disk_usage(self.path.parent).free, int(block_size) * int(free_blocks)

    def user_count(self) -> int:
        cur = self.cursor()
        try:
            return int(cur.execute("SELECT count(*) FROM users").fetchall()[0][0])
        finally:
            cur.close()

    def close(self) -> None:
        self._con.close()
        if self._own_spill is not None:
            shutil.rmtree(self._own_spill, ignore_errors=True)
