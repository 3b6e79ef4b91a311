"""The shared load suite's catalog and helpers (test_engine_load_*.py, run on every
engine): each behaviour is loaded through `Engine.load` and read back through
`Engine.export` (or `Engine.find_user`), so the assertions hold for any engine."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from tagport.catalog.models import CatalogEntry, EventAttribute, EventDefinition, Kind, ValueType
from tagport.engines.base import EventLoadReport, InputFormat, LoadReport
from tagport.engines.duckdb.engine import DuckDBEngine
from tagport.engines.duckdb.store import DuckDBStore
from tagport.exports.formats import FileFormat, OutputFormat
from tagport.exports.plan import ExportPlan
from tests.spark_support import shared_spark

UID, DEVICE = "id_$basic_userId", "id_device"  # keys may hold `$`
E = CatalogEntry
CATALOG = {e.key: e for e in [
    E(UID, Kind.IDENTITY, "用户ID", ValueType.STRING),
    E(DEVICE, Kind.IDENTITY, "设备", ValueType.STRING),
    E("usr_gender", Kind.ATTRIBUTE, "性别", ValueType.STRING),
    E("usr_age", Kind.ATTRIBUTE, "年龄", ValueType.INT),
    E("usr_score", Kind.ATTRIBUTE, "得分", ValueType.DOUBLE),
    E("usr_vip", Kind.ATTRIBUTE, "会员", ValueType.BOOL),
    E("usr_birthday", Kind.ATTRIBUTE, "生日", ValueType.DATE),
    E("usr_seen", Kind.ATTRIBUTE, "最近访问", ValueType.DATETIME),
    E("tag_all", Kind.TAG, "全部", ValueType.STRING),
    E("tag_rfm", Kind.TAG, "会员等级", ValueType.STRING),
    E("tag_orders", Kind.TAG, "订单", ValueType.INT, is_array=True),
]}


def duckdb_engine(tmp_path: Path):
    return DuckDBEngine(DuckDBStore(tmp_path / "p.duckdb"))


def spark_engine(tmp_path: Path, users_per_bucket: int = 2, **options):
    from tagport.engines.spark.engine import SparkEngine
    from tagport.engines.spark.store import ProfileStore

    # buckets of 2 users: the loads here touch some buckets and link the others (a file
    # of 100k users wants larger ones: each bucket is a file, and Hadoop's local file
    # system forks a `chmod` per file, 50k buckets took 20 minutes)
    return SparkEngine(shared_spark(), ProfileStore(tmp_path / "profiles",
                                                    users_per_bucket=users_per_bucket),
                       **options)


def spark_executors_engine(tmp_path: Path, users_per_bucket: int = 2):
    """The Spark engine resolving every load with Spark joins (resolve.py), none on the
    driver (driver_resolve.py): the loads here are small enough for the driver."""
    return spark_engine(tmp_path, users_per_bucket, driver_resolve_max_records=0)


ENGINES = {"duckdb": duckdb_engine, "spark": spark_engine}
# identity resolution: Spark's loads onto a stored dataset take one of two roads
RESOLVING_ENGINES = {**ENGINES, "spark-executors": spark_executors_engine}


class Users:
    """Loads small files in which every record carries tag_all (so every user is exported)
    and reads the users back as exported JSON: identities `||`-joined, dates and datetimes
    as text."""

    def __init__(self, engine, tmp: Path, catalog: dict[str, CatalogEntry] = CATALOG) -> None:
        self.engine, self.tmp, self.n, self.catalog = engine, tmp, 0, catalog

    def path(self, suffix: str) -> Path:
        self.n += 1
        return self.tmp / f"in{self.n}.{suffix}"

    def load(self, *records: dict | str, **kw) -> LoadReport:
        """JSON lines; a string is written as the line it is."""
        lines = [r if isinstance(r, str) else json.dumps(
            {**r, "properties": {"tag_all": "x", **r.get("properties", {})}}, ensure_ascii=False)
            for r in records]
        path = self.path("jsonl")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self.file(path, InputFormat.JSONL, **kw)

    def csv(self, text: str, **kw) -> LoadReport:
        """A tag_all column is added to each line (the tests' fields hold no line breaks)."""
        header, *rows = text.split("\n")
        text = "\n".join([header + ",tag_all", *(r + ",x" if r else r for r in rows)])
        path = self.path("csv")
        path.write_text(text, encoding="utf-8")
        return self.file(path, InputFormat.CSV, **kw)

    def parquet(self, table: pa.Table, **kw) -> LoadReport:
        path = self.path("parquet")
        pq.write_table(table.append_column("tag_all", pa.array(["x"] * len(table))), path)
        return self.file(path, InputFormat.PARQUET, **kw)

    def file(self, path: Path, input_format: InputFormat, **kw) -> LoadReport:
        return self.engine.load(path, input_format, self.catalog, **kw)

    def read(self, *keys: str) -> list[tuple]:
        self.n += 1
        work = self.tmp / f"out{self.n}"
        work.mkdir()
        plan = ExportPlan.for_tag(CATALOG["tag_all"], tuple(CATALOG[k] for k in keys),
                                  OutputFormat(FileFormat.JSON))
        rows = []
        for line in self.engine.export(plan, work, "u.json").files[0].read_text().splitlines():
            doc = json.loads(line)
            values = {**doc["identifications"], **doc["properties"]}
            rows.append((doc["gio_id"], *(values[k] for k in keys)))
        return rows

    def gio_id_of(self, key: str, value: str) -> int | None:
        user = self.engine.find_user(key, value, [])
        return None if user is None else user["gio_id"]


def lines(report: LoadReport) -> list[tuple[int, str | None]]:
    return [(r.line, r.field) for r in report.rejects]


# --- events (test_engine_events.py) ------------------------------------------------------

EVENTS = {e.key: e for e in [
    EventDefinition("payOrderSuccess", "支付订单", "Order paid", attributes={
        "amount": EventAttribute("amount", "金额", ValueType.DOUBLE),
        "category": EventAttribute("category", "品类", ValueType.STRING),
        "quantity": EventAttribute("quantity", "数量", ValueType.INT)}),
    EventDefinition("view", "浏览", attributes={
        "page": EventAttribute("page", "页面", ValueType.STRING),
        "first": EventAttribute("first", "首次", ValueType.BOOL),
        "since": EventAttribute("since", "起始日", ValueType.DATE),
        "seen": EventAttribute("seen", "看到", ValueType.DATETIME)}),
]}
SHANGHAI = ZoneInfo("Asia/Shanghai")
EVENT_LAYOUT = ["gio_id", "event", "time", "dt", "id", "seq"]


class Events:
    """Loads small event files through `Engine.load_events` and reads the stored events
    back as dicts in seq order (from the DuckDB table or the Spark dataset alike)."""

    def __init__(self, engine, tmp: Path) -> None:
        self.engine, self.tmp, self.n = engine, tmp, 0
        self.users = Users(engine, tmp)

    def path(self, suffix: str) -> Path:
        self.n += 1
        return self.tmp / f"events{self.n}.{suffix}"

    def load(self, *events: dict | str, **kw) -> EventLoadReport:
        """JSON lines; a string is written as the line it is."""
        path = self.path("jsonl")
        path.write_text("\n".join(e if isinstance(e, str) else json.dumps(e, ensure_ascii=False)
                                  for e in events) + "\n", encoding="utf-8")
        return self.file(path, InputFormat.JSONL, **kw)

    def csv(self, text: str, **kw) -> EventLoadReport:
        path = self.path("csv")
        path.write_text(text, encoding="utf-8")
        return self.file(path, InputFormat.CSV, **kw)

    def parquet(self, table: pa.Table, **kw) -> EventLoadReport:
        path = self.path("parquet")
        pq.write_table(table, path)
        return self.file(path, InputFormat.PARQUET, **kw)

    def file(self, path: Path, input_format: InputFormat, *, zone=SHANGHAI,
             **kw) -> EventLoadReport:
        return self.engine.load_events(path, input_format, CATALOG, EVENTS, zone=zone, **kw)

    def columns(self) -> dict[str, str]:
        """The stored relation's columns and their types, as each engine names them."""
        if self.engine.name == "duckdb":
            cur = self.engine.store.cursor()
            try:
                return {n: t for n, t in cur.execute(
                    "SELECT column_name, data_type FROM information_schema.columns"
                    " WHERE table_name = 'events' ORDER BY ordinal_position").fetchall()}
            finally:
                cur.close()
        from tagport.engines.spark.events import read_events

        frame = read_events(self.engine.spark, self.engine.store)
        return {} if frame is None else {f.name: f.dataType.simpleString() for f in frame.schema}

    def read(self, *columns: str) -> list[dict]:
        names = [*EVENT_LAYOUT, *columns]
        if self.engine.name == "duckdb":
            cur = self.engine.store.cursor()
            try:
                quoted = ", ".join(f'"{c}"' for c in names)
                rows = cur.execute(f"SELECT {quoted} FROM events ORDER BY seq").fetchall()
            finally:
                cur.close()
            return [dict(zip(names, row, strict=True)) for row in rows]
        from tagport.engines.spark.events import read_events

        frame = read_events(self.engine.spark, self.engine.store)
        if frame is None:
            return []
        return [{n: row[n] for n in names} for row in frame.orderBy("seq").collect()]
