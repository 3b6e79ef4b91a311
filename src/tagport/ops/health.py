"""Readiness: whether the metadata store and the data engine both answer."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine as DbEngine

from tagport.engines.base import Engine
from tagport.ops import repository


def readiness(db: DbEngine, engine: Callable[[], Engine]) -> dict[str, str]:
    """`ok`, or the error's type and message, for the metadata store and for the engine
    (opened by `engine()` if need be, which may fail too)."""
    checks: dict[str, str] = {}
    try:
        with db.connect() as conn:
            repository.ping(conn)
        checks["metadata"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["metadata"] = f"{type(exc).__name__}: {exc}"
    try:
        engine().ping()
        checks["engine"] = "ok"
    except Exception as exc:
        checks["engine"] = f"{type(exc).__name__}: {exc}"
    return checks
