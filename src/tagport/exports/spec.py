"""Turning an export request (the seed's body) into an ExportPlan, with the spec's rules."""

from __future__ import annotations

from dataclasses import dataclass

from tagport.catalog.models import CatalogEntry, Kind
from tagport.engines.base import ExportPlan, FileFormat, HeaderType
from tagport.errors import BadRequest, NotFound

MAX_PROPERTIES = 60


@dataclass(frozen=True)
class ExportRequest:
    """The body of `POST /v1/api/user_tags/{tag_key}/export_jobs`, as sent."""

    tag_key: str
    properties: list[str]
    file_format: str = "csv"
    header_type: str = "key"


def normalise_properties(properties: list[str]) -> list[str]:
    """`ids_<k>` means `id_<k>`; `gio_id` is always first so naming it is ignored;
    duplicates keep their first occurrence."""
    seen: dict[str, None] = {}
    for prop in properties:
        key = "id_" + prop[len("ids_"):] if prop.startswith("ids_") else prop
        if key != "gio_id":
            seen.setdefault(key, None)
    return list(seen)


def plan_export(request: ExportRequest, catalog: dict[str, CatalogEntry]) -> ExportPlan:
    """Validate a request against the catalog; raise BadRequest/NotFound as the spec says."""
    tag = catalog.get(request.tag_key)
    if tag is None or tag.kind is not Kind.TAG:
        raise NotFound(f"user tag {request.tag_key!r} does not exist", code="TAG_NOT_FOUND")
    file_format = _choice(FileFormat, request.file_format, "fileFormat", "INVALID_FILE_FORMAT")
    header_type = _choice(
        HeaderType, request.header_type, "csvHeaderType", "INVALID_CSV_HEADER_TYPE"
    )
    keys = normalise_properties(request.properties)
    if len(keys) > MAX_PROPERTIES:
        raise BadRequest(
            f"properties: at most {MAX_PROPERTIES} distinct properties, got {len(keys)}",
            code="TOO_MANY_PROPERTIES",
        )
    unknown = [k for k in keys if k not in catalog]
    if unknown:
        raise BadRequest(
            "properties: unknown keys: " + ", ".join(unknown), code="UNKNOWN_PROPERTIES"
        )
    return ExportPlan(
        tag=tag, columns=tuple(catalog[k] for k in keys),
        file_format=file_format, header_type=header_type,
    )


def _choice(enum: type, value: str, field: str, code: str):  # type: ignore[no-untyped-def]
    allowed = [m.value for m in enum]
    if not isinstance(value, str) or value.lower() not in allowed:
        raise BadRequest(
            f"{field}: {value!r} is not one of {', '.join(allowed)}", code=code
        )
    return enum(value.lower())
