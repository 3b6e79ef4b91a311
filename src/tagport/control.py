"""How processes on one machine find the running server and hand it work.

The server writes `server.json` (its url and pid) into the data dir while it runs, and
keeps a random control secret in `control.secret` (mode 0600). A CLI command that
needs the DuckDB writer the server holds sends its request with that secret.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tagport import secret_files
from tagport.config import Settings
from tagport.engines.base import LoadReport, Reject
from tagport.errors import StoreBusy, TagportError


@dataclass(frozen=True)
class RunningServer:
    url: str
    pid: int


def control_secret(settings: Settings) -> str:
    return secret_files.read_or_create(settings.control_secret_file)


def write_server_file(settings: Settings, url: str) -> None:
    tmp = settings.server_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.replace(tmp, settings.server_file)


def remove_server_file(settings: Settings) -> None:
    try:
        info = json.loads(settings.server_file.read_text())
        if info.get("pid") == os.getpid():
            settings.server_file.unlink()
    except (OSError, ValueError):
        pass


def running_server(settings: Settings) -> RunningServer | None:
    """The server recorded in the data dir, if its process is alive."""
    try:
        info = json.loads(settings.server_file.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return RunningServer(url=info["url"], pid=int(info["pid"]))


def hand_load_to_server(settings: Settings, path: Path, skip_invalid: bool,
                        rejects_path: Path | None) -> tuple[RunningServer, LoadReport]:
    """Ask the running server to load `path`; raises StoreBusy when there is none."""
    server = running_server(settings)
    if server is None:
        raise StoreBusy(
            f"the profile store {settings.profile_db_path} is open in another process, "
            "and no running tagport server was found in the data dir to hand the load to"
        )
    body = {"path": str(path.resolve()), "skip_invalid": skip_invalid,
            "rejects_path": str(rejects_path.resolve()) if rejects_path else None}
    response = httpx.post(f"{server.url}/internal/loads", json=body, timeout=None,
                          headers={"X-Tagport-Control": control_secret(settings)})
    payload: dict[str, Any] = response.json()
    if response.status_code != 200:
        raise TagportError(payload.get("message", response.text), code=payload.get("code"))
    rejects = [Reject(**r) for r in payload.pop("rejects")]
    return server, LoadReport(**payload, rejects=rejects)
