"""A local S3-compatible server for the tests: moto's server mode in a subprocess on a
free port (no cloud is reachable here). Needs `moto[server]`, boto3 and s3fs (the test
extra); `start()` raises Unavailable, a skip reason, without them."""

from __future__ import annotations

import importlib.util
import itertools
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REGION = "us-east-1"
KEY = SECRET = "testing"  # moto accepts any credentials


class Unavailable(Exception):
    """No S3 server can be had here; the message says why."""


class S3Server:
    def __init__(self, proc: subprocess.Popen, endpoint: str, log: Path) -> None:
        self.proc = proc
        self.endpoint = endpoint  # http://127.0.0.1:PORT
        self.log = log
        self._names = itertools.count(1)
        import boto3

        self.client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                                   aws_access_key_id=KEY, aws_secret_access_key=SECRET)

    def new_bucket(self) -> str:
        name = f"tagport-test-{next(self._names)}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        """Every object key in `bucket`, sorted."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    @property
    def storage_options(self) -> dict[str, Any]:
        """`TAGPORT_RESULT_STORAGE_OPTIONS` for s3fs against this server."""
        return {"endpoint_url": self.endpoint, "key": KEY, "secret": SECRET,
                "client_kwargs": {"region_name": REGION}}

    def env(self, url: str) -> dict[str, str]:
        """The environment of a tagport process whose results go to `url` here."""
        return {"TAGPORT_RESULT_URL": url,
                "TAGPORT_RESULT_STORAGE_OPTIONS": json.dumps(self.storage_options)}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start() -> S3Server:
    missing = [m for m in ("moto", "boto3", "s3fs", "flask")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise Unavailable(f"S3 tests need {', '.join(missing)}: pip install -e '.[test]'")
    port = _free_port()
    log = Path(tempfile.mkdtemp(prefix="tagport-moto-")) / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                 "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise Unavailable(f"moto's server did not start: {log.read_text()}") from None
            time.sleep(0.1)
    return S3Server(proc, f"http://127.0.0.1:{port}", log)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
