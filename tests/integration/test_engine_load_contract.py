"""Loading, the same on every engine: identity resolution, conflicts, all or nothing,
nulls and the keys that received data.

Formats, types, line numbers and malformed input are in test_engine_load_formats.py; the
catalog and helpers in tests/load_support.py. What only the DuckDB store has (its
tables, its memory settings) stays in test_duckdb_load.py.
"""

from __future__ import annotations

import importlib
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tagport.engines.base import InputFormat, LoadReport
from tagport.errors import InvalidInput
from tests.load_support import DEVICE, ENGINES, RESOLVING_ENGINES, UID, Users, lines


@pytest.fixture(params=list(RESOLVING_ENGINES.values()), ids=list(RESOLVING_ENGINES))
def engine(request, tmp_path):
    engine = request.param(tmp_path)
    yield engine
    engine.close()


@pytest.fixture
def users(engine, tmp_path) -> Users:
    return Users(engine, tmp_path)


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


def test_a_file_of_new_users_only_numbers_them_after_the_last_gio_id_in_line_order(users):
    # no value known, none shared, no gio_id: each valid record is a new user (the Spark
    # engine numbers such a load without computing groups); a rejected line takes no id
    users.load({"identifications": {UID: "C1"}}, {"identifications": {UID: "C2"}})
    report = users.load({"identifications": {UID: "C3", DEVICE: ["D3", "D3b", "D3"]}},
                        {"identifications": {UID: "C4"}, "properties": {"usr_age": "x"}},
                        {"identifications": {DEVICE: "D5"}, "properties": {"usr_age": 5}},
                        skip_invalid=True)
    assert (report.inserted, report.updated, report.rejected) == (2, 0, 1)
    assert users.read(UID, DEVICE, "usr_age") == [
        (1, "C1", None, None), (2, "C2", None, None), (3, "C3", "D3||D3b", None),
        (4, None, "D5", 5)]
    assert [users.gio_id_of(DEVICE, v) for v in ("D3", "D3b", "D5")] == [3, 3, 4]
    assert users.gio_id_of(UID, "C4") is None


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


def test_a_parquet_file_changed_while_it_loads_loads_nothing(users, engine, monkeypatch):
    """A Parquet file is staged as a view, read by more than one step: rewritten between
    them, the load refuses it rather than apply records no check saw."""
    path = users.path("parquet")
    table = pa.table({UID: ["U1", "U2"], "tag_all": ["x", "x"]})
    pq.write_table(table, path)
    module = importlib.import_module(f"tagport.engines.{engine.name}.load")
    checked = module.validate

    def rewritten_meanwhile(*args, **kw):
        checked(*args, **kw)
        pq.write_table(pa.table({UID: ["U1", "U3"], "tag_all": ["x", "x"]}), path)

    monkeypatch.setattr(module, "validate", rewritten_meanwhile)
    with pytest.raises(InvalidInput, match="the file changed while it was loaded, so nothing"
                                           " was loaded: load it again once it is whole"):
        users.file(path, InputFormat.PARQUET)
    assert users.read(UID) == []
    monkeypatch.undo()
    assert users.file(path, InputFormat.PARQUET).applied
    assert users.read(UID) == [(1, "U1"), (2, "U3")]


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

# the records' presence and values are apply.py's on both Spark roads: one of them is enough
APPLY_ONLY = pytest.mark.parametrize("engine", list(ENGINES.values()), ids=list(ENGINES),
                                     indirect=True)


@APPLY_ONLY
def test_an_absent_key_keeps_its_value_null_clears_and_the_last_record_wins(users):
    users.load({"identifications": {UID: "C1"},
                "properties": {"usr_gender": "男", "usr_age": 30, "tag_orders": [1, 2]}})
    users.load({"identifications": {UID: "C1"}, "properties": {"usr_age": None}},
               {"identifications": {UID: "C1"}, "properties": {"tag_orders": [3]}},
               {"identifications": {UID: "C1"}, "properties": {"tag_orders": []}})
    assert users.read("usr_gender", "usr_age", "tag_orders") == [(1, "男", None, None)]


@APPLY_ONLY
def test_a_key_absent_from_a_json_line_keeps_its_value_and_an_explicit_null_clears_it(users):
    users.load({"identifications": {UID: "C001"},
                "properties": {"usr_gender": "男", "usr_age": 30, "tag_orders": [1, 2]}})
    users.load({"identifications": {UID: "C001"}, "properties": {"usr_age": None}})
    assert users.read("usr_gender", "usr_age", "tag_orders") == [(1, "男", None, [1, 2])]
    users.load({"identifications": {UID: "C001"}, "properties": {"tag_orders": []}})
    assert users.read("usr_gender", "tag_orders") == [(1, "男", None)]


@APPLY_ONLY
def test_the_last_record_carrying_a_key_wins_even_with_null(users):
    users.load(
        {"identifications": {UID: "C001"}, "properties": {"usr_gender": "男", "usr_age": 1}},
        {"identifications": {UID: "C001"}, "properties": {"usr_gender": None}},
        {"identifications": {UID: "C001"}, "properties": {"usr_age": 3}},
    )
    assert users.read("usr_gender", "usr_age") == [(1, None, 3)]


@APPLY_ONLY
def test_an_empty_csv_field_clears_the_value(users):
    users.csv(f"{UID},usr_gender,usr_age\nC001,男,30\n")
    report = users.csv(f"{UID},usr_gender,usr_age\nC001,,31\n")
    assert report.updated == 1
    assert users.read("usr_gender", "usr_age") == [(1, None, 31)]


@APPLY_ONLY
def test_a_quoted_empty_csv_string_is_an_empty_string_and_a_bare_empty_is_null(users):
    users.csv(f'{UID},usr_gender,tag_rfm,usr_age\nC001,"",,""\n')
    assert users.read("usr_gender", "tag_rfm", "usr_age") == [(1, "", None, None)]


@APPLY_ONLY
def test_json_lines_and_parquet_empty_strings_stay_empty_strings(users):
    users.load({"identifications": {UID: "C001"}, "properties": {"usr_gender": "", "usr_age": ""}})
    users.parquet(pa.table({UID: ["C002"], "tag_rfm": [""]}))
    assert users.read("usr_gender", "usr_age", "tag_rfm") == [(1, "", None, None),
                                                             (2, None, None, "")]


@APPLY_ONLY
def test_keys_with_data_lists_the_keys_that_received_values(users):
    report = users.load({"identifications": {UID: "C001"},
                         "properties": {"usr_gender": "男", "usr_age": None}})
    assert report.keys_with_data == [UID, "tag_all", "usr_gender"]


@APPLY_ONLY
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


@APPLY_ONLY
def test_keys_with_data_leave_out_an_identity_whose_values_were_all_known(users):
    # an earlier load mapped D1 and marked id_device then; identities are never cleared
    users.load({"identifications": {UID: "C1", DEVICE: "D1"}})
    report = users.load({"identifications": {DEVICE: "D1"}, "properties": {"usr_gender": "男"}})
    assert report.updated == 1
    assert report.keys_with_data == ["tag_all", "usr_gender"]


# --- a spread update: merge-on-read on Spark (store.py), the same values everywhere -----


@pytest.fixture(params=list(RESOLVING_ENGINES), ids=list(RESOLVING_ENGINES))
def wide_buckets(request, tmp_path):
    """An engine whose Spark store has buckets of 25 users: an update of a few users
    spread over the buckets is written as a delta (DeltaPolicy's defaults), its users'
    rows read by DuckDB on the driver (resolved there) or by Spark."""
    make = RESOLVING_ENGINES[request.param]
    engine = (make(tmp_path, users_per_bucket=25) if request.param.startswith("spark")
              else make(tmp_path))
    yield engine
    engine.close()


def _rfm(i: int, value: str) -> dict:
    return {"identifications": {UID: f"C{i}"}, "properties": {"tag_rfm": value}}


def _spark_users(engine) -> tuple[int, dict[str, int]]:
    """The Spark version's deltas and its bucket files' inodes ((0, {}) on DuckDB)."""
    if engine.name != "spark":
        return 0, {}
    version = engine.store.current()
    return len(version.deltas()), {p.name: p.stat().st_ino for p in version.users.iterdir()}


def test_a_spread_update_reads_back_merged_and_compaction_keeps_the_values(wide_buckets,
                                                                           tmp_path):
    from tagport.conditions import ConditionContext, parse_condition
    from tests.load_support import CATALOG

    engine, users = wide_buckets, Users(wide_buckets, tmp_path)
    values = {i: "低" for i in range(1, 101)}
    users.load(*(_rfm(i, "低") for i in range(1, 101)))
    _, buckets = _spark_users(engine)

    def check() -> None:
        assert users.read(UID, "tag_rfm") == [(i, f"C{i}", v) for i, v in sorted(values.items())]
        rfm = [CATALOG["tag_rfm"]]
        for i in (10, 35, 60, max(values)):
            user = engine.find_user(UID, f"C{i}", rfm)
            assert (user["gio_id"], user["properties"]["tag_rfm"]) == (i, values[i])
        high = parse_condition({"key": "tag_rfm", "op": "=", "values": ["高"]},
                               ConditionContext(catalog=CATALOG))
        assert engine.count_members(high, as_of=date(2026, 11, 20)) == sum(
            v == "高" for v in values.values())

    # 4 users, one in each bucket: a delta, every bucket linked
    report = users.load(*(_rfm(i, "中") for i in (10, 35, 60, 85)))
    assert (report.inserted, report.updated) == (0, 4)
    values.update({10: "中", 35: "中", 60: "中", 85: "中"})
    check()
    if engine.name == "spark":
        assert _spark_users(engine) == (1, buckets)
    # two of them again (the newest delta wins) and a new user: a second delta
    report = users.load(_rfm(35, "高"), _rfm(60, "高"), _rfm(101, "高"))
    assert (report.inserted, report.updated) == (1, 2)
    values.update({35: "高", 60: "高", 101: "高"})
    check()
    if engine.name == "spark":
        assert _spark_users(engine) == (2, buckets)
    # the deltas would hold more than a tenth of the users: compacted into the buckets
    report = users.load(*(_rfm(i, "顶") for i in (11, 12, 13, 90)))
    values.update({11: "顶", 12: "顶", 13: "顶", 90: "顶"})
    check()
    if engine.name == "spark":
        deltas, after = _spark_users(engine)
        assert deltas == 0 and not set(after.values()) & set(buckets.values()) - {
            buckets["_buckets.json"]}
