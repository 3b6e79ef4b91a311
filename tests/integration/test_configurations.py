"""One behaviour, every configuration (issue 4): the seed's load and export tests of
test_api.py, with the same assertions, against SQLite + DuckDB (the embedded default),
PostgreSQL + DuckDB, and PostgreSQL + Spark in local[2].

The tests are imported from test_api.py and collected here with this module's fixtures:
`settings` picks the metadata store and the engine; `seeded` (conftest.py) loads the five
seed users through the configuration's own load path and asserts they are all inserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tagport.config import Settings
from tests.integration.test_api import (  # noqa: F401  (fixtures and tests collected here)
    client,
    test_array_tag_is_joined_in_csv_and_an_array_in_json,
    test_csv_with_key_header_is_byte_exact,
    test_csv_with_name_header_is_byte_exact,
    test_empty_properties_give_the_gio_id_column_only,
    test_ids_and_id_spellings_give_the_same_file,
    test_json_lines_are_byte_exact,
    test_stages_move_from_none_to_finish,
    test_unknown_tag_is_404,
    token,
)
from tests.spark_support import shared_spark

CONFIGURATIONS = {
    "sqlite-duckdb": ("sqlite", "duckdb"),
    "postgresql-duckdb": ("postgresql", "duckdb"),
    "postgresql-spark": ("postgresql", "spark"),
}


@pytest.fixture(params=list(CONFIGURATIONS), ids=list(CONFIGURATIONS))
def configuration(request) -> tuple[str, str]:
    return CONFIGURATIONS[request.param]


@pytest.fixture
def metadata_url(configuration, request) -> str | None:
    store, _ = configuration
    if store == "sqlite":
        return None
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def settings(data_dir: Path, metadata_url: str | None, configuration, tmp_path: Path) -> Settings:
    _, engine = configuration
    if engine == "spark":
        shared_spark()  # the test session's local[2] session (small-data settings), or a skip
        return Settings(data_dir=data_dir, poll_interval=0.05, database_url=metadata_url,
                        engine="spark", spark_master="local[2]",
                        profile_path=tmp_path / "profiles.parquet")
    return Settings(data_dir=data_dir, poll_interval=0.05, database_url=metadata_url)


def test_the_engine_is_the_configured_one(seeded, configuration):
    _, engine = configuration
    assert seeded.engine.name == engine
    assert seeded.engine.user_count() == 5
