"""A real Spark standalone cluster (one master, N workers) on 127.0.0.1, for tests and
benchmarks. The pip package has no start-master.sh; sbin/spark-daemon.sh starts the
master and worker classes directly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    url: str  # spark://127.0.0.1:<port>
    web: str  # the master's web UI, whose /json/ tells workers and applications

    def state(self) -> dict:  # type: ignore[type-arg]
        with urllib.request.urlopen(f"{self.web}/json/", timeout=5) as response:
            return json.load(response)


@contextmanager
def standalone_cluster(workers: int = 1, cores: int = 1, memory: str = "1g",
                       timeout: float = 180) -> Iterator[Cluster]:
    """Start a master and `workers` workers; stop them all when the block ends."""
    home = spark_home()
    daemon = str(home / "sbin" / "spark-daemon.sh")
    with tempfile.TemporaryDirectory(prefix="tagport-spark-cluster-") as tmp:
        env = {**os.environ, "SPARK_HOME": str(home), "SPARK_PID_DIR": tmp,
               "SPARK_LOG_DIR": tmp, "SPARK_WORKER_DIR": tmp, "SPARK_LOCAL_IP": "127.0.0.1",
               "SPARK_IDENT_STRING": f"tagport-{os.getpid()}"}
        port, web = free_port(), free_port()
        cluster = Cluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web}")
        started: list[tuple[str, int]] = []
        try:
            _daemon(daemon, env, "start", MASTER, 1, "--host", "127.0.0.1", "--port", str(port),
                    "--webui-port", str(web))
            started.append((MASTER, 1))
            for n in range(1, workers + 1):
                _daemon(daemon, env, "start", WORKER, n, "--host", "127.0.0.1", "--cores",
                        str(cores), "--memory", memory, "--webui-port", str(free_port()),
                        cluster.url)
                started.append((WORKER, n))
            _wait_for_workers(cluster, workers, timeout, Path(tmp))
            yield cluster
        finally:
            for cls, n in reversed(started):
                _daemon(daemon, env, "stop", cls, n, check=False)


def _daemon(daemon: str, env: dict[str, str], action: str, cls: str, n: int, *args: str,
            check: bool = True) -> None:
    subprocess.run([daemon, action, cls, str(n), *args], env=env, check=check,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def _wait_for_workers(cluster: Cluster, workers: int, timeout: float, logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cluster.state().get("aliveworkers", 0) >= workers:
                return
        except OSError:
            pass
        time.sleep(0.5)
    tails = "\n".join(p.read_text(errors="replace")[-2000:] for p in logs.glob("*.out"))
    raise TimeoutError(f"the Spark cluster did not get {workers} workers in {timeout} s:\n{tails}")
