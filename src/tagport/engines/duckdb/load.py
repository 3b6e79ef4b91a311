"""Load a file of user records into the DuckDB profile store, with identity resolution.

Everything is set-based SQL over the whole file, in one transaction on one cursor, under
the store's write lock. The steps pass temp tables (all named `load_*`) along:

1. stage (engines/staging/parse.py, shared with the Spark engine): the file becomes
   `load_input(line, gio_raw, "<key>", "<key>?")`: per catalog key the raw value (VARCHAR,
   or VARCHAR[] for identities and array tags) and whether the record carries the key at
   all (only JSON lines can leave a key out).
2. validate (engines/staging/validate.py, shared): `load_rec` holds the typed values;
   every problem goes to `load_rejects`.
3. resolve (engines/staging/resolve.py, shared): identity values are looked up in
   `identity_map`; records sharing a value are grouped by label propagation; each group
   gets its target gio_id (`load_target`).
4. apply: per target user the last record carrying a key wins; identity values
   accumulate; new (key, value) pairs go to `identity_map`.

Line numbers: CSV record i is line i + 1 (the header is line 1); a quoted field with an
embedded newline, or a skipped blank line, shifts the numbers of later records. JSON lines
count physical lines; Parquet rows count from 1.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb

from tagport.catalog.models import CatalogEntry
from tagport.engines.base import EventLoadReport, InputFormat, LoadReport
from tagport.engines.duckdb.store import DuckDBStore, restore_gio_order
from tagport.engines.staging.parse import GIO_ID, file_state, stage_file, unchanged_since
from tagport.engines.staging.resolve import resolve_identities
from tagport.engines.staging.sql import ident, literal
from tagport.engines.staging.validate import prepare, rejects_report, validate
from tagport.errors import InvalidInput, StorageFull, StorageUnwritable, fault_of

R = TypeVar("R", LoadReport, EventLoadReport)  # a user load's report, or an event load's

def load_file(
    store: DuckDBStore, path: Path, input_format: InputFormat,
    catalog: dict[str, CatalogEntry], *, skip_invalid: bool = False,
    before_commit: Callable[[LoadReport], None] | None = None,
) -> LoadReport:
    """Resolve and apply a file of user records: all or nothing, or the valid ones only."""
    return in_load_transaction(
        store, path, lambda cur: _load(store, cur, path, input_format, catalog, skip_invalid),
        before_commit)


def in_load_transaction(store: DuckDBStore, path: Path,
                        load: Callable[[duckdb.DuckDBPyConnection], R],
                        before_commit: Callable[[R], None] | None) -> R:
    """Run `load` on a cursor of its own in one transaction under the store's write lock
    and load memory limit; commit when its report says applied (after `before_commit`),
    else roll back. The file must exist and hold something. Shared by user and event loads."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InvalidInput(f"{path}: the file is empty")
    # the limit is lowered again once the cursor, and with it the load's temp tables, is
    # gone: lowering it first would make DuckDB spill them to disk
    with store.write_lock, store.load_memory():
        needed, free = check_room(store, path)
        reclaim_failed_load(store)
        cur = store.cursor()
        state = file_state(path)
        try:
            # line numbers come from the scan order, so keep it even if the store drops it
            cur.execute("SET SESSION preserve_insertion_order = true")
            cur.execute("BEGIN")
            try:
                report = load(cur)
                unchanged_since(path, state)  # a Parquet file is read more than once
                finish(cur, report, before_commit)
            except BaseException as exc:
                rollback_quietly(cur)
                store.reclaim_pending = True
                if isinstance(exc, duckdb.Error | OSError):
                    raise _load_fault(store, path, exc, needed, free) from exc
                raise
            return report
        finally:
            cur.close()


# The least room a load takes in the store per byte of its file, well below what the
# demo's data took (users: Parquet 1.43, CSV 0.48 of the file's size; events: Parquet
# 0.86): a load whose file needs more than the disk has even so is refused before it
# starts; one that might fit is tried. JSON lines are wordier still.
ROOM_PER_BYTE = {".parquet": 0.5, ".csv": 0.15}
ROOM_PER_BYTE_OTHER = 0.05  # JSON lines


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def check_room(store: DuckDBStore, path: Path) -> tuple[int, int]:
    """(the room the load of `path` needs at least, the room there is: the store's disk's
    free bytes and the free blocks inside its file); StorageFull, with both, when the
    first is more."""
    needed = int(path.stat().st_size * ROOM_PER_BYTE.get(path.suffix.lower(),
                                                         ROOM_PER_BYTE_OTHER))
    disk, blocks = store.room()
    if needed > disk + blocks:
        raise StorageFull(
            f"the load of {path} needs about {_mb(needed)} in the profile store {store.path}"
            f" (estimated from the file's {_mb(path.stat().st_size)}), and only"
            f" {_mb(disk + blocks)} are free there ({_mb(disk)} on the disk, {_mb(blocks)}"
            " inside the file): nothing was loaded; free space on that disk or move the"
            " data dir to a larger one, then load again")
    return needed, disk + blocks


def reclaim_failed_load(store: DuckDBStore) -> None:
    """After a failed load in this process, CHECKPOINT first: the blocks the failed load
    wrote into the file stay marked used after its rollback until a checkpoint that has
    something to write runs (or the store is opened again); without, the next load grew
    the file by the failed one's blocks: 8.9 MB instead of 7.9 MB for 100,000 users, the
    used blocks after the failure 9 of 9, after this 4 of 11. Only with room for the WAL
    twice over: a checkpoint that fills the disk invalidates the database."""
    if not store.reclaim_pending:
        return
    wal = store.path.with_name(store.path.name + ".wal")
    wal_size = wal.stat().st_size if wal.exists() else 0
    if shutil.disk_usage(store.path.parent).free < 2 * wal_size + RECLAIM_MARGIN:
        return  # the next load, with more room, does it
    cur = store.cursor()
    try:  # a checkpoint with nothing in the WAL does nothing, and frees nothing: a write
        cur.execute("CREATE TABLE IF NOT EXISTS load_reclaim (x INTEGER)")
        cur.execute("DROP TABLE load_reclaim")
        cur.execute("CHECKPOINT")
        store.reclaim_pending = False
    except duckdb.Error:
        pass  # a transaction of another thread is open: the next load tries again
    finally:
        cur.close()


RECLAIM_MARGIN = 4 * 1024 * 1024


def _load_fault(store: DuckDBStore, path: Path, exc: BaseException, needed: int,
                free: int) -> BaseException:
    """A load that the disk stopped, in one line: nothing of it was applied."""
    fault = fault_of(exc)
    if isinstance(fault, StorageFull):
        return StorageFull(
            f"the disk of the profile store {store.path} filled up during the load of {path}"
            f" (it needs at least about {_mb(needed)}; {_mb(free)} were free when it began):"
            " nothing was applied, the store holds what it held before; free space on that"
            " disk or move the data dir to a larger one, then load again")
    if isinstance(fault, StorageUnwritable):
        return StorageUnwritable(
            f"the profile store {store.path} could not be written during the load of {path}"
            f" ({fault.message}): nothing was applied; make its file system writable, then"
            " load again")
    return exc


def finish(
    cur: duckdb.DuckDBPyConnection, report: R, before_commit: Callable[[R], None] | None,
) -> None:
    if not report.applied:
        cur.execute("ROLLBACK")
        return
    if before_commit is not None:
        try:
            before_commit(report)
        except BaseException:
            report.applied = False
            raise
    cur.execute("COMMIT")


def rollback_quietly(cur: duckdb.DuckDBPyConnection) -> None:
    try:
        cur.execute("ROLLBACK")
    except duckdb.Error:
        pass  # the transaction is already gone (e.g. COMMIT itself failed)


def _load(
    store: DuckDBStore, cur: duckdb.DuckDBPyConnection, path: Path,
    input_format: InputFormat, catalog: dict[str, CatalogEntry], skip_invalid: bool,
) -> LoadReport:
    prepare(cur)
    staged = stage_file(cur, path, input_format, catalog)
    if staged.file_rejects:
        return LoadReport(rejected=staged.records, rejects=staged.file_rejects)
    store.ensure_columns(cur, staged.entries)
    validate(cur, staged.entries, staged.typed)
    resolve_identities(cur, [e for e in staged.entries if e.is_identity])
    report = rejects_report(cur)
    if report.rejects and not skip_invalid:
        return report
    _apply(cur, staged.entries, report)
    report.applied = True
    return report


# --- 4. apply --------------------------------------------------------------------------


def _apply(cur: duckdb.DuckDBPyConnection, entries: list[CatalogEntry], report: LoadReport) -> None:
    first_new = cur.execute("SELECT coalesce(max(gio_id), 0) + 1 FROM users").fetchall()[0][0]
    stage_changes(cur, entries)
    write_users(cur, entries)
    cur.execute("INSERT INTO identity_map SELECT id_key, id_value, gio_id FROM load_new_ids")
    report.inserted, report.updated = cur.execute(
        "SELECT (SELECT count(*) FROM load_one WHERE is_new) + count(*) FILTER (WHERE is_new),"
        " count(*) FILTER (WHERE NOT is_new) FROM load_change").fetchall()[0]
    report.keys_with_data = keys_with_data(cur, entries, first_new)


def stage_changes(cur: duckdb.DuckDBPyConnection, entries: list[CatalogEntry]) -> None:
    """`load_fresh` (a view): the new users that one record makes, with its values;
    `load_change`: one row per other target user with its new values."""
    # identity values not yet mapped, each with where it first appears (to keep that
    # order). A mapped value is one of `load_hits`. A value that one record holds is
    # where it is; only the values several records share (`load_shared`, all in one
    # group) are aggregated: the aggregate over every value cost most of this step.
    cur.execute(
        "CREATE TEMP TABLE load_new_ids AS SELECT t.gio_id, i.id_key, i.id_value,"
        " i.line AS first_line, i.pos AS first_pos FROM load_ids i JOIN load_target t"
        " USING (line) ANTI JOIN load_shared USING (id_key, id_value)"
        " ANTI JOIN load_hits USING (line, id_key, id_value)"
        " UNION ALL SELECT t.gio_id, i.id_key, i.id_value, min(i.line), arg_min(i.pos, i.line)"
        " FROM load_ids i SEMI JOIN load_shared USING (id_key, id_value)"
        " JOIN load_target t USING (line) ANTI JOIN load_hits USING (line, id_key, id_value)"
        " GROUP BY ALL"
    )
    cur.execute("CREATE TEMP TABLE load_multi AS"
                " SELECT gio_id FROM load_target GROUP BY gio_id HAVING count(*) > 1")
    cur.execute("CREATE TEMP VIEW load_one AS"
                " SELECT line, gio_id, is_new FROM load_target ANTI JOIN load_multi USING (gio_id)")
    # A user that one record touches takes that record's values as they are; only users
    # touched by several records need the "last carrier wins" aggregation, which costs
    # most of a load when applied to every row. A new user from one record (most users of
    # a first load) also takes its identity values as the record lists them (none of them
    # is mapped yet: a mapped value would have made it a known user), and is not staged
    # at all: the insert reads it from `load_rec` (staging it cost as much as the insert).
    fresh, single = ["t.gio_id"], ["t.gio_id", "t.is_new"]
    multi = ["t.gio_id", "bool_and(t.is_new) AS is_new"]
    ids, final = ["gio_id"], ["a.gio_id", "a.is_new"]
    for e in entries:
        col, present = ident(e.key), ident(e.key + "?")
        if e.is_identity:
            ids.append(f"string_agg(id_value, '||' ORDER BY first_line, first_pos)"
                       f" FILTER (WHERE id_key = {literal(e.key)}) AS {col}")
            fresh.append(f"array_to_string(r.{col}, '||') AS {col}")
            final.append(f"i.{col}")
            continue
        last = f"arg_max_null(r.{col}, r.line) FILTER (WHERE r.{present})"
        if e.is_array:  # stored as JSON text (see store.py)
            fresh.append(f"to_json(r.{col}) AS {col}")
            single.append(f"to_json(r.{col}) AS {col}")
            multi.append(f"to_json({last}) AS {col}")
        else:  # the last record carrying the key wins, even with a null (arg_max_null)
            fresh.append(f"r.{col} AS {col}")
            single.append(f"r.{col} AS {col}")
            multi.append(f"{last} AS {col}")
        single.append(f"r.{present} AS {present}")
        multi.append(f"bool_or(r.{present}) AS {present}")
        final += [f"a.{col}", f"a.{present}"]
    cur.execute(f"CREATE TEMP VIEW load_fresh AS SELECT {', '.join(fresh)}"
                " FROM load_rec r JOIN load_one t USING (line) WHERE t.is_new")
    cur.execute(
        "CREATE TEMP TABLE load_change AS WITH"
        f" attrs AS (SELECT {', '.join(single)} FROM load_rec r JOIN load_one t USING (line)"
        f" WHERE NOT t.is_new UNION ALL BY NAME SELECT {', '.join(multi)} FROM load_rec r"
        " JOIN load_target t USING (line) SEMI JOIN load_multi m ON t.gio_id = m.gio_id"
        " GROUP BY t.gio_id),"
        f" ids AS (SELECT {', '.join(ids)} FROM load_new_ids"
        "  ANTI JOIN (SELECT gio_id FROM load_one WHERE is_new) USING (gio_id) GROUP BY gio_id)"
        f" SELECT {', '.join(final)} FROM attrs a LEFT JOIN ids i USING (gio_id)"
    )


def write_users(cur: duckdb.DuckDBPyConnection, entries: list[CatalogEntry]) -> None:
    sets = []
    for e in entries:
        col = ident(e.key)
        if e.is_identity:  # identity values accumulate: stored ones first, then the new
            sets.append(f"{col} = CASE WHEN c.{col} IS NULL THEN users.{col}"
                        f" ELSE concat_ws('||', users.{col}, c.{col}) END")
        else:  # a key no record carried keeps its stored value
            sets.append(f"{col} = CASE WHEN c.{ident(e.key + '?')} THEN c.{col}"
                        f" ELSE users.{col} END")
    if sets:
        updated = cur.execute(f"UPDATE users SET {', '.join(sets)} FROM load_change c"
                              " WHERE users.gio_id = c.gio_id AND NOT c.is_new").fetchall()
        if updated[0][0]:
            restore_gio_order(cur)
    cols = ", ".join([GIO_ID] + [ident(e.key) for e in entries])
    cur.execute(f"INSERT INTO users ({cols}) SELECT {cols} FROM (SELECT {cols} FROM load_fresh"
                f" UNION ALL SELECT {cols} FROM load_change WHERE is_new) ORDER BY gio_id")


def keys_with_data(cur: duckdb.DuckDBPyConnection, entries: list[CatalogEntry],
                    first_new: int) -> list[str]:
    """The keys this load gave a value to some user, to be marked in the catalog.

    An identity key counts when the load maps a new value of it: a value it only meets
    again was mapped by an earlier load, which marked the key then (identities are never
    cleared). Other keys count when the winning value of some user is not null: a user
    in `load_change`, or a new user (gio_id from `first_new` on, just inserted).
    """
    if not entries:
        return []
    identities = {row[0] for row in cur.execute(
        "SELECT DISTINCT id_key FROM load_new_ids").fetchall()}
    others = [e for e in entries if not e.is_identity]
    changed = [f"EXISTS (SELECT 1 FROM load_change WHERE {ident(e.key)} IS NOT NULL)"
               for e in others]
    inserted = [f"count({ident(e.key)}) > 0" for e in others]
    marked: set[str] = set()
    if others:
        row = cur.execute(f"SELECT {', '.join(changed)}").fetchall()[0]
        new = cur.execute(f"SELECT {', '.join(inserted)} FROM users"
                          f" WHERE gio_id >= {int(first_new)}").fetchall()[0]
        marked = {e.key for e, a, b in zip(others, row, new, strict=True) if a or b}
    return sorted(marked | {e.key for e in entries if e.is_identity and e.key in identities})
