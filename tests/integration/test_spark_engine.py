"""What only the Spark engine has: split exports, dataset versions, the shared Parquet."""

from __future__ import annotations

import json
import re
import threading
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tagport.catalog.models import TagCoverage
from tagport.config import Settings
from tagport.engines import open_engine
from tagport.engines.base import InputFormat
from tagport.exports.formats import FileFormat, OutputFormat
from tagport.exports.naming import part_name
from tagport.exports.plan import ExportPlan, ExportStopped
from tests.conftest import write_jsonl
from tests.integration.test_engine_contract import CATALOG
from tests.spark_support import loaded_spark_engine, shared_spark

USERS = [
    {"identifications": {"id_uid": f"u{i}"},
     "properties": {"tag_t": None if i % 4 == 0 else f"v{i}", "usr_s": f"line\n{i}",
                    "tag_n": [i, i + 1]}}
    for i in range(1, 24)
]
COVERED = sum(1 for u in USERS if u["properties"]["tag_t"] is not None)


def _load_users(engine, tmp: Path) -> None:
    report = engine.load(write_jsonl(tmp / "users.jsonl", USERS), InputFormat.JSONL, CATALOG)
    assert report.applied and report.inserted == len(USERS)


@pytest.fixture
def engine(tmp_path):
    engine = loaded_spark_engine(tmp_path, "spark-engine", _load_users)
    yield engine
    engine.close()


def _plan(fmt=FileFormat.CSV):
    return ExportPlan.for_tag(
        CATALOG["tag_t"], (CATALOG["id_uid"], CATALOG["usr_s"], CATALOG["tag_n"]), OutputFormat(fmt))


def _export(engine, tmp_path, name, fmt=FileFormat.CSV):
    work = tmp_path / name
    work.mkdir()
    return engine.export(_plan(fmt), work, "f.csv")


def test_an_export_runs_on_a_thread_of_its_own_as_a_worker_runs_it(engine, tmp_path):
    expected = _export(engine, tmp_path, "main").files[0].read_bytes()
    found: list[bytes] = []
    thread = threading.Thread(target=lambda: found.append(
        _export(engine, tmp_path, "thread").files[0].read_bytes()))
    thread.start()
    thread.join()
    assert found == [expected]


def test_split_export_parts_hold_at_most_max_rows_and_concatenate_to_the_single_file(
        engine, tmp_path):
    single = _export(engine, tmp_path, "one").files[0].read_bytes()
    engine.max_rows_per_file = 5
    output = _export(engine, tmp_path, "parts")
    assert output.row_count == COVERED
    names = [p.name for p in output.files]
    assert len(names) >= 4 and names == [part_name("f.csv", i, "csv") for i in range(1, len(names) + 1)]
    parts = [p.read_bytes() for p in output.files]
    assert b"".join(parts) == single  # one header, in the first part only
    assert parts[0].startswith(b'"gio_id","id_uid"') and not parts[1].startswith(b'"gio_id"')
    rows = [len(re.findall(rb'(?m)^[0-9]+,"u[0-9]+"', p)) for p in parts]
    assert max(rows) <= 5 and sum(rows) == COVERED


def test_split_json_export_lists_parts_in_gio_id_order(engine, tmp_path):
    engine.max_rows_per_file = 4
    output = _export(engine, tmp_path, "json", FileFormat.JSON)
    text = b"".join(p.read_bytes() for p in output.files).decode()
    ids = [int(line.split(",")[0].split(":")[1]) for line in text.splitlines()]
    assert ids == sorted(ids) and len(ids) == COVERED and len(output.files) >= 5


def test_split_gzipped_csv_parts_each_decompress_and_concatenate_to_the_plain_file(
        engine, tmp_path):
    import gzip

    from tagport.exports.formats import Compression

    single = _export(engine, tmp_path, "plain").files[0].read_bytes()
    engine.max_rows_per_file = 5
    work = tmp_path / "gz"
    work.mkdir()
    plan = ExportPlan.for_tag(CATALOG["tag_t"], _plan().columns,
                              OutputFormat(compression=Compression.GZIP))
    output = engine.export(plan, work, "f.csv.gz")
    names = [p.name for p in output.files]
    assert len(names) >= 4 and names == [part_name("f.csv.gz", i, "csv.gz")
                                         for i in range(1, len(names) + 1)]
    assert names[0] == "f-00001.csv.gz"
    assert b"".join(gzip.decompress(p.read_bytes()) for p in output.files) == single


def test_split_parquet_parts_hold_the_rows_in_order(engine, tmp_path):
    import pyarrow.parquet as pq

    engine.max_rows_per_file = 5
    work = tmp_path / "pq"
    work.mkdir()
    plan = ExportPlan.for_tag(CATALOG["tag_t"], _plan().columns, OutputFormat(FileFormat.PARQUET))
    output = engine.export(plan, work, "f.parquet")
    tables = [pq.read_table(p) for p in output.files]
    ids = [i for t in tables for i in t.column("gio_id").to_pylist()]
    assert len(tables) >= 4 and all(t.num_rows <= 5 for t in tables)
    assert ids == sorted(ids) and len(ids) == COVERED == output.row_count


def test_export_fitting_in_one_part_is_one_file_with_the_plain_name(engine, tmp_path):
    engine.max_rows_per_file = 1000
    assert [p.name for p in _export(engine, tmp_path, "fits").files] == ["f.csv"]


def test_a_load_switches_current_to_a_new_version_and_a_reader_keeps_its_version(
        engine, tmp_path):
    store = engine.store
    first = store.current()
    with store.reading() as held:
        report = engine.load(write_jsonl(tmp_path / "more.jsonl", [
            {"identifications": {"id_uid": "u1"}, "properties": {"tag_t": "changed"}}]),
            InputFormat.JSONL, CATALOG)
        assert report.applied and report.updated == 1
        assert store.current().name != first.name
        assert held.path.is_dir()  # still read by this reader
    engine.load(write_jsonl(tmp_path / "more2.jsonl", [
        {"identifications": {"id_uid": "u2"}, "properties": {"tag_t": "again"}}]),
        InputFormat.JSONL, CATALOG)
    assert not first.path.exists()  # no reader left: removed after the next commit
    assert sorted(p.name for p in store.root.glob("v*")) == [store.current().name]


def test_a_load_cancelled_before_commit_leaves_the_current_version(engine, tmp_path):
    before = engine.store.current()

    def refuse(report):
        raise RuntimeError("metadata store unavailable")

    with pytest.raises(RuntimeError):
        engine.load(write_jsonl(tmp_path / "x.jsonl", [{"identifications": {"id_uid": "new"}}]),
                    InputFormat.JSONL, CATALOG, before_commit=refuse)
    assert engine.store.current() == before
    assert sorted(p.name for p in engine.store.root.glob("v*")) == [before.name]
    assert engine.user_count() == len(USERS)


def test_duckdb_reads_the_spark_dataset(engine):
    users = engine.store.current().users
    rows = duckdb.sql(
        f"SELECT gio_id, id_uid, tag_n FROM read_parquet('{users}/*.parquet') ORDER BY gio_id"
        " LIMIT 2").fetchall()
    assert rows == [(1, "u1", [1, 2]), (2, "u2", [2, 3])]


def test_spark_settings_open_the_spark_engine_on_the_data_dir(tmp_path, monkeypatch):
    shared_spark()  # the engine joins the test session's Spark session
    monkeypatch.setenv("TAGPORT_ENGINE", "spark")
    monkeypatch.setenv("TAGPORT_MAX_ROWS_PER_FILE", "1000")
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.spark_master == "local[2]"
    engine = open_engine(settings)
    assert engine.name == "spark" and engine.max_rows_per_file == 1000
    assert engine.store.root == (tmp_path / "data" / "profiles.parquet").resolve()
    assert engine.user_count() == 0
    # closing an engine keeps the process's session for the next one (workers and API
    # nodes open an engine per burst of work)
    engine.close()
    again = open_engine(settings)
    again.ping()
    assert again.spark is engine.spark


def test_a_page_of_users_and_one_user_read_like_lines_of_the_json_export(engine, tmp_path):
    text = _export(engine, tmp_path, "page", FileFormat.JSON).files[0].read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert engine.tag_users(_plan(FileFormat.JSON), 3, 2) == lines[2:5]
    assert engine.find_user("id_uid", "u2", _plan().columns) == lines[1]
    assert engine.find_user("id_uid", "nobody", _plan().columns) is None
    coverage = engine.tag_coverage([CATALOG["tag_t"], CATALOG["tag_empty"]])
    assert coverage == TagCoverage(len(USERS), {"tag_t": COVERED, "tag_empty": 0})


def test_a_set_stop_cancels_the_running_spark_jobs():
    from tagport.engines.spark.export import _cancelled_by

    spark = shared_spark()
    stop = threading.Event()
    timer = threading.Timer(1.0, stop.set)  # once the job below is running
    timer.start()
    try:
        with pytest.raises(ExportStopped) as raised, _cancelled_by(spark, stop):
            try:  # minutes of work on two cores, were it not cancelled
                spark.range(0, 10**11, numPartitions=200).selectExpr("sum(id % 7)").collect()
            except Exception as exc:
                raise ExportStopped(None) from exc
    finally:
        timer.cancel()
    assert "cancel" in str(raised.value.__cause__).lower()
    # the session's later jobs carry no tag of this one and run
    assert spark.range(3).count() == 3
    assert list(spark.sparkContext.getJobTags()) == []


def test_a_stop_set_while_the_executors_write_parts_ends_the_export_and_leaves_no_file(
        tmp_path):
    from tagport.engines.spark.engine import SparkEngine
    from tagport.engines.spark.store import ProfileStore

    spark = shared_spark()
    version = tmp_path / "profiles" / "v000001"
    spark.range(0, 3_000_000, numPartitions=2).selectExpr(
        "id + 1 AS gio_id", "concat('v', id) AS tag_t", "repeat('line ', 20) AS usr_s",
    ).write.parquet(str(version / "users"))
    (version / "manifest.json").write_text('{"users": 3000000}')
    (tmp_path / "profiles" / "CURRENT").write_text("v000001\n")
    engine = SparkEngine(spark, ProfileStore(tmp_path / "profiles"))
    work = tmp_path / "work"
    work.mkdir()
    stop = threading.Event()

    def stop_once_a_part_is_being_written() -> None:
        while not stop.is_set():
            if any(work.glob(".spark-*/.part-*")):
                stop.set()
            stop.wait(0.02)

    watcher = threading.Thread(target=stop_once_a_part_is_being_written, daemon=True)
    watcher.start()
    plan = ExportPlan.for_tag(CATALOG["tag_t"], (CATALOG["usr_s"],), OutputFormat(FileFormat.CSV))
    try:
        with pytest.raises(ExportStopped) as raised:
            engine.export(plan, work, "f.csv", stop)
    finally:
        stop.set()
        watcher.join()
    assert "cancel" in str(raised.value.__cause__).lower()  # the write job was cancelled
    assert list(work.iterdir()) == []
    assert spark.range(3).count() == 3  # the session goes on


# --- buckets: a load rewrites what it changes ----------------------------------------------


@pytest.fixture
def bucketed(tmp_path):
    """23 users in buckets of 5 gio_ids: b000000 (1-5) ... b000004 (21-23)."""
    from tagport.engines.spark.engine import SparkEngine
    from tagport.engines.spark.store import ProfileStore

    engine = SparkEngine(shared_spark(), ProfileStore(tmp_path / "buckets", users_per_bucket=5))
    _load_users(engine, tmp_path)
    yield engine
    engine.close()


def _inodes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in folder.glob("*.parquet")}


def _rows(version) -> list[tuple]:
    return duckdb.sql(f"SELECT gio_id, id_uid, tag_t FROM read_parquet('{version.users}/*.parquet')"
                      " ORDER BY gio_id").fetchall()


def test_users_are_written_in_buckets_of_gio_id_ranges_each_in_order(bucketed):
    version = bucketed.store.current()
    assert sorted(_inodes(version.users)) == [f"b{n:06d}.parquet" for n in range(5)]
    for n in range(5):
        ids = [r[0] for r in duckdb.sql(
            f"SELECT gio_id FROM read_parquet('{version.users}/b{n:06d}.parquet')").fetchall()]
        assert ids == list(range(5 * n + 1, min(5 * n + 5, 23) + 1))


def test_a_load_rewrites_only_the_buckets_of_the_users_it_changes_or_creates(bucketed, tmp_path):
    before = bucketed.store.current()
    old_users, old_ids = _inodes(before.users), _inodes(before.identity_map)
    old_rows = _rows(before)
    with bucketed.store.reading() as held:
        report = bucketed.load(write_jsonl(tmp_path / "k.jsonl", [
            {"identifications": {"id_uid": "u7"}, "properties": {"tag_t": "changed"}},
            {"identifications": {"id_uid": "u24"}, "properties": {"tag_t": "new"}}]),
            InputFormat.JSONL, CATALOG)
        assert (report.applied, report.inserted, report.updated) == (True, 1, 1)
        after = bucketed.store.current()
        assert _rows(held) == old_rows  # the reader's version is whole and unchanged
    users = _inodes(after.users)
    assert sorted(users) == sorted(old_users)
    assert {n for n in users if users[n] == old_users[n]} == {
        "b000000.parquet", "b000002.parquet", "b000003.parquet"}  # linked, not rewritten
    ids = _inodes(after.identity_map)
    assert {n: ids[n] for n in old_ids} == old_ids  # the map's files linked, one more file
    assert sorted(set(ids) - set(old_ids)) == [f"{after.name}-00000.parquet"]
    rows = _rows(after)
    assert rows[6] == (7, "u7", "changed") and rows[-1] == (24, "u24", "new")
    assert [r for r in rows if r[0] not in (7, 24)] == [r for r in old_rows if r[0] != 7]
    found = bucketed.find_user("id_uid", "u24", [CATALOG["id_uid"], CATALOG["tag_t"]])
    assert found is not None and found["properties"]["tag_t"] == "new"


def test_a_load_bringing_a_new_column_rewrites_every_bucket(bucketed, tmp_path):
    before = _inodes(bucketed.store.current().users)
    report = bucketed.load(write_jsonl(tmp_path / "c.jsonl", [
        {"identifications": {"id_uid": "u3"}, "properties": {"usr_i": 5}}]),
        InputFormat.JSONL, CATALOG)
    assert report.applied
    version = bucketed.store.current()
    after = _inodes(version.users)
    assert sorted(after) == sorted(before) and not set(after.values()) & set(before.values())
    assert duckdb.sql(f"SELECT gio_id, usr_i FROM read_parquet('{version.users}/*.parquet')"
                      " WHERE usr_i IS NOT NULL").fetchall() == [(3, 5)]


def test_a_dataset_written_before_buckets_is_bucketed_by_its_next_load(bucketed, tmp_path):
    version = bucketed.store.current()
    merged = tmp_path / "part-00000.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_parquet('{version.users}/*.parquet') ORDER BY gio_id)"
               f" TO '{merged}' (FORMAT PARQUET)")
    for part in version.users.iterdir():
        part.unlink()
    merged.rename(version.users / merged.name)  # the layout before buckets
    assert version.buckets() is None
    bucketed.load(write_jsonl(tmp_path / "m.jsonl", [
        {"identifications": {"id_uid": "u1"}, "properties": {"tag_t": "again"}}]),
        InputFormat.JSONL, CATALOG)
    current = bucketed.store.current()
    assert sorted(current.buckets().files) == [0, 1, 2, 3, 4]
    assert _rows(current)[0] == (1, "u1", "again") and len(_rows(current)) == 23


def test_a_computed_tag_rewrites_every_bucket_and_keeps_the_layout(bucketed):
    from tagport.computes import SqlDialect, SqlQuery

    before = _inodes(bucketed.store.current().users)
    covered = bucketed.compute_tag(
        CATALOG["tag_empty"], SqlQuery("SELECT gio_id, 'hi' AS tag_value FROM user"
                                       " WHERE gio_id % 2 = 0", SqlDialect.DUCKDB), as_of=date(2026, 1, 1))
    assert covered == 11
    version = bucketed.store.current()
    after = _inodes(version.users)
    assert sorted(after) == sorted(before) and not set(after.values()) & set(before.values())
    assert version.buckets().size == 5
    assert duckdb.sql(f"SELECT count(tag_empty) FROM read_parquet('{version.users}/*.parquet')"
                      ).fetchall() == [(11,)]


# --- merge-on-read: a spread load writes a delta ---------------------------------------------


@pytest.fixture
def with_deltas(tmp_path):
    """23 users in buckets of 5 gio_ids; deltas up to half the users, at most 2 files."""
    from tagport.engines.spark.engine import SparkEngine
    from tagport.engines.spark.store import DeltaPolicy, ProfileStore

    store = ProfileStore(tmp_path / "deltas", users_per_bucket=5,
                         deltas=DeltaPolicy(max_share=0.5, max_files=2))
    engine = SparkEngine(shared_spark(), store)
    _load_users(engine, tmp_path)
    yield engine
    engine.close()


def _tag(engine, tmp_path: Path, name: str, changes: dict[int, str]) -> None:
    report = engine.load(write_jsonl(tmp_path / f"{name}.jsonl", [
        {"identifications": {"id_uid": f"u{i}"}, "properties": {"tag_t": v}}
        for i, v in changes.items()]), InputFormat.JSONL, CATALOG)
    assert report.applied and report.updated == len(changes)


def _merged(version) -> list[tuple]:
    """The version's users as DuckDB reads them through the same merge."""
    from tagport.engines.spark.deltas import duckdb_users_sql

    return duckdb.sql(duckdb_users_sql(version, "gio_id, id_uid, tag_t") + " ORDER BY gio_id"
                      ).fetchall()


def _tag_of(engine, i: int) -> str | None:
    return engine.find_user("id_uid", f"u{i}", [CATALOG["tag_t"]])["properties"]["tag_t"]


def test_a_spread_load_writes_a_delta_links_every_bucket_and_readers_merge_it(with_deltas,
                                                                              tmp_path):
    before = with_deltas.store.current()
    old_users, old_rows = _inodes(before.users), _rows(before)
    with with_deltas.store.reading() as held:
        _tag(with_deltas, tmp_path, "spread", {4: "d1", 17: "d1"})  # buckets 0 and 3
        after = with_deltas.store.current()
        assert _merged(held) == old_rows  # the reader's version is whole and unchanged
    assert _inodes(after.users) == old_users and _rows(after) == old_rows  # linked
    [delta] = after.deltas()
    assert (delta.rows, delta.buckets) == (2, {0, 3})
    expected = [(g, u, "d1" if g in (4, 17) else t) for g, u, t in old_rows]
    assert _merged(after) == expected
    assert [_tag_of(with_deltas, i) for i in (3, 4, 17)] == ["v3", "d1", "d1"]
    assert _export(with_deltas, tmp_path, "e").row_count == COVERED + 1  # u4 had no tag_t
    assert with_deltas.tag_coverage([CATALOG["tag_t"]]).covered == {"tag_t": COVERED + 1}


def test_a_load_rewriting_a_bucket_takes_in_its_delta_rows_and_keeps_the_others(with_deltas,
                                                                                tmp_path):
    _tag(with_deltas, tmp_path, "spread", {4: "d1", 17: "d1"})
    before = with_deltas.store.current()
    old_users, expected = _inodes(before.users), _merged(before)
    _tag(with_deltas, tmp_path, "dense", {1: "r", 2: "r", 3: "r", 5: "r"})  # bucket 0 only
    after = with_deltas.store.current()
    users = _inodes(after.users)
    assert {n for n in users if users[n] != old_users[n]} == {"b000000.parquet"}
    [delta] = after.deltas()  # written again without bucket 0's row
    assert (delta.rows, delta.buckets) == (1, {3})
    assert _rows(after)[:5] == [(1, "u1", "r"), (2, "u2", "r"), (3, "u3", "r"),
                                (4, "u4", "d1"), (5, "u5", "r")]
    assert _merged(after) == [(g, u, "r" if g in (1, 2, 3, 5) else t) for g, u, t in expected]
    assert _tag_of(with_deltas, 17) == "d1"


def test_a_third_delta_file_compacts_and_a_computed_tag_folds_the_deltas(with_deltas, tmp_path):
    from tagport.computes import SqlDialect, SqlQuery

    _tag(with_deltas, tmp_path, "a", {4: "d1", 17: "d1"})
    _tag(with_deltas, tmp_path, "b", {9: "d2", 14: "d2", 4: "d2"})
    assert len(with_deltas.store.current().deltas()) == 2
    expected = _merged(with_deltas.store.current())
    assert [t for g, _, t in expected if g in (4, 9, 14, 17)] == ["d2", "d2", "d2", "d1"]
    _tag(with_deltas, tmp_path, "c", {19: "d3", 2: "d3"})  # a third file: compacted
    version = with_deltas.store.current()
    expected = [(g, u, "d3" if g in (2, 19) else t) for g, u, t in expected]
    assert version.deltas() == [] and _rows(version) == expected == _merged(version)
    _tag(with_deltas, tmp_path, "d", {8: "d4", 13: "d4"})
    assert len(with_deltas.store.current().deltas()) == 1
    with_deltas.compute_tag(CATALOG["tag_empty"], SqlQuery(
        "SELECT gio_id, 'hi' AS tag_value FROM user WHERE tag_t = 'd4'", SqlDialect.DUCKDB),
        as_of=date(2026, 1, 1))
    version = with_deltas.store.current()
    expected = [(g, u, "d4" if g in (8, 13) else t) for g, u, t in expected]
    assert version.deltas() == [] and _rows(version) == expected
    assert duckdb.sql(f"SELECT gio_id FROM read_parquet('{version.users}/*.parquet')"
                      " WHERE tag_empty = 'hi' ORDER BY gio_id").fetchall() == [(8,), (13,)]


def test_an_export_reads_each_bucket_with_its_deltas_in_gio_id_order(tmp_path):
    """Single-file exports read the buckets' files on the executors (a task per bucket);
    with deltas, new users among them in a bucket that has no file yet, the bytes are
    those of the export that Spark sorts (a split export in one part)."""
    from tagport.engines.spark.engine import SparkEngine
    from tagport.engines.spark.export import export as spark_export
    from tagport.engines.spark.store import DeltaPolicy, ProfileStore

    store = ProfileStore(tmp_path / "mor", users_per_bucket=5,
                         deltas=DeltaPolicy(factor=1.0, max_share=0.5, max_files=2))
    engine = SparkEngine(shared_spark(), store)
    try:
        _load_users(engine, tmp_path)
        report = engine.load(write_jsonl(tmp_path / "mixed.jsonl", [
            *({"identifications": {"id_uid": f"u{i}"}, "properties": {"tag_t": "d"}}
              for i in (4, 17)),
            *({"identifications": {"id_uid": f"u{i}"}, "properties": {"tag_t": f"n{i}"}}
              for i in (24, 25, 26))]), InputFormat.JSONL, CATALOG)
        assert report.applied and (report.updated, report.inserted) == (2, 3)
        version = store.current()
        [delta] = version.deltas()
        assert delta.rows == 5 and 5 in delta.buckets and 5 not in version.buckets().files
        for fmt in (FileFormat.CSV, FileFormat.JSON):
            work = tmp_path / f"buckets-{fmt.value}"
            work.mkdir()
            by_bucket = engine.export(_plan(fmt), work, "f")
            sorted_dir = tmp_path / f"sorted-{fmt.value}"
            sorted_dir.mkdir()
            by_spark = spark_export(engine.spark, store, _plan(fmt), sorted_dir, "f", 1000)
            assert by_bucket.row_count == by_spark.row_count == COVERED + 4
            assert by_bucket.files[0].read_bytes() == by_spark.files[0].read_bytes()
        gio_ids = [json.loads(line)["gio_id"]
                   for line in by_bucket.files[0].read_text("utf-8").splitlines()]
        assert gio_ids == sorted(gio_ids) and gio_ids[-3:] == [24, 25, 26]
    finally:
        engine.close()


def test_an_event_load_of_known_users_keeps_the_deltas(with_deltas, tmp_path):
    from zoneinfo import ZoneInfo

    from tagport.catalog.models import EventDefinition

    _tag(with_deltas, tmp_path, "spread", {4: "d1", 17: "d1"})
    before = with_deltas.store.current()
    deltas, rows = [d.entry() for d in before.deltas()], _merged(before)
    path = write_jsonl(tmp_path / "events.jsonl", [
        {"event": "visit", "time": "2026-11-20T10:00:00+08:00",
         "identifications": {"id_uid": "u4"}, "attributes": {}}])
    report = with_deltas.load_events(path, InputFormat.JSONL, CATALOG,
                                     {"visit": EventDefinition("visit", "访问")},
                                     zone=ZoneInfo("Asia/Shanghai"))
    assert report.applied and report.users_created == 0
    after = with_deltas.store.current()
    assert after.name != before.name and [d.entry() for d in after.deltas()] == deltas
    assert _merged(after) == rows and _tag_of(with_deltas, 4) == "d1"


# --- a first load of new users only: a task per file (first_load.py) ----------------------


def _first_load(tmp_path: Path, name: str, path: Path, fmt: InputFormat, *, general: bool,
                monkeypatch, **kw):
    """Load `path` into an empty store of buckets of 3; `general`: through resolve.py and
    apply.py (the first-load path turned off). The report, the version and the calls."""
    from tagport.engines.spark import load as spark_load
    from tagport.engines.spark.engine import SparkEngine
    from tagport.engines.spark.store import ProfileStore
    from tests.load_support import CATALOG as LOAD_CATALOG

    calls = []
    write = spark_load.write_first_load
    with monkeypatch.context() as patch:
        patch.setattr(spark_load, "write_first_load",
                      lambda *a, **k: calls.append(1) or write(*a, **k))
        if general:
            patch.setattr(spark_load, "first_load_facts", lambda *a, **k: None)
        engine = SparkEngine(shared_spark(), ProfileStore(tmp_path / name, users_per_bucket=3))
        report = engine.load(path, fmt, LOAD_CATALOG, **kw)
    return report, engine.store.current(), len(calls)


def _written(version) -> dict:
    """All a version holds, as Spark and DuckDB read it."""
    spark = shared_spark()
    users = spark.read.parquet(str(version.users))
    ids = spark.read.parquet(str(version.identity_map))
    return {
        "files": sorted(p.name for p in version.users.iterdir()),
        "layout": json.loads((version.users / "_buckets.json").read_text()),
        "spark types": [(f.name, f.dataType.simpleString()) for f in users.schema],
        "spark rows": sorted(tuple(r) for r in users.collect()),
        "duckdb rows": duckdb.sql(f"SELECT * FROM read_parquet('{version.users}/b*.parquet')"
                                  " ORDER BY gio_id").fetchall(),
        "bucket order": [duckdb.sql(f"SELECT gio_id FROM read_parquet('{f}')").fetchall()
                         for f in sorted(version.users.glob("b*.parquet"))],
        "identity types": [(f.name, f.dataType.simpleString()) for f in ids.schema],
        "identities": sorted(tuple(r) for r in ids.collect()),
        "manifest": version.manifest(),
    }


FIRST_LOAD = [
    {"identifications": {"id_$basic_userId": "C1", "id_device": ["D1", "D1b", "D1", ""]},
     "properties": {"usr_gender": 'a "quoted", comma\nnew line || 😀', "usr_age": -7,
                    "usr_score": 1.5, "usr_vip": True, "usr_birthday": "2024-02-29",
                    "usr_seen": "2024-02-29 23:59:01.123456", "tag_orders": [3, 1, 3],
                    "tag_rfm": "高"}},
    {"identifications": {"id_device": "D2"}, "properties": {"usr_age": "not a number"}},
    {"identifications": {"id_$basic_userId": "C3"},
     "properties": {"usr_seen": "2024-03-01T08:00:00+08:00", "usr_vip": False,
                    "tag_orders": [], "usr_gender": None}},
    {"identifications": {"id_device": ["D4"]}, "properties": {"usr_score": 0.1}},
    {"identifications": {"id_$basic_userId": "C5", "id_device": "D5"}},
    {"identifications": {"id_$basic_userId": "C6"}, "properties": {"usr_birthday": "1999-12-31"}},
    {"identifications": {"id_$basic_userId": "C7"}, "properties": {"tag_rfm": "低"}},
]


@pytest.mark.parametrize("fmt", [InputFormat.JSONL, InputFormat.CSV])
def test_a_first_load_of_new_users_writes_what_the_general_path_writes(tmp_path, monkeypatch,
                                                                        fmt):
    if fmt is InputFormat.JSONL:
        path = write_jsonl(tmp_path / "first.jsonl", FIRST_LOAD)
    else:
        path = tmp_path / "first.csv"
        path.write_text(
            "id_$basic_userId,id_device,usr_age,usr_seen,tag_orders,usr_vip\n"
            "C1,D1||D1b,3,2024-01-02 03:04:05,1||2,true\nC2,,x,,,\n,D3,,,,false\n"
            "C4,D4||D4,5,2024-01-02,,1\nC5,,6,,7,\nC6,,7,,,\nC7,D7,8,,,\n", encoding="utf-8")
    fast, fast_version, fast_calls = _first_load(tmp_path, "fast", path, fmt, general=False,
                                                 monkeypatch=monkeypatch, skip_invalid=True)
    slow, slow_version, slow_calls = _first_load(tmp_path, "slow", path, fmt, general=True,
                                                 monkeypatch=monkeypatch, skip_invalid=True)
    assert (fast_calls, slow_calls) == (1, 0)
    assert fast == slow
    assert (fast.applied, fast.inserted, fast.updated, fast.rejected) == (True, 6, 0, 1)
    assert _written(fast_version) == _written(slow_version)
    assert _written(fast_version)["files"] == [
        "_buckets.json", "b000000.parquet", "b000001.parquet"]


def test_a_first_load_with_rejects_and_no_skip_applies_nothing(tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "first.jsonl", FIRST_LOAD)
    report, version, calls = _first_load(tmp_path, "fast", path, InputFormat.JSONL,
                                         general=False, monkeypatch=monkeypatch)
    assert (report.applied, report.rejected, version, calls) == (False, 1, None, 0)


def test_a_first_load_whose_records_share_a_value_is_resolved_into_one_user(tmp_path,
                                                                             monkeypatch):
    path = write_jsonl(tmp_path / "first.jsonl", [
        {"identifications": {"id_$basic_userId": "C1"}, "properties": {"usr_age": 1}},
        {"identifications": {"id_$basic_userId": "C2", "id_device": "D"}},
        {"identifications": {"id_$basic_userId": "C1", "id_device": "D"},
         "properties": {"usr_age": 3}}])
    report, version, calls = _first_load(tmp_path, "fast", path, InputFormat.JSONL,
                                         general=False, monkeypatch=monkeypatch)
    assert (report.applied, report.inserted, calls) == (True, 1, 0)
    assert duckdb.sql(f"SELECT gio_id, \"id_$basic_userId\", id_device, usr_age FROM"
                      f" read_parquet('{version.users}/*.parquet')").fetchall() == [
        (1, "C1||C2", "D", 3)]


# --- a small load onto a stored dataset: resolved on the driver (driver_resolve.py) -------

UPDATE = [
    {"identifications": {"id_device": "D1b"}, "properties": {"usr_age": 40}},  # user 1
    {"identifications": {"id_$basic_userId": ["N1", "N1"], "id_device": "ND"},
     "properties": {"tag_rfm": "中"}},  # new, a value repeated
    {"identifications": {"id_$basic_userId": "N2", "id_device": "ND"},
     "properties": {"usr_score": 2.5}},  # shares ND with the line before: one new user
    {"identifications": {"id_$basic_userId": "C3", "id_device": "D4"}},  # two users: rejected
    {"gio_id": 5, "identifications": {"id_device": "D5b"},
     "properties": {"tag_orders": [9]}},  # a given gio_id gains a value
    {"identifications": {"id_$basic_userId": ["C6", "C7"]}},  # two users: rejected
    {"identifications": {"id_$basic_userId": "C7", "id_device": "D7"},
     "properties": {"usr_vip": True}},  # user 6, a new value
    {"identifications": {"id_$basic_userId": "N3"}},  # new
]


def _two_loads(tmp_path: Path, name: str, monkeypatch, *, driver_max: int):
    """FIRST_LOAD, then UPDATE (rejects skipped); the second report, the version and how
    often Spark's resolution (resolve.py) ran for the second load."""
    from tagport.engines.spark import load as spark_load
    from tagport.engines.spark.engine import SparkEngine
    from tagport.engines.spark.store import ProfileStore
    from tests.load_support import CATALOG as LOAD_CATALOG

    engine = SparkEngine(shared_spark(), ProfileStore(tmp_path / name, users_per_bucket=3),
                         driver_resolve_max_records=driver_max)
    first = write_jsonl(tmp_path / "first.jsonl", FIRST_LOAD)
    assert engine.load(first, InputFormat.JSONL, LOAD_CATALOG, skip_invalid=True).applied
    calls = []
    spark_resolve = spark_load.resolve.resolve
    with monkeypatch.context() as patch:
        patch.setattr(spark_load.resolve, "resolve",
                      lambda *a, **k: calls.append(1) or spark_resolve(*a, **k))
        update = write_jsonl(tmp_path / "update.jsonl", UPDATE)
        report = engine.load(update, InputFormat.JSONL, LOAD_CATALOG, skip_invalid=True)
    return report, engine.store.current(), len(calls)


def test_a_small_load_resolved_on_the_driver_writes_what_spark_resolution_writes(tmp_path,
                                                                                  monkeypatch):
    driver, driver_version, driver_calls = _two_loads(tmp_path, "driver", monkeypatch,
                                                      driver_max=100)
    spark, spark_version, spark_calls = _two_loads(tmp_path, "spark", monkeypatch,
                                                   driver_max=0)
    assert (driver_calls, spark_calls) == (0, 1)
    assert driver == spark
    assert (driver.applied, driver.inserted, driver.updated, driver.rejected) == (True, 2, 3, 2)
    assert [(r.line, r.field, r.reason) for r in driver.rejects] == [
        (4, None, "identity values belong to different users: id_$basic_userId 'C3' is"
                  " gio_id 2, id_device 'D4' is gio_id 3"),
        (6, None, "identity values belong to different users: id_$basic_userId 'C6' is"
                  " gio_id 5, id_$basic_userId 'C7' is gio_id 6")]
    assert _written(driver_version) == _written(spark_version)
    rows = duckdb.sql(f"SELECT gio_id, \"id_$basic_userId\", id_device, usr_age, usr_vip,"
                      f" tag_orders FROM read_parquet('{driver_version.users}/*.parquet')"
                      " ORDER BY gio_id").fetchall()
    assert rows[0] == (1, "C1", "D1||D1b", 40, True, [3, 1, 3])
    assert rows[4:] == [(5, "C6", "D5b", None, None, [9]), (6, "C7", "D7", None, True, None),
                        (7, "N1||N2", "ND", None, None, None), (8, "N3", None, None, None, None)]
