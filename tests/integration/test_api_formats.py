"""The export formats of spec sections 8 and 9 over HTTP: GrowingIO's other spellings,
Parquet, compressed files and the charsets for Excel; each file checked byte for byte."""

from __future__ import annotations

import gzip
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.integration.test_api import (  # noqa: F401  (fixtures)
    CSV_KEY,
    CSV_NAME,
    JSON_LINES,
    SEED_PROPERTIES,
    client,
    export_bytes,
    submit,
    token,
    wait,
)


def test_growingio_lower_case_body_keys_are_understood(client):
    _, _, response = export_bytes(client, {"properties": SEED_PROPERTIES,
                                           "fileformat": "CSV", "csvheadertype": "name"})
    assert response.content == CSV_NAME.encode()


def test_the_raw_path_downloads_as_the_encoded_uri_does(client):
    _, result, encoded = export_bytes(client, {"properties": SEED_PROPERTIES})
    raw = client.get("/download", params={"file": unquote(result["uris"][0])})
    twice = client.get("/download", params={"file": result["uris"][0]})  # encoded again
    assert raw.status_code == twice.status_code == 200
    assert raw.content == twice.content == encoded.content == CSV_KEY.encode()


@pytest.mark.parametrize("compression, suffix, content_type", [
    ("gzip", ".csv.gz", "application/gzip"), ("zstd", ".csv.zst", "application/zstd")])
def test_a_compressed_csv_is_named_typed_and_decompresses_to_the_plain_file(
        client, compression, suffix, content_type):
    _, result, response = export_bytes(client, {"properties": SEED_PROPERTIES,
                                                "compression": compression})
    assert unquote(result["uris"][0]).endswith("_UserList" + suffix)
    assert result["compression"] == compression
    assert response.headers["content-type"] == content_type
    if compression == "gzip":
        assert gzip.decompress(response.content) == CSV_KEY.encode()
    else:
        stream = pa.CompressedInputStream(pa.BufferReader(response.content), "zstd")
        assert stream.read() == CSV_KEY.encode()


def test_a_gzipped_json_export_decompresses_to_the_json_lines(client):
    _, result, response = export_bytes(client, {"properties": SEED_PROPERTIES,
                                                "fileFormat": "json", "compression": "GZIP"})
    assert unquote(result["uris"][0]).endswith("_UserList.json.gz")
    assert gzip.decompress(response.content) == JSON_LINES.encode()


def test_a_csv_for_excel_starts_with_the_utf8_bom(client):
    _, _, response = export_bytes(client, {"properties": SEED_PROPERTIES,
                                           "charset": "UTF-8-BOM"})
    assert response.content == b"\xef\xbb\xbf" + CSV_KEY.encode()


def test_a_utf16le_csv_is_tab_separated_after_its_bom(client):
    _, _, response = export_bytes(client, {"properties": SEED_PROPERTIES,
                                           "charset": "utf-16le"})
    assert response.headers["content-type"] == "text/csv; charset=utf-16le"
    assert response.content == b"\xff\xfe" + CSV_KEY.replace(",", "\t").encode("utf-16-le")


def test_parquet_export_has_the_same_rows_typed(client):
    _, result, response = export_bytes(client, {"properties": SEED_PROPERTIES,
                                                "fileFormat": "parquet"})
    assert unquote(result["uris"][0]).endswith("_UserList.parquet")
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(pa.BufferReader(response.content))
    assert table.column_names == ["gio_id", "id_$basic_userId", "usr_gender", "tag_rfm"]
    assert table.to_pylist() == [
        {"gio_id": 1, "id_$basic_userId": ["C001"], "usr_gender": "男", "tag_rfm": "高"},
        {"gio_id": 3, "id_$basic_userId": ["C004", "C005"], "usr_gender": "女", "tag_rfm": "低"},
        {"gio_id": 4, "id_$basic_userId": ["C006"], "usr_gender": None, "tag_rfm": "中"},
    ]


@pytest.mark.parametrize("body, code, message", [
    ({"fileFormat": "xml"}, "INVALID_FILE_FORMAT",
     "fileFormat: 'xml' is not one of csv, json, parquet"),
    ({"compression": "zip"}, "INVALID_COMPRESSION",
     "compression: 'zip' is not one of none, gzip, zstd"),
    ({"fileFormat": "parquet", "compression": "gzip"}, "INVALID_COMPRESSION",
     "compression: parquet files are not compressed as a whole (Parquet compresses its own"
     " columns)"),
    ({"fileFormat": "json", "charset": "UTF-16LE"}, "INVALID_CHARSET",
     "charset: 'UTF-16LE' does not apply to json files (it takes: UTF-8)"),
    ({"charset": "GBK"}, "INVALID_CHARSET",
     "charset: 'GBK' is not one of UTF-8, UTF-8-BOM, UTF-16LE"),
])
def test_an_output_that_does_not_apply_is_400_naming_the_field(client, body, code, message):
    response = submit(client, body)
    assert response.status_code == 400
    assert response.json() == {"code": code, "message": message}


def test_an_output_the_engine_cannot_write_is_refused_before_it_is_queued(client, seeded):
    from dataclasses import replace

    from tagport.exports.formats import FileFormat

    seeded.jobs.capabilities = replace(seeded.jobs.capabilities,
                                       file_formats=frozenset({FileFormat.CSV}))
    response = submit(client, {"fileFormat": "json"})
    assert response.status_code == 400
    assert response.json() == {
        "code": "UNSUPPORTED_BY_ENGINE",
        "message": "fileFormat: the duckdb engine does not write 'json' (it writes csv)"}
    assert seeded.jobs.list() == []
