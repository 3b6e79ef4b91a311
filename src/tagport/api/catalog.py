"""`GET /v1/api/catalog`: the identities, attributes and tags a client can export, and
the events (with their attributes) that tags and segments are computed from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from tagport.api.deps import current_token_async, get_core
from tagport.api.localized import LocalizedRoute, request_language
from tagport.api.responses import errors
from tagport.auth.tokens import Token
from tagport.catalog.models import CatalogEntry, EventAttribute, EventDefinition, Kind
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


def _name(thing: EventDefinition | EventAttribute, language: Language) -> str:
    return thing.name_en if language is Language.US and thing.name_en else thing.name


def event_document(event: EventDefinition, language: Language) -> dict[str, Any]:
    return {
        "key": event.key, "name": _name(event, language), "description": event.description,
        "attributes": [
            {"key": a.key, "name": _name(a, language),
             "valueType": {"type": a.value_type.value.upper(), "isArray": False}}
            for a in event.attributes.values()
        ],
    }


@router.get("/catalog", responses=errors(401))
def get_catalog(
    request: Request,
    language: Language = Depends(request_language),
    token: Token = Depends(current_token_async),
) -> dict[str, list[dict[str, Any]]]:
    """Every key `properties` accepts, with its display name (the `language` header picks
    Chinese or English) and value type, grouped as identities, attributes and tags; and
    the events with their attributes."""
    catalog = get_core(request).catalog
    grouped: dict[str, list[dict[str, Any]]] = {group: [] for group in GROUPS.values()}
    for entry in catalog.list():
        grouped[GROUPS[entry.kind]].append(entry_document(entry, language))
    grouped["events"] = [event_document(e, language) for e in catalog.events().values()]
    return grouped
