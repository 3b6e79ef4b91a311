"""The computed tags suite's dataset: 6 users and 25 events around the compute date
2026-11-20, with `dt` the local day in Asia/Shanghai (UTC+8), built as each engine stores
them. Read the tables here beside the expected values in test_engine_computes.py.

Days before AS_OF: 11-19 is 1, 11-13 is 7, 11-12 is 8, 10-21 is 30, 10-20 is 31.
Category order (code points, as both engines sort strings): 书 < 数码 < 美妆 < 运动.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.engines.base import InputFormat

AS_OF = date(2026, 11, 20)
PAY, VIEW = "payOrderSuccess", "viewPage"
EVENTS_CATALOG = {PAY: {"amount": ValueType.DOUBLE, "category": ValueType.STRING},
                  VIEW: {"category": ValueType.STRING}}

E = CatalogEntry
ENTRIES = [
    E("id_uid", Kind.IDENTITY, "用户ID", ValueType.STRING),
    E("usr_city", Kind.ATTRIBUTE, "城市", ValueType.STRING),
    E("tag_all", Kind.TAG, "全部", ValueType.STRING),  # every user: what exports select
]
CITIES = ["上海", "北京", None, "深圳", "上海", "北京"]  # gio_ids 1..6

# (gio_id, event, local time in Asia/Shanghai, amount, category); seq is the list order
_LOCAL = [
    (1, PAY, "2026-11-19 10:00", 100.0, "数码"),
    (1, PAY, "2026-11-18 09:00", 50.0, "书"),
    (1, PAY, "2026-11-20 00:10", 999.0, "数码"),  # just after local midnight: dt 11-20, out
    (1, PAY, "2026-11-19 23:50", 20.0, "书"),  # just before it: dt 11-19, in (UTC 15:50)
    (1, VIEW, "2026-11-19 12:00", None, "数码"),
    (1, VIEW, "2026-11-01 08:00", None, "书"),
    (1, VIEW, "2026-11-20 08:00", None, "书"),  # on the compute date: out
    (2, PAY, "2026-10-21 12:00", 30.0, "美妆"),  # exactly 30 days before: in lastDays 30
    (2, PAY, "2026-10-20 12:00", 70.0, "书"),  # 31 days before: out of lastDays 30
    (2, PAY, "2026-11-10 08:00", 30.0, "书"),  # ties 美妆 on count and on sum
    (2, VIEW, "2026-10-15 09:00", None, "美妆"),
    (2, VIEW, "2026-11-19 09:00", None, "美妆"),
    (3, PAY, "2026-11-15 10:00", 10.0, "运动"),
    (3, PAY, "2026-11-15 10:00", 20.0, "书"),  # the same time, loaded later: the last
    (3, PAY, "2026-11-05 10:00", 5.0, "运动"),
    (3, VIEW, "2026-11-02 09:00", None, "数码"),  # the same time, loaded first: the first
    (3, VIEW, "2026-11-02 09:00", None, "书"),
    (4, PAY, "2026-11-12 10:00", None, "数码"),  # 8 days before; no amount
    (4, PAY, "2026-11-16 10:00", 40.0, None),  # no category
    (4, PAY, "2026-11-17 10:00", None, None),
    (5, VIEW, "2026-11-19 10:00", None, "美妆"),
    (5, VIEW, "2026-11-19 11:00", None, "美妆"),
    (5, VIEW, "2026-11-13 10:00", None, "书"),  # exactly 7 days before: in lastDays 7
    (5, PAY, "2026-10-01 10:00", 500.0, "数码"),  # 50 days before
]  # user 6 did nothing


def event_rows() -> list[tuple]:
    """(gio_id, event, time UTC, dt, id, seq, amount, category)."""
    rows = []
    for seq, (gio_id, event, local, amount, category) in enumerate(_LOCAL, start=1):
        at = datetime.fromisoformat(local)
        rows.append((gio_id, event, at - timedelta(hours=8), at.date(), f"e-{seq}", seq,
                     amount, category))
    return rows


def load_users(engine, tmp: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp / "users.jsonl"
    path.write_text("".join(json.dumps(
        {"identifications": {"id_uid": f"u{i}"},
         "properties": {"usr_city": city, "tag_all": "x"}}, ensure_ascii=False) + "\n"
        for i, city in enumerate(CITIES, start=1)), encoding="utf-8")
    report = engine.load(path, InputFormat.JSONL, {e.key: e for e in ENTRIES})
    assert report.applied and report.inserted == 6, report.rejects


def duckdb_events(store) -> None:  # type: ignore[no-untyped-def]
    """The `events` table in the DuckDB store, as the event loader makes it: the store
    creates its fixed columns, a load adds the attributes it brings."""
    cur = store.cursor()
    try:
        cur.execute("ALTER TABLE events ADD COLUMN amount DOUBLE")
        cur.execute("ALTER TABLE events ADD COLUMN category VARCHAR")
        cur.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", event_rows())
    finally:
        cur.close()


def spark_events(spark, name: str):  # type: ignore[no-untyped-def]
    """A temp view `name` of the events relation, as read_events will give it."""
    from pyspark.sql import types as st

    schema = st.StructType([
        st.StructField("gio_id", st.LongType()), st.StructField("event", st.StringType()),
        st.StructField("time", st.TimestampNTZType()), st.StructField("dt", st.DateType()),
        st.StructField("id", st.StringType()), st.StructField("seq", st.LongType()),
        st.StructField("amount", st.DoubleType()), st.StructField("category", st.StringType())])
    spark.createDataFrame(event_rows(), schema).createOrReplaceTempView(name)
