"""Segments through the real CLI (`tagport segment apply|list`, `tagport remote export
--segment`) and the Python client against a real `tagport serve` on a port."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date

import pytest

from tagport.client import Client
from tests.acceptance.test_cli_and_server import (  # noqa: F401
    TAGPORT,
    prepared,
    server,
    tagport,
)

WOMEN = {"key": "usr_gender", "op": "=", "values": ["女"]}
SEGMENTS = [
    {"key": "seg_women", "name": "女性", "definition": WOMEN},
    {"key": "seg_women_rfm", "name": "有等级的女性", "scheduler": "ONCE", "definition": {
        "op": "and", "exprs": [{"segment": "seg_women"},
                               {"key": "tag_rfm", "op": "is not null"}]}},
]


def test_apply_computes_the_new_segments_and_list_shows_them(prepared, tmp_path):  # noqa: F811
    data, _ = prepared
    path = tmp_path / "segments.json"
    path.write_text(json.dumps(SEGMENTS, ensure_ascii=False), encoding="utf-8")
    applied = tagport(data, "segment", "apply", str(path)).stdout.splitlines()
    assert applied == ["seg_women: added", "seg_women_rfm: added", "seg_women: 2 members",
                       "seg_women_rfm: 1 members"]
    assert tagport(data, "segment", "list").stdout.splitlines() == [
        "seg_women 女性 DIRECT DAILY FINISH 2", "seg_women_rfm 有等级的女性 DIRECT ONCE FINISH 1"]
    again = tagport(data, "segment", "apply", str(path)).stdout.splitlines()
    assert again == ["seg_women: unchanged", "seg_women_rfm: unchanged"]


def test_apply_refuses_a_bad_file_naming_the_segment_and_the_field(prepared, tmp_path):  # noqa: F811
    data, _ = prepared
    path = tmp_path / "segments.json"
    bad = [{"key": "seg_x", "name": "x", "definition": {"key": "usr_age", "op": "contains",
                                                        "values": ["3"]}}]
    path.write_text(json.dumps(bad), encoding="utf-8")
    refused = tagport(data, "segment", "apply", str(path), check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: {path}: segments[0] (seg_x): definition.op: 'contains' applies to strings, "
        "not to int (key usr_age)")
    assert "Traceback" not in refused.stderr
    assert tagport(data, "segment", "list").stdout == ""


@pytest.fixture
def admin(server):  # noqa: F811
    data, client = server
    token = tagport(data, "token", "create", "admin", "--scope", "admin"
                    ).stdout.strip().splitlines()[-1]
    return data, str(client.base_url), token


def test_a_script_estimates_defines_portrays_and_exports_a_segment(admin, tmp_path):
    _, url, token = admin
    with Client(url, token) as c:
        estimate = c.estimate_segment(WOMEN)
        c.define_segment("seg_women", "女性", WOMEN, wait=True)
        portrait = c.segment_portrait("seg_women", ["tag_rfm"])
        paths = c.export_segment("seg_women", ["id_$basic_userId"], dest=f"{tmp_path}/out/")
    assert estimate == {"users": 2, "totalUsers": 5, "exact": True, "sampleRatio": 1.0}
    assert portrait["groupUsers"] == 2
    assert [(v["value"], v["groupUsers"], v["allUsers"])
            for v in portrait["properties"][0]["values"]] == [("低", 1, 1)]
    assert [p.name for p in paths] == [f"女性_{date.today().isoformat()}_UserList.csv"]
    assert paths[0].read_text(encoding="utf-8") == (
        '"gio_id","id_$basic_userId"\n2,"C002"\n3,"C004||C005"\n')
    with Client(url, token) as c:
        listed = c.list_segments()
    assert [(s["key"], s["detector"]["stage"], s["detector"]["totalUsers"])
            for s in listed] == [("seg_women", "FINISH", 2)]


def test_remote_export_takes_a_segment(admin, tmp_path):
    _, url, token = admin
    with Client(url, token) as c:
        c.define_segment("seg_women", "女性", WOMEN, wait=True)
    out = tmp_path / "women.json"
    env = {**os.environ, "TAGPORT_URL": url, "TAGPORT_TOKEN": token}
    done = subprocess.run([*TAGPORT, "remote", "export", "--segment", "seg_women", "-p",
                           "usr_gender", "--format", "json", "-o", str(out)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["gio_id"] for line in out.read_text().splitlines()] == [2, 3]
    neither = subprocess.run([*TAGPORT, "remote", "export"], capture_output=True, text=True,
                             timeout=60, env=env)
    assert neither.returncode == 2
    assert "name a user tag, or a segment with --segment" in neither.stderr

