"""Computing tags as jobs, over HTTP and the CLI's core: triggers, the 409 while one runs,
each tag's outcome and the detector in the tag list, the export of a computed tag, and
the daily schedule once across processes. Events are loaded through the real loader."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tagport.api.app import create_app
from tagport.jobs.runner import worker_id
from tagport.tags.schedule import DailySchedule, due_day
from tests.conftest import core_with_events

AS_OF = date(2026, 11, 21)
CATALOG = {
    "identities": [{"key": "id_uid", "name": "用户ID"}],
    "attributes": [{"key": "usr_gender", "name": "性别", "type": "string"}],
    "tags": [
        {"key": "tag_rfm", "name": "会员等级", "type": "string"},
        {"key": "tag_paid_30d", "name": "近30天支付次数", "type": "int",
         "compute": {"type": "AGGREGATED", "event": "payOrderSuccess", "measure": "count",
                     "window": {"lastDays": 30}}},
        {"key": "tag_broken", "name": "坏标签", "type": "int", "scheduler": "ONCE",
         "compute": {"type": "SQL", "dialect": "duckdb",
                     "sql": "SELECT gio_id, CAST('x' AS INTEGER) AS tag_value FROM event"}},
    ],
    "events": [{"key": "payOrderSuccess", "name": "支付订单",
                "attributes": [{"key": "amount", "name": "金额", "type": "double"}]}],
}
EVENTS = [  # u1 paid twice in the window, u2 once (and once on the compute date), u3 never
    {"event": "payOrderSuccess", "time": "2026-11-20T10:00:00+08:00",
     "identifications": {"id_uid": "u1"}, "attributes": {"amount": 10.0}, "id": "e1"},
    {"event": "payOrderSuccess", "time": "2026-10-25T10:00:00+08:00",
     "identifications": {"id_uid": "u1"}, "attributes": {"amount": 5.0}, "id": "e2"},
    {"event": "payOrderSuccess", "time": "2026-11-01T10:00:00+08:00",
     "identifications": {"id_uid": "u2"}, "attributes": {"amount": 1.0}, "id": "e3"},
    {"event": "payOrderSuccess", "time": "2026-11-21T10:00:00+08:00",
     "identifications": {"id_uid": "u2"}, "attributes": {"amount": 1.0}, "id": "e4"},
]
USERS = [{"identifications": {"id_uid": u}, "properties": {"tag_rfm": "高"}}
         for u in ("u1", "u2", "u3")]


@pytest.fixture
def tp(tmp_path, metadata_url):
    core = core_with_events(tmp_path, metadata_url, CATALOG, USERS, EVENTS)
    yield core
    core.close()


@pytest.fixture
def api(tp):
    token = tp.tokens.create("t")
    with TestClient(create_app(tp, run_workers=False)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def run_queued(tp) -> None:
    while tp.jobs.runner.run_next(worker_id("test"), tp.engine).name == "RAN":
        pass


def tags(api) -> dict:
    return {t["key"]: t for t in api.get("/v1/api/user_tags").json()["values"]}


def test_a_trigger_is_growingios_answer_then_409_while_queued(api):
    first = api.post("/v1/api/user_tags/tag_paid_30d/computes")
    assert (first.status_code, first.json()) == (200, {"value": True, "message": "触发计算成功"})
    again = api.post("/v1/api/user_tags/tag_paid_30d/computes")
    assert again.status_code == 409 and again.json()["code"] == "COMPUTE_IN_PROGRESS"
    assert tags(api)["tag_paid_30d"]["detector"]["stage"] == "RUNNING"


def test_a_computed_tag_is_listed_computed_and_exported(api, tp):
    listed = tags(api)["tag_paid_30d"]
    assert (listed["type"], listed["detector"]["stage"]) == ("AGGREGATED", "NONE")
    assert tags(api)["tag_rfm"]["type"] == "IMPORT"
    job = tp.tag_computes.trigger(["tag_paid_30d"], as_of=AS_OF)
    run_queued(tp)
    assert tp.jobs.get(job.id).stage.value == "FINISH"
    detector = tags(api)["tag_paid_30d"]["detector"]
    assert (detector["stage"], detector["totalUsers"]) == ("FINISH", 2)
    assert detector["usersRatio"] == pytest.approx(2 / 3) and detector["detectedAt"]
    body = {"properties": ["id_uid", "tag_paid_30d"]}
    job_id = api.post("/v1/api/user_tags/tag_paid_30d/export_jobs", json=body).json()["id"]
    run_queued(tp)
    uri = api.get(f"/v1/api/job/result/{job_id}").json()["uris"][0]
    assert api.get(f"/download?file={uri}").text == (
        '"gio_id","id_uid","tag_paid_30d"\n1,"u1",2\n2,"u2",1\n')


def test_a_failing_tag_ends_in_error_and_the_others_are_computed(tp, api):
    job = tp.tag_computes.trigger(None, as_of=AS_OF)  # every computed tag
    assert job.properties == ["tag_paid_30d", "tag_broken"]
    run_queued(tp)
    ended = tp.jobs.get(job.id)
    assert ended.stage.value == "ERROR" and ended.error_code == "COMPUTE_FAILED"
    assert ended.error_message.startswith("tag_broken: ")
    listed = tags(api)
    assert listed["tag_paid_30d"]["detector"]["stage"] == "FINISH"
    assert listed["tag_broken"]["detector"]["stage"] == "ERROR"
    assert listed["tag_broken"]["detector"]["error"]["code"] == "COMPUTE_FAILED"


@pytest.mark.parametrize("key, status, code", [
    ("tag_rfm", 400, "TAG_NOT_COMPUTED"), ("tag_nope", 404, "TAG_NOT_FOUND")])
def test_only_computed_tags_are_computed(api, key, status, code):
    response = api.post(f"/v1/api/user_tags/{key}/computes")
    assert response.status_code == status and response.json()["code"] == code


def test_the_daily_run_is_queued_once_across_processes_and_caught_up_at_start(tp):
    zone = ZoneInfo("Asia/Shanghai")
    one = DailySchedule(tp.db, tp.tag_computes, "02:00", zone, "a")
    other = DailySchedule(tp.db, tp.tag_computes, "02:00", zone, "b")
    before = datetime(2026, 11, 21, 1, 59, tzinfo=zone)
    assert due_day(before, one.at) == date(2026, 11, 20)
    # down at 02:00 on the 20th: the first look after the start computes the 20th
    assert one.run_due(before) and not other.run_due(before)
    assert not one.run_due(datetime(2026, 11, 21, 1, 59, 30, tzinfo=zone))
    computes = tp.jobs.unfinished("compute")
    assert [(j.properties, j.as_of) for j in computes] == [(["tag_paid_30d"], date(2026, 11, 20))]
    run_queued(tp)
    at_two = datetime(2026, 11, 21, 2, 0, tzinfo=zone)
    assert other.run_due(at_two) and not one.run_due(at_two)
    assert [j.as_of for j in tp.jobs.unfinished("compute")] == [AS_OF]
