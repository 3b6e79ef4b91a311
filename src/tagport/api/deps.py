"""Dependencies shared by the routers: the core and the caller's token."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from fastapi import Header, Request
from starlette.concurrency import run_in_threadpool

from tagport.auth.tokens import Token, bearer_token
from tagport.core import Tagport

P = ParamSpec("P")
R = TypeVar("R")


def get_core(request: Request) -> Tagport:
    return request.app.state.core  # type: ignore[no-any-return]


async def store_read(request: Request, fn: Callable[P, R], *args: P.args,
                     **kwargs: P.kwargs) -> R:
    """Run a short read of the metadata store from an async route. On SQLite it runs
    right here: a local read in WAL mode never waits for writers and takes less time than
    the hop to a threadpool thread. Anything else is a network round trip: a thread."""
    if get_core(request).metadata_is_local:
        return fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


def current_token(
    request: Request,
    authorization: str | None = Header(None, description="`Bearer <token>`"),
) -> Token:
    """The caller's active token; 401 when it is missing, unknown or revoked."""
    return get_core(request).tokens.authenticate(bearer_token(authorization))


async def current_token_async(
    request: Request,
    authorization: str | None = Header(None, description="`Bearer <token>`"),
) -> Token:
    """`current_token` without a threadpool hop when the token is cached (most requests)."""
    tokens = get_core(request).tokens
    value = bearer_token(authorization)
    if (cached := tokens.cached(value)) is not None:
        return cached
    return await store_read(request, tokens.authenticate, value)
