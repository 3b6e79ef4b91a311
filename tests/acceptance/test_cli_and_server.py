"""The real CLI and the real server (`tagport serve` on a free port), driven as a user would."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import SEED_CATALOG, SEED_USERS, write_jsonl
from tests.integration.test_api import CSV_KEY, JSON_LINES

TAGPORT = [sys.executable, "-m", "tagport"]


def tagport(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*TAGPORT, "--data-dir", str(data_dir), *args],
                            capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"tagport {args} failed: {result.stdout}\n{result.stderr}")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prepared(tmp_path: Path) -> tuple[Path, str]:
    data = tmp_path / "data"
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(SEED_CATALOG, ensure_ascii=False), encoding="utf-8")
    tagport(data, "catalog", "apply", str(catalog))
    tagport(data, "load", str(write_jsonl(tmp_path / "users.jsonl", SEED_USERS)))
    token = tagport(data, "token", "create", "acceptance").stdout.strip().splitlines()[-1]
    return data, token


@pytest.fixture
def server(prepared):
    data, token = prepared
    port = free_port()
    proc = subprocess.Popen([*TAGPORT, "--data-dir", str(data), "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/openapi.json", timeout=1)
            break
        except httpx.TransportError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read()) from None
            time.sleep(0.1)
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    yield data, client
    client.close()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


def export(client: httpx.Client, body: dict) -> tuple[dict, bytes]:
    job = client.post("/v1/api/user_tags/tag_rfm/export_jobs", json=body)
    assert job.status_code == 200, job.text
    for _ in range(300):
        result = client.get(f"/v1/api/job/result/{job.json()['id']}").json()
        if result["stage"] in ("FINISH", "ERROR"):
            break
        time.sleep(0.1)
    assert result["stage"] == "FINISH", result
    # the client appends the uri as returned, like the seed's download address
    return result, client.get("/download?file=" + result["uris"][0]).content


def test_token_create_prints_a_uuid4_as_its_last_line(prepared):
    _, token = prepared
    assert uuid.UUID(token).version == 4


def test_the_seed_flow_over_http_against_tagport_serve(server):
    _, client = server
    _, csv_bytes = export(client, {"properties": ["ids_$basic_userId", "usr_gender", "tag_rfm"]})
    assert csv_bytes == CSV_KEY.encode()
    _, json_bytes = export(client, {"properties": ["ids_$basic_userId", "usr_gender", "tag_rfm"],
                                    "fileFormat": "json"})
    assert json_bytes == JSON_LINES.encode()


def test_load_while_the_server_runs_is_handed_to_it(server, tmp_path):
    data, client = server
    more = write_jsonl(tmp_path / "more.jsonl", [
        {"identifications": {"id_$basic_userId": "C002"}, "properties": {"tag_rfm": "高"}},
        {"identifications": {"id_$basic_userId": "C100"}, "properties": {"tag_rfm": "低"}},
    ])
    result = tagport(data, "load", str(more))
    assert "holds the profile store; the load of" in result.stdout
    assert "inserted=1 updated=1 rejected=0" in result.stdout
    _, csv_bytes = export(client, {"properties": ["id_$basic_userId"]})
    assert csv_bytes == (b'"gio_id","id_$basic_userId"\n1,"C001"\n2,"C002"\n3,"C004||C005"\n'
                         b'4,"C006"\n6,"C100"\n')


def test_cli_export_runs_through_the_running_server(server, tmp_path):
    data, _ = server
    out = tmp_path / "out.csv"
    result = tagport(data, "export", "tag_rfm", "--properties",
                     "ids_$basic_userId,usr_gender,tag_rfm", "-o", str(out))
    assert "3 rows written to" in result.stdout
    assert "the export runs there" in result.stderr
    assert out.read_bytes() == CSV_KEY.encode()


def test_cli_export_without_a_server_runs_locally(prepared, tmp_path):
    data, _ = prepared
    out = tmp_path / "out.json"
    tagport(data, "export", "tag_rfm", "-p", "ids_$basic_userId,usr_gender,tag_rfm",
            "--format", "json", "-o", str(out))
    assert out.read_bytes() == JSON_LINES.encode()


def test_cli_export_of_an_unknown_tag_says_so(prepared):
    data, _ = prepared
    result = tagport(data, "export", "tag_nope", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: user tag 'tag_nope' does not exist"


def test_a_bad_load_applies_nothing_and_names_line_and_field(prepared, tmp_path):
    data, _ = prepared
    bad = tmp_path / "bad.csv"
    bad.write_text('id_$basic_userId,usr_age\nC200,41\nC201,forty\n', encoding="utf-8")
    result = tagport(data, "load", str(bad), check=False)
    assert result.returncode == 1
    assert "line 3, field usr_age" in result.stderr
    assert "nothing was applied" in result.stderr
    out = tmp_path / "all.csv"
    tagport(data, "export", "tag_rfm", "-o", str(out))
    assert out.read_bytes() == b'"gio_id"\n1\n3\n4\n'  # unchanged


def test_skip_invalid_applies_the_rest_and_writes_rejects(prepared, tmp_path):
    data, _ = prepared
    bad = tmp_path / "bad.csv"
    bad.write_text('id_$basic_userId,usr_age,tag_rfm\nC200,41,高\nC201,forty,高\n', encoding="utf-8")
    result = tagport(data, "load", str(bad), "--skip-invalid")
    assert "inserted=1 updated=0 rejected=1" in result.stdout
    rejects = (tmp_path / "bad.rejects.csv").read_text().splitlines()
    assert rejects[0] == "line,field,reason" and rejects[1].startswith("3,usr_age,")


def test_changing_the_type_of_a_key_with_data_is_refused(prepared, tmp_path):
    data, _ = prepared
    changed = json.loads(json.dumps(SEED_CATALOG))
    changed["attributes"][1]["type"] = "string"  # usr_age holds data
    changed["tags"].append({"key": "tag_new", "name": "新标签", "type": "int"})
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed, ensure_ascii=False), encoding="utf-8")
    result = tagport(data, "catalog", "apply", str(path), check=False)
    assert result.returncode == 1
    assert "usr_age: cannot change type from int to string" in result.stderr
    listed = tagport(data, "catalog", "list").stdout
    assert "tag_new" not in listed  # all or nothing


def test_catalog_apply_again_updates_names_and_adds(prepared, tmp_path):
    data, _ = prepared
    changed = json.loads(json.dumps(SEED_CATALOG))
    changed["attributes"][0]["name"] = "用户性别"
    changed["tags"].append({"key": "tag_new", "name": "新标签", "type": "int"})
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed, ensure_ascii=False), encoding="utf-8")
    assert "1 added, 1 updated, 4 unchanged" in tagport(data, "catalog", "apply", str(path)).stdout
    listed = tagport(data, "catalog", "list").stdout
    assert "用户性别" in listed and "tag_new" in listed


def test_token_revoke_and_list(prepared):
    data, _ = prepared
    tagport(data, "token", "revoke", "acceptance")
    listed = tagport(data, "token", "list").stdout
    assert re.search(r"acceptance .*\d{4}-\d\d-\d\dT.* \d{4}-\d\d-\d\dT", listed)
    again = tagport(data, "token", "revoke", "acceptance", check=False)
    assert again.returncode == 1 and "no active token named 'acceptance'" in again.stderr


def test_demo_creates_a_catalog_users_and_a_working_token(tmp_path):
    data = tmp_path / "demo"
    out = tagport(data, "demo", "--no-serve", "--users", "3000").stdout
    assert "loaded demo events: appended=150000" in out  # 50 per user over 90 days
    assert "computed 9 tags from the events (FINISH): tag_active_days, tag_paid_30d," in out
    token = re.search(r"Demo token \(name \"demo\"\): (\S+)", out).group(1)
    assert uuid.UUID(token).version == 4
    assert "/v1/api/user_tags/tag_rfm/export_jobs" in out and "download?file=$URI" in out
    listed = tagport(data, "catalog", "list").stdout
    kinds = re.findall(r"│ (identity|attribute|tag) ", listed)
    assert (kinds.count("identity"), kinds.count("attribute"), kinds.count("tag")) == (2, 8, 12)
    dest = tmp_path / "rfm.csv"
    tagport(data, "export", "tag_rfm", "-p", "id_$basic_deviceId,usr_gender", "-o", str(dest))
    rows = dest.read_text(encoding="utf-8").splitlines()[1:]
    assert 0.6 < len(rows) / 3000 < 0.8  # the tag covers ~70% of users
    assert any("||" in r for r in rows)  # the device id is multi-valued
    assert any(r.endswith(",") for r in rows)  # and gender is sometimes null
    # a tag computed from the events exports like a loaded one
    tiers = tmp_path / "tier.csv"
    tagport(data, "export", "tag_value_tier", "-p", "tag_value_tier,tag_paid_30d,tag_paid_30d_sql", "-o",
            str(tiers))
    tier_rows = [r.split(",") for r in tiers.read_text(encoding="utf-8").splitlines()[1:]]
    assert {r[1] for r in tier_rows} <= {'"高价值"', '"中价值"', '"低价值"'} and tier_rows
    assert all(int(r[2]) >= 1 and r[2] == r[3] for r in tier_rows)  # rules = GrowingIO's SQL
