"""`GET /v1/api/catalog`: the identities, attributes and tags a client can export."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from tagport.api.deps import current_token_async, get_core
from tagport.api.localized import LocalizedRoute, request_language
from tagport.api.responses import errors
from tagport.auth.tokens import Token
from tagport.catalog.models import CatalogEntry, Kind
from tagport.i18n import Language
from tagport.profiles.lookup import display_name

router = APIRouter(prefix="/v1/api", route_class=LocalizedRoute, tags=["catalog"])

GROUPS = {Kind.IDENTITY: "identities", Kind.ATTRIBUTE: "attributes", Kind.TAG: "tags"}


def entry_document(entry: CatalogEntry, language: Language) -> dict[str, Any]:
    return {
        "key": entry.key, "name": display_name(entry, language),
        "description": entry.description,
        "valueType": {"type": entry.value_type.value.upper(), "isArray": entry.is_array},
    }


@router.get("/catalog", responses=errors(401))
def get_catalog(
    request: Request,
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, list[dict[str, Any]]]:
    """Every key `properties` accepts, with its display name (the `language` header picks
    Chinese or English) and value type, grouped as identities, attributes and tags."""
    grouped: dict[str, list[dict[str, Any]]] = {group: [] for group in GROUPS.values()}
    for entry in get_core(request).catalog.list():
        grouped[GROUPS[entry.kind]].append(entry_document(entry, language))
    return grouped
