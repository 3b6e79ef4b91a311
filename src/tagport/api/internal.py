"""Control routes for other processes on this machine (not part of the public API).

`tagport load` hands its file to a running server, which owns the DuckDB writer. The
caller proves it can read the data dir by sending the secret kept there.
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


@router.post("/loads")
def load(body: LoadBody, request: Request,
         x_tagport_control: str | None = Header(None)) -> dict[str, Any]:
    core = get_core(request)
    secret = request.app.state.control_secret
    given = (x_tagport_control or "").encode("utf-8", "surrogateescape")
    if not given or not hmac.compare_digest(given, secret.encode()):
        raise Forbidden("control secret missing or wrong", code="BAD_CONTROL_SECRET")
    report = core.profiles.load(
        Path(body.path), skip_invalid=body.skip_invalid,
        rejects_path=Path(body.rejects_path) if body.rejects_path else None,
    )
    return asdict(report)
