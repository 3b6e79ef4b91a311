"""`GET /v1/api/user_tags`, `GET /v1/api/user_tags/{tag_key}` (one tag, for the console),
`GET /v1/api/user_tags/{tag_key}/users` and `POST /v1/api/user_tags/{tag_key}/computes`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from tagport.api.deps import current_token_async, get_core
from tagport.api.localized import LocalizedRoute, request_language
from tagport.api.responses import errors
from tagport.auth.tokens import Token
from tagport.i18n import Language
from tagport.profiles.lookup import MAX_BINS, MAX_PAGE_LIMIT, MAX_PAGE_PROPERTIES, MAX_TOP
from tagport.tags.service import TRIGGERED

router = APIRouter(prefix="/v1/api", route_class=LocalizedRoute, tags=["user tags"])

LIMIT = Query(MAX_PAGE_LIMIT, description=f"Page size, 1 to {MAX_PAGE_LIMIT}.")
OFFSET = Query(0, description="How many items to skip.")
TOP = Query(20, description=f"How many of the most common values (1 to {MAX_TOP}).")
BINS = Query(10, description=f"Bins of a number's histogram (1 to {MAX_BINS}).")


def property_keys(
    properties: list[str] | None = Query(
        None, description=f"Identities, attributes, tags to include; at most "
        f"{MAX_PAGE_PROPERTIES}. Repeat it, or separate keys by commas.",
        examples=["id_$basic_userId"]),
    properties_brackets: list[str] | None = Query(
        None, alias="properties[]", description="GrowingIO's spelling of `properties`."),
) -> list[str]:
    """`properties` and GrowingIO's `properties[]`, each repeated or comma-separated."""
    return [k.strip() for value in (properties or []) + (properties_brackets or [])
            for k in value.split(",") if k.strip()]


@router.get("/user_tags")
def list_user_tags(
    request: Request,
    limit: int = LIMIT,
    offset: int = OFFSET,
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """The user tags with their value type and coverage (`detector`), measured by loads."""
    return get_core(request).lookup.tags(limit, offset, language).document()


@router.get("/user_tags/{tag_key}", responses=errors(401, 404))
def get_user_tag(
    tag_key: str,
    request: Request,
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """One tag as the list shows it (tagport's own, for the console), with `compute` (its
    definition as written in the catalog; null for a loaded tag), `scheduler`, and
    `definition`: the definition in words in the `language` header's language, e.g.
    `过去30天 支付订单 次数` or `Last 30 days · Order paid · count`."""
    return get_core(request).lookup.tag_detail(tag_key, language)


@router.get("/user_tags/{tag_key}/users")
def list_tag_users(
    tag_key: str,
    request: Request,
    keys: list[str] = Depends(property_keys),
    limit: int = LIMIT,
    offset: int = OFFSET,
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """A page of the users the tag covers, in the JSON shape of an export line, by gio_id."""
    page = get_core(request).lookup.tag_users(tag_key, keys, limit, offset, language)
    return page.document()


@router.get("/user_tags/{tag_key}/distribution", responses=errors(400, 401, 404))
def tag_distribution(
    tag_key: str,
    request: Request,
    top: int = TOP,
    bins: int = BINS,
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, Any]:
    """How the tag's values spread over the users (tagport's own, for the console):
    `values` (the most common, with their users and share of all users) or, for numbers,
    `bins` of equal width; computed on the engine."""
    return get_core(request).lookup.distribution(tag_key, top, bins, language)


class ComputeTriggered(BaseModel):
    value: bool = Field(examples=[True])
    message: str = Field(examples=[TRIGGERED])


@router.post("/user_tags/{tag_key}/computes", response_model=ComputeTriggered,
             responses=errors(400, 401, 404, 409))
def compute_user_tag(
    tag_key: str,
    request: Request,
    token: Token = Depends(current_token_async),
) -> ComputeTriggered:
    """Compute a computed tag now (GrowingIO's 触发计算): queued as a job on the workers;
    409 `COMPUTE_IN_PROGRESS` while a computation of the tag is queued or running."""
    get_core(request).tag_computes.trigger([tag_key], token_id=token.id)
    request.app.state.wake_workers()
    return ComputeTriggered(value=True, message=TRIGGERED)
