"""The operator's routes: `/metrics` (Prometheus), `/healthz` (process up), `/readyz`
(metadata store and engine answer). No token: expose them to your monitoring only."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tagport.api.deps import get_core
from tagport.ops.health import readiness
from tagport.ops.metrics import CONTENT_TYPE, RequestMetrics

router = APIRouter(tags=["operations"])


def install(app: FastAPI) -> None:
    """The routes, and the middleware that counts every request."""
    app.include_router(router)
    app.add_middleware(RequestMetrics, metrics=app.state.core.metrics)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Jobs by stage, export durations, rows and bytes exported, loads, HTTP requests."""
    return Response(get_core(request).metrics.render(), media_type=CONTENT_TYPE)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """200 when the metadata store and the data engine both answer, else 503 with why."""
    core = get_core(request)
    checks = readiness(core.db, lambda: core.engine)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
