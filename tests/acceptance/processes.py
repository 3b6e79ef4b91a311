"""Real tagport processes for the crash and multi-process tests: `serve` and `worker`
started with `python -m tagport`, driven over HTTP and with signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

TAGPORT = [sys.executable, "-m", "tagport"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(data_dir: Path, log: Path, *, env: dict[str, str] | None = None,
            stdout: Path | None = None) -> Iterator[str]:
    """`tagport serve` on a free port for the block: yields its URL once /healthz answers,
    stops it with SIGINT after. Its output goes to `log` (stdout to `stdout` if given)."""
    port = free_port()
    with open(log, "wb") as err, open(stdout or os.devnull, "wb") as out:
        proc = subprocess.Popen([*TAGPORT, "--data-dir", str(data_dir), "serve", "--port", str(port)],
                                stdout=out if stdout else err, stderr=err,
                                env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"tagport serve did not start:\n{log.read_text()}")
        time.sleep(0.1)
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


class TagportProcess:
    """One `tagport --data-dir DIR <args>` process; its output goes to a log file."""

    def __init__(self, data_dir: Path, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [*TAGPORT, "--data-dir", str(data_dir), *args],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env},
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs."""
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


class Api(TagportProcess):
    """`tagport serve` on a free port, with an HTTP client holding `token`."""

    def __init__(self, data_dir: Path, token: str, env: dict[str, str], log: Path,
                 *extra: str) -> None:
        port = free_port()
        super().__init__(data_dir, ["serve", "--port", str(port), *extra], env, log)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
        deadline = time.monotonic() + 60
        while True:
            try:
                self.http.get("/openapi.json", timeout=1)
                return
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"tagport serve did not start:\n{self.output()}") from None
                time.sleep(0.1)

    def submit(self, tag: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        response = self.http.post(f"/v1/api/user_tags/{tag}/export_jobs", json=body,
                                  headers=headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def result(self, job_id: str, token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return dict(self.http.get(f"/v1/api/job/result/{job_id}", headers=headers).json())

    def wait(self, job_id: str, token: str | None = None, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.result(job_id, token)
            if result["stage"] in ("FINISH", "ERROR"):
                return result
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not end: {result}")

    def download(self, result: dict[str, Any], token: str | None = None) -> bytes:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        response = self.http.get("/download?file=" + result["uris"][0], headers=headers)
        assert response.status_code == 200, response.text
        return response.content

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.http.close()
        return super().stop(sig, timeout)


def wait_for_partial_file(job_dir: Path, timeout: float = 60) -> Path:
    """The first non-empty file in a work dir of `job_dir`: an export is half-way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for work in job_dir.glob(".work-*"):
            for path in work.glob("*"):
                try:
                    if path.stat().st_size > 0:
                        return path
                except FileNotFoundError:
                    pass
        time.sleep(0.005)
    raise AssertionError(f"no export started writing into {job_dir}")


def leftovers(results: Path) -> list[str]:
    """Work dirs and partial files anywhere under the result dir."""
    return sorted(str(p.relative_to(results)) for p in results.rglob("*")
                  if p.name.startswith((".work-", ".")) or p.suffix == ".part")


def one_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The command failed (exit 1) with exactly one line on stderr, no traceback, holding
    each of `words`; that line."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]
