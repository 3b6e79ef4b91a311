"""Loading, the same on every engine: CSV, JSON lines and Parquet, value types, line
numbers, unknown keys and unreadable files.

Resolution, conflicts and nulls are in test_engine_load_contract.py; the catalog and
helpers in tests/load_support.py.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.engines.base import InputFormat
from tagport.errors import InvalidInput
from tests.load_support import CATALOG, DEVICE, ENGINES, UID, Users, lines, spark_engine

PAID = CatalogEntry("tag_paid", Kind.TAG, "支付次数", ValueType.INT, scheduler="DAILY",
                    compute={"type": "AGGREGATED", "event": "payOrderSuccess", "measure": "count"})


@pytest.fixture(params=list(ENGINES.values()), ids=list(ENGINES))
def engine(request, tmp_path):
    engine = request.param(tmp_path)
    yield engine
    engine.close()


@pytest.fixture
def users(engine, tmp_path) -> Users:
    return Users(engine, tmp_path)


@pytest.fixture(params=list(ENGINES), ids=list(ENGINES))
def many_users(request, tmp_path):
    """`users` for files of 100k users or more: Spark's buckets hold 10,000 users."""
    if request.param == "spark":
        engine = spark_engine(tmp_path, users_per_bucket=10_000)
    else:
        engine = ENGINES[request.param](tmp_path)
    yield Users(engine, tmp_path)
    engine.close()


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


def test_a_computed_tag_in_a_csv_header_refuses_the_whole_file(engine, tmp_path):
    users = Users(engine, tmp_path, {**CATALOG, PAID.key: PAID})
    report = users.csv(f"{UID},tag_paid\nC1,3\n", skip_invalid=True)
    assert (report.applied, report.rejected) == (False, 1)
    assert [str(r) for r in report.rejects] == [
        "line 1, field tag_paid: tag_paid is computed (AGGREGATED); it cannot be loaded"]


def test_a_computed_tag_in_json_lines_rejects_its_record(engine, tmp_path):
    users = Users(engine, tmp_path, {**CATALOG, PAID.key: PAID})
    report = users.load({"identifications": {UID: "C1"}, "properties": {"tag_paid": 3}},
                        {"identifications": {UID: "C2"}}, skip_invalid=True)
    assert [str(r) for r in report.rejects] == [
        "line 1, field tag_paid: tag_paid is computed (AGGREGATED); it cannot be loaded"]
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


def test_a_large_parquet_file_keeps_its_row_numbers_and_links_its_records(many_users):
    users = many_users
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


def test_line_numbers_follow_the_file_order_in_large_csv_and_json_lines(many_users):
    users = many_users
    n = 100_000
    ages = ["x" if i == n - 3 else str(i % 90) for i in range(n)]
    report = users.csv(f"{UID},usr_age\n" + "".join(f"C{i},{a}\n" for i, a in enumerate(ages)))
    assert lines(report) == [(n - 1, "usr_age")]  # record n-2 (1-based) + header
    report = users.load(*({"identifications": {UID: f"C{i}"}, "properties": {"usr_age": a}}
                          for i, a in enumerate(ages)))
    assert lines(report) == [(n - 2, "usr_age")]
