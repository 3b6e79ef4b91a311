"""Loading user records into the DuckDB store: formats, types, identity resolution."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.engines.base import InputFormat, LoadReport
from tagport.engines.duckdb.load import load_file
from tagport.engines.duckdb.store import DuckDBStore
from tagport.engines.staging.sql import SQL_TYPES
from tagport.errors import InvalidInput

UID = "id_$basic_userId"
DEVICE = "id_device"


def _entries() -> list[CatalogEntry]:
    return [
        CatalogEntry(UID, Kind.IDENTITY, "用户ID", ValueType.STRING),
        CatalogEntry(DEVICE, Kind.IDENTITY, "设备", ValueType.STRING),
        CatalogEntry("usr_gender", Kind.ATTRIBUTE, "性别", ValueType.STRING),
        CatalogEntry("usr_age", Kind.ATTRIBUTE, "年龄", ValueType.INT),
        CatalogEntry("usr_score", Kind.ATTRIBUTE, "得分", ValueType.DOUBLE),
        CatalogEntry("usr_vip", Kind.ATTRIBUTE, "会员", ValueType.BOOL),
        CatalogEntry("usr_birthday", Kind.ATTRIBUTE, "生日", ValueType.DATE),
        CatalogEntry("usr_seen", Kind.ATTRIBUTE, "最近访问", ValueType.DATETIME),
        CatalogEntry("tag_rfm", Kind.TAG, "会员等级", ValueType.STRING),
        CatalogEntry("tag_orders", Kind.TAG, "订单", ValueType.INT, is_array=True),
    ]


@pytest.fixture
def catalog() -> dict[str, CatalogEntry]:
    return {e.key: e for e in _entries()}


@pytest.fixture
def store(tmp_path: Path):
    s = DuckDBStore(tmp_path / "p.duckdb")
    yield s
    s.close()


class Loader:
    """Writes small input files and loads them into the store."""

    def __init__(self, store: DuckDBStore, catalog: dict[str, CatalogEntry], tmp: Path) -> None:
        self.store, self.catalog, self.tmp, self.n = store, catalog, tmp, 0

    def _path(self, suffix: str) -> Path:
        self.n += 1
        return self.tmp / f"in{self.n}.{suffix}"

    def csv(self, text: str, **kw) -> LoadReport:
        path = self._path("csv")
        path.write_text(text, encoding="utf-8")
        return load_file(self.store, path, InputFormat.CSV, self.catalog, **kw)

    def jsonl(self, *records: dict | str, **kw) -> LoadReport:
        path = self._path("jsonl")
        lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return load_file(self.store, path, InputFormat.JSONL, self.catalog, **kw)

    def parquet(self, table: pa.Table, **kw) -> LoadReport:
        path = self._path("parquet")
        pq.write_table(table, path)
        return load_file(self.store, path, InputFormat.PARQUET, self.catalog, **kw)


@pytest.fixture
def load(store, catalog, tmp_path) -> Loader:
    return Loader(store, catalog, tmp_path)


def _as_list(col: str) -> str:
    """Identities are stored `||`-joined and array tags as JSON; read both back as lists."""
    entry = {e.key: e for e in _entries()}.get(col)
    if entry is not None and entry.is_identity:
        return f'string_split("{col}", \'||\')'
    if entry is not None and entry.is_array:
        return f'CAST("{col}" AS {SQL_TYPES[entry.value_type]}[])'
    return f'"{col}"'


def users(store: DuckDBStore, *cols: str) -> list[tuple]:
    names = ", ".join(["gio_id", *(_as_list(c) for c in cols)])
    cur = store.cursor()
    try:
        return cur.execute(f"SELECT {names} FROM users ORDER BY gio_id").fetchall()
    finally:
        cur.close()


def identity_map(store: DuckDBStore) -> list[tuple]:
    cur = store.cursor()
    try:
        query = "SELECT id_key, id_value, gio_id FROM identity_map ORDER BY ALL"
        return cur.execute(query).fetchall()
    finally:
        cur.close()


def reject_lines(report: LoadReport) -> list[tuple[int, str | None]]:
    return [(r.line, r.field) for r in report.rejects]


# --- inserting and resolving -------------------------------------------------------------


def test_new_users_get_ascending_gio_ids_from_1(load, store):
    report = load.csv(f"{UID},usr_gender\nC001,男\nC002,女\nC003,男\n")
    assert (report.applied, report.inserted, report.updated, report.rejected) == (True, 3, 0, 0)
    assert users(store, UID, "usr_gender") == [
        (1, ["C001"], "男"), (2, ["C002"], "女"), (3, ["C003"], "男")]
    assert load.csv(f"{UID}\nC004\n").inserted == 1
    assert users(store)[-1] == (4,)


def test_second_file_resolves_existing_users_by_any_identity_value(load, store):
    load.csv(f"{UID},{DEVICE},usr_gender\nC001,D1,男\nC002,D2,女\n")
    report = load.csv(f"{DEVICE},tag_rfm\nD2,高\nD1,低\n")
    assert (report.inserted, report.updated) == (0, 2)
    assert users(store, UID, "tag_rfm", "usr_gender") == [
        (1, ["C001"], "低", "男"), (2, ["C002"], "高", "女")]


def test_multi_valued_identities_accumulate_and_each_value_finds_the_user(load, store):
    load.csv(f"{UID}\nC001||C002\n")
    load.jsonl({"identifications": {UID: ["C002", "C003"]}, "properties": {"usr_age": 30}})
    load.jsonl({"identifications": {UID: "C003||C004||C004"}, "properties": {"tag_rfm": "高"}})
    assert users(store, UID, "usr_age", "tag_rfm") == [
        (1, ["C001", "C002", "C003", "C004"], 30, "高")]
    report = load.csv(f"{UID},usr_gender\nC001,男\nC004,女\n")
    assert (report.inserted, report.updated) == (0, 1)
    assert users(store, "usr_gender") == [(1, "女")]


def test_records_in_one_file_sharing_an_identity_become_one_user(load, store):
    report = load.jsonl(
        {"identifications": {UID: "C001"}, "properties": {"usr_gender": "男"}},
        {"identifications": {UID: "C001", DEVICE: "D1"}, "properties": {"usr_age": 20}},
        {"identifications": {UID: "C009"}},
        {"identifications": {DEVICE: ["D1", "D2"]}, "properties": {"usr_gender": "女"}},
    )
    assert (report.inserted, report.updated) == (2, 0)
    # the group's first line comes first, so it gets gio_id 1; the last record wins
    assert users(store, UID, DEVICE, "usr_gender", "usr_age") == [
        (1, ["C001"], ["D1", "D2"], "女", 20), (2, ["C009"], None, None, None)]


def test_chained_records_are_linked_transitively(load, store):
    # line 2 and line 21 are linked only through a chain of 19 other records
    chain = [{"identifications": {DEVICE: [f"D{i}", f"D{i + 1}"]}} for i in range(20, 0, -1)]
    report = load.jsonl({"identifications": {UID: "C1", DEVICE: "D1"}}, *chain,
                        {"identifications": {UID: "C2"}})
    assert report.inserted == 2
    assert users(store, UID) == [(1, ["C1"]), (2, ["C2"])]
    assert len(identity_map(store)) == 2 + 21


def test_gio_id_given_updates_that_user(load, store):
    load.csv(f"{UID}\nC001\nC002\n")
    report = load.csv(f"gio_id,{DEVICE},usr_gender\n2,D9,女\n")
    assert (report.inserted, report.updated) == (0, 1)
    assert users(store, UID, DEVICE, "usr_gender") == [
        (1, ["C001"], None, None), (2, ["C002"], ["D9"], "女")]


def test_unknown_gio_id_is_rejected(load, store):
    load.csv(f"{UID}\nC001\n")
    report = load.jsonl({"gio_id": 7, "properties": {"usr_gender": "男"}})
    assert not report.applied
    assert reject_lines(report) == [(1, "gio_id")]
    assert "gio_id 7 is not a known user" in report.rejects[0].reason


def test_gio_id_with_another_users_identity_is_rejected(load, store):
    load.csv(f"{UID}\nC001\nC002\n")
    report = load.csv(f"gio_id,{UID}\n1,C002\n")
    assert reject_lines(report) == [(2, UID)]
    assert "belongs to gio_id 2" in report.rejects[0].reason


def test_record_without_identity_or_gio_id_is_rejected(load):
    report = load.jsonl({"properties": {"usr_gender": "男"}})
    assert reject_lines(report) == [(1, None)]
    assert "at least one identity value or a gio_id" in report.rejects[0].reason


# --- conflicts, all or nothing --------------------------------------------------------------


def test_conflict_between_two_existing_users_is_rejected_with_its_line(load, store):
    load.csv(f"{UID},{DEVICE}\nC001,D1\nC002,D2\n")
    report = load.csv(f"{UID},{DEVICE},usr_gender\nC003,,男\nC001,D2,女\n")
    assert not report.applied
    assert report.rejected == 1
    assert reject_lines(report) == [(3, None)]
    reason = report.rejects[0].reason
    assert "gio_id 1" in reason and "gio_id 2" in reason and "'D2'" in reason
    assert users(store, UID, DEVICE) == [(1, ["C001"], ["D1"]), (2, ["C002"], ["D2"])]


def test_group_linking_two_existing_users_is_rejected_whole(load, store):
    load.csv(f"{UID}\nC001\nC002\n")
    report = load.jsonl(
        {"identifications": {UID: "C001", DEVICE: "D1"}},
        {"identifications": {DEVICE: "D1"}, "properties": {"usr_age": 5}},
        {"identifications": {UID: "C002", DEVICE: "D1"}},
        {"identifications": {UID: "C003"}},
        skip_invalid=True,
    )
    assert reject_lines(report) == [(1, None), (2, None), (3, None)]
    assert "gio_ids 1, 2" in report.rejects[0].reason
    assert (report.applied, report.inserted, report.updated) == (True, 1, 0)
    assert users(store, UID, "usr_age") == [(1, ["C001"], None), (2, ["C002"], None),
                                           (3, ["C003"], None)]


def test_one_bad_row_changes_nothing(load, store):
    load.csv(f"{UID},usr_age\nC001,1\n")
    before_users, before_map = users(store, UID, "usr_age"), identity_map(store)
    report = load.csv(f"{UID},usr_age\nC001,2\nC002,3\nC003,old\n")
    assert (report.applied, report.rejected, report.inserted, report.updated) == (False, 1, 0, 0)
    assert reject_lines(report) == [(4, "usr_age")]
    assert users(store, UID, "usr_age") == before_users
    assert identity_map(store) == before_map
    assert store.user_count() == 1


def test_skip_invalid_applies_the_other_records(load, store):
    report = load.csv(f"{UID},usr_age\nC001,2\nC002,x\nC003,4\n", skip_invalid=True)
    assert (report.applied, report.rejected, report.inserted) == (True, 1, 2)
    assert reject_lines(report) == [(3, "usr_age")]
    assert users(store, UID, "usr_age") == [(1, ["C001"], 2), (2, ["C003"], 4)]


def test_rejected_record_does_not_link_a_group(load, store):
    # line 3 would link C001 and C002 into one user, but its age is invalid
    report = load.csv(f"{UID},usr_age\nC001,1\nC001||C002,x\nC002,3\n", skip_invalid=True)
    assert report.inserted == 2
    assert users(store, UID, "usr_age") == [(1, ["C001"], 1), (2, ["C002"], 3)]


def test_before_commit_sees_the_report_and_can_cancel_the_load(load, store):
    seen: list[LoadReport] = []
    load.csv(f"{UID}\nC001\n", before_commit=seen.append)
    assert seen[0].applied and seen[0].inserted == 1

    def refuse(report: LoadReport) -> None:
        raise RuntimeError("metadata store unavailable")

    with pytest.raises(RuntimeError):
        load.csv(f"{UID}\nC002\n", before_commit=refuse)
    assert users(store, UID) == [(1, ["C001"])]
    assert identity_map(store) == [(UID, "C001", 1)]


def test_identity_map_stays_unique(load, store):
    load.csv(f"{UID},{DEVICE}\nC001||C001,D1\nC001,D1||D2\n")
    load.jsonl({"identifications": {UID: ["C001", "C002"], DEVICE: "D2"}},
               {"identifications": {UID: "C002"}})
    cur = store.cursor()
    dupes = cur.execute("SELECT count(*) FROM (SELECT id_key, id_value FROM identity_map"
                        " GROUP BY ALL HAVING count(*) > 1)").fetchall()[0][0]
    cur.close()
    assert dupes == 0
    assert identity_map(store) == [(UID, "C001", 1), (UID, "C002", 1),
                                   (DEVICE, "D1", 1), (DEVICE, "D2", 1)]


# --- presence and nulls ---------------------------------------------------------------------


def test_jsonl_absent_key_keeps_value_and_explicit_null_clears(load, store):
    load.jsonl({"identifications": {UID: "C001"},
                "properties": {"usr_gender": "男", "usr_age": 30, "tag_orders": [1, 2]}})
    load.jsonl({"identifications": {UID: "C001"}, "properties": {"usr_age": None}})
    assert users(store, "usr_gender", "usr_age", "tag_orders") == [(1, "男", None, [1, 2])]
    load.jsonl({"identifications": {UID: "C001"}, "properties": {"tag_orders": []}})
    assert users(store, "usr_gender", "tag_orders") == [(1, "男", None)]


def test_last_record_carrying_a_key_wins_even_with_null(load, store):
    load.jsonl(
        {"identifications": {UID: "C001"}, "properties": {"usr_gender": "男", "usr_age": 1}},
        {"identifications": {UID: "C001"}, "properties": {"usr_gender": None}},
        {"identifications": {UID: "C001"}, "properties": {"usr_age": 3}},
    )
    assert users(store, "usr_gender", "usr_age") == [(1, None, 3)]


def test_empty_csv_field_clears_the_value(load, store):
    load.csv(f"{UID},usr_gender,usr_age\nC001,男,30\n")
    report = load.csv(f"{UID},usr_gender,usr_age\nC001,,31\n")
    assert report.updated == 1
    assert users(store, "usr_gender", "usr_age") == [(1, None, 31)]


def test_quoted_empty_csv_string_is_an_empty_string_and_bare_empty_is_null(load, store):
    load.csv(f'{UID},usr_gender,tag_rfm,usr_age\nC001,"",,""\n')
    assert users(store, "usr_gender", "tag_rfm", "usr_age") == [(1, "", None, None)]


def test_jsonl_and_parquet_empty_strings_stay_empty_strings(load, store):
    load.jsonl({"identifications": {UID: "C001"}, "properties": {"usr_gender": "", "usr_age": ""}})
    load.parquet(pa.table({UID: ["C002"], "tag_rfm": [""]}))
    assert users(store, "usr_gender", "usr_age", "tag_rfm") == [(1, "", None, None), (2, None, None, "")]


def test_keys_with_data_lists_keys_that_received_values(load):
    report = load.jsonl({"identifications": {UID: "C001"},
                         "properties": {"usr_gender": "男", "usr_age": None}})
    assert report.keys_with_data == [UID, "usr_gender"]


def test_keys_with_data_count_new_users_from_one_record_or_several_and_updated_users(load, store):
    load.jsonl({"identifications": {UID: "C1"}, "properties": {"usr_age": 30}})
    report = load.jsonl(
        {"identifications": {UID: "C1"}, "properties": {"usr_gender": "男"}},  # an update
        {"identifications": {UID: "C2"}, "properties": {"tag_rfm": "高"}},  # new, one record
        # new from two records: the last carrier's null wins, so usr_score gets no value
        {"identifications": {UID: "C3"}, "properties": {"usr_score": 1.5}},
        {"identifications": {UID: "C3"}, "properties": {"usr_score": None, "usr_vip": True}},
    )
    assert (report.inserted, report.updated) == (2, 1)
    # usr_age holds data from the first load only: this load gave it nothing
    assert report.keys_with_data == [UID, "tag_rfm", "usr_gender", "usr_vip"]
    assert users(store, UID, "usr_age", "usr_gender", "tag_rfm", "usr_score", "usr_vip") == [
        (1, ["C1"], 30, "男", None, None, None),
        (2, ["C2"], None, None, "高", None, None),
        (3, ["C3"], None, None, None, None, True),
    ]


def test_csv_in_the_export_shape_loads_back(load, store, tmp_path, catalog):
    load.csv(f"{UID}\nC001\n")
    path = tmp_path / "export.csv"
    # the spec's export: UTF-8 BOM for Excel, every header cell quoted, CRLF tolerated
    path.write_bytes(
        '\ufeff"gio_id","id_$basic_userId","usr_gender","tag_rfm"\r\n1,"C001","男","高"\r\n'
        .encode())
    report = load_file(store, path, InputFormat.CSV, catalog)
    assert (report.applied, report.updated) == (True, 1)
    assert users(store, UID, "usr_gender", "tag_rfm") == [(1, ["C001"], "男", "高")]


def test_csv_with_only_a_header_loads_nothing(load, store):
    report = load.csv(f"gio_id,{UID}\n")
    assert (report.applied, report.inserted, report.rejected) == (True, 0, 0)
    assert store.user_count() == 0


# --- types ----------------------------------------------------------------------------------


def test_values_are_stored_with_their_types(load, store):
    load.csv(f"{UID},usr_age,usr_score,usr_vip,usr_birthday,usr_seen,tag_orders\n"
             "C1,42,1.5,TRUE,2020-02-29,2024-01-05T10:00:00,1||2||3\n"
             "C2,-7,3,0,1999-12-31,2024-01-05 10:00:00+08:00,\n")
    assert users(store, "usr_age", "usr_score", "usr_vip", "usr_birthday", "usr_seen",
                 "tag_orders") == [
        (1, 42, 1.5, True, dt.date(2020, 2, 29), dt.datetime(2024, 1, 5, 10), [1, 2, 3]),
        (2, -7, 3.0, False, dt.date(1999, 12, 31), dt.datetime(2024, 1, 5, 2), None)]


@pytest.mark.parametrize(("key", "value"), [
    ("usr_age", "1.5"), ("usr_age", "abc"), ("usr_age", "99999999999999999999"),
    ("usr_score", "1,5"), ("usr_score", "nan"), ("usr_vip", "yes"),
    ("usr_birthday", "2021-02-30"), ("usr_birthday", "2021/01/01"),
    ("usr_birthday", "2021-01-01 10:00:00"), ("usr_seen", "yesterday"),
    ("tag_orders", "1||two"),
])
def test_type_error_is_rejected_with_line_and_field(load, key, value):
    report = load.csv(f"{UID},{key}\nC1,\nC2,\"{value}\"\n")
    assert not report.applied
    assert reject_lines(report) == [(3, key)]
    bad = "two" if key == "tag_orders" else value
    assert f"'{bad}'" in report.rejects[0].reason


def test_jsonl_type_errors_name_the_field(load):
    report = load.jsonl(
        {"identifications": {UID: "C1"}, "properties": {"usr_age": "x", "usr_gender": ["a"]}},
        {"identifications": {UID: "C2"}, "properties": {"tag_orders": [1, 2.5]}},
    )
    assert reject_lines(report) == [(1, "usr_age"), (1, "usr_gender"), (2, "tag_orders")]
    assert report.rejected == 2


# --- unknown keys and malformed input ---------------------------------------------------------


def test_unknown_csv_column_refuses_the_whole_file(load, store):
    report = load.csv(f"{UID},usr_nope\nC1,x\nC2,y\n", skip_invalid=True)
    assert (report.applied, report.rejected) == (False, 2)
    assert reject_lines(report) == [(1, "usr_nope")]
    assert "not in the catalog" in report.rejects[0].reason
    assert store.user_count() == 0


def test_unknown_jsonl_key_rejects_its_record(load, store):
    report = load.jsonl({"identifications": {UID: "C1"}, "properties": {"usr_nope": 1}},
                        {"identifications": {UID: "C2"}}, skip_invalid=True)
    assert reject_lines(report) == [(1, "usr_nope")]
    assert users(store, UID) == [(1, ["C2"])]


def test_jsonl_key_in_the_wrong_section_is_rejected(load):
    report = load.jsonl({"identifications": {"usr_gender": "男", UID: "C1"}},
                        {"identifications": {UID: "C2"}, "properties": {DEVICE: "D1"}})
    assert reject_lines(report) == [(1, "usr_gender"), (2, DEVICE)]


def test_jsonl_bad_lines_are_rejected_and_blank_lines_keep_numbering(load, store):
    report = load.jsonl({"identifications": {UID: "C1"}}, "", "not json", "[1, 2]", "",
                        {"identifications": {UID: "C2"}}, {"id_x": "flat"}, skip_invalid=True)
    assert reject_lines(report) == [(3, None), (4, None), (7, None), (7, "id_x")]
    assert "not valid JSON" in report.rejects[0].reason
    assert users(store, UID) == [(1, ["C1"]), (2, ["C2"])]


@pytest.mark.parametrize(("name", "content"), [
    ("empty.csv", b""), ("garbage.parquet", b"not a parquet file"),
    ("ragged.csv", f"{UID}\nC1\nC2,extra\n".encode()),
    ("latin1.csv", "usr_gender\ncaf\xe9\n".encode("latin-1")),
])
def test_unreadable_file_raises_invalid_input(store, catalog, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    fmt = InputFormat.PARQUET if name.endswith(".parquet") else InputFormat.CSV
    with pytest.raises(InvalidInput):
        load_file(store, path, fmt, catalog)


def test_missing_file_raises_invalid_input(store, catalog, tmp_path):
    with pytest.raises(InvalidInput, match="no such file"):
        load_file(store, tmp_path / "nope.csv", InputFormat.CSV, catalog)


# --- Parquet ----------------------------------------------------------------------------------


def test_parquet_with_list_and_joined_identities(load, store):
    table = pa.table({
        UID: ["C1||C2", "C3", None],
        DEVICE: pa.array([["D1"], [], ["D3", "D3"]], pa.list_(pa.string())),
        "usr_age": pa.array([30, None, 5], pa.int64()),
        "usr_birthday": pa.array([dt.date(2000, 1, 1), None, None]),
        "tag_orders": pa.array([[1, 2], None, []], pa.list_(pa.int64())),
    })
    report = load.parquet(table)
    assert (report.applied, report.inserted) == (True, 3)
    assert users(store, UID, DEVICE, "usr_age", "usr_birthday", "tag_orders") == [
        (1, ["C1", "C2"], ["D1"], 30, dt.date(2000, 1, 1), [1, 2]),
        (2, ["C3"], None, None, None, None),
        (3, None, ["D3"], 5, None, None)]


def test_parquet_errors_carry_row_numbers(load):
    table = pa.table({UID: ["C1", "C2", "C3"], "usr_vip": ["true", "maybe", "0"]})
    report = load.parquet(table)
    assert reject_lines(report) == [(2, "usr_vip")]


def test_large_parquet_load_is_set_based(load, store):
    n = 200_000
    table = pa.table({
        UID: [f"C{i}" for i in range(n)],
        DEVICE: [f"D{i // 2}" for i in range(n)],  # pairs of rows share a device
        "usr_age": [str(i % 90) if i != n - 7 else "old" for i in range(n)],
        "tag_orders": [[i, i + 1] for i in range(n)],
    })
    report = load.parquet(table, skip_invalid=True)
    assert reject_lines(report) == [(n - 6, "usr_age")]  # row numbers survive parallel scans
    assert (report.inserted, report.rejected) == (n // 2, 1)
    assert store.user_count() == n // 2
    assert users(store, UID, DEVICE, "usr_age")[:2] == [
        (1, ["C0", "C1"], ["D0"], 1), (2, ["C2", "C3"], ["D1"], 3)]
    report = load.parquet(pa.table({DEVICE: [f"D{i}" for i in range(0, n // 2, 1000)],
                                    "usr_age": [1] * (n // 2000)}))
    assert (report.inserted, report.updated) == (0, n // 2000)


def test_line_numbers_follow_the_file_order_in_large_csv_and_jsonl(load):
    n = 100_000
    ages = ["x" if i == n - 3 else str(i % 90) for i in range(n)]
    report = load.csv(f"{UID},usr_age\n" + "".join(f"C{i},{a}\n" for i, a in enumerate(ages)))
    assert reject_lines(report) == [(n - 1, "usr_age")]  # record n-2 (1-based) + header
    records = [{"identifications": {UID: f"C{i}"}, "properties": {"usr_age": a}}
               for i, a in enumerate(ages)]
    report = load.jsonl(*records)
    assert reject_lines(report) == [(n - 2, "usr_age")]


def test_a_load_runs_under_the_load_memory_limit_and_gives_it_back(tmp_path, catalog):
    store = DuckDBStore(tmp_path / "m.duckdb", memory_limit="64MB", load_memory_limit="1GB")
    seen: list[str] = []

    def limit() -> str:
        cur = store.cursor()
        try:
            return cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        finally:
            cur.close()

    try:
        before = limit()
        path = tmp_path / "in.csv"
        path.write_text(f"{UID},usr_age\nu1,30\n")
        report = load_file(store, path, InputFormat.CSV, catalog,
                           before_commit=lambda _report: seen.append(limit()))
        assert report.applied
        assert seen == ["953.6 MiB"]  # DuckDB shows 1GB (10^9 bytes) in MiB
        assert limit() == before == "61.0 MiB"
        # a load that fails gives the limit back too
        path.write_text(f"{UID},usr_age\nu2,old\n")
        assert not load_file(store, path, InputFormat.CSV, catalog).applied
        assert limit() == before
    finally:
        store.close()


def test_typed_parquet_columns_load_as_they_are_and_a_nan_is_still_refused(load, store):
    seen = dt.datetime(2026, 5, 1, 8, 30, 15, 123456)
    table = pa.table({
        UID: ["u1", "u2"],
        "usr_age": pa.array([30, None], pa.int32()),
        "usr_score": pa.array([1.5, float("nan")], pa.float64()),
        "usr_vip": [True, False],
        "usr_birthday": [dt.date(1990, 1, 2), None],
        "usr_seen": pa.array([seen, None], pa.timestamp("us")),
    })
    report = load.parquet(table)
    assert not report.applied
    assert [(r.line, r.field, r.reason) for r in report.rejects] == [
        (2, "usr_score", "value 'nan' is not a double (a finite number)"),
    ]
    report = load.parquet(table, skip_invalid=True)
    assert report.applied and report.inserted == 1
    assert users(store, UID, "usr_age", "usr_score", "usr_vip", "usr_birthday", "usr_seen") == [
        (1, ["u1"], 30, 1.5, True, dt.date(1990, 1, 2), seen),
    ]
