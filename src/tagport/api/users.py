"""`GET /v1/api/users/{user_key}/{value}`: one user, found by any identity value; and
`GET /v1/api/user_events/{user_key}/{value}`: the user's most recent events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request

from tagport.api.deps import current_token_async, get_core
from tagport.api.localized import LocalizedRoute, request_language
from tagport.api.responses import errors
from tagport.auth.tokens import Token
from tagport.i18n import Language
from tagport.profiles.lookup import MAX_EVENTS

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


# Not `/users/{user_key}/{value}/events`: a value may hold slashes (the single-user route
# takes the rest of the path), so a value ending in "/events" would be ambiguous.
@router.get("/user_events/{user_key}/{value:path}", responses=errors(400, 401, 404))
def get_user_events(
    request: Request,
    user_key: str = Path(description="The identity: `$basic_userId`, `id_$basic_userId` "
                         "or `ids_$basic_userId`.", examples=["$basic_userId"]),
    value: str = Path(description="One value of that identity.", examples=["C001"]),
    limit: int = Query(50, description=f"How many events, 1 to {MAX_EVENTS}."),
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """The user's most recent events, newest first (by time, then load order), as
    tagport's own document for the console: `{gioId, limit, values}`, each value
    `{event, name, time (UTC), dt (the local day), id, attributes: [{key, name, value}]}`
    with the event catalog's display names. A value no user holds: `gioId` "0", no
    events."""
    return get_core(request).lookup.user_events(user_key, value, limit, language)
