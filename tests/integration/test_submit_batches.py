"""SQLite's submits are stored in batches (jobs/submits.py): one transaction, the same
answers as one submit at a time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.catalog.service import CatalogService
from tagport.errors import NotFound, TooManyRequests
from tagport.exports import naming
from tagport.exports.spec import ExportRequest


@pytest.fixture
def metadata_url():  # SQLite only: PostgreSQL stores a submit per transaction
    return None


def _token_id(core, name="batcher"):
    return core.tokens.authenticate(core.tokens.create(name)).id


def _batch(core, requests, token_id):
    submits = [core.jobs.prepare(ExportRequest("tag_rfm", props, "csv", "key"), token_id)
               for props in requests]
    with core.db.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        answers = core.jobs.store_batch(conn, submits)
        conn.commit()
    return answers


def test_a_batch_dedupes_and_limits_as_its_submits_come(seeded):
    core = seeded
    token_id = _token_id(core)
    core.jobs.max_queued_per_token = 2
    first, again, second, third = _batch(
        core, [["usr_gender"], ["usr_gender"], ["usr_age"], ["tag_rfm"]], token_id)
    assert again.id == first.id
    assert second.id != first.id
    assert isinstance(third, TooManyRequests)
    assert sorted(j.id for j in core.jobs.list() if j.token_id == token_id) == sorted(
        [first.id, second.id])


def test_a_later_batch_returns_the_stored_identical_job(seeded):
    core = seeded
    token_id = _token_id(core)
    [first] = _batch(core, [["usr_gender"]], token_id)
    [again] = _batch(core, [["usr_gender"]], token_id)
    assert again == core.jobs.get(first.id)


def test_a_taken_job_id_is_drawn_again(seeded, monkeypatch):
    core = seeded
    token_id = _token_id(core)
    [first] = _batch(core, [["usr_gender"]], token_id)
    ids = iter([first.id, first.id, "zzzzzzzz"])
    monkeypatch.setattr(naming, "new_job_id", lambda: next(ids))
    [job, same] = _batch(core, [["usr_age"], ["usr_age"]], token_id)
    assert job.id == same.id == "zzzzzzzz"
    assert core.jobs.get("zzzzzzzz").properties == job.properties


def test_a_key_added_by_another_process_is_accepted_at_once(seeded):
    core = seeded
    core.jobs.prepare_quickly(ExportRequest("tag_rfm", ["usr_gender"], "csv", "key"), None)
    other = CatalogService(core.db)  # `tagport catalog apply` elsewhere
    other.apply([CatalogEntry("usr_city", Kind.ATTRIBUTE, "城市", ValueType.STRING, False, "")])
    submit = core.jobs.prepare_quickly(ExportRequest("tag_rfm", ["usr_city"], "csv", "key"), None)
    assert submit.properties == ["usr_city"]


def test_a_batch_validated_against_an_older_catalog_is_validated_again(seeded):
    core = seeded
    token_id = _token_id(core)
    submit = core.jobs.prepare_quickly(
        ExportRequest("tag_rfm", ["usr_gender"], "csv", "name"), token_id)
    CatalogService(core.db).apply(
        [CatalogEntry("usr_city", Kind.ATTRIBUTE, "城市", ValueType.STRING, False, "")])
    stale = replace(submit, request=ExportRequest("tag_nope", [], "csv", "key"))
    with core.db.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        [kept, refused] = core.jobs.store_batch(conn, [submit, stale])
        conn.commit()
    assert kept.properties == ["usr_gender"]
    assert isinstance(refused, NotFound) and refused.code == "TAG_NOT_FOUND"
