"""What only the DuckDB store shows of a load: its tables and its memory settings.

Every other load behaviour (formats, types, line numbers, rejects, resolution, nulls,
all or nothing) is in the shared suite, run on each engine: test_engine_load_contract.py
and test_engine_load_formats.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.engines.base import InputFormat, LoadReport
from tagport.engines.duckdb.load import load_file
from tagport.engines.duckdb.store import DuckDBStore

UID = "id_$basic_userId"
DEVICE = "id_device"
E = CatalogEntry
CATALOG = {e.key: e for e in [
    E(UID, Kind.IDENTITY, "用户ID", ValueType.STRING),
    E(DEVICE, Kind.IDENTITY, "设备", ValueType.STRING),
    E("usr_age", Kind.ATTRIBUTE, "年龄", ValueType.INT),
    E("usr_score", Kind.ATTRIBUTE, "得分", ValueType.DOUBLE),
    E("usr_vip", Kind.ATTRIBUTE, "会员", ValueType.BOOL),
    E("usr_birthday", Kind.ATTRIBUTE, "生日", ValueType.DATE),
    E("usr_seen", Kind.ATTRIBUTE, "最近访问", ValueType.DATETIME),
    E("tag_orders", Kind.TAG, "订单", ValueType.INT, is_array=True),
]}


@pytest.fixture
def store(tmp_path: Path):
    s = DuckDBStore(tmp_path / "p.duckdb")
    yield s
    s.close()


@pytest.fixture
def load_csv(store, tmp_path):
    files = iter(range(1, 1000))

    def load(text: str, **kw) -> LoadReport:
        path = tmp_path / f"in{next(files)}.csv"
        path.write_text(text, encoding="utf-8")
        return load_file(store, path, InputFormat.CSV, CATALOG, **kw)

    return load


def rows(store: DuckDBStore, query: str) -> list[tuple]:
    cur = store.cursor()
    try:
        return cur.execute(query).fetchall()
    finally:
        cur.close()


def test_values_are_stored_in_columns_of_their_types(load_csv, store):
    load_csv(f"{UID},usr_age,usr_score,usr_vip,usr_birthday,usr_seen,tag_orders\n"
             "C1||C2,42,1.5,TRUE,2020-02-29,2024-01-05T10:00:00,1||2||3\n"
             "C3,-7,3,0,1999-12-31,2024-01-05 10:00:00+08:00,\n")
    types = dict(rows(store, "SELECT column_name, data_type FROM information_schema.columns"
                             " WHERE table_name = 'users'"))
    assert types == {"gio_id": "UBIGINT", UID: "VARCHAR", "usr_age": "BIGINT",
                     "usr_score": "DOUBLE", "usr_vip": "BOOLEAN", "usr_birthday": "DATE",
                     "usr_seen": "TIMESTAMP", "tag_orders": "JSON"}
    # identities `||`-joined, arrays as JSON text, an empty array as NULL (see store.py)
    assert rows(store, "SELECT * FROM users ORDER BY gio_id") == [
        (1, "C1||C2", 42, 1.5, True, dt.date(2020, 2, 29), dt.datetime(2024, 1, 5, 10),
         "[1,2,3]"),
        (2, "C3", -7, 3.0, False, dt.date(1999, 12, 31), dt.datetime(2024, 1, 5, 2), None)]


def test_the_identity_map_holds_each_value_once(load_csv, store, tmp_path):
    load_csv(f"{UID},{DEVICE}\nC001||C001,D1\nC001,D1||D2\n")
    path = tmp_path / "more.jsonl"
    path.write_text(f'{{"identifications": {{"{UID}": ["C001", "C002"], "{DEVICE}": "D2"}}}}\n'
                    f'{{"identifications": {{"{UID}": "C002"}}}}\n')
    load_file(store, path, InputFormat.JSONL, CATALOG)
    assert rows(store, "SELECT id_key, id_value, gio_id FROM identity_map ORDER BY ALL") == [
        (UID, "C001", 1), (UID, "C002", 1), (DEVICE, "D1", 1), (DEVICE, "D2", 1)]


def test_a_load_runs_under_the_load_memory_limit_and_gives_it_back(tmp_path):
    store = DuckDBStore(tmp_path / "m.duckdb", memory_limit="64MB", load_memory_limit="1GB")
    seen: list[str] = []

    def limit() -> str:
        return rows(store, "SELECT current_setting('memory_limit')")[0][0]

    try:
        before = limit()
        path = tmp_path / "in.csv"
        path.write_text(f"{UID},usr_age\nu1,30\n")
        report = load_file(store, path, InputFormat.CSV, CATALOG,
                           before_commit=lambda _report: seen.append(limit()))
        assert report.applied
        assert seen == ["953.6 MiB"]  # DuckDB shows 1GB (10^9 bytes) in MiB
        assert limit() == before == "61.0 MiB"
        # a load that fails gives the limit back too
        path.write_text(f"{UID},usr_age\nu2,old\n")
        assert not load_file(store, path, InputFormat.CSV, CATALOG).applied
        assert limit() == before
    finally:
        store.close()
