"""Loading, the same on every engine: formats, types, line numbers and rejects, identity
resolution, conflicts, all or nothing, nulls.

Each behaviour is loaded through `Engine.load` and read back through `Engine.export` (or
`Engine.find_user`), so the assertions hold for any engine. What only the DuckDB store
has (its tables, its memory settings) stays in test_duckdb_load.py.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.engines.base import ExportPlan, FileFormat, InputFormat, LoadReport
from tagport.engines.duckdb.engine import DuckDBEngine
from tagport.engines.duckdb.store import DuckDBStore
from tagport.errors import InvalidInput
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
    """Loads small files in which every record carries tag_all (so every user is exported)
    and reads the users back as exported JSON: identities `||`-joined, dates and datetimes
    as text."""

    def __init__(self, engine, tmp: Path) -> None:
        self.engine, self.tmp, self.n = engine, tmp, 0

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
        return self.engine.load(path, input_format, CATALOG, **kw)

    def read(self, *keys: str) -> list[tuple]:
        self.n += 1
        work = self.tmp / f"out{self.n}"
        work.mkdir()
        plan = ExportPlan(CATALOG["tag_all"], tuple(CATALOG[k] for k in keys), FileFormat.JSON)
        rows = []
        for line in self.engine.export(plan, work, "u.json").files[0].read_text().splitlines():
            doc = json.loads(line)
            values = {**doc["identifications"], **doc["properties"]}
            rows.append((doc["gio_id"], *(values[k] for k in keys)))
        return rows

    def gio_id_of(self, key: str, value: str) -> int | None:
        user = self.engine.find_user(key, value, [])
        return None if user is None else user["gio_id"]


@pytest.fixture
def users(engine, tmp_path) -> Users:
    return Users(engine, tmp_path)


def lines(report: LoadReport) -> list[tuple[int, str | None]]:
    return [(r.line, r.field) for r in report.rejects]


# --- inserting and resolving -------------------------------------------------------------


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


def test_new_users_from_a_csv_file_get_ascending_gio_ids_from_1(users):
    report = users.csv(f"{UID},usr_gender\nC001,男\nC002,女\nC003,男\n")
    assert (report.applied, report.inserted, report.updated, report.rejected) == (True, 3, 0, 0)
    assert users.read(UID, "usr_gender") == [
        (1, "C001", "男"), (2, "C002", "女"), (3, "C003", "男")]
    assert users.csv(f"{UID}\nC004\n").inserted == 1
    assert users.read()[-1] == (4,)


def test_a_second_csv_file_resolves_existing_users_by_any_identity_value(users):
    users.csv(f"{UID},{DEVICE},usr_gender\nC001,D1,男\nC002,D2,女\n")
    report = users.csv(f"{DEVICE},tag_rfm\nD2,高\nD1,低\n")
    assert (report.inserted, report.updated) == (0, 2)
    assert users.read(UID, "tag_rfm", "usr_gender") == [(1, "C001", "低", "男"),
                                                         (2, "C002", "高", "女")]


def test_multi_valued_identities_accumulate_and_each_value_finds_the_user(users):
    users.csv(f"{UID}\nC001||C002\n")
    users.load({"identifications": {UID: ["C002", "C003"]}, "properties": {"usr_age": 30}})
    users.load({"identifications": {UID: "C003||C004||C004"}, "properties": {"tag_rfm": "高"}})
    assert users.read(UID, "usr_age", "tag_rfm") == [(1, "C001||C002||C003||C004", 30, "高")]
    report = users.csv(f"{UID},usr_gender\nC001,男\nC004,女\n")
    assert (report.inserted, report.updated) == (0, 1)
    assert users.read("usr_gender") == [(1, "女")]


def test_records_in_one_file_sharing_an_identity_become_one_user(users):
    report = users.load(
        {"identifications": {UID: "C001"}, "properties": {"usr_gender": "男"}},
        {"identifications": {UID: "C001", DEVICE: "D1"}, "properties": {"usr_age": 20}},
        {"identifications": {UID: "C009"}},
        {"identifications": {DEVICE: ["D1", "D2"]}, "properties": {"usr_gender": "女"}},
    )
    assert (report.inserted, report.updated) == (2, 0)
    # the group's first line comes first, so it gets gio_id 1; the last record wins
    assert users.read(UID, DEVICE, "usr_gender", "usr_age") == [
        (1, "C001", "D1||D2", "女", 20), (2, "C009", None, None, None)]


def test_records_sharing_values_become_one_user_even_through_a_chain(users):
    chain = [{"identifications": {DEVICE: [f"D{i}", f"D{i + 1}"]}} for i in range(6, 0, -1)]
    report = users.load({"identifications": {UID: "C1", DEVICE: "D1"}}, *chain,
                        {"identifications": {UID: "C9"}, "properties": {"usr_age": 1}},
                        {"identifications": {DEVICE: "D7"}, "properties": {"usr_age": 5}})
    assert report.inserted == 2
    assert users.read(UID, "usr_age") == [(1, "C1", 5), (2, "C9", 1)]


def test_a_long_chain_links_its_ends_and_keeps_each_value_once_in_first_seen_order(users):
    # line 1 and line 21 are linked only through a chain of 19 other records
    chain = [{"identifications": {DEVICE: [f"D{i}", f"D{i + 1}"]}} for i in range(20, 0, -1)]
    report = users.load({"identifications": {UID: "C1", DEVICE: "D1"}}, *chain,
                        {"identifications": {UID: "C2"}})
    assert report.inserted == 2
    devices = ["D1", "D20", "D21", *(f"D{i}" for i in range(19, 1, -1))]
    assert users.read(UID, DEVICE) == [(1, "C1", "||".join(devices)), (2, "C2", None)]


def test_a_given_gio_id_updates_that_user(users):
    users.csv(f"{UID}\nC001\nC002\n")
    report = users.csv(f"gio_id,{DEVICE},usr_gender\n2,D9,女\n")
    assert (report.inserted, report.updated) == (0, 1)
    assert users.read(UID, DEVICE, "usr_gender") == [(1, "C001", None, None),
                                                    (2, "C002", "D9", "女")]


def test_an_unknown_gio_id_is_rejected(users):
    users.csv(f"{UID}\nC001\n")
    report = users.load({"gio_id": 7, "properties": {"usr_gender": "男"}})
    assert not report.applied
    assert lines(report) == [(1, "gio_id")]
    assert "gio_id 7 is not a known user" in report.rejects[0].reason


def test_a_gio_id_with_another_users_identity_is_rejected(users):
    users.csv(f"{UID}\nC001\nC002\n")
    report = users.csv(f"gio_id,{UID}\n1,C002\n")
    assert lines(report) == [(2, UID)]
    assert "belongs to gio_id 2" in report.rejects[0].reason


def test_a_record_without_identity_or_gio_id_is_rejected(users):
    report = users.load({"properties": {"usr_gender": "男"}})
    assert lines(report) == [(1, None)]
    assert "at least one identity value or a gio_id" in report.rejects[0].reason


def test_repeated_identity_values_are_mapped_once_to_their_user(users):
    users.csv(f"{UID},{DEVICE}\nC001||C001,D1\nC001,D1||D2\n")
    users.load({"identifications": {UID: ["C001", "C002"], DEVICE: "D2"}},
               {"identifications": {UID: "C002"}})
    assert users.read(UID, DEVICE) == [(1, "C001||C002", "D1||D2")]
    assert {users.gio_id_of(k, v) for k, v in
            [(UID, "C001"), (UID, "C002"), (DEVICE, "D1"), (DEVICE, "D2")]} == {1}


# --- conflicts, all or nothing --------------------------------------------------------------


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


def test_a_conflict_between_two_existing_users_names_the_value_and_both_users(users):
    users.csv(f"{UID},{DEVICE}\nC001,D1\nC002,D2\n")
    report = users.csv(f"{UID},{DEVICE},usr_gender\nC003,,男\nC001,D2,女\n")
    assert not report.applied
    assert report.rejected == 1
    assert lines(report) == [(3, None)]
    reason = report.rejects[0].reason
    assert "gio_id 1" in reason and "gio_id 2" in reason and "'D2'" in reason
    assert users.read(UID, DEVICE) == [(1, "C001", "D1"), (2, "C002", "D2")]


def test_a_group_linking_two_existing_users_is_rejected_whole(users):
    users.csv(f"{UID}\nC001\nC002\n")
    report = users.load(
        {"identifications": {UID: "C001", DEVICE: "D1"}},
        {"identifications": {DEVICE: "D1"}, "properties": {"usr_age": 5}},
        {"identifications": {UID: "C002", DEVICE: "D1"}},
        {"identifications": {UID: "C003"}},
        skip_invalid=True,
    )
    assert lines(report) == [(1, None), (2, None), (3, None)]
    assert "gio_ids 1, 2" in report.rejects[0].reason
    assert (report.applied, report.inserted, report.updated) == (True, 1, 0)
    assert users.read(UID, "usr_age") == [(1, "C001", None), (2, "C002", None),
                                          (3, "C003", None)]


def test_one_bad_row_changes_nothing(users):
    users.csv(f"{UID},usr_age\nC001,1\n")
    report = users.csv(f"{UID},usr_age\nC001,2\nC002,3\nC003,old\n")
    assert (report.applied, report.rejected, report.inserted, report.updated) == (False, 1, 0, 0)
    assert lines(report) == [(4, "usr_age")]
    assert users.read(UID, "usr_age") == [(1, "C001", 1)]
    assert (users.gio_id_of(UID, "C002"), users.gio_id_of(UID, "C003")) == (None, None)
    assert users.engine.user_count() == 1


def test_skip_invalid_applies_the_other_records(users):
    report = users.csv(f"{UID},usr_age\nC001,2\nC002,x\nC003,4\n", skip_invalid=True)
    assert (report.applied, report.rejected, report.inserted) == (True, 1, 2)
    assert lines(report) == [(3, "usr_age")]
    assert users.read(UID, "usr_age") == [(1, "C001", 2), (2, "C003", 4)]


def test_a_rejected_record_does_not_link_a_group(users):
    # line 3 would link C001 and C002 into one user, but its age is invalid
    report = users.csv(f"{UID},usr_age\nC001,1\nC001||C002,x\nC002,3\n", skip_invalid=True)
    assert report.inserted == 2
    assert users.read(UID, "usr_age") == [(1, "C001", 1), (2, "C002", 3)]


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
    assert users.gio_id_of(UID, "C2") is None


# --- presence and nulls ---------------------------------------------------------------------


def test_an_absent_key_keeps_its_value_null_clears_and_the_last_record_wins(users):
    users.load({"identifications": {UID: "C1"},
                "properties": {"usr_gender": "男", "usr_age": 30, "tag_orders": [1, 2]}})
    users.load({"identifications": {UID: "C1"}, "properties": {"usr_age": None}},
               {"identifications": {UID: "C1"}, "properties": {"tag_orders": [3]}},
               {"identifications": {UID: "C1"}, "properties": {"tag_orders": []}})
    assert users.read("usr_gender", "usr_age", "tag_orders") == [(1, "男", None, None)]


def test_a_key_absent_from_a_json_line_keeps_its_value_and_an_explicit_null_clears_it(users):
    users.load({"identifications": {UID: "C001"},
                "properties": {"usr_gender": "男", "usr_age": 30, "tag_orders": [1, 2]}})
    users.load({"identifications": {UID: "C001"}, "properties": {"usr_age": None}})
    assert users.read("usr_gender", "usr_age", "tag_orders") == [(1, "男", None, [1, 2])]
    users.load({"identifications": {UID: "C001"}, "properties": {"tag_orders": []}})
    assert users.read("usr_gender", "tag_orders") == [(1, "男", None)]


def test_the_last_record_carrying_a_key_wins_even_with_null(users):
    users.load(
        {"identifications": {UID: "C001"}, "properties": {"usr_gender": "男", "usr_age": 1}},
        {"identifications": {UID: "C001"}, "properties": {"usr_gender": None}},
        {"identifications": {UID: "C001"}, "properties": {"usr_age": 3}},
    )
    assert users.read("usr_gender", "usr_age") == [(1, None, 3)]


def test_an_empty_csv_field_clears_the_value(users):
    users.csv(f"{UID},usr_gender,usr_age\nC001,男,30\n")
    report = users.csv(f"{UID},usr_gender,usr_age\nC001,,31\n")
    assert report.updated == 1
    assert users.read("usr_gender", "usr_age") == [(1, None, 31)]


def test_a_quoted_empty_csv_string_is_an_empty_string_and_a_bare_empty_is_null(users):
    users.csv(f'{UID},usr_gender,tag_rfm,usr_age\nC001,"",,""\n')
    assert users.read("usr_gender", "tag_rfm", "usr_age") == [(1, "", None, None)]


def test_json_lines_and_parquet_empty_strings_stay_empty_strings(users):
    users.load({"identifications": {UID: "C001"}, "properties": {"usr_gender": "", "usr_age": ""}})
    users.parquet(pa.table({UID: ["C002"], "tag_rfm": [""]}))
    assert users.read("usr_gender", "usr_age", "tag_rfm") == [(1, "", None, None),
                                                             (2, None, None, "")]


def test_keys_with_data_lists_the_keys_that_received_values(users):
    report = users.load({"identifications": {UID: "C001"},
                         "properties": {"usr_gender": "男", "usr_age": None}})
    assert report.keys_with_data == [UID, "tag_all", "usr_gender"]


def test_keys_with_data_count_new_users_from_one_record_or_several_and_updated_users(users):
    users.load({"identifications": {UID: "C1"}, "properties": {"usr_age": 30}})
    report = users.load(
        {"identifications": {UID: "C1"}, "properties": {"usr_gender": "男"}},  # an update
        {"identifications": {UID: "C2"}, "properties": {"tag_rfm": "高"}},  # new, one record
        # new from two records: the last carrier's null wins, so usr_score gets no value
        {"identifications": {UID: "C3"}, "properties": {"usr_score": 1.5}},
        {"identifications": {UID: "C3"}, "properties": {"usr_score": None, "usr_vip": True}},
    )
    assert (report.inserted, report.updated) == (2, 1)
    # usr_age holds data from the first load only: this load gave it nothing
    assert report.keys_with_data == [UID, "tag_all", "tag_rfm", "usr_gender", "usr_vip"]
    assert users.read(UID, "usr_age", "usr_gender", "tag_rfm", "usr_score", "usr_vip") == [
        (1, "C1", 30, "男", None, None, None),
        (2, "C2", None, None, "高", None, None),
        (3, "C3", None, None, None, None, True),
    ]


def test_keys_with_data_leave_out_an_identity_whose_values_were_all_known(users):
    # an earlier load mapped D1 and marked id_device then; identities are never cleared
    users.load({"identifications": {UID: "C1", DEVICE: "D1"}})
    report = users.load({"identifications": {DEVICE: "D1"}, "properties": {"usr_gender": "男"}})
    assert report.updated == 1
    assert report.keys_with_data == ["tag_all", "usr_gender"]


def test_a_csv_in_the_export_shape_loads_back(users):
    users.csv(f"{UID}\nC001\n")
    path = users.path("csv")
    # the spec's export: UTF-8 BOM for Excel, every header cell quoted, CRLF tolerated
    path.write_bytes(
        '\ufeff"gio_id","id_$basic_userId","usr_gender","tag_rfm","tag_all"\r\n'
        '1,"C001","男","高","x"\r\n'.encode())
    report = users.file(path, InputFormat.CSV)
    assert (report.applied, report.updated) == (True, 1)
    assert users.read(UID, "usr_gender", "tag_rfm") == [(1, "C001", "男", "高")]


def test_a_csv_with_only_a_header_loads_nothing(users):
    report = users.csv(f"gio_id,{UID}\n")
    assert (report.applied, report.inserted, report.rejected) == (True, 0, 0)
    assert users.engine.user_count() == 0


# --- types ----------------------------------------------------------------------------------


def test_values_are_read_as_their_types(users):
    users.csv(f"{UID},usr_age,usr_score,usr_vip,usr_birthday,usr_seen,tag_orders\n"
              "C1,42,1.5,TRUE,2020-02-29,2024-01-05T10:00:00,1||2||3\n"
              "C2,-7,3,0,1999-12-31,2024-01-05 10:00:00+08:00,\n")
    assert users.read("usr_age", "usr_score", "usr_vip", "usr_birthday", "usr_seen",
                      "tag_orders") == [
        (1, 42, 1.5, True, "2020-02-29", "2024-01-05 10:00:00", [1, 2, 3]),
        (2, -7, 3.0, False, "1999-12-31", "2024-01-05 02:00:00", None)]  # +08:00 is UTC


@pytest.mark.parametrize(("key", "value"), [
    ("usr_age", "1.5"), ("usr_age", "abc"), ("usr_age", "99999999999999999999"),
    ("usr_score", "1,5"), ("usr_score", "nan"), ("usr_vip", "yes"),
    ("usr_birthday", "2021-02-30"), ("usr_birthday", "2021/01/01"),
    ("usr_birthday", "2021-01-01 10:00:00"), ("usr_seen", "yesterday"),
    ("tag_orders", "1||two"),
])
def test_a_type_error_is_rejected_with_its_line_field_and_value(users, key, value):
    report = users.csv(f"{UID},{key}\nC1,\nC2,\"{value}\"\n")
    assert not report.applied
    assert lines(report) == [(3, key)]
    bad = "two" if key == "tag_orders" else value
    assert f"'{bad}'" in report.rejects[0].reason


def test_json_lines_type_errors_name_the_field(users):
    report = users.load(
        {"identifications": {UID: "C1"}, "properties": {"usr_age": "x", "usr_gender": ["a"]}},
        {"identifications": {UID: "C2"}, "properties": {"tag_orders": [1, 2.5]}},
    )
    assert lines(report) == [(1, "usr_age"), (1, "usr_gender"), (2, "tag_orders")]
    assert report.rejected == 2


# --- unknown keys and malformed input ---------------------------------------------------------


def test_an_unknown_csv_column_refuses_the_whole_file(users):
    report = users.csv(f"{UID},usr_nope\nC1,x\nC2,y\n", skip_invalid=True)
    assert (report.applied, report.rejected) == (False, 2)
    assert lines(report) == [(1, "usr_nope")]
    assert "not in the catalog" in report.rejects[0].reason
    assert users.engine.user_count() == 0


def test_an_unknown_json_lines_key_rejects_its_record(users):
    report = users.load({"identifications": {UID: "C1"}, "properties": {"usr_nope": 1}},
                        {"identifications": {UID: "C2"}}, skip_invalid=True)
    assert lines(report) == [(1, "usr_nope")]
    assert users.read(UID) == [(1, "C2")]


def test_a_json_lines_key_in_the_wrong_section_is_rejected(users):
    report = users.load({"identifications": {"usr_gender": "男", UID: "C1"}},
                        {"identifications": {UID: "C2"}, "properties": {DEVICE: "D1"}})
    assert lines(report) == [(1, "usr_gender"), (2, DEVICE)]


def test_bad_json_lines_are_rejected_and_blank_lines_keep_the_numbering(users):
    report = users.load({"identifications": {UID: "C1"}}, "", "not json", "[1, 2]", "",
                        {"identifications": {UID: "C2"}}, {"id_x": "flat"}, skip_invalid=True)
    assert lines(report) == [(3, None), (4, None), (7, None), (7, "id_x")]
    assert "not valid JSON" in report.rejects[0].reason
    assert users.read(UID) == [(1, "C1"), (2, "C2")]


@pytest.mark.parametrize(("name", "content"), [
    ("empty.csv", b""), ("garbage.parquet", b"not a parquet file"),
    ("ragged.csv", f"{UID}\nC1\nC2,extra\n".encode()),
    ("latin1.csv", "usr_gender\ncaf\xe9\n".encode("latin-1")),
])
def test_an_unreadable_file_raises_invalid_input(users, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    fmt = InputFormat.PARQUET if name.endswith(".parquet") else InputFormat.CSV
    with pytest.raises(InvalidInput):
        users.file(path, fmt)


def test_a_missing_file_raises_invalid_input(users, tmp_path):
    with pytest.raises(InvalidInput, match="no such file"):
        users.file(tmp_path / "nope.csv", InputFormat.CSV)


# --- Parquet ----------------------------------------------------------------------------------


def test_parquet_identities_may_be_lists_or_joined_values(users):
    table = pa.table({
        UID: ["C1||C2", "C3", None],
        DEVICE: pa.array([["D1"], [], ["D3", "D3"]], pa.list_(pa.string())),
        "usr_age": pa.array([30, None, 5], pa.int64()),
        "usr_birthday": pa.array([dt.date(2000, 1, 1), None, None]),
        "tag_orders": pa.array([[1, 2], None, []], pa.list_(pa.int64())),
    })
    report = users.parquet(table)
    assert (report.applied, report.inserted) == (True, 3)
    assert users.read(UID, DEVICE, "usr_age", "usr_birthday", "tag_orders") == [
        (1, "C1||C2", "D1", 30, "2000-01-01", [1, 2]),
        (2, "C3", None, None, None, None),
        (3, None, "D3", 5, None, None)]


def test_parquet_errors_carry_row_numbers(users):
    report = users.parquet(pa.table({UID: ["C1", "C2", "C3"], "usr_vip": ["true", "maybe", "0"]}))
    assert lines(report) == [(2, "usr_vip")]


def test_typed_parquet_columns_load_as_they_are_and_a_nan_is_still_refused(users):
    table = pa.table({
        UID: ["u1", "u2"],
        "usr_age": pa.array([30, None], pa.int32()),
        "usr_score": pa.array([1.5, float("nan")], pa.float64()),
        "usr_vip": [True, False],
        "usr_birthday": [dt.date(1990, 1, 2), None],
        "usr_seen": pa.array([dt.datetime(2026, 5, 1, 8, 30, 15, 123456), None],
                             pa.timestamp("us")),
    })
    report = users.parquet(table)
    assert not report.applied
    assert [(r.line, r.field, r.reason) for r in report.rejects] == [
        (2, "usr_score", "value 'nan' is not a double (a finite number)"),
    ]
    report = users.parquet(table, skip_invalid=True)
    assert report.applied and report.inserted == 1
    assert users.read(UID, "usr_age", "usr_score", "usr_vip", "usr_birthday", "usr_seen") == [
        (1, "u1", 30, 1.5, True, "1990-01-02", "2026-05-01 08:30:15.123456"),
    ]


# --- large files ------------------------------------------------------------------------------


def test_a_large_parquet_file_keeps_its_row_numbers_and_links_its_records(users):
    n = 200_000
    table = pa.table({
        UID: [f"C{i}" for i in range(n)],
        DEVICE: [f"D{i // 2}" for i in range(n)],  # pairs of rows share a device
        "usr_age": [str(i % 90) if i != n - 7 else "old" for i in range(n)],
        "tag_orders": [[i, i + 1] for i in range(n)],
    })
    report = users.parquet(table, skip_invalid=True)
    assert lines(report) == [(n - 6, "usr_age")]  # row numbers survive parallel scans
    assert (report.inserted, report.rejected) == (n // 2, 1)
    assert users.engine.user_count() == n // 2
    assert users.read(UID, DEVICE, "usr_age")[:2] == [(1, "C0||C1", "D0", 1),
                                                      (2, "C2||C3", "D1", 3)]
    report = users.parquet(pa.table({DEVICE: [f"D{i}" for i in range(0, n // 2, 1000)],
                                     "usr_age": [1] * (n // 2000)}))
    assert (report.inserted, report.updated) == (0, n // 2000)


def test_line_numbers_follow_the_file_order_in_large_csv_and_json_lines(users):
    n = 100_000
    ages = ["x" if i == n - 3 else str(i % 90) for i in range(n)]
    report = users.csv(f"{UID},usr_age\n" + "".join(f"C{i},{a}\n" for i, a in enumerate(ages)))
    assert lines(report) == [(n - 1, "usr_age")]  # record n-2 (1-based) + header
    report = users.load(*({"identifications": {UID: f"C{i}"}, "properties": {"usr_age": a}}
                          for i, a in enumerate(ages)))
    assert lines(report) == [(n - 2, "usr_age")]
