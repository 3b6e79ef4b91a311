"""The segment methods of every engine (`replace_members`, `count_members`, `portrait`) on
one small dataset whose every answer is written out here, and a 20,000-user one for the
sampled estimate. Membership is read back through `Engine.tag_users`, as a page would.

The small dataset (gio_ids 1..6 in file order), compute date 2026-11-20:

    gio  id_uid  id_phone     usr_city  usr_age  tag_interests  tag_vip  pay events (dt)
    1    u1      p1 || p1b    上海       20       [书, 运动]      gold     11-19, 11-10
    2    u2      p2           北京       30       [书]            -        11-01
    3    u3      -            -         40       -              silver   -
    4    u4      p4           上海       50       [数码, 书]      gold     11-18, 11-02, 10-01
    5    u5      p5a || p5b   深圳       -        [运动]          -        11-20 (the date: out)
    6    u6      -            上海       60       [] (stored -)  -        -
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from tagport.catalog.models import CatalogEntry, Kind, MembersReport, Portrait, ValueType
from tagport.conditions import ConditionContext, parse_condition
from tagport.engines.base import InputFormat
from tagport.errors import InvalidInput
from tagport.exports.formats import FileFormat, OutputFormat
from tagport.exports.plan import ExportPlan
from tests.spark_support import shared_spark

AS_OF = date(2026, 11, 20)
PAY = "payOrderSuccess"
S, INT = ValueType.STRING, ValueType.INT
E = CatalogEntry
ENTRIES = [
    E("id_uid", Kind.IDENTITY, "用户ID", S),
    E("id_phone", Kind.IDENTITY, "手机", S),
    E("usr_city", Kind.ATTRIBUTE, "城市", S),
    E("usr_age", Kind.ATTRIBUTE, "年龄", INT),
    E("usr_never", Kind.ATTRIBUTE, "从未加载", S),
    E("tag_interests", Kind.TAG, "兴趣", S, is_array=True),
    E("tag_vip", Kind.TAG, "会员", S),
]
CATALOG = {e.key: e for e in ENTRIES}
EVENTS_CATALOG = {PAY: {"amount": ValueType.DOUBLE}}

USERS = [  # (id_uid, id_phone, usr_city, usr_age, tag_interests, tag_vip)
    ("u1", ["p1", "p1b"], "上海", 20, ["书", "运动"], "gold"),
    ("u2", "p2", "北京", 30, ["书"], None),
    ("u3", None, None, 40, None, "silver"),
    ("u4", "p4", "上海", 50, ["数码", "书"], "gold"),
    ("u5", ["p5a", "p5b"], "深圳", None, ["运动"], None),
    ("u6", None, "上海", 60, [], None),
]
PAYS = [(1, "2026-11-19"), (1, "2026-11-10"), (2, "2026-11-01"), (4, "2026-11-18"),
        (4, "2026-11-02"), (4, "2026-10-01"), (5, "2026-11-20")]


def segment(key: str) -> CatalogEntry:
    """A segment's membership column, as the segment service computes it."""
    return CatalogEntry(key=key, kind=Kind.TAG, name=key, value_type=ValueType.BOOL)


def user_records(rows) -> list[dict]:  # type: ignore[no-untyped-def]
    records = []
    for uid, phone, city, age, interests, vip in rows:
        ids = {"id_uid": uid} | ({"id_phone": phone} if phone is not None else {})
        records.append({"identifications": ids, "properties": {
            "usr_city": city, "usr_age": age, "tag_interests": interests, "tag_vip": vip}})
    return records


def event_rows(pays) -> list[tuple]:  # type: ignore[no-untyped-def]
    """(gio_id, event, time UTC, dt, id, seq, amount) of (gio_id, day) pairs."""
    rows = []
    for seq, (gio_id, day) in enumerate(pays, start=1):
        dt = date.fromisoformat(day) if isinstance(day, str) else day
        rows.append((gio_id, PAY, datetime.combine(dt, datetime.min.time()) + timedelta(hours=4),
                     dt, f"e-{seq}", seq, 10.0))
    return rows


def _load(engine, root: Path, records: list[dict]) -> None:  # type: ignore[no-untyped-def]
    path = root / "users.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    report = engine.load(path, InputFormat.JSONL, CATALOG)
    assert report.applied and report.inserted == len(records), report.rejects


def duckdb_engine(root: Path, records: list[dict], events: list[tuple]):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    from tagport.engines.duckdb.engine import DuckDBEngine
    from tagport.engines.duckdb.store import DuckDBStore

    engine = DuckDBEngine(DuckDBStore(root / "p.duckdb"))
    _load(engine, root, records)
    cur = engine.store.cursor()
    try:
        cur.execute("ALTER TABLE events ADD COLUMN amount DOUBLE")
        names = ["gio_id", "event", "time", "dt", "id", "seq", "amount"]
        cur.register("new_events", pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in events]))
        cur.execute("INSERT INTO events SELECT * FROM new_events")
    finally:
        cur.close()
    return engine


def spark_engine(root: Path, records: list[dict], events: list[tuple]):  # type: ignore[no-untyped-def]
    from pyspark.sql import types as st

    from tagport.engines.spark.engine import SparkEngine
    from tagport.engines.spark.store import ProfileStore

    spark = shared_spark()
    schema = st.StructType([
        st.StructField("gio_id", st.LongType()), st.StructField("event", st.StringType()),
        st.StructField("time", st.TimestampNTZType()), st.StructField("dt", st.DateType()),
        st.StructField("id", st.StringType()), st.StructField("seq", st.LongType()),
        st.StructField("amount", st.DoubleType())])
    view = f"segments_events_{root.name.replace('-', '_')}"
    spark.createDataFrame(events, schema).createOrReplaceTempView(view)
    engine = SparkEngine(spark, ProfileStore(root / "profiles"),
                         events=lambda: spark.table(view))
    _load(engine, root, records)
    return engine


_ENGINES = {"duckdb": duckdb_engine, "spark": spark_engine}


@pytest.fixture(scope="module", params=sorted(_ENGINES))
def engine(request):
    root = Path(tempfile.mkdtemp(prefix=f"tagport-segments-{request.param}-"))
    engine = _ENGINES[request.param](root, user_records(USERS), event_rows(PAYS))
    yield engine
    engine.close()
    shutil.rmtree(root, ignore_errors=True)


def members(engine, key: str) -> dict[int, object]:  # type: ignore[no-untyped-def]
    """Each member's gio_id -> the value of its membership column."""
    seg = segment(key)
    plan = ExportPlan.for_tag(seg, (seg,), OutputFormat(FileFormat.JSON))
    return {r["gio_id"]: r["properties"][key] for r in engine.tag_users(plan, 1000, 0)}


def upload(engine, tmp_path: Path, key: str, text: str, identity: str = "id_uid"):  # type: ignore[no-untyped-def]
    path = tmp_path / f"{key}-{abs(hash(text))}.csv"
    path.write_text(text, encoding="utf-8")
    return engine.replace_members(segment(key), identity, path)


# --- replace_members ------------------------------------------------------------------------


def test_members_are_the_users_holding_a_value_duplicates_once_unknown_counted(engine, tmp_path):
    report = upload(engine, tmp_path, "seg_single", 'id_uid\nu1\nu3\n\nu3\nnobody\n""\nu6\n')
    assert report == MembersReport(values=4, members=3, unknown=1)
    assert members(engine, "seg_single") == {1: True, 3: True, 6: True}


def test_a_multi_valued_identity_matches_on_any_of_its_values(engine, tmp_path):
    report = upload(engine, tmp_path, "seg_phone", "id_phone\np1b\np5a\np5b\np2\np1||p1b\n",
                    identity="id_phone")
    # p1||p1b is the store's joined form, not a value: unknown
    assert report == MembersReport(values=5, members=3, unknown=1)
    assert members(engine, "seg_phone") == {1: True, 2: True, 5: True}


def test_a_second_upload_replaces_the_members(engine, tmp_path):
    upload(engine, tmp_path, "seg_again", "id_uid\nu1\nu2\n")
    assert upload(engine, tmp_path, "seg_again", "id_uid\r\nu3\r\n") == MembersReport(1, 1, 0)
    assert members(engine, "seg_again") == {3: True}
    # a trailing comma (an empty second field) is tolerated
    assert upload(engine, tmp_path, "seg_again", "id_uid\nu4,\nu5,,\n") == MembersReport(2, 2, 0)
    assert members(engine, "seg_again") == {4: True, 5: True}


@pytest.mark.parametrize(("text", "where"), [
    ("id_phone\nu2\n", "line 1, field 'id_phone'"),
    ("id_uid,id_phone\nu2,p2\n", "line 1: 2 columns"),
    ("id_uid\nu2\nu4,p4\n", "line 3: more than one field"),
    ("id_uid\nu2\n\nu4,,x\n", "line 4: more than one field"),
    ("\nid_uid\nu2\n", "line 1: no header"),
])
def test_a_bad_file_is_refused_naming_the_line_and_nothing_changes(engine, tmp_path, text, where):
    upload(engine, tmp_path, "seg_kept", "id_uid\nu1\n")
    with pytest.raises(InvalidInput, match=where.replace("(", r"\(")):
        upload(engine, tmp_path, "seg_kept", text)
    assert members(engine, "seg_kept") == {1: True}


def test_a_file_that_is_not_utf8_or_missing_is_refused(engine, tmp_path):
    upload(engine, tmp_path, "seg_bytes", "id_uid\nu1\n")
    path = tmp_path / "latin1.csv"
    path.write_bytes("id_uid\nu2\nJosé\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="line 3"):
        engine.replace_members(segment("seg_bytes"), "id_uid", path)
    with pytest.raises(InvalidInput, match="no such file"):
        engine.replace_members(segment("seg_bytes"), "id_uid", tmp_path / "none.csv")
    assert members(engine, "seg_bytes") == {1: True}


def test_an_empty_file_or_a_header_alone_makes_no_members(engine, tmp_path):
    upload(engine, tmp_path, "seg_empty", "id_uid\nu1\n")
    assert upload(engine, tmp_path, "seg_empty", "") == MembersReport(0, 0, 0)
    assert members(engine, "seg_empty") == {}
    upload(engine, tmp_path, "seg_empty", "id_uid\nu1\n")
    assert upload(engine, tmp_path, "seg_empty", "id_uid\n") == MembersReport(0, 0, 0)
    assert members(engine, "seg_empty") == {}


# --- count_members -------------------------------------------------------------------------


def count(engine, doc: dict, segments=(), **kwargs) -> int:  # type: ignore[no-untyped-def]
    context = ConditionContext(catalog=CATALOG, segments=frozenset(segments),
                               events=EVENTS_CATALOG)
    return engine.count_members(parse_condition(doc, context), as_of=AS_OF, **kwargs)


def key(k, op, *values):  # type: ignore[no-untyped-def]
    return {"key": k, "op": op, "values": list(values)}


def did(op, *values, days=30):  # type: ignore[no-untyped-def]
    return {"did": {"event": PAY, "measure": "count", "window": {"lastDays": days}},
            "op": op, "values": list(values)}


@pytest.mark.parametrize(("doc", "expected"), [
    (key("usr_city", "=", "上海"), 3),  # 1, 4, 6
    (key("usr_age", ">=", 40), 3),  # 3, 4, 6
    ({"op": "not", "exprs": [key("usr_age", ">=", 40)]}, 3),  # 1, 2 and 5 (null)
    (key("tag_interests", "=", "书"), 3),  # 1, 2, 4
    (key("id_phone", "=", "p5b"), 1),
    (key("usr_never", "is null"), 6),
    (did(">=", 2), 2),  # 1 (11-19, 11-10), 4 (11-18, 11-02); 4's 10-01 is out, 5's 11-20 too
    (did("=", 0), 3),  # 3, 5, 6
    ({"op": "and", "exprs": [key("usr_city", "=", "上海"), did(">", 0)]}, 2),  # 1, 4
    ({"op": "or", "exprs": [key("tag_vip", "is not null"), did("=", 1)]}, 4),  # 1, 3, 4; 2
])
def test_count_members_is_exact_without_a_sample(engine, doc, expected):
    assert count(engine, doc) == expected


def test_count_members_of_a_segment_and_of_one_never_computed(engine, tmp_path):
    upload(engine, tmp_path, "seg_counted", "id_uid\nu2\nu5\n")
    assert count(engine, {"segment": "seg_counted"}, {"seg_counted"}) == 2
    assert count(engine, {"segment": "seg_nothing"}, {"seg_nothing"}) == 0
    negated = {"op": "not", "exprs": [{"segment": "seg_counted"}]}
    assert count(engine, negated, {"seg_counted"}) == 4


def test_a_sample_holding_every_user_counts_exactly(engine):
    # the buckets are gio_id % 10007: users 1..6 are all in a 1% sample (buckets 0..99)
    assert count(engine, key("usr_age", ">=", 40), sample=0.01) == 3
    assert count(engine, did(">=", 2), sample=0.01) == 2


# --- the estimate on 20,000 users -----------------------------------------------------------

BIG = 20_000


def big_dataset() -> tuple[list[tuple], list[tuple], dict[str, int]]:
    """Users with random ages and cities, 0..6 payments over the 60 days before AS_OF;
    and the exact counts of the conditions below, computed here."""
    rng = random.Random(12)
    users, pays, exact = [], [], {"age": 0, "paid": 0, "both": 0}
    for g in range(1, BIG + 1):
        age = rng.randint(18, 70)
        users.append((f"u{g}", None, rng.choice(["上海", "北京", "深圳"]), age, None, None))
        days = [AS_OF - timedelta(days=rng.randint(1, 60)) for _ in range(rng.randint(0, 6))]
        pays += [(g, day) for day in days]
        paid = sum(day >= AS_OF - timedelta(days=30) for day in days) >= 2
        exact["age"] += age >= 45
        exact["paid"] += paid
        exact["both"] += age >= 45 and paid
    return users, pays, exact


@pytest.fixture(scope="module", params=sorted(_ENGINES))
def big(request):
    root = Path(tempfile.mkdtemp(prefix=f"tagport-segments-big-{request.param}-"))
    users, pays, exact = big_dataset()
    engine = _ENGINES[request.param](root, user_records(users), event_rows(pays))
    yield engine, exact
    engine.close()
    shutil.rmtree(root, ignore_errors=True)


BIG_CONDITIONS = {
    "age": key("usr_age", ">=", 45),
    "paid": did(">=", 2),
    "both": {"op": "and", "exprs": [key("usr_age", ">=", 45), did(">=", 2)]},
}


@pytest.mark.parametrize("name", sorted(BIG_CONDITIONS))
def test_a_sampled_count_is_close_to_the_exact_one_and_repeats(big, name):
    engine, exact = big
    doc = BIG_CONDITIONS[name]
    assert count(engine, doc) == exact[name]
    estimate = count(engine, doc, sample=0.1)
    assert abs(estimate - exact[name]) <= 0.06 * exact[name], (estimate, exact[name])
    assert count(engine, doc, sample=0.1) == estimate
    assert count(engine, key("usr_age", "is not null"), sample=0.1) == BIG


# --- portrait ------------------------------------------------------------------------------


def test_portrait_of_a_string_among_a_segment_and_among_a_tag(engine, tmp_path):
    upload(engine, tmp_path, "seg_pictured", "id_uid\nu2\nu5\nu3\n")
    assert engine.portrait(CATALOG["usr_city"], segment("seg_pictured")) == Portrait(
        group_users=3, all_users=6, group_covered=2, all_covered=5,
        values=[("北京", 1, 1), ("深圳", 1, 1)], bins=[])
    assert engine.portrait(CATALOG["usr_city"], CATALOG["tag_vip"], top=5) == Portrait(
        3, 6, 2, 5, [("上海", 2, 3)], [])


def test_portrait_of_a_number_bins_over_all_users_range(engine, tmp_path):
    upload(engine, tmp_path, "seg_aged", "id_uid\nu2\nu5\n")
    assert engine.portrait(CATALOG["usr_age"], segment("seg_aged"), bins=4) == Portrait(
        2, 6, 1, 5, [],
        [(20.0, 30.0, 0, 1), (30.0, 40.0, 1, 1), (40.0, 50.0, 0, 1), (50.0, 60.0, 0, 2)])


def test_portrait_of_an_array_counts_each_distinct_element(engine):
    assert engine.portrait(CATALOG["tag_interests"], CATALOG["tag_vip"], top=2) == Portrait(
        3, 6, 2, 4, [("书", 2, 3), ("数码", 1, 1)], [])


def test_portrait_among_a_column_never_created_or_of_a_key_never_loaded(engine):
    never = segment("seg_never_computed")
    assert engine.portrait(CATALOG["usr_city"], never) == Portrait(0, 6, 0, 5, [], [])
    assert engine.portrait(CATALOG["usr_age"], never, bins=2) == Portrait(
        0, 6, 0, 5, [], [(20.0, 40.0, 0, 2), (40.0, 60.0, 0, 3)])
    assert engine.portrait(CATALOG["usr_never"], CATALOG["tag_vip"]) == Portrait(
        3, 6, 0, 0, [], [])
