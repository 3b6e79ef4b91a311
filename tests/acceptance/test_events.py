"""`tagport catalog apply` with events and `tagport events load`, through the real CLI, and
handed to a running `tagport serve` as user loads are."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.acceptance.test_cli_and_server import TAGPORT, free_port
from tests.conftest import SEED_CATALOG, SEED_USERS, write_jsonl

UID = "id_$basic_userId"
CATALOG = {**SEED_CATALOG, "events": [
    {"key": "payOrderSuccess", "name": "支付订单", "name_en": "Order paid",
     "attributes": [{"key": "amount", "name": "金额", "name_en": "Amount", "type": "double"},
                    {"key": "category", "name": "品类", "type": "string"}]}]}
ENV = {**os.environ, "TAGPORT_TIMEZONE": "Asia/Shanghai"}


def tagport(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*TAGPORT, "--data-dir", str(data), *args], capture_output=True,
                            text=True, timeout=120, env=ENV)
    if check and result.returncode != 0:
        raise AssertionError(f"tagport {args} failed: {result.stdout}\n{result.stderr}")
    return result


def pay(user: str, time: str, id: str, **attributes) -> dict:
    return {"event": "payOrderSuccess", "time": time, "identifications": {UID: user},
            "attributes": attributes, "id": id}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(CATALOG, ensure_ascii=False), encoding="utf-8")
    applied = tagport(data, "catalog", "apply", str(catalog))
    assert "catalog applied: 6 added" in applied.stdout
    tagport(data, "load", str(write_jsonl(tmp_path / "users.jsonl", SEED_USERS)))
    return data


def test_events_load_prints_the_counts_and_a_second_load_skips_every_event(data, tmp_path):
    events = write_jsonl(tmp_path / "events.jsonl", [
        pay("C001", "2026-11-20T10:00:00+08:00", "e-1", amount=99.5, category="书"),
        pay("C900", "2026-11-20 23:59:59", "e-2", amount=5),
        pay("C001", "2026-11-20T16:00:00Z", "e-1"),
    ])
    first = tagport(data, "events", "load", str(events))
    assert "appended=2 duplicates=1 users_created=1 rejected=0" in first.stdout
    again = tagport(data, "events", "load", str(events))
    assert "appended=0 duplicates=3 users_created=0 rejected=0" in again.stdout
    listed = tagport(data, "catalog", "list").stdout
    assert "payOrderSuccess" in listed and "amount (double)" in listed


def test_a_bad_event_names_its_line_and_field_and_nothing_is_applied(data, tmp_path):
    events = write_jsonl(tmp_path / "bad.jsonl", [
        pay("C001", "2026-11-20T10:00:00+08:00", "e-1"),
        pay("C001", "tomorrow", "e-2"),
        pay("C001", "2026-11-20T10:00:00+08:00", "e-3", amount="lots"),
    ])
    result = tagport(data, "events", "load", str(events), check=False)
    assert result.returncode == 1
    assert "rejected: line 2, field time: value 'tomorrow' is not a time" in result.stderr
    assert ("rejected: line 3, field amount: value 'lots' is not a double (a finite number)"
            in result.stderr)
    assert "nothing was applied" in result.stderr
    assert "appended=0 duplicates=0 users_created=0 rejected=2" in result.stdout
    skipped = tagport(data, "events", "load", str(events), "--skip-invalid")
    assert "appended=1 duplicates=0 users_created=0 rejected=2" in skipped.stdout
    with open(tmp_path / "bad.rejects.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert [r[:2] for r in rows] == [["line", "field"], ["2", "time"], ["3", "amount"]]


def test_known_users_only_rejects_events_of_unknown_identities(data, tmp_path):
    events = write_jsonl(tmp_path / "e.csv.jsonl", [
        pay("C404", "2026-11-20T10:00:00+08:00", "e-9")])
    result = tagport(data, "events", "load", str(events), "--known-users-only", check=False)
    assert result.returncode == 1
    assert "rejected: line 1: no user holds its identity values" in result.stderr


def test_a_csv_file_of_events_loads(data, tmp_path):
    events = tmp_path / "events.csv"
    events.write_text(f"event,time,id,{UID},amount\n"
                      "payOrderSuccess,1763632800000,c-1,C002,10\n", encoding="utf-8")
    result = tagport(data, "events", "load", str(events))
    assert "appended=1 duplicates=0 users_created=0 rejected=0" in result.stdout


@pytest.fixture
def server(data: Path):
    token = tagport(data, "token", "create", "events").stdout.strip().splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen([*TAGPORT, "--data-dir", str(data), "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(base + "/openapi.json", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    yield client
    client.close()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


def test_events_load_while_the_server_runs_is_handed_to_it(data, server, tmp_path):
    events = write_jsonl(tmp_path / "events.jsonl", [
        pay("C001", "2026-11-20T10:00:00+08:00", "e-1", amount=1),
        pay("C777", "2026-11-20T11:00:00+08:00", "e-2")])
    result = tagport(data, "events", "load", str(events))
    assert "holds the profile store; the load of" in result.stdout
    assert "appended=2 duplicates=0 users_created=1 rejected=0" in result.stdout
    assert server.get("/v1/api/users/$basic_userId/C777").json()["gioId"] == "6"
    bad = write_jsonl(tmp_path / "bad.jsonl", [pay("C001", "soon", "e-3")])
    refused = tagport(data, "events", "load", str(bad), check=False)
    assert refused.returncode == 1 and "line 1, field time" in refused.stderr


def test_the_catalog_route_lists_events_with_display_names(server):
    [event] = server.get("/v1/api/catalog", headers={"language": "US"}).json()["events"]
    assert event == {"key": "payOrderSuccess", "name": "Order paid", "description": "",
                     "attributes": [
                         {"key": "amount", "name": "Amount",
                          "valueType": {"type": "DOUBLE", "isArray": False}},
                         {"key": "category", "name": "品类",
                          "valueType": {"type": "STRING", "isArray": False}}]}
