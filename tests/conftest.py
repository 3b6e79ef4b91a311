"""Shared fixtures: a real data dir with the seed's small dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagport.catalog.service import entries_from_file, events_from_file, read_catalog_file
from tagport.config import Settings
from tagport.core import Tagport
from tests import postgres_server, s3_server
from tests.big_dataset import big_profiles  # noqa: F401  (a session fixture)

SEED_CATALOG = {
    "identities": [{"key": "id_$basic_userId", "name": "用户ID"}],
    "attributes": [{"key": "usr_gender", "name": "性别", "type": "string"},
                   {"key": "usr_age", "name": "年龄", "type": "int"}],
    "tags": [{"key": "tag_rfm", "name": "会员等级", "type": "string", "description": "RFM"},
             {"key": "tag_interests", "name": "兴趣", "type": "string", "isArray": True}],
}

# gio_ids 1..5 in this order; users 2 and 5 are not covered by tag_rfm
SEED_USERS = [
    {"identifications": {"id_$basic_userId": "C001"},
     "properties": {"usr_gender": "男", "usr_age": 30, "tag_rfm": "高"}},
    {"identifications": {"id_$basic_userId": "C002"},
     "properties": {"usr_gender": "女", "tag_rfm": None}},
    {"identifications": {"id_$basic_userId": ["C004", "C005"]},
     "properties": {"usr_gender": "女", "tag_rfm": "低", "tag_interests": ["数码", "美妆"]}},
    {"identifications": {"id_$basic_userId": "C006"},
     "properties": {"usr_gender": None, "tag_rfm": "中"}},
    {"identifications": {"id_$basic_userId": "C007"}, "properties": {"usr_gender": "男"}},
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return path


def core_with_events(tmp_path: Path, metadata_url: str, catalog: dict, users: list[dict],
                     events: list[dict]) -> Tagport:
    """A Tagport on `tmp_path` (zone Asia/Shanghai) with `catalog` applied and `users` and
    `events` loaded; the caller closes it."""
    core = Tagport(Settings(data_dir=tmp_path / "data", database_url=metadata_url,
                            timezone="Asia/Shanghai", poll_interval=0.05))
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    spec = read_catalog_file(path)
    core.catalog.apply(entries_from_file(spec), events_from_file(spec))
    assert core.profiles.load(write_jsonl(tmp_path / "u.jsonl", users)).applied
    assert core.events.load(write_jsonl(tmp_path / "e.jsonl", events)).applied
    return core


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL for the session (see tests/postgres_server.py); skips without one."""
    try:
        server = postgres_server.start()
    except postgres_server.Unavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3():
    """A local S3-compatible server (moto) for the session; skips without moto and s3fs."""
    try:
        server = s3_server.start()
    except s3_server.Unavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_url(request) -> str | None:
    """Every test on a core runs against both metadata stores: SQLite (the default, in
    the data dir) and a new PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def settings(data_dir: Path, metadata_url: str | None) -> Settings:
    return Settings(data_dir=data_dir, poll_interval=0.05, database_url=metadata_url)


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(SEED_CATALOG, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "users.jsonl", SEED_USERS)


@pytest.fixture
def core(settings: Settings):
    instance = Tagport(settings)
    yield instance
    instance.close()


@pytest.fixture
def seeded(core: Tagport, catalog_file: Path, users_file: Path) -> Tagport:
    """The core with the seed catalog and the five seed users loaded."""
    core.catalog.apply(entries_from_file(read_catalog_file(catalog_file)))
    report = core.profiles.load(users_file)
    assert report.applied and report.inserted == 5
    return core
