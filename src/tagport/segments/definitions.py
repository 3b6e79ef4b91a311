"""A segment's document (`{"key", "name", "description", "scheduler", "createdBy",
"definition"}`) checked into a `Segment`, or refused with a 400 naming the field.

The same check serves the admin routes and `tagport segment apply`; the definition is the
condition tree's (tagport.conditions), checked against the catalog, the events and the
project's other segments, so a definition naming an unknown key, a value of the wrong
type, or a segment of another project is refused before anything is saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tagport.catalog.segments import CreatedBy, segment_key_error
from tagport.conditions import Condition, ConditionContext, parse_condition
from tagport.errors import BadRequest

MAX_NAME_CHARS = 200
SCHEDULERS = ("DAILY", "ONCE")
FIELDS = ("key", "name", "description", "scheduler", "createdBy", "definition")
# what GrowingIO's list answers carry: a document read back from a page may be sent again
READ_ONLY_FIELDS = ("id", "detector", "creatorId", "creator", "createdAt", "updaterId",
                    "updater", "updatedAt", "projectId")


@dataclass(frozen=True)
class SegmentDoc:
    """A checked segment document (before it is stored)."""

    key: str
    name: str
    description: str
    scheduler: str
    created_by: CreatedBy
    definition: dict[str, Any] | None
    condition: Condition | None  # the checked definition (None: FROM_FILES)


def invalid(field: str, message: str) -> BadRequest:
    return BadRequest(f"{field}: {message}", code="INVALID_SEGMENT")


def check_document(doc: Any, context: ConditionContext, *, key: str | None = None
                   ) -> SegmentDoc:
    """`doc` checked; `key` is the path's (PUT), which the body may repeat but not change."""
    if not isinstance(doc, Mapping):
        raise invalid("body", f"a segment is a JSON object, got {type(doc).__name__}")
    for name in doc:
        if name not in FIELDS and name not in READ_ONLY_FIELDS:
            raise invalid(str(name), f"unknown field (a segment has: {', '.join(FIELDS)})")
    segment_key = _key(doc.get("key", key), key)
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid("name", "a segment needs a name")
    if len(name.strip()) > MAX_NAME_CHARS:
        raise invalid("name", f"at most {MAX_NAME_CHARS} characters")
    description = doc.get("description") or ""
    if not isinstance(description, str):
        raise invalid("description", f"a string, got {description!r}")
    scheduler = doc.get("scheduler") or "DAILY"
    if scheduler not in SCHEDULERS:
        raise invalid("scheduler", f"{scheduler!r} is not DAILY or ONCE")
    created_by = _created_by(doc.get("createdBy") or CreatedBy.DIRECT.value)
    definition = doc.get("definition")
    if created_by is CreatedBy.FROM_FILES:
        if definition is not None:
            raise invalid("definition", "a FROM_FILES segment takes its members from "
                          "uploads (POST .../members), not from a definition")
        return SegmentDoc(segment_key, name.strip(), description, scheduler, created_by,
                          None, None)
    if definition is None:
        raise invalid("definition", "a DIRECT segment needs a definition (a condition)")
    condition = parse_condition(definition, context, path="definition")
    return SegmentDoc(segment_key, name.strip(), description, scheduler, created_by,
                      dict(definition), condition)


def _key(raw: Any, path_key: str | None) -> str:
    if path_key is not None and raw != path_key:
        raise invalid("key", f"the body's key {raw!r} is not the path's {path_key!r}")
    if problem := segment_key_error(raw):
        raise invalid("key", problem)
    return str(raw)


def _created_by(raw: Any) -> CreatedBy:
    try:
        return CreatedBy(raw)
    except ValueError:
        raise invalid("createdBy", f"{raw!r} is not DIRECT or FROM_FILES") from None
