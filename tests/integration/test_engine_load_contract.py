"""Loading, the same on every engine: identity resolution, conflicts, all or nothing, nulls.

Each behaviour is loaded through `Engine.load` and read back through `Engine.export`, so
the assertions hold for any engine. DuckDB-only details (its storage, large-file line
numbers) stay in test_duckdb_load.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.engines.base import InputFormat, LoadReport
from tagport.engines.duckdb.engine import DuckDBEngine
from tagport.engines.duckdb.store import DuckDBStore
from tagport.exports.formats import FileFormat, OutputFormat
from tagport.exports.plan import ExportPlan
from tests.spark_support import shared_spark

UID, DEVICE = "id_uid", "id_device"
E = CatalogEntry
CATALOG = {e.key: e for e in [
    E(UID, Kind.IDENTITY, "用户ID", ValueType.STRING),
    E(DEVICE, Kind.IDENTITY, "设备", ValueType.STRING),
    E("usr_gender", Kind.ATTRIBUTE, "性别", ValueType.STRING),
    E("usr_age", Kind.ATTRIBUTE, "年龄", ValueType.INT),
    E("tag_all", Kind.TAG, "全部", ValueType.STRING),
    E("tag_orders", Kind.TAG, "订单", ValueType.INT, is_array=True),
]}


def duckdb_engine(tmp_path: Path):
    return DuckDBEngine(DuckDBStore(tmp_path / "p.duckdb"))


def spark_engine(tmp_path: Path):
    from tagport.engines.spark.engine import SparkEngine
    from tagport.engines.spark.store import ProfileStore

    return SparkEngine(shared_spark(), ProfileStore(tmp_path / "profiles"))


@pytest.fixture(params=[duckdb_engine, spark_engine], ids=["duckdb", "spark"])
def engine(request, tmp_path):
    engine = request.param(tmp_path)
    yield engine
    engine.close()


class Users:
    """Loads JSON-lines records (every record carries tag_all, so every user is exported)
    and reads the users back as exported JSON."""

    def __init__(self, engine, tmp: Path) -> None:
        self.engine, self.tmp, self.n = engine, tmp, 0

    def load(self, *records: dict, **kw) -> LoadReport:
        self.n += 1
        path = self.tmp / f"in{self.n}.jsonl"
        lines = [json.dumps({**r, "properties": {"tag_all": "x", **r.get("properties", {})}},
                            ensure_ascii=False) for r in records]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self.engine.load(path, InputFormat.JSONL, CATALOG, **kw)

    def read(self, *keys: str) -> list[tuple]:
        self.n += 1
        work = self.tmp / f"out{self.n}"
        work.mkdir()
        plan = ExportPlan.for_tag(CATALOG["tag_all"], tuple(CATALOG[k] for k in keys), OutputFormat(FileFormat.JSON))
        rows = []
        for line in self.engine.export(plan, work, "u.json").files[0].read_text().splitlines():
            doc = json.loads(line)
            values = {**doc["identifications"], **doc["properties"]}
            rows.append((doc["gio_id"], *(values[k] for k in keys)))
        return rows


@pytest.fixture
def users(engine, tmp_path) -> Users:
    return Users(engine, tmp_path)


def lines(report: LoadReport) -> list[tuple[int, str | None]]:
    return [(r.line, r.field) for r in report.rejects]


def test_new_users_get_ascending_ids_and_later_files_resolve_them_by_any_identity(users):
    report = users.load({"identifications": {UID: "C1", DEVICE: "D1"}},
                        {"identifications": {UID: "C2"}, "properties": {"usr_age": 20}})
    assert (report.applied, report.inserted, report.updated) == (True, 2, 0)
    report = users.load({"identifications": {DEVICE: "D1"}, "properties": {"usr_gender": "男"}},
                        {"identifications": {UID: ["C2", "C3"]}},
                        {"identifications": {UID: "C4"}})
    assert (report.inserted, report.updated) == (1, 2)
    assert users.read(UID, DEVICE, "usr_gender", "usr_age") == [
        (1, "C1", "D1", "男", None), (2, "C2||C3", None, None, 20), (3, "C4", None, None, None)]


def test_records_sharing_values_become_one_user_even_through_a_chain(users):
    chain = [{"identifications": {DEVICE: [f"D{i}", f"D{i + 1}"]}} for i in range(6, 0, -1)]
    report = users.load({"identifications": {UID: "C1", DEVICE: "D1"}}, *chain,
                        {"identifications": {UID: "C9"}, "properties": {"usr_age": 1}},
                        {"identifications": {DEVICE: "D7"}, "properties": {"usr_age": 5}})
    assert report.inserted == 2
    assert users.read(UID, "usr_age") == [(1, "C1", 5), (2, "C9", 1)]


def test_a_conflict_is_rejected_with_its_line_and_nothing_is_applied(users):
    users.load({"identifications": {UID: "C1", DEVICE: "D1"}},
               {"identifications": {UID: "C2", DEVICE: "D2"}})
    report = users.load({"identifications": {UID: "C3"}},
                        {"identifications": {UID: "C1", DEVICE: "D2"}},
                        {"gio_id": 9, "identifications": {UID: "C5"}},
                        {"identifications": {UID: "C6"}, "properties": {"usr_age": "old"}})
    assert not report.applied and report.rejected == 3
    assert lines(report) == [(2, None), (3, "gio_id"), (4, "usr_age")]
    assert "gio_id 1" in report.rejects[0].reason and "gio_id 2" in report.rejects[0].reason
    assert users.read(UID, DEVICE) == [(1, "C1", "D1"), (2, "C2", "D2")]
    report = users.load({"identifications": {UID: "C3"}},
                        {"identifications": {UID: "C1", DEVICE: "D2"}}, skip_invalid=True)
    assert (report.applied, report.inserted, lines(report)) == (True, 1, [(2, None)])
    assert users.read(UID) == [(1, "C1"), (2, "C2"), (3, "C3")]


def test_an_absent_key_keeps_its_value_null_clears_and_the_last_record_wins(users):
    users.load({"identifications": {UID: "C1"},
                "properties": {"usr_gender": "男", "usr_age": 30, "tag_orders": [1, 2]}})
    users.load({"identifications": {UID: "C1"}, "properties": {"usr_age": None}},
               {"identifications": {UID: "C1"}, "properties": {"tag_orders": [3]}},
               {"identifications": {UID: "C1"}, "properties": {"tag_orders": []}})
    assert users.read("usr_gender", "usr_age", "tag_orders") == [(1, "男", None, None)]


def test_before_commit_sees_the_report_and_can_cancel_the_load(users):
    seen: list[LoadReport] = []
    users.load({"identifications": {UID: "C1"}, "properties": {"usr_age": 1}},
               before_commit=seen.append)
    assert seen[0].applied and seen[0].inserted == 1
    assert seen[0].keys_with_data == [UID, "tag_all", "usr_age"]

    def refuse(report: LoadReport) -> None:
        raise RuntimeError("metadata store unavailable")

    with pytest.raises(RuntimeError):
        users.load({"identifications": {UID: "C2"}}, before_commit=refuse)
    assert users.read(UID) == [(1, "C1")]
    assert users.engine.user_count() == 1
