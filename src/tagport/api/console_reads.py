"""Reads the console needs beyond GrowingIO's routes (tagport's own): who the caller is
(`GET /v1/api/whoami`: whether saving a segment is allowed), the value distribution of any
attribute or tag (`GET /v1/api/catalog/{key}/distribution`: the segment builder's value
pickers), and the project's segments a user is a member of
(`GET /v1/api/projects/{project_id}/user_segments/{user_key}/{value}`: the user lookup)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request

from tagport.api.deps import current_token_async, get_core
from tagport.api.localized import LocalizedRoute, request_language
from tagport.api.responses import errors
from tagport.api.tags import BINS, TOP
from tagport.auth.tokens import Token
from tagport.catalog.models import Kind
from tagport.errors import NotFound
from tagport.i18n import Language
from tagport.profiles.growingio import UNKNOWN_USER
from tagport.profiles.lookup import (
    IDENTITY_NOT_FOUND,
)

router = APIRouter(prefix="/v1/api", route_class=LocalizedRoute, tags=["console"])


@router.get("/whoami", responses=errors(401))
def whoami(token: Token = Depends(current_token_async)) -> dict[str, Any]:
    """The calling token: `{name, scopes, admin}`; `admin` says whether it may define
    segments (the console says so before anyone edits one)."""
    return {"name": token.name, "scopes": sorted(token.scopes), "admin": token.is_admin}


@router.get("/catalog/{key}/distribution", responses=errors(400, 401, 404))
def catalog_distribution(
    request: Request,
    key: str = Path(description="An attribute's (`usr_…`) or a tag's (`tag_…`) key.",
                    examples=["usr_city"]),
    top: int = TOP,
    bins: int = BINS,
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """How an attribute's or a tag's values spread over the users, as
    `GET /v1/api/user_tags/{tag_key}/distribution` answers for a tag (the same document):
    the `top` most common values, or `bins` equal-width bins for numbers, each with its
    users and share of all users. 404 `KEY_NOT_FOUND` for a key that is neither."""
    core = get_core(request)
    entry = core.catalog.by_key().get(key)
    if entry is None or entry.kind not in (Kind.ATTRIBUTE, Kind.TAG):
        raise NotFound(f"{key!r} is not an attribute or a tag of the catalog",
                       code="KEY_NOT_FOUND")
    return core.lookup.entry_distribution(entry, top, bins, language)


@router.get("/projects/{project_id}/user_segments/{user_key}/{value:path}",
            responses=errors(401, 404))
def user_segments(
    request: Request,
    project_id: str = Path(description="A project's 8-character id (`tagport project list`)."),
    user_key: str = Path(description="The identity: `$basic_userId`, `id_$basic_userId` "
                         "or `ids_$basic_userId`.", examples=["$basic_userId"]),
    value: str = Path(description="One value of that identity.", examples=["C001"]),
    token: Token = Depends(current_token_async),
    language: Language = Depends(request_language),
) -> dict[str, Any]:
    """The project's segments the user holding `value` is a member of, as the segment list
    shows them, oldest first: `{gioId, values}`; read from the segments' membership
    columns (a segment never computed has no members). A value no user holds: `gioId`
    "0" and no segments."""
    core = get_core(request)
    key = "id_" + user_key.removeprefix("ids_").removeprefix("id_")
    entry = core.catalog.by_key().get(key)
    if entry is None or not entry.is_identity:
        raise NotFound(IDENTITY_NOT_FOUND(language, key=key), code="IDENTITY_NOT_FOUND")
    segments = core.segments.list(project_id)  # 404 PROJECT_NOT_FOUND
    user = core.engine.find_user(key, value, [s.column for s in segments])
    if user is None:
        return {"gioId": UNKNOWN_USER["gioId"], "values": []}
    members = [s for s in segments if user["properties"].get(s.key) is True]
    return {"gioId": str(user["gio_id"]), "values": core.segments.documents(members)}
