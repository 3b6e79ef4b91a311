"""Smoke test: the real CLI on a real Spark standalone cluster (master + worker on
127.0.0.1) writes the same bytes as the embedded DuckDB engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SEED_CATALOG, SEED_USERS, write_jsonl
from tests.spark_support import missing_reason

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))

PROPERTIES = "id_$basic_userId,usr_gender,usr_age,tag_rfm,tag_interests"


def tagport(data_dir: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tagport", "--data-dir", str(data_dir), *args],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def export_both_formats(data_dir: Path, env: dict[str, str], tmp: Path) -> list[bytes]:
    catalog = tmp / "catalog.json"
    catalog.write_text(json.dumps(SEED_CATALOG, ensure_ascii=False), encoding="utf-8")
    users = write_jsonl(tmp / "users.jsonl", SEED_USERS)
    tagport(data_dir, env, "catalog", "apply", str(catalog))
    tagport(data_dir, env, "load", str(users))
    out = []
    for fmt, header in (("csv", "name"), ("json", "key")):
        dest = data_dir / f"out.{fmt}"
        tagport(data_dir, env, "export", "tag_rfm", "-p", PROPERTIES, "--format", fmt,
                "--header", header, "-o", str(dest))
        out.append(dest.read_bytes())
    return out


def test_spark_cluster_exports_the_duckdb_engines_bytes(tmp_path):
    from tests.spark_cluster import standalone_cluster

    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGPORT_")}
    duck = export_both_formats(tmp_path / "duck", env, tmp_path)
    assert duck[0].startswith('"gio_id","用户ID"'.encode())
    with standalone_cluster(workers=1, cores=1, memory="1g") as cluster:
        spark_env = {**env, "TAGPORT_ENGINE": "spark", "TAGPORT_SPARK_MASTER": cluster.url}
        spark = export_both_formats(tmp_path / "spark", spark_env, tmp_path)
        apps = cluster.state()
        ran = apps.get("activeapps", []) + apps.get("completedapps", [])
    assert spark == duck
    assert len(ran) >= 3  # the load and both exports ran as applications on the cluster
