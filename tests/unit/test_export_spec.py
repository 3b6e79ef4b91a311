import pytest

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.errors import BadRequest, NotFound
from tagport.exports.formats import FileFormat, HeaderType
from tagport.exports.spec import ExportRequest, normalise_properties, plan_export

CATALOG = {
    e.key: e
    for e in [
        CatalogEntry("id_$basic_userId", Kind.IDENTITY, "用户ID", ValueType.STRING),
        CatalogEntry("usr_gender", Kind.ATTRIBUTE, "性别", ValueType.STRING),
        CatalogEntry("tag_rfm", Kind.TAG, "会员等级", ValueType.STRING),
    ]
    + [CatalogEntry(f"usr_a{i}", Kind.ATTRIBUTE, f"a{i}", ValueType.INT) for i in range(70)]
}


def test_ids_spelling_means_the_identity():
    assert normalise_properties(["ids_$basic_userId"]) == ["id_$basic_userId"]


def test_gio_id_is_ignored_and_duplicates_keep_the_first():
    assert normalise_properties(["usr_gender", "gio_id", "tag_rfm", "usr_gender",
                                 "ids_$basic_userId", "id_$basic_userId"]) == [
        "usr_gender", "tag_rfm", "id_$basic_userId"]


def test_plan_keeps_the_requested_order_and_defaults():
    plan = plan_export(ExportRequest("tag_rfm", ["tag_rfm", "ids_$basic_userId"]), CATALOG)
    assert [c.key for c in plan.columns] == ["tag_rfm", "id_$basic_userId"]
    assert plan.file_format is FileFormat.CSV and plan.header_type is HeaderType.KEY


def test_unknown_tag_is_not_found():
    with pytest.raises(NotFound) as e:
        plan_export(ExportRequest("tag_nope", []), CATALOG)
    assert e.value.code == "TAG_NOT_FOUND"


def test_an_attribute_is_not_a_tag():
    with pytest.raises(NotFound):
        plan_export(ExportRequest("usr_gender", []), CATALOG)


def test_unknown_properties_are_listed_in_the_message():
    with pytest.raises(BadRequest) as e:
        plan_export(ExportRequest("tag_rfm", ["usr_gender", "usr_x", "tag_y"]), CATALOG)
    assert e.value.code == "UNKNOWN_PROPERTIES"
    assert e.value.message == "properties: unknown keys: usr_x, tag_y"


def test_sixty_distinct_properties_pass_and_sixty_one_fail():
    keys = [f"usr_a{i}" for i in range(60)]
    assert len(plan_export(ExportRequest("tag_rfm", keys + keys + ["gio_id"]), CATALOG).columns) == 60
    with pytest.raises(BadRequest) as e:
        plan_export(ExportRequest("tag_rfm", keys + ["usr_a60"]), CATALOG)
    assert e.value.code == "TOO_MANY_PROPERTIES"


@pytest.mark.parametrize("fmt", ["xml", "", "csv "])
def test_bad_file_format_is_rejected(fmt):
    with pytest.raises(BadRequest) as e:
        plan_export(ExportRequest("tag_rfm", [], fmt), CATALOG)
    assert e.value.code == "INVALID_FILE_FORMAT"


def test_bad_header_type_is_rejected():
    with pytest.raises(BadRequest) as e:
        plan_export(ExportRequest("tag_rfm", [], "csv", "label"), CATALOG)
    assert e.value.code == "INVALID_CSV_HEADER_TYPE"


def test_format_names_are_case_insensitive():
    plan = plan_export(ExportRequest("tag_rfm", [], "JSON", "Name"), CATALOG)
    assert plan.file_format is FileFormat.JSON and plan.header_type is HeaderType.NAME


def test_an_output_the_engine_does_not_write_is_refused_naming_the_engine():
    from dataclasses import replace

    from tagport.engines import capabilities
    from tagport.exports.formats import Compression

    duckdb = capabilities("duckdb")
    assert plan_export(ExportRequest("tag_rfm", [], "parquet"), CATALOG, duckdb)
    narrow = replace(duckdb, file_formats=frozenset({FileFormat.CSV, FileFormat.JSON}),
                     compressions=frozenset({Compression.NONE}))
    with pytest.raises(BadRequest) as raised:
        plan_export(ExportRequest("tag_rfm", [], "parquet"), CATALOG, narrow)
    assert (raised.value.code, raised.value.message) == (
        "UNSUPPORTED_BY_ENGINE",
        "fileFormat: the duckdb engine does not write 'parquet' (it writes csv, json)")
    with pytest.raises(BadRequest, match="^compression: the duckdb engine does not write 'zstd'"):
        plan_export(ExportRequest("tag_rfm", [], "csv", compression="zstd"), CATALOG, narrow)


def test_every_engine_declares_its_capabilities_without_starting():
    from tagport.engines import ENGINES, capabilities

    for name in ENGINES:
        assert capabilities(name).engine == name
