"""The engine's read-only queries (coverage, a page of a tag's users, one user), run
against every engine of the shared contract suite."""

from __future__ import annotations

from tagport.engines.base import InputFormat
from tagport.exports.formats import FileFormat, OutputFormat
from tagport.exports.plan import ExportPlan
from tests.conftest import write_jsonl
from tests.integration.test_engine_contract import (
    CATALOG,
    TRICKY,
    engine,  # noqa: F401  (the engines fixture)
)

TAGS = [CATALOG["tag_t"], CATALOG["tag_n"], CATALOG["tag_empty"]]


def plan(keys, tag="tag_t"):
    return ExportPlan.for_tag(CATALOG[tag], tuple(CATALOG[k] for k in keys), OutputFormat(FileFormat.JSON))


def test_coverage_counts_non_null_tag_values_and_all_users(engine):  # noqa: F811
    coverage = engine.tag_coverage(TAGS)
    assert coverage.all_users == 3
    assert coverage.covered == {"tag_t": 2, "tag_n": 1, "tag_empty": 0}


def test_coverage_follows_loads_and_an_empty_array_uncovers(engine, tmp_path):  # noqa: F811
    more = write_jsonl(tmp_path / "more.jsonl", [
        {"identifications": {"id_uid": "u1"}, "properties": {"tag_n": []}},
        {"identifications": {"id_uid": "u9"}, "properties": {"tag_t": "new"}},
    ])
    assert engine.load(more, InputFormat.JSONL, CATALOG).applied
    coverage = engine.tag_coverage(TAGS)
    assert (coverage.all_users, coverage.covered) == (4, {"tag_t": 3, "tag_n": 0, "tag_empty": 0})


def test_tag_users_are_export_lines_in_gio_id_order(engine):  # noqa: F811
    rows = engine.tag_users(plan(["usr_i", "id_uid", "usr_s", "usr_day", "tag_n"]), 10, 0)
    assert rows == [
        {"gio_id": 1, "identifications": {"id_uid": "u1"},
         "properties": {"usr_i": -7, "usr_s": TRICKY, "usr_day": "2024-02-29", "tag_n": [3, 1]}},
        {"gio_id": 2, "identifications": {"id_uid": "u2"},
         "properties": {"usr_i": None, "usr_s": "", "usr_day": None, "tag_n": None}},
    ]
    assert list(rows[0]["properties"]) == ["usr_i", "usr_s", "usr_day", "tag_n"]


def test_tag_users_pages_with_limit_and_offset(engine):  # noqa: F811
    assert [r["gio_id"] for r in engine.tag_users(plan([]), 1, 0)] == [1]
    assert engine.tag_users(plan([]), 1, 1) == [
        {"gio_id": 2, "identifications": {}, "properties": {}}]
    assert engine.tag_users(plan([]), 5, 2) == []


def test_tag_users_of_a_tag_never_loaded_is_empty(engine):  # noqa: F811
    assert engine.tag_users(plan(["usr_never"], tag="tag_empty"), 10, 0) == []


def test_find_user_by_any_of_its_identity_values(engine, tmp_path):  # noqa: F811
    two_ids = write_jsonl(tmp_path / "ids.jsonl", [
        {"identifications": {"id_uid": ["u2", "u2-alt"]}, "properties": {}}])
    assert engine.load(two_ids, InputFormat.JSONL, CATALOG).applied
    entries = [CATALOG[k] for k in ("id_uid", "usr_s", "usr_never", "tag_t")]
    expected = {"gio_id": 2, "identifications": {"id_uid": "u2||u2-alt"},
                "properties": {"usr_s": "", "usr_never": None, "tag_t": "y"}}
    assert engine.find_user("id_uid", "u2", entries) == expected
    assert engine.find_user("id_uid", "u2-alt", entries) == expected


def test_find_user_answers_none_for_an_unknown_value(engine):  # noqa: F811
    assert engine.find_user("id_uid", "nobody", [CATALOG["id_uid"]]) is None
    assert engine.find_user("id_uid", "u1||u2", [CATALOG["id_uid"]]) is None


def test_ping_answers(engine):  # noqa: F811
    engine.ping()


def test_distribution_counts_users_per_value_most_first_ties_by_value(engine):  # noqa: F811
    from datetime import date

    from tagport.catalog.models import Distribution

    assert engine.distribution(CATALOG["tag_t"]) == Distribution(3, 2, [("x", 1), ("y", 1)], [])
    assert engine.distribution(CATALOG["usr_s"], top=2) == Distribution(
        3, 3, [("", 1), (TRICKY, 1)], [])
    assert engine.distribution(CATALOG["usr_day"]).values == [(date(2024, 2, 29), 1)]
    assert engine.distribution(CATALOG["usr_never"]) == Distribution(3, 0, [], [])


def test_distribution_of_numbers_is_equal_width_bins_an_array_once_per_element(engine):  # noqa: F811
    from tagport.catalog.models import Distribution

    assert engine.distribution(CATALOG["tag_n"], bins=2) == Distribution(
        3, 1, [], [(1.0, 2.0, 1), (2.0, 3.0, 1)])
    assert engine.distribution(CATALOG["usr_i"], bins=4) == Distribution(
        3, 1, [], [(-7.0, -7.0, 1)])


def test_find_user_reads_segment_membership_and_a_segment_never_computed_is_null(engine, tmp_path):  # noqa: F811
    # the console's user lookup reads a user's segments as membership columns (TRUE/NULL)
    from tagport.catalog.segments import membership_column

    members = tmp_path / "members.csv"
    members.write_text("id_uid\nu2\nnobody\n", encoding="utf-8")
    report = engine.replace_members(membership_column("seg_m"), "id_uid", members)
    assert (report.values, report.members, report.unknown) == (2, 1, 1)
    columns = [membership_column(k) for k in ("seg_m", "seg_never")]
    assert engine.find_user("id_uid", "u2", columns)["properties"] == {
        "seg_m": True, "seg_never": None}
    assert engine.find_user("id_uid", "u1", columns)["properties"] == {
        "seg_m": None, "seg_never": None}
