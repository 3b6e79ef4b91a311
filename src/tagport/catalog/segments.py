"""Segments (spec section 8): a saved group of users in one project.

A segment's key (`seg_…`) names the profile store's membership column: TRUE for members,
NULL for everyone else, written at once by a computation (a `DIRECT` segment's condition)
or an upload (`FROM_FILES`). Exports, pages and conditions read members through that
column, so a segment is, to an engine, a BOOLEAN tag (`Segment.column`). Keys are unique
across projects because the column is shared by them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from tagport.catalog.models import CatalogEntry, Kind, ValueType

PREFIX = "seg_"
# the spec's rule on the whole key: `seg_51activity` (GrowingIO's own example) is a key
_KEY_BODY = re.compile(r"^[A-Za-z0-9_$]+$")


class CreatedBy(StrEnum):
    """How a segment gets its members (GrowingIO's `createdBy`)."""

    DIRECT = "DIRECT"  # a condition, computed on the engine
    FROM_FILES = "FROM_FILES"  # an uploaded list of identity values


def is_segment_key(key: str) -> bool:
    return key.startswith(PREFIX)


def segment_key_error(key: Any) -> str | None:
    """Why `key` cannot be a segment's key, or None."""
    if not isinstance(key, str) or not key.startswith(PREFIX):
        return f"a segment key starts with {PREFIX!r}, got {key!r}"
    if not _KEY_BODY.match(key[len(PREFIX):]):
        return f"key {key!r}: after {PREFIX!r} use letters, digits, '_' and '$'"
    return None


@dataclass(frozen=True)
class Segment:
    key: str
    project_id: str
    name: str
    description: str
    scheduler: str  # DAILY | ONCE
    created_by: CreatedBy
    definition: dict[str, Any] | None = field(hash=False)  # the condition as written
    creator_id: int | None
    created_at: datetime
    updater_id: int | None
    updated_at: datetime

    @property
    def column(self) -> CatalogEntry:
        """The membership column, as engines see it: a BOOLEAN tag named by the key."""
        return membership_column(self.key, self.name, self.description)

    def reads(self) -> frozenset[str]:
        """The other segments the definition names."""
        return segments_named(self.definition)


def segments_named(definition: Any) -> frozenset[str]:
    """The segments a definition names (`{"segment": k}` at any depth)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("segment"), str):
                found.add(node["segment"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(definition)
    return frozenset(found)


def membership_column(key: str, name: str = "", description: str = "") -> CatalogEntry:
    """A segment's membership column as engines see it: a BOOLEAN tag named by the key."""
    return CatalogEntry(key, Kind.TAG, name or key, ValueType.BOOL, description=description)
