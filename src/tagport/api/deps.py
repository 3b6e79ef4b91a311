"""Dependencies shared by the routers: the core and the caller's token."""

from __future__ import annotations

from fastapi import Header, Request

from tagport.auth.tokens import Token, bearer_token
from tagport.core import Tagport


def get_core(request: Request) -> Tagport:
    return request.app.state.core  # type: ignore[no-any-return]


def current_token(
    request: Request,
    authorization: str | None = Header(None, description="`Bearer <token>`"),
) -> Token:
    """The caller's active token; 401 when it is missing, unknown or revoked."""
    return get_core(request).tokens.authenticate(bearer_token(authorization))
