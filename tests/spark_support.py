"""One Spark session for the whole test session (it takes 4-9 s to start), or a skip."""

from __future__ import annotations

import atexit
import functools
import importlib.util
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def missing_reason() -> str | None:
    """Why Spark cannot run here, or None."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[test]')"
    if shutil.which("java") is None:
        return "no Java runtime on PATH (Spark needs Java 17)"
    return None


@functools.cache
def _session():  # type: ignore[no-untyped-def]
    from tagport.engines.spark.engine import spark_session

    spark = spark_session("local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    # tiny data: adaptive execution and broadcasts each add a Spark job per join, which
    # costs more than the join itself; the results are the same
    spark.conf.set("spark.sql.shuffle.partitions", "4")
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    return spark


def shared_spark():  # type: ignore[no-untyped-def]
    """The test session's local[2] Spark session; skips the test when Spark cannot run."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    return _session()


_templates: dict[str, Path] = {}


def loaded_spark_engine(tmp_path: Path, name: str, load: Callable[[Any, Path], Any]):  # type: ignore[no-untyped-def]
    """A Spark engine on a private copy of a dataset that `load(engine, dir)` built once
    per test session under `name`."""
    from tagport.engines.spark.engine import SparkEngine
    from tagport.engines.spark.store import ProfileStore

    spark = shared_spark()
    if name not in _templates:
        root = Path(tempfile.mkdtemp(prefix=f"tagport-spark-{name}-"))
        atexit.register(shutil.rmtree, root, True)
        load(SparkEngine(spark, ProfileStore(root / "profiles")), root)
        _templates[name] = root / "profiles"
    shutil.copytree(_templates[name], tmp_path / "profiles")
    return SparkEngine(spark, ProfileStore(tmp_path / "profiles"))
