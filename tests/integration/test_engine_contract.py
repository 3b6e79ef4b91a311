"""The shared suite every engine must pass: loading then exporting gives exact bytes."""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path

import pytest

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.engines.base import InputFormat
from tagport.engines.duckdb.engine import DuckDBEngine
from tagport.engines.duckdb.store import DuckDBStore
from tagport.exports.formats import FileFormat, HeaderType, OutputFormat
from tagport.exports.plan import ExportPlan, ExportStopped
from tests.conftest import write_jsonl
from tests.spark_support import loaded_spark_engine

E = CatalogEntry
CATALOG = {e.key: e for e in [
    E("id_uid", Kind.IDENTITY, "用户ID", ValueType.STRING),
    E("usr_s", Kind.ATTRIBUTE, "文本", ValueType.STRING),
    E("usr_i", Kind.ATTRIBUTE, "整数", ValueType.INT),
    E("usr_d", Kind.ATTRIBUTE, "小数", ValueType.DOUBLE),
    E("usr_b", Kind.ATTRIBUTE, "布尔", ValueType.BOOL),
    E("usr_day", Kind.ATTRIBUTE, "日期", ValueType.DATE),
    E("usr_ts", Kind.ATTRIBUTE, "时间", ValueType.DATETIME),
    E("usr_never", Kind.ATTRIBUTE, "从未加载", ValueType.INT),
    E("tag_t", Kind.TAG, "标签", ValueType.STRING),
    E("tag_n", Kind.TAG, "数组", ValueType.INT, is_array=True),
    E("tag_empty", Kind.TAG, "空标签", ValueType.STRING),
]}
TRICKY = 'a "quoted", comma\nnew line || 😀 \t'
RECORDS = [
    {"identifications": {"id_uid": "u1"},
     "properties": {"usr_s": TRICKY, "usr_i": -7, "usr_d": 1.5, "usr_b": True,
                    "usr_day": "2024-02-29", "usr_ts": "2024-02-29 23:59:01", "tag_t": "x",
                    "tag_n": [3, 1]}},
    {"identifications": {"id_uid": "u2"}, "properties": {"usr_s": "", "tag_t": "y"}},
    {"identifications": {"id_uid": "u3"}, "properties": {"usr_s": "not covered"}},
]


def load_records(engine, tmp_path: Path):
    report = engine.load(write_jsonl(tmp_path / "u.jsonl", RECORDS), InputFormat.JSONL, CATALOG)
    assert report.applied and report.inserted == 3
    return engine


def duckdb_engine(tmp_path: Path):
    return load_records(DuckDBEngine(DuckDBStore(tmp_path / "p.duckdb")), tmp_path)


def spark_engine(tmp_path: Path):
    # the records are loaded once per test session (a Spark load takes seconds) and each
    # test gets its own copy of the resulting dataset
    return loaded_spark_engine(tmp_path, "contract", load_records)


@pytest.fixture(params=[duckdb_engine, spark_engine], ids=["duckdb", "spark"])
def engine(request, tmp_path):
    engine = request.param(tmp_path)
    yield engine
    engine.close()


def run(engine, tmp_path, keys, fmt=FileFormat.CSV, header=HeaderType.KEY, tag="tag_t") -> bytes:
    plan = ExportPlan.for_tag(CATALOG[tag], tuple(CATALOG[k] for k in keys), OutputFormat(fmt, header))
    work = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    work.mkdir()
    output = engine.export(plan, work, "f.csv")
    assert [p.name for p in output.files] == ["f.csv"]
    return output.files[0].read_bytes()


ALL = ["id_uid", "usr_s", "usr_i", "usr_d", "usr_b", "usr_day", "usr_ts", "usr_never", "tag_n"]


def test_csv_quotes_strings_and_leaves_numbers_booleans_and_nulls_bare(engine, tmp_path):
    assert run(engine, tmp_path, ALL).decode() == (
        '"gio_id","id_uid","usr_s","usr_i","usr_d","usr_b","usr_day","usr_ts","usr_never","tag_n"\n'
        '1,"u1","a ""quoted"", comma\nnew line || 😀 \t",-7,1.5,true,"2024-02-29",'
        '"2024-02-29 23:59:01",,"3||1"\n'
        '2,"u2","",,,,,,,\n'
    )


def test_csv_round_trips_through_pythons_csv_module(engine, tmp_path):
    rows = list(csv.reader(io.StringIO(run(engine, tmp_path, ["usr_s"]).decode(), newline="")))
    assert rows == [["gio_id", "usr_s"], ["1", TRICKY], ["2", ""]]


def test_csv_name_header_uses_display_names(engine, tmp_path):
    first = run(engine, tmp_path, ["id_uid", "usr_i"], header=HeaderType.NAME).split(b"\n")[0]
    assert first.decode() == '"gio_id","用户ID","整数"'


def test_json_lines_nest_identities_and_properties_in_requested_order(engine, tmp_path):
    lines = run(engine, tmp_path, ["usr_i", "id_uid", "usr_s", "usr_day", "usr_ts", "usr_b",
                                   "usr_d", "usr_never", "tag_n"], FileFormat.JSON).decode()
    assert lines == (
        '{"gio_id":1,"identifications":{"id_uid":"u1"},"properties":{"usr_i":-7,'
        '"usr_s":"a \\"quoted\\", comma\\nnew line || 😀 \\t","usr_day":"2024-02-29",'
        '"usr_ts":"2024-02-29 23:59:01","usr_b":true,"usr_d":1.5,"usr_never":null,"tag_n":[3,1]}}\n'
        '{"gio_id":2,"identifications":{"id_uid":"u2"},"properties":{"usr_i":null,"usr_s":"",'
        '"usr_day":null,"usr_ts":null,"usr_b":null,"usr_d":null,"usr_never":null,"tag_n":null}}\n'
    )
    assert json.loads(lines.splitlines()[0])["properties"]["usr_s"] == TRICKY


def test_a_tag_without_users_gives_a_header_only_csv_and_an_empty_json(engine, tmp_path):
    assert run(engine, tmp_path, ["usr_i"], tag="tag_empty") == b'"gio_id","usr_i"\n'
    assert run(engine, tmp_path, ["usr_i"], FileFormat.JSON, tag="tag_empty") == b""


def test_export_reports_the_row_count(engine, tmp_path):
    plan = ExportPlan.for_tag(CATALOG["tag_t"], (), OutputFormat(FileFormat.CSV))
    assert engine.export(plan, tmp_path, "a.csv").row_count == 2
    plan = ExportPlan.for_tag(CATALOG["tag_t"], (), OutputFormat(FileFormat.JSON))
    assert engine.export(plan, tmp_path, "a.json").row_count == 2


@pytest.mark.parametrize("fmt", [FileFormat.CSV, FileFormat.JSON])
def test_a_set_stop_event_ends_the_export_with_export_stopped(engine, tmp_path, fmt):
    plan = ExportPlan.for_tag(CATALOG["tag_t"], (CATALOG["usr_s"],), OutputFormat(fmt))
    stop = threading.Event()
    before = run(engine, tmp_path, ["usr_s"], fmt)
    assert engine.export(plan, tmp_path, "unset", stop).files[0].read_bytes() == before
    stop.set()
    # (DuckDB counts the rows it wrote; Spark's tasks do not tell)
    with pytest.raises(ExportStopped, match=r"^the export was stopped( after 0 rows)?$"):
        engine.export(plan, tmp_path, "stopped", stop)


def test_user_count_counts_every_user(engine):
    assert engine.user_count() == 3


def test_exports_stay_in_gio_id_order_after_updates(engine, tmp_path):
    # updating early users (identities, array tags, scalars) must not move them in the scan
    updates = write_jsonl(tmp_path / "upd.jsonl", [
        {"identifications": {"id_uid": ["u1", "u1b"]},
         "properties": {"tag_n": [9], "usr_i": 1, "tag_t": "x2"}},
        {"identifications": {"id_uid": "u4"}, "properties": {"tag_t": "z"}},
        {"identifications": {"id_uid": "u2"}, "properties": {"tag_n": [5, 6]}},
    ])
    assert engine.load(updates, InputFormat.JSONL, CATALOG).updated == 2
    assert run(engine, tmp_path, ["id_uid", "tag_n"]).decode() == (
        '"gio_id","id_uid","tag_n"\n1,"u1||u1b","9"\n2,"u2","5||6"\n4,"u4",\n'
    )
