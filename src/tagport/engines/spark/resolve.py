"""Identity resolution with Spark joins: the DuckDB loader's step 3, in Spark SQL.

Temp views (all named `load_*`, dropped after each load; loads run one at a time):
`load_rec` the valid typed records, `load_ids` one row per (record, identity key, value),
`load_hits` the values already in `identity_map`, `load_shared` the values several
records carry, `load_label` each record's group (the first line of the records linked to
it through shared values), `load_target` each applied record's gio_id. Rejects carry the
DuckDB loader's messages.

A load of new users only (no value in the map, none shared, no gio_id given: a first load,
most often) skips the groups: each record is its own new user, and its gio_id is
`max_gio_id + seq` (`seq` numbers the valid records 1, 2, ... in line order, which is the
order of the groups' first lines the general case numbers by), so apply.py writes it
without joining records and targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tagport.catalog.models import CatalogEntry
from tagport.engines.base import Reject
from tagport.engines.spark.render import literal
from tagport.engines.spark.store import Version


@dataclass(frozen=True)
class Resolved:
    rejects: list[Reject]
    records: DataFrame  # load_rec: the valid records
    target: DataFrame  # load_target(line, gio_id, is_new, simple): the records to apply
    ids: DataFrame  # load_ids(line, seq, id_key, id_value, pos)
    identity_map: DataFrame
    max_gio_id: int
    # every record its own new user with gio_id max_gio_id + seq, none of its values
    # mapped and none shared: load_target is then `load_rec` numbered, not computed
    all_new: bool = False
    # the gio_ids of the stored users the load updates, as a Parquet file of `gio_id`,
    # when the driver resolved it (driver_resolve.py)
    updated: Path | None = None


class Views:
    """The load's temp views. A view read again is computed once: `put` materializes it
    (`localCheckpoint`, eager), so a later query reads its rows and never runs its plan
    again. (A lazy `cache()` did not do that: a query over a cached view whose plan Spark
    rewrote before matching it against the cache ran the whole resolution again, ~20
    jobs for the count of a 1% load.) `drop` releases the rows."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self._held: list[DataFrame] = []
        self._names: set[str] = set()

    def put(self, df: DataFrame, name: str, *, cache: bool = True) -> DataFrame:
        if cache:
            df = self.keep(df)
        df.createOrReplaceTempView(name)
        self._names.add(name)
        return df

    def keep(self, df: DataFrame) -> DataFrame:
        """`df` computed now, its rows held until `drop`."""
        df = df.localCheckpoint(eager=True)
        self._held.append(df)
        return df

    def drop(self) -> None:
        for name in self._names:
            self.spark.catalog.dropTempView(name)
        for df in self._held:
            _release(df)
        self._held.clear()


def _release(df: DataFrame) -> None:
    """Free the blocks of a local checkpoint (Spark frees them only when the JVM collects
    the RDD, which a long-running server may not do for hours)."""
    try:
        df._jdf.queryExecution().logical().rdd().unpersist(False)  # type: ignore[operator]
    except Exception:  # noqa: BLE001 - not a checkpoint: nothing held
        pass


def empty_frame(spark: SparkSession, columns: str) -> DataFrame:
    """No rows of `columns` ("name type, ..."), as a relation Spark's optimizer knows is
    empty: a join with it is pruned (an empty `createDataFrame` is an RDD it cannot see
    into: a join with it shuffled all 2M values of a first load's records)."""
    select = ", ".join(f"CAST(NULL AS {c.split()[1]}) AS {c.split()[0]}"
                       for c in columns.split(","))
    return spark.sql(f"SELECT {select} WHERE false")


def identity_map_of(spark: SparkSession, version: Version | None) -> DataFrame:
    if version is None:
        return empty_frame(spark, "id_key string, id_value string, gio_id bigint")
    return spark.read.parquet(str(version.identity_map))


def resolve(views: Views, records: DataFrame, entries: list[CatalogEntry],
            current: Version | None) -> Resolved:
    spark = views.spark
    # the staged Parquet file: read again where needed, only the columns a step takes
    rec = views.put(records, "load_rec", cache=False)
    views.put(identity_map_of(spark, current), "identity_map", cache=False)
    ids, hits = _stage_identity_values(views, entries)
    no_hits = hits.isEmpty()
    rejects = [] if no_hits else _record_conflicts(spark)  # conflicts need a hit
    if rejects:
        bad = spark.createDataFrame([(r.line,) for r in rejects], "line bigint")
        ids = views.put(ids.join(bad, "line", "left_anti"), "load_ids")
        views.put(hits.join(bad, "line", "left_anti"), "load_hits")
        rec = views.put(rec.join(bad, "line", "left_anti"), "load_rec")
    no_shared = _shared_values(views)
    max_gio = int(current.manifest()["max_gio_id"]) if current is not None else 0
    if no_hits and no_shared and rec.where("gio_id IS NOT NULL").isEmpty():
        target = views.put(spark.sql(f"SELECT line, {int(max_gio)} + seq AS gio_id,"
                                     " true AS is_new, true AS simple FROM load_rec"),
                           "load_target", cache=False)
        return Resolved([], rec, target, ids, spark.table("identity_map"), max_gio,
                        all_new=True)
    _label_groups(views, no_shared)
    group_rejects = _group_conflicts(views)
    target = views.put(_assign_targets(views, group_rejects, max_gio), "load_target")
    return Resolved(rejects + group_rejects, rec, target, ids, spark.table("identity_map"),
                    max_gio)


def _stage_identity_values(views: Views,
                           entries: list[CatalogEntry]) -> tuple[DataFrame, DataFrame]:
    """`load_ids` and `load_hits`, both computed."""
    spark = views.spark
    parts = [
        f"SELECT line, seq, {literal(e.key)} AS id_key, v.id_value, v.pos + 1 AS pos"
        " FROM load_rec"
        # a value a record repeats is one value, at its first place
        f" LATERAL VIEW posexplode(array_distinct(c{i})) v AS pos, id_value"
        f" WHERE c{i} IS NOT NULL"
        for i, e in enumerate(entries) if e.is_identity
    ] or ["SELECT CAST(NULL AS bigint) AS line, CAST(NULL AS bigint) AS seq,"
          " CAST(NULL AS string) AS id_key,"
          " CAST(NULL AS string) AS id_value, CAST(NULL AS int) AS pos WHERE false"]
    ids = views.put(spark.sql(" UNION ALL ".join(parts)), "load_ids")
    hits = views.put(spark.sql(
        "SELECT i.line, i.id_key, i.id_value, m.gio_id FROM load_ids i"
        " JOIN identity_map m ON i.id_key = m.id_key AND i.id_value = m.id_value"),
        "load_hits")
    return ids, hits


def _shared_values(views: Views) -> bool:
    """`load_shared(id_key, id_value)`: the values several records carry; True if none.
    The values are counted by a 64-bit hash first (a shuffle of longs, not of strings:
    ~3x faster on a first load's 2M values); only those whose hash repeats are compared."""
    spark = views.spark
    repeated = spark.sql("SELECT xxhash64(id_key, id_value) AS h FROM load_ids"
                         " GROUP BY 1 HAVING count(*) > 1")
    if repeated.isEmpty():
        views.put(empty_frame(spark, "id_key string, id_value string"), "load_shared",
                  cache=False)
        return True
    views.put(repeated, "load_repeated", cache=False)
    shared = views.put(spark.sql(
        "SELECT id_key, id_value FROM load_ids i LEFT SEMI JOIN load_repeated r"
        " ON xxhash64(i.id_key, i.id_value) = r.h"
        " GROUP BY id_key, id_value HAVING count(*) > 1"), "load_shared")
    return shared.isEmpty()


def _collect_rejects(df: DataFrame) -> list[Reject]:
    return [Reject(int(r[0]), r[1], r[2]) for r in df.collect()]


def _record_conflicts(spark: SparkSession) -> list[Reject]:
    """A record whose values belong to another user than its gio_id, or to several users."""
    return _collect_rejects(spark.sql(
        "SELECT h.line, h.id_key, format_string('identity value ''%s'' belongs to gio_id %d,"
        " not to gio_id %d', h.id_value, h.gio_id, r.gio_id)"
        " FROM load_hits h JOIN load_rec r ON h.line = r.line WHERE h.gio_id <> r.gio_id"
        " UNION ALL"
        " SELECT line, CAST(NULL AS string), concat('identity values belong to different"
        " users: ', array_join(transform(array_sort(collect_list(struct(gio_id, id_key,"
        " id_value))), s -> format_string('%s ''%s'' is gio_id %d', s.id_key, s.id_value,"
        " s.gio_id)), ', '))"
        " FROM load_hits WHERE line IN (SELECT h.line FROM load_hits h"
        "  JOIN load_rec r ON h.line = r.line WHERE r.gio_id IS NULL"
        "  GROUP BY h.line HAVING min(h.gio_id) <> max(h.gio_id))"
        " GROUP BY line"))


def _label_groups(views: Views, no_shared: bool) -> None:
    """`load_label(line, label)`: records sharing identity values (transitively) get the
    same label, the first line of their group.

    Only values held by several records (`load_shared`) link anything (`load_links`:
    their records). Each round lowers a
    linked record's label to the least label among the records sharing one of its values,
    and jumps each label to its own record's label (chains shrink fast); it stops when a
    round changes nothing. Records without links are their own group.
    """
    spark = views.spark
    if no_shared:  # each record is its own group
        views.put(spark.sql("SELECT line, line AS label FROM load_rec"), "load_label",
                  cache=False)
        return
    links = views.put(spark.sql(
        "SELECT i.line, i.id_key, i.id_value FROM load_ids i LEFT SEMI JOIN load_shared v"
        " ON i.id_key = v.id_key AND i.id_value = v.id_value"), "load_links")
    label = links.select("line").distinct().withColumn("label", F.col("line"))
    label = _propagate(views, links, views.keep(label))
    views.put(spark.sql("SELECT line FROM load_rec").join(label, "line", "left")
              .select("line", F.coalesce("label", "line").alias("label")), "load_label")


def _propagate(views: Views, links: DataFrame, label: DataFrame) -> DataFrame:
    value = ["id_key", "id_value"]
    while True:
        least_of_value = (links.join(label, "line").groupBy(*value)
                          .agg(F.min("label").alias("least")))
        spread = (links.join(least_of_value, value).groupBy("line")
                  .agg(F.min("least").alias("spread")))
        parent = label.select(F.col("line").alias("label"), F.col("label").alias("jump"))
        new = (label.join(spread, "line").join(parent, "label", "left")
               .select("line", F.least("label", "spread", F.coalesce("jump", "label"))
                       .alias("new")))
        new = views.keep(new)
        changed = (new.join(label, "line").where(F.col("new") < F.col("label")).limit(1)
                   .count())
        label = new.withColumnRenamed("new", "label")
        if changed == 0:
            return label


def _group_conflicts(views: Views) -> list[Reject]:
    spark = views.spark
    views.put(spark.sql(
        "SELECT DISTINCT l.label, u.gio_id FROM load_label l JOIN ("
        " SELECT line, gio_id FROM load_hits UNION ALL"
        " SELECT line, gio_id FROM load_rec WHERE gio_id IS NOT NULL) u ON l.line = u.line"),
        "load_group_users")
    return _collect_rejects(spark.sql(
        "SELECT l.line, CAST(NULL AS string), format_string('the records linked to this one"
        " by shared identity values (from line %d) belong to different users: gio_ids %s',"
        " l.label, c.gio_ids) FROM load_label l JOIN ("
        " SELECT label, array_join(transform(array_sort(collect_list(gio_id)),"
        "  g -> cast(g AS string)), ', ') AS gio_ids"
        " FROM load_group_users GROUP BY label HAVING count(*) > 1"
        ") c ON l.label = c.label"))


def _assign_targets(views: Views, group_rejects: list[Reject], max_gio_id: int) -> DataFrame:
    """`load_target(line, gio_id, is_new, simple)`: a group's existing user, or a new
    gio_id after `max_gio_id`, in the order of the groups' first lines. `simple`: the only
    record of its target, none of its values mapped yet (most records of a load): its
    change is the record itself, with no aggregation (apply.py)."""
    spark = views.spark
    bad = spark.createDataFrame([(r.line,) for r in group_rejects], "line bigint")
    views.put(bad, "load_bad_groups", cache=False)
    return spark.sql(
        "WITH ok AS (SELECT l.line, l.label FROM load_label l"
        "  LEFT ANTI JOIN load_bad_groups b ON l.line = b.line),"
        " known AS (SELECT label, min(gio_id) AS gio_id FROM load_group_users"
        "  GROUP BY label),"
        f" fresh AS (SELECT label, {int(max_gio_id)}"
        "  + dense_rank() OVER (ORDER BY label) AS gio_id"
        "  FROM (SELECT DISTINCT o.label FROM ok o"
        "  LEFT ANTI JOIN known k ON o.label = k.label)),"
        " target AS (SELECT ok.line, coalesce(k.gio_id, f.gio_id) AS gio_id,"
        "  k.gio_id IS NULL AS is_new, h.line IS NULL AS unmapped"
        "  FROM ok LEFT JOIN known k ON ok.label = k.label"
        "  LEFT JOIN fresh f ON ok.label = f.label"
        "  LEFT JOIN (SELECT DISTINCT line FROM load_hits) h ON ok.line = h.line)"
        " SELECT line, gio_id, is_new,"
        "  unmapped AND count(*) OVER (PARTITION BY gio_id) = 1 AS simple FROM target")
