"""`GET /v1/api/users/{user_key}/{value}`: one user, found by any identity value."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request

from tagport.api.deps import current_token_async, get_core
from tagport.api.localized import LocalizedRoute, request_language
from tagport.auth.tokens import Token
from tagport.i18n import Language

router = APIRouter(prefix="/v1/api", route_class=LocalizedRoute, tags=["users"])


@router.get("/users/{user_key}/{value:path}")
def get_user(
    request: Request,
    user_key: str = Path(description="The identity: `$basic_userId`, `id_$basic_userId` "
                         "or `ids_$basic_userId`.", examples=["$basic_userId"]),
    value: str = Path(description="One value of that identity.", examples=["C001"]),
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """The user's identities, attributes and tags (every catalog key), as an export line."""
    return get_core(request).lookup.user(user_key, value, language)
