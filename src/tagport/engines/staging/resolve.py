"""Identity resolution in DuckDB SQL, shared by the engines: the load's step 3.

Over `load_rec` (the validated records, engines/staging/validate.py) and `identity_map(id_key,
id_value, gio_id)` (the stored pairs: the DuckDB store's table, or a view of the Spark
dataset's Parquet files), it writes temp tables: `load_ids` one row per (record, identity
key, value), `load_hits` the values already mapped, `load_shared` / `load_links` /
`load_label` the groups of records sharing values, `load_group_users`, and `load_target`
(line, gio_id, is_new): each applied record's user. Conflicts go to `load_rejects` with the
messages both engines give.

The DuckDB engine resolves every load here. The Spark engine resolves a small load onto a
stored dataset here too, on its driver (engines/spark/load.py), and hands Spark the targets.
"""

from __future__ import annotations

import duckdb

from tagport.catalog.models import CatalogEntry
from tagport.engines.staging.sql import ident, literal
from tagport.engines.staging.validate import NOT_REJECTED

# the highest gio_id given so far: new users continue after it
LAST_GIO_ID = "(SELECT coalesce(max(gio_id), 0) FROM users)"



def resolve_identities(cur: duckdb.DuckDBPyConnection, identities: list[CatalogEntry],
                       last_gio_id: int | None = None) -> None:
    """`load_target` and the conflicts. New gio_ids continue after `last_gio_id` (None:
    the highest of `users(gio_id)`)."""
    _stage_identity_values(cur, identities)
    _reject_record_conflicts(cur)
    _label_groups(cur)
    _reject_group_conflicts(cur)
    _assign_targets(cur, LAST_GIO_ID if last_gio_id is None else str(int(last_gio_id)))


def _stage_identity_values(cur: duckdb.DuckDBPyConnection, identities: list[CatalogEntry]) -> None:
    """`load_ids`: one row per (record, identity key, value); `load_hits`: the known ones."""
    parts = [
        f"SELECT line, {literal(e.key)} AS id_key, unnest({ident(e.key)}) AS id_value,"
        f" generate_subscripts({ident(e.key)}, 1) AS pos FROM load_rec"
        f" WHERE {ident(e.key)} IS NOT NULL AND {NOT_REJECTED}" for e in identities
    ] or [("SELECT NULL::BIGINT AS line, NULL::VARCHAR AS id_key, NULL::VARCHAR AS id_value,"
           " NULL::BIGINT AS pos WHERE false")]
    cur.execute(f"CREATE TEMP TABLE load_ids AS {' UNION ALL '.join(parts)}")
    cur.execute("CREATE TEMP TABLE load_hits AS SELECT i.line, i.id_key, i.id_value, m.gio_id"
                " FROM load_ids i JOIN identity_map m USING (id_key, id_value)")


def _reject_record_conflicts(cur: duckdb.DuckDBPyConnection) -> None:
    cur.execute(
        "INSERT INTO load_rejects SELECT h.line, h.id_key,"
        " format('identity value ''{}'' belongs to gio_id {}, not to gio_id {}',"
        " h.id_value, h.gio_id, r.gio_id)"
        " FROM load_hits h JOIN load_rec r USING (line) WHERE h.gio_id <> r.gio_id"
    )
    # string_agg only for the few records that hit several users: it is costly for all
    cur.execute(
        "INSERT INTO load_rejects SELECT line, NULL,"
        " 'identity values belong to different users: ' || string_agg("
        "  format('{} ''{}'' is gio_id {}', id_key, id_value, gio_id), ', '"
        "  ORDER BY gio_id, id_key, id_value)"
        " FROM load_hits WHERE line IN (SELECT h.line FROM load_hits h"
        "  JOIN load_rec r USING (line) WHERE r.gio_id IS NULL"
        "  GROUP BY h.line HAVING min(h.gio_id) <> max(h.gio_id))"
        " GROUP BY line"
    )
    # a rejected record must not link other records into its group
    cur.execute(f"DELETE FROM load_ids WHERE NOT ({NOT_REJECTED})")
    cur.execute(f"DELETE FROM load_hits WHERE NOT ({NOT_REJECTED})")


def _label_groups(cur: duckdb.DuckDBPyConnection) -> None:
    """`load_label(line, label)`: records sharing identity values (transitively) get the
    same label, the first line of their group.

    Only values held by several records link anything (`load_shared`); they get integer
    ids (`load_links`) so the rounds join integers. Each round lowers a record's label to
    the least label among the records sharing one of its values, then jumps each label to
    its own record's label (so chains shrink fast); it stops when a round changes nothing.
    """
    # most values are held by one record: they are first told apart by a 64-bit hash, so
    # the exact grouping by strings is left to the few whose hash repeats
    cur.execute(
        "CREATE TEMP TABLE load_shared AS SELECT id_key, id_value, row_number() OVER () AS vid"
        " FROM load_ids WHERE hash(id_key, id_value) IN (SELECT h FROM (SELECT"
        "  hash(id_key, id_value) AS h FROM load_ids) GROUP BY h HAVING count(*) > 1)"
        " GROUP BY ALL HAVING count(*) > 1"
    )
    cur.execute("CREATE TEMP TABLE load_links AS SELECT i.line, s.vid"
                " FROM load_ids i JOIN load_shared s USING (id_key, id_value)")
    # the first round is folded into the creation: a value's label is its first line
    cur.execute(
        "CREATE TEMP TABLE load_label AS SELECT r.line, coalesce(s.label, r.line) AS label"
        f" FROM (SELECT line FROM load_rec WHERE {NOT_REJECTED}) r LEFT JOIN ("
        " SELECT k.line, min(v.label) AS label FROM load_links k JOIN ("
        "  SELECT vid, min(line) AS label FROM load_links GROUP BY vid"
        " ) v USING (vid) GROUP BY k.line) s USING (line)"
    )
    while True:
        jumped = cur.execute(
            "UPDATE load_label SET label = p.label FROM load_label p"
            " WHERE load_label.label = p.line AND p.label < load_label.label"
        ).fetchall()[0][0]
        spread = cur.execute(
            "UPDATE load_label SET label = s.label FROM ("
            " SELECT k.line, min(v.label) AS label FROM load_links k JOIN ("
            "  SELECT vid, min(l.label) AS label FROM load_links JOIN load_label l USING (line)"
            "  GROUP BY vid"
            " ) v USING (vid) GROUP BY k.line"
            ") s WHERE load_label.line = s.line AND s.label < load_label.label"
        ).fetchall()[0][0]
        if spread == 0 and jumped == 0:
            return


def _reject_group_conflicts(cur: duckdb.DuckDBPyConnection) -> None:
    cur.execute(
        "CREATE TEMP TABLE load_group_users AS SELECT DISTINCT l.label, u.gio_id"
        " FROM load_label l JOIN (SELECT line, gio_id FROM load_hits UNION ALL"
        " SELECT line, gio_id FROM load_rec WHERE gio_id IS NOT NULL) u USING (line)"
    )
    cur.execute(
        "INSERT INTO load_rejects SELECT l.line, NULL, format('the records linked to this one"
        " by shared identity values (from line {}) belong to different users: gio_ids {}',"
        " l.label, c.gio_ids) FROM load_label l JOIN ("
        " SELECT label, string_agg(gio_id::VARCHAR, ', ' ORDER BY gio_id) AS gio_ids"
        " FROM load_group_users WHERE label IN (SELECT label FROM load_group_users"
        "  GROUP BY label HAVING count(*) > 1) GROUP BY label"
        ") c USING (label)"
    )


def _assign_targets(cur: duckdb.DuckDBPyConnection, last_gio_id: str) -> None:
    """`load_target(line, gio_id, is_new)`: a group's existing user, or a new gio_id.

    New gio_ids continue from the highest one, in the order of each group's first line.
    """
    cur.execute(
        "CREATE TEMP TABLE load_target AS"
        f" WITH ok AS (SELECT line, label FROM load_label WHERE {NOT_REJECTED}),"
        " known AS (SELECT label, min(gio_id) AS gio_id FROM load_group_users GROUP BY label),"
        f" fresh AS (SELECT label, {last_gio_id}"
        "  + CAST(dense_rank() OVER (ORDER BY label) AS UBIGINT) AS gio_id"
        "  FROM (SELECT DISTINCT label FROM ok) WHERE label NOT IN (SELECT label FROM known))"
        " SELECT ok.line, coalesce(k.gio_id, f.gio_id) AS gio_id, k.gio_id IS NULL AS is_new"
        " FROM ok LEFT JOIN known k USING (label) LEFT JOIN fresh f USING (label)"
    )
