"""A profile store big enough that an export takes a while (so a test can kill a process
in the middle of one), built once per session with the real loader."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tagport.catalog.service import entries_from_file, read_catalog_file
from tagport.config import Settings
from tagport.core import Tagport

USERS = 600_000
CATALOG = {
    "identities": [{"key": "id_$basic_userId", "name": "用户ID"}],
    "attributes": [{"key": "usr_gender", "name": "性别", "type": "string"},
                   {"key": "usr_age", "name": "年龄", "type": "int"},
                   {"key": "usr_city", "name": "城市", "type": "string"}],
    "tags": [{"key": "tag_rfm", "name": "会员等级", "type": "string"},  # ~70% of users
             {"key": "tag_vip", "name": "贵宾", "type": "string"}],  # 1 user in 500
}
# ~420,000 JSON lines, ~70 MB: about a second of export on one DuckDB thread
BIG_REQUEST = {"properties": ["id_$basic_userId", "usr_gender", "usr_age", "usr_city", "tag_rfm"],
               "fileFormat": "json"}
SMALL_REQUEST = {"properties": ["id_$basic_userId", "usr_city"]}  # use with tag_vip


@dataclass(frozen=True)
class BigProfiles:
    store: Path  # profiles.duckdb
    catalog: Path

    def install(self, data_dir: Path) -> None:
        """Put a copy of the store into `data_dir` (its catalog is applied separately)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.store, data_dir / "profiles.duckdb")

    def apply_catalog(self, settings: Settings) -> None:
        tp = Tagport(settings)
        try:
            tp.catalog.apply(entries_from_file(read_catalog_file(self.catalog)))
        finally:
            tp.close()


@pytest.fixture(scope="session")
def big_profiles(tmp_path_factory) -> BigProfiles:
    root = tmp_path_factory.mktemp("big")
    catalog = root / "catalog.json"
    catalog.write_text(json.dumps(CATALOG, ensure_ascii=False), encoding="utf-8")
    users = root / "users.parquet"
    duckdb.sql(f"""COPY (
        SELECT 'U' || lpad(i::VARCHAR, 9, '0') AS "id_$basic_userId",
               CASE i % 3 WHEN 0 THEN '男' WHEN 1 THEN '女' END AS usr_gender,
               (i % 80)::BIGINT AS usr_age,
               '城市-' || (i % 997)::VARCHAR || '-' || md5(i::VARCHAR) AS usr_city,
               CASE WHEN i % 10 < 7 THEN ['高', '中', '低'][1 + i % 3] END AS tag_rfm,
               CASE WHEN i % 500 = 0 THEN '是' END AS tag_vip
        FROM range({USERS}) t(i)) TO '{users}' (FORMAT PARQUET)""")
    tp = Tagport(Settings(data_dir=root / "data"))
    try:
        tp.catalog.apply(entries_from_file(read_catalog_file(catalog)))
        assert tp.profiles.load(users).inserted == USERS
    finally:
        tp.close()
    return BigProfiles(root / "data" / "profiles.duckdb", catalog)
