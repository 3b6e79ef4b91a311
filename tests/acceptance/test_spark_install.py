"""The Spark engine without its pieces: one clear line naming what to install, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SEED_CATALOG, SEED_USERS, write_jsonl

# runs the CLI as `python -m tagport` would, with pyspark impossible to import
WITHOUT_PYSPARK = ("import sys; sys.modules['pyspark'] = None; sys.argv[0] = 'tagport'; "
                   "from tagport.cli.main import app; app(prog_name='tagport')")


def run(args: list[str], tmp: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_PYSPARK, "--data-dir", str(tmp / "d"),
                           *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TAGPORT_ENGINE": "spark", **env})


def test_a_spark_load_without_pyspark_says_what_to_install(tmp_path):
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(SEED_CATALOG), encoding="utf-8")
    assert run(["catalog", "apply", str(catalog)], tmp_path, {}).returncode == 0
    done = run(["load", str(write_jsonl(tmp_path / "u.jsonl", SEED_USERS))], tmp_path, {})
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: the Spark engine needs pyspark: pip install 'tagport[spark]' (and Java 17)")
    assert "Traceback" not in done.stdout + done.stderr


def test_a_spark_load_without_java_says_what_to_install(tmp_path):
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(SEED_CATALOG), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env.update(PATH="/nonexistent", TAGPORT_ENGINE="spark")
    args = [sys.executable, "-m", "tagport", "--data-dir", str(tmp_path / "d")]
    assert subprocess.run([*args, "catalog", "apply", str(catalog)], env=env,
                          capture_output=True, timeout=120).returncode == 0
    done = subprocess.run([*args, "load", str(write_jsonl(tmp_path / "u.jsonl", SEED_USERS))],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: the Spark engine needs Java 17: install it (Debian: apt-get install"
        " openjdk-17-jre-headless) or set JAVA_HOME")
    assert "Traceback" not in done.stdout + done.stderr


# an API-only node (`tagport serve --no-worker` opens the engine per request) asked /readyz
READYZ = """
import json, sys
if sys.argv[2] == 'pyspark':
    sys.modules['pyspark'] = None
from fastapi.testclient import TestClient
from tagport.api.app import create_app
from tagport.config import Settings
from tagport.core import Tagport
core = Tagport(Settings(data_dir=sys.argv[1]))
core.open_engine_per_use()
with TestClient(create_app(core, run_workers=False)) as client:
    response = client.get('/readyz')
    print(json.dumps([response.status_code, response.json()]))
"""


@pytest.mark.parametrize("missing, message", [
    ("pyspark", "the Spark engine needs pyspark: pip install 'tagport[spark]' (and Java 17)"),
    ("java", "the Spark engine needs Java 17: install it (Debian: apt-get install"
             " openjdk-17-jre-headless) or set JAVA_HOME"),
])
def test_readyz_without_pyspark_or_java_says_in_one_line_what_to_install(
        tmp_path, missing, message):
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["TAGPORT_ENGINE"] = "spark"
    if missing == "java":
        env["PATH"] = "/nonexistent"
    done = subprocess.run([sys.executable, "-c", READYZ, str(tmp_path / "d"), missing],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    status, body = json.loads(done.stdout.strip().splitlines()[-1])
    assert (status, body) == (503, {"status": "not ready", "checks": {
        "metadata": "ok", "engine": f"ConfigError: {message}"}})


# the driver JVM's heap, as a process opening the Spark engine from its settings gets it
DRIVER_HEAP = """
import json, sys
from tagport.config import Settings
from tagport.engines.spark.engine import SparkEngine
engine = SparkEngine.from_settings(Settings(data_dir=sys.argv[1]))
jvm = engine.spark.sparkContext._jvm
print(json.dumps([engine.spark.conf.get('spark.driver.memory'),
                  jvm.java.lang.Runtime.getRuntime().maxMemory()]))
"""


def test_the_spark_driver_memory_setting_sizes_the_driver_jvm(tmp_path):
    env = {**os.environ, "TAGPORT_ENGINE": "spark", "TAGPORT_SPARK_DRIVER_MEMORY": "2g"}
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    done = subprocess.run([sys.executable, "-c", DRIVER_HEAP, str(tmp_path / "d")],
                          capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    setting, heap = json.loads(done.stdout.strip().splitlines()[-1])
    assert setting == "2g"
    assert 1.5 * 2**30 < heap <= 2 * 2**30  # Spark's own default would be 1g


def test_a_local_master_gets_a_quarter_of_the_memory_and_a_cluster_sparks_default():
    from tagport.config import Settings

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert Settings(spark_master="local[2]").driver_memory == (
        f"{max(1024, total // 4 // 2**20)}m")
    assert Settings(spark_master="spark://h:7077").driver_memory is None
    assert Settings(spark_master="spark://h:7077", spark_driver_memory="8g"
                    ).driver_memory == "8g"
