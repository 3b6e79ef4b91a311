"""The conditions suite's dataset: 8 users and 20 events, built as each engine stores them.

DuckDB (engines/duckdb/store.py): identities VARCHAR joined by `||`, array tags JSON text.
Spark (engines/spark/store.py): identities strings joined by `||`, array tags `array<T>`.
The events relation is `(gio_id, event, time, dt, amount, category)` on both.
"""

from __future__ import annotations

import json
from datetime import date, datetime

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.conditions import ConditionContext

AS_OF = date(2026, 11, 20)  # the compute date: its own events are never counted

ENTRIES = [
    CatalogEntry("id_uid", Kind.IDENTITY, "用户ID", ValueType.STRING),
    CatalogEntry("usr_gender", Kind.ATTRIBUTE, "性别", ValueType.STRING),
    CatalogEntry("usr_city", Kind.ATTRIBUTE, "城市", ValueType.STRING),
    CatalogEntry("usr_age", Kind.ATTRIBUTE, "年龄", ValueType.INT),
    CatalogEntry("usr_score", Kind.ATTRIBUTE, "评分", ValueType.DOUBLE),
    CatalogEntry("usr_vip", Kind.ATTRIBUTE, "会员", ValueType.BOOL),
    CatalogEntry("usr_birthday", Kind.ATTRIBUTE, "生日", ValueType.DATE),
    CatalogEntry("usr_seen", Kind.ATTRIBUTE, "最近访问", ValueType.DATETIME),
    CatalogEntry("tag_interests", Kind.TAG, "兴趣", ValueType.STRING, is_array=True),
    CatalogEntry("tag_levels", Kind.TAG, "等级", ValueType.INT, is_array=True),
    CatalogEntry("usr_never", Kind.ATTRIBUTE, "从未导入", ValueType.STRING),  # no column
]
CONTEXT = ConditionContext(
    catalog={e.key: e for e in ENTRIES},
    segments=frozenset({"seg_active"}),
    events={"payOrderSuccess": {"amount": ValueType.DOUBLE, "category": ValueType.STRING},
            "viewPage": {"category": ValueType.STRING}},
)

COLUMNS = ["gio_id", "id_uid", "usr_gender", "usr_city", "usr_age", "usr_score", "usr_vip",
           "usr_birthday", "usr_seen", "tag_interests", "tag_levels", "seg_active"]
D, T = date, datetime
USERS = [
    (1, "u1", "男", "上海", 30, 4.5, True, D(1996, 3, 1), T(2026, 11, 1, 8), ["数码", "美妆"], [1, 5], True),
    (2, "u2", "女", "北京", 25, 3.0, False, D(1999, 12, 31), T(2026, 10, 15, 12, 30), ["美妆"], [2], None),
    (3, "u3a||u3b", "男", "北京", 41, None, True, None, None, ["运动"], None, True),
    (4, "u4", None, "深圳", None, 2.5, None, D(1980, 5, 20), T(2026, 11, 19, 23, 59, 59), None, [7], None),
    (5, "u5", "男", None, 30, 5.0, False, D(2001, 1, 1), None, ["数码", "运动"], [3, 9], True),
    (6, "u6", "女", "上海", 18, 1.0, True, D(2008, 8, 8), T(2026, 1, 1), None, None, None),
    (7, None, "男", "广州", 55, 0.0, None, None, None, ["书"], [4], None),
    (8, "u8", "女", "O'Hare 100%_", 62, None, False, None, None, None, None, None),
]
ALL = {1, 2, 3, 4, 5, 6, 7, 8}

PAY, VIEW = "payOrderSuccess", "viewPage"
EVENTS = [  # (gio_id, event, dt, amount, category); AS_OF - 7 days is 2026-11-13
    (1, PAY, D(2026, 11, 19), 100.0, "数码"),
    (1, PAY, D(2026, 11, 18), 50.0, "书"),
    (1, PAY, D(2026, 11, 20), 999.0, "数码"),  # on the compute date: excluded
    (1, VIEW, D(2026, 11, 19), None, "数码"),
    (1, VIEW, D(2026, 11, 5), None, "书"),
    (2, PAY, D(2026, 11, 13), 30.0, "美妆"),  # exactly 7 days before
    (2, PAY, D(2026, 11, 19), 70.0, "书"),
    (2, VIEW, D(2026, 11, 1), None, "美妆"),
    (3, PAY, D(2026, 11, 12), 80.0, "运动"),  # 8 days before
    (3, PAY, D(2026, 11, 12), 20.0, "运动"),
    (3, VIEW, D(2026, 11, 19), None, "运动"),
    (4, VIEW, D(2026, 11, 15), None, "书"),
    (4, VIEW, D(2026, 11, 16), None, "数码"),
    (4, VIEW, D(2026, 11, 16), None, "数码"),
    (4, PAY, D(2026, 11, 2), 15.5, "美妆"),
    (5, PAY, D(2026, 11, 10), 200.0, None),
    (5, PAY, D(2026, 10, 25), 40.0, "数码"),
    (5, PAY, D(2026, 10, 1), 10.0, "书"),
    (7, PAY, D(2026, 11, 19), None, "书"),
    (8, VIEW, D(2026, 11, 20), None, "书"),  # on the compute date only
]


def duckdb_tables(con) -> None:  # type: ignore[no-untyped-def]
    """`users` and `events` in the DuckDB store's layout."""
    con.execute(
        'CREATE TABLE users (gio_id UBIGINT, id_uid VARCHAR, usr_gender VARCHAR,'
        ' usr_city VARCHAR, usr_age BIGINT, usr_score DOUBLE, usr_vip BOOLEAN,'
        ' usr_birthday DATE, usr_seen TIMESTAMP, tag_interests JSON, tag_levels JSON,'
        ' seg_active BOOLEAN)')
    rows = [(*u[:9], *(None if a is None else json.dumps(a, ensure_ascii=False)
                       for a in u[9:11]), u[11]) for u in USERS]
    con.executemany(f"INSERT INTO users VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    con.execute('CREATE TABLE events (gio_id UBIGINT, event VARCHAR, "time" TIMESTAMP,'
                ' dt DATE, amount DOUBLE, category VARCHAR)')
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", _event_rows())


def spark_views(spark, users: str, events: str) -> None:  # type: ignore[no-untyped-def]
    """Temp views `users` and `events` in the Spark store's layout."""
    from pyspark.sql import types as st

    user_schema = st.StructType([st.StructField(name, kind) for name, kind in zip(COLUMNS, [
        st.LongType(), st.StringType(), st.StringType(), st.StringType(), st.LongType(),
        st.DoubleType(), st.BooleanType(), st.DateType(), st.TimestampNTZType(),
        st.ArrayType(st.StringType()), st.ArrayType(st.LongType()), st.BooleanType(),
    ], strict=True)])
    spark.createDataFrame(USERS, user_schema).createOrReplaceTempView(users)
    event_schema = st.StructType([
        st.StructField("gio_id", st.LongType()), st.StructField("event", st.StringType()),
        st.StructField("time", st.TimestampNTZType()), st.StructField("dt", st.DateType()),
        st.StructField("amount", st.DoubleType()), st.StructField("category", st.StringType())])
    spark.createDataFrame(_event_rows(), event_schema).createOrReplaceTempView(events)


def _event_rows() -> list[tuple]:
    return [(g, e, datetime(d.year, d.month, d.day, 10), d, a, c) for g, e, d, a, c in EVENTS]
