"""How processes on one machine find the running server and hand it work.

The server writes `server.json` (its url and pid) into the data dir while it runs, and
keeps a random control secret in `control.secret` (mode 0600). A CLI command that
needs the DuckDB writer the server holds sends its request with that secret.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tagport import secret_files
from tagport.config import Settings
from tagport.engines.base import EventLoadReport, LoadReport, Reject
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


def store_held_advice(settings: Settings, detail: str, what: str = "load") -> str:
    """Why a load (an export, a computation: `what`) cannot open the profile store now,
    and what to do about it."""
    found = re.search(r"\(PID (\d+)\)", detail)  # DuckDB names the process holding the lock
    holder = "another process"
    if found:
        holder = f"process {found.group(1)}{_command_line(int(found.group(1)))}"
    return (
        f"the profile store {settings.profile_db_path} is held by {holder}, and no "
        f"`tagport serve` of this data dir is running to hand the {what} to. DuckDB lets one "
        "process write the store, or several read it. `tagport worker` processes read it "
        "only while an export runs: retry when their exports are done, or stop them "
        "(SIGTERM: running jobs finish or go back to the queue), load, and start them "
        "again. Otherwise wait for the other `tagport load` or `tagport export` to end."
    )


def _command_line(pid: int) -> str:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    return ": " + " ".join(" ".join(a.decode(errors="replace").split()) for a in args if a)


def running_server(settings: Settings) -> RunningServer | None:
    """The server recorded in the data dir, if its process is alive."""
    try:
        info = json.loads(settings.server_file.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return RunningServer(url=info["url"], pid=int(info["pid"]))


def hand_load_to_server(settings: Settings, path: Path, skip_invalid: bool,
                        rejects_path: Path | None,
                        busy: StoreBusy | None = None) -> tuple[RunningServer, LoadReport]:
    """Ask the running server to load `path`; raises StoreBusy, saying what to do, when
    there is none (`busy`: the error of opening the store, which names its holder)."""
    body = {"path": str(path.resolve()), "skip_invalid": skip_invalid,
            "rejects_path": str(rejects_path.resolve()) if rejects_path else None}
    server, payload = _hand_to_server(settings, "/internal/loads", body, busy)
    rejects = [Reject(**r) for r in payload.pop("rejects")]
    return server, LoadReport(**payload, rejects=rejects)


def hand_event_load_to_server(
    settings: Settings, path: Path, *, known_users_only: bool, skip_invalid: bool,
    rejects_path: Path | None, busy: StoreBusy | None = None,
) -> tuple[RunningServer, EventLoadReport]:
    """Ask the running server to load the events in `path`, as `hand_load_to_server`."""
    body = {"path": str(path.resolve()), "known_users_only": known_users_only,
            "skip_invalid": skip_invalid,
            "rejects_path": str(rejects_path.resolve()) if rejects_path else None}
    server, payload = _hand_to_server(settings, "/internal/event-loads", body, busy)
    rejects = [Reject(**r) for r in payload.pop("rejects")]
    return server, EventLoadReport(**payload, rejects=rejects)


def _hand_to_server(settings: Settings, route: str, body: dict[str, Any],
                    busy: StoreBusy | None) -> tuple[RunningServer, dict[str, Any]]:
    server = running_server(settings)
    if server is None:
        raise StoreBusy(store_held_advice(settings, busy.message if busy else ""))
    response = httpx.post(f"{server.url}{route}", json=body, timeout=None,
                          headers={"X-Tagport-Control": control_secret(settings)})
    payload: dict[str, Any] = response.json()
    if response.status_code != 200:
        raise TagportError(payload.get("message", response.text), code=payload.get("code"))
    return server, payload
