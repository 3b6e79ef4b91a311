"""The FastAPI application: routers, error rendering, and the worker pool's lifecycle."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import duckdb
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tagport import __version__, control, secret_files
from tagport.api import (
    catalog,
    console_reads,
    download,
    internal,
    jobs,
    openapi,
    ops,
    projects,
    segments,
    tags,
    users,
)
from tagport.api.limits import BodySizeLimit
from tagport.auth.signing import LinkSigner
from tagport.console import install as install_console
from tagport.core import Tagport
from tagport.errors import (
    EngineUnavailable,
    StorageError,
    StoreBusy,
    TagportError,
    TooManyRequests,
    Unavailable,
    fault_of,
)
from tagport.jobs.retention import RetentionSweeper
from tagport.jobs.worker import WorkerPool
from tagport.tags.schedule import DailySchedule

log = logging.getLogger("tagport.api")

# The event loop shares the GIL with the submit writer and the export workers. A thread
# that let go of it (a SQLite statement, a DuckDB call) waits up to the switch interval
# to get it back while the loop is busy: Python's default 5 ms, several times per batch
# of submits. 1 ms keeps those waits short; the loop loses a little throughput to it.
GIL_SWITCH_INTERVAL = 0.001


def create_app(
    core: Tagport, *, run_workers: bool = True, public_url: str | None = None
) -> FastAPI:
    """The app over `core`. With `run_workers`, the app owns the engine and a worker pool."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        # Every object alive at start-up (modules, routes, tables, the engine) leaves the
        # collector's reach: a full collection walked them all, a ~75 ms pause of every
        # request in flight on the benchmark machine (the submits' p99).
        gc.freeze()
        pool: WorkerPool | None = None
        schedule: DailySchedule | None = None
        sweeper = RetentionSweeper(core.jobs, core.settings.retention_interval)
        sweeper.start()
        if run_workers:
            pool = WorkerPool(core.jobs, core.engine, core.settings.workers,
                              core.settings.poll_interval)
            pool.start()
            app.state.wake_workers = pool.wake
            # the schedule runs where jobs run: its computations wait for no other process
            schedule = DailySchedule(core.db, core.tag_computes, core.settings.compute_at,
                                     core.settings.zone, pool.name)
            schedule.__enter__()
        if public_url:
            control.write_server_file(core.settings, public_url)
        try:
            yield
        finally:
            if public_url:
                control.remove_server_file(core.settings)
            if pool is not None:
                app.state.exports_abandoned = not pool.stop(core.settings.shutdown_grace)
            sweeper.stop()
            if schedule is not None:
                schedule.__exit__(None, None, None)
            sys.setswitchinterval(switch_interval)
            gc.unfreeze()

    app = FastAPI(
        title="tagport",
        version=__version__,
        description="Export the users covered by a user tag, through GrowingIO CDP 2.9's OpenAPI.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # /docs from the package's files (tagport.console)
    )
    app.state.core = core
    app.state.wake_workers = lambda: None
    app.state.exports_abandoned = False
    app.state.control_secret = control.control_secret(core.settings)
    app.state.signer = LinkSigner(
        secret_files.read_or_create(core.settings.signing_secret_file),
        core.settings.signed_link_ttl,
    )
    app.add_middleware(BodySizeLimit, max_bytes=core.settings.max_body_bytes,
                       upload_bytes=core.settings.max_upload_bytes)
    app.include_router(openapi.router)
    app.include_router(download.router)
    app.include_router(internal.router)
    app.include_router(tags.router)
    app.include_router(projects.router)
    app.include_router(projects.project_forms(tags.router, openapi.router, users.router))
    app.include_router(segments.router)
    app.include_router(users.router)
    app.include_router(catalog.router)
    app.include_router(console_reads.router)
    app.include_router(jobs.router)
    install_console(app)
    ops.install(app)
    _install_error_handlers(app)
    return app


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TagportError)
    async def tagport_error(_: Request, exc: TagportError) -> JSONResponse:
        return _answer(exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"] if p != "body") or "body"
            problems.append(f"{where}: {err['msg']}")
        return _error(400, "BAD_REQUEST", "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    # the stores' own errors, answered here rather than by the catch-all below (which
    # Starlette re-raises after answering, so that the server logs a traceback)
    for store_error in (sqlalchemy.exc.SQLAlchemyError, duckdb.Error, OSError):
        app.add_exception_handler(store_error, internal_error)

    @app.exception_handler(Exception)
    async def unhandled_error(request: Request, exc: Exception) -> JSONResponse:
        return await internal_error(request, exc)


async def internal_error(_: Request, exc: Exception) -> JSONResponse:
    """A store that is down or full: its 503 / 507 answer and one log line (the traceback
    at the debug level); anything else: 500 INTERNAL_ERROR with the traceback logged."""
    fault = fault_of(exc)
    if fault is not None and type(fault) is not StorageError:  # (which names server paths)
        log.warning("%s: %s", fault.code, fault.message,
                    exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)
        return _answer(fault)
    log.exception("unhandled error")
    return _error(500, "INTERNAL_ERROR", f"internal error: {type(exc).__name__}")


def _answer(exc: TagportError) -> JSONResponse:
    if isinstance(exc, StoreBusy):  # a load or an export of another process writes it
        exc = EngineUnavailable(exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if isinstance(exc, TooManyRequests | Unavailable):
        headers = {"Retry-After": str(exc.retry_after)}
    return _error(exc.status, exc.code, exc.message, headers)
