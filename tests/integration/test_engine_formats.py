"""The formats beyond GrowingIO's (spec section 9), the same on every engine: Parquet,
gzip and zstd, and the charsets Excel reads. Each is checked against the plain export."""

from __future__ import annotations

import gzip
from datetime import date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tagport.exports.formats import Charset, Compression, FileFormat, OutputFormat
from tagport.exports.plan import ExportPlan
from tests.integration.test_engine_contract import (  # noqa: F401  (the engine fixture)
    ALL,
    CATALOG,
    TRICKY,
    engine,
)


def export(engine, tmp_path, keys, output: OutputFormat, tag="tag_t") -> bytes:
    plan = ExportPlan.for_tag(CATALOG[tag], tuple(CATALOG[k] for k in keys), output)
    work = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    work.mkdir()
    result = engine.export(plan, work, f"f.{output.extension}")
    assert [p.name for p in result.files] == [f"f.{output.extension}"]
    return result.files[0].read_bytes()


def decompress(data: bytes, compression: Compression) -> bytes:
    if compression is Compression.GZIP:
        return gzip.decompress(data)
    return pa.CompressedInputStream(pa.BufferReader(data), "zstd").read()


@pytest.mark.parametrize("fmt", [FileFormat.CSV, FileFormat.JSON])
@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.ZSTD])
def test_a_compressed_export_decompresses_to_the_plain_exports_bytes(
        engine, tmp_path, fmt, compression):
    plain = export(engine, tmp_path, ALL, OutputFormat(fmt))
    packed = export(engine, tmp_path, ALL, OutputFormat(fmt, compression=compression))
    assert packed != plain and decompress(packed, compression) == plain


def test_a_compressed_export_of_no_users_is_a_valid_compressed_file(engine, tmp_path):
    packed = export(engine, tmp_path, ["usr_i"], OutputFormat(compression=Compression.GZIP),
                    tag="tag_empty")
    assert gzip.decompress(packed) == b'"gio_id","usr_i"\n'


def test_utf8_bom_csv_is_the_plain_csv_after_its_bom(engine, tmp_path):
    plain = export(engine, tmp_path, ALL, OutputFormat())
    assert export(engine, tmp_path, ALL, OutputFormat(charset=Charset.UTF8_BOM)) == (
        b"\xef\xbb\xbf" + plain)


def test_utf16le_csv_has_its_bom_and_is_tab_separated(engine, tmp_path):
    data = export(engine, tmp_path, ["id_uid", "usr_s", "usr_i"],
                  OutputFormat(charset=Charset.UTF16LE, compression=Compression.ZSTD))
    data = decompress(data, Compression.ZSTD)
    assert data[:2] == b"\xff\xfe"
    assert data[2:].decode("utf-16-le") == (
        '"gio_id"\t"id_uid"\t"usr_s"\t"usr_i"\n'
        '1\t"u1"\t"a ""quoted"", comma\nnew line || 😀 \t"\t-7\n'
        '2\t"u2"\t""\t\n'
    )


def test_parquet_has_typed_columns_gio_id_first_and_the_same_rows(engine, tmp_path):
    data = export(engine, tmp_path, ALL, OutputFormat(FileFormat.PARQUET))
    table = pq.read_table(pa.BufferReader(data))
    assert table.schema == pa.schema([
        pa.field("gio_id", pa.uint64(), nullable=False), ("id_uid", pa.list_(pa.string())),
        ("usr_s", pa.string()), ("usr_i", pa.int64()), ("usr_d", pa.float64()),
        ("usr_b", pa.bool_()), ("usr_day", pa.date32()), ("usr_ts", pa.timestamp("us")),
        ("usr_never", pa.int64()), ("tag_n", pa.list_(pa.int64())),
    ])
    assert table.to_pylist() == [
        {"gio_id": 1, "id_uid": ["u1"], "usr_s": TRICKY, "usr_i": -7, "usr_d": 1.5,
         "usr_b": True, "usr_day": date(2024, 2, 29),
         "usr_ts": datetime(2024, 2, 29, 23, 59, 1), "usr_never": None, "tag_n": [3, 1]},
        {"gio_id": 2, "id_uid": ["u2"], "usr_s": "", "usr_i": None, "usr_d": None,
         "usr_b": None, "usr_day": None, "usr_ts": None, "usr_never": None, "tag_n": None},
    ]


def test_parquet_of_no_users_has_the_schema_and_no_rows(engine, tmp_path):
    data = export(engine, tmp_path, ["usr_i"], OutputFormat(FileFormat.PARQUET),
                  tag="tag_empty")
    table = pq.read_table(pa.BufferReader(data))
    assert table.num_rows == 0 and table.column_names == ["gio_id", "usr_i"]


def test_duckdb_parquet_row_groups_are_whole_whatever_the_batches(tmp_path, monkeypatch):
    from tagport.engines.base import InputFormat
    from tagport.engines.duckdb import writers
    from tagport.engines.duckdb.engine import DuckDBEngine
    from tagport.engines.duckdb.store import DuckDBStore
    from tests.conftest import write_jsonl

    monkeypatch.setattr(writers, "ROWS_PER_GROUP", 100)
    monkeypatch.setattr(writers, "BATCH_ROWS", 37)  # batches that never end on a group
    engine = DuckDBEngine(DuckDBStore(tmp_path / "p.duckdb"))
    records = [{"identifications": {"id_uid": f"u{i}"}, "properties": {"tag_t": "x"}}
               for i in range(1050)]
    assert engine.load(write_jsonl(tmp_path / "u.jsonl", records), InputFormat.JSONL,
                       CATALOG).applied
    data = export(engine, tmp_path, ["id_uid"], OutputFormat(FileFormat.PARQUET))
    engine.close()
    meta = pq.ParquetFile(pa.BufferReader(data)).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [100] * 10 + [50]
