"""Turning an export request (the seed's body) into an ExportPlan, with the spec's rules."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from tagport.catalog.models import CatalogEntry, Kind
from tagport.catalog.segments import Segment, is_segment_key
from tagport.errors import BadRequest, NotFound
from tagport.exports.capabilities import EngineCapabilities
from tagport.exports.formats import Charset, Compression, FileFormat, HeaderType, OutputFormat
from tagport.exports.plan import ExportPlan
from tagport.exports.selection import SegmentSelection, Selection, TagSelection

MAX_PROPERTIES = 60
_E = TypeVar("_E", bound=StrEnum)


@dataclass(frozen=True)
class ExportRequest:
    """The body of `POST /v1/api/user_tags/{tag_key}/export_jobs`, as sent (`tag_key` is
    a segment's key for `.../segment_profiles/{segment_key}/export_jobs`)."""

    tag_key: str
    properties: list[str]
    file_format: str = "csv"
    header_type: str = "key"
    compression: str = "none"
    charset: str = "UTF-8"


def normalise_properties(properties: list[str]) -> list[str]:
    """`ids_<k>` means `id_<k>`; `gio_id` is always first so naming it is ignored;
    duplicates keep their first occurrence."""
    seen: dict[str, None] = {}
    for prop in properties:
        key = "id_" + prop[len("ids_"):] if prop.startswith("ids_") else prop
        if key != "gio_id":
            seen.setdefault(key, None)
    return list(seen)


def plan_export(request: ExportRequest, catalog: dict[str, CatalogEntry],
                capabilities: EngineCapabilities | None = None,
                segment: Segment | None = None) -> ExportPlan:
    """Validate a request against the catalog, and the engine's capabilities when given;
    raise BadRequest/NotFound as the spec says. A segment's export is given the segment
    its key names (None: there is none)."""
    selection = _selection(request.tag_key, catalog, segment)
    output = output_format(request)
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
    if capabilities is not None:
        capabilities.check(output)
    return ExportPlan(selection, tuple(catalog[k] for k in keys), output)


def _selection(key: str, catalog: dict[str, CatalogEntry],
               segment: Segment | None) -> Selection:
    if is_segment_key(key):
        if segment is None or segment.key != key:
            raise NotFound(f"segment {key!r} does not exist", code="SEGMENT_NOT_FOUND")
        return SegmentSelection(segment)
    tag = catalog.get(key)
    if tag is None or tag.kind is not Kind.TAG:
        raise NotFound(f"user tag {key!r} does not exist", code="TAG_NOT_FOUND")
    return TagSelection(tag)


def output_format(request: ExportRequest) -> OutputFormat:
    """The file's format, header, compression and charset, each checked against the
    format it applies to."""
    file_format = _choice(FileFormat, request.file_format, "fileFormat", "INVALID_FILE_FORMAT")
    header_type = _choice(
        HeaderType, request.header_type, "csvHeaderType", "INVALID_CSV_HEADER_TYPE"
    )
    compression = _choice(Compression, request.compression or "none", "compression",
                          "INVALID_COMPRESSION")
    charset = _choice(Charset, request.charset or "UTF-8", "charset", "INVALID_CHARSET")
    output = OutputFormat(file_format, header_type, compression, charset)
    if compression is not Compression.NONE and not output.info.text:
        raise BadRequest(f"compression: {file_format.value} files are not compressed as a"
                         " whole (Parquet compresses its own columns)",
                         code="INVALID_COMPRESSION")
    if charset not in output.info.charsets and charset is not Charset.UTF8:
        allowed = ", ".join(c.value for c in output.info.charsets) or "none"
        raise BadRequest(f"charset: {charset.value!r} does not apply to {file_format.value}"
                         f" files (it takes: {allowed})", code="INVALID_CHARSET")
    return output


def _choice(enum: type[_E], value: str, field: str, code: str) -> _E:
    """The member of `enum` named by `value`, matched case-insensitively."""
    by_lower = {m.value.lower(): m for m in enum}
    if not isinstance(value, str) or value.lower() not in by_lower:
        raise BadRequest(
            f"{field}: {value!r} is not one of {', '.join(m.value for m in enum)}", code=code
        )
    return by_lower[value.lower()]
