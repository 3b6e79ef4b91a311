"""Control routes for other processes on this machine (not part of the public API).

`tagport load` and `tagport events load` hand their file to a running server, which owns
the DuckDB writer. The caller proves it can read the data dir by sending the secret kept
there.
"""

from __future__ import annotations

import hmac
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from tagport.api.deps import get_core
from tagport.errors import Forbidden

router = APIRouter(prefix="/internal", include_in_schema=False)


class LoadBody(BaseModel):
    path: str
    skip_invalid: bool = False
    rejects_path: str | None = None


class EventLoadBody(LoadBody):
    known_users_only: bool = False


def _check_secret(request: Request, given_header: str | None) -> None:
    secret = request.app.state.control_secret
    given = (given_header or "").encode("utf-8", "surrogateescape")
    if not given or not hmac.compare_digest(given, secret.encode()):
        raise Forbidden("control secret missing or wrong", code="BAD_CONTROL_SECRET")


@router.post("/loads")
def load(body: LoadBody, request: Request,
         x_tagport_control: str | None = Header(None)) -> dict[str, Any]:
    _check_secret(request, x_tagport_control)
    core = get_core(request)
    report = core.profiles.load(
        Path(body.path), skip_invalid=body.skip_invalid,
        rejects_path=Path(body.rejects_path) if body.rejects_path else None,
    )
    return asdict(report)


@router.post("/event-loads")
def load_events(body: EventLoadBody, request: Request,
                x_tagport_control: str | None = Header(None)) -> dict[str, Any]:
    _check_secret(request, x_tagport_control)
    report = get_core(request).events.load(
        Path(body.path), known_users_only=body.known_users_only,
        skip_invalid=body.skip_invalid,
        rejects_path=Path(body.rejects_path) if body.rejects_path else None,
    )
    return asdict(report)
