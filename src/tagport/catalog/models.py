"""Catalog entries: identities (`id_`), user attributes (`usr_`) and user tags (`tag_`);
and the event catalog: events (bare keys) and their typed attributes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    IDENTITY = "identity"
    ATTRIBUTE = "attribute"
    TAG = "tag"


class ValueType(StrEnum):
    STRING = "string"
    INT = "int"
    DOUBLE = "double"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"


PREFIXES: dict[Kind, str] = {Kind.IDENTITY: "id_", Kind.ATTRIBUTE: "usr_", Kind.TAG: "tag_"}

# Letters, digits, `_` and `$`, not starting with a digit (the spec's rule for keys).
_KEY_BODY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


def key_error(kind: Kind, key: str) -> str | None:
    """Why `key` is not a valid key of `kind`, or None when it is."""
    prefix = PREFIXES[kind]
    if not key.startswith(prefix):
        return f"{kind.value} key {key!r} must start with {prefix!r}"
    if not _KEY_BODY.match(key[len(prefix):]):
        return (
            f"key {key!r}: after {prefix!r} use letters, digits, '_' and '$', "
            "not starting with a digit"
        )
    return None


def kind_of_key(key: str) -> Kind | None:
    for kind, prefix in PREFIXES.items():
        if key.startswith(prefix):
            return kind
    return None


@dataclass(frozen=True)
class CatalogEntry:
    key: str
    kind: Kind
    name: str
    value_type: ValueType
    is_array: bool = False
    description: str = ""
    name_en: str | None = None
    has_data: bool = False
    # a computed tag's definition as written (checked by tagport.computes at apply) and
    # its trigger, DAILY or ONCE; None for loaded values
    compute: dict[str, Any] | None = field(default=None, hash=False)
    scheduler: str | None = None

    @property
    def is_identity(self) -> bool:
        return self.kind is Kind.IDENTITY

    @property
    def compute_type(self) -> str | None:
        """GrowingIO's tag type of a computed tag (`AGGREGATED`, ...); None when loaded."""
        return None if self.compute is None else str(self.compute.get("type"))

    @property
    def type_label(self) -> str:
        return f"{self.value_type.value}[]" if self.is_array else self.value_type.value


@dataclass(frozen=True)
class TagCoverage:
    """Users covered by each tag (a non-null value), counted by an engine in one pass,
    and all users."""

    all_users: int
    covered: dict[str, int]


@dataclass(frozen=True)
class Distribution:
    """How one key's values spread over the users, measured by an engine: the users with a
    value, and either the most common values (`values`: value -> users, most users first,
    ties by value) or, for numbers, equal-width bins between the smallest and the largest
    value (`bins`: (low, high, users), the last bin closed). An array counts each user once
    per distinct element."""

    all_users: int
    covered: int
    values: list[tuple[Any, int]]
    bins: list[tuple[float, float, int]]


@dataclass(frozen=True)
class MembersReport:
    """What a members upload did: the file's values read (non-empty, duplicates counted once),
    the users now members, and the values no user holds (counted, never created)."""

    values: int
    members: int
    unknown: int


@dataclass(frozen=True)
class Portrait:
    """How `entry`'s values spread among a group (the users holding a value in the group's
    column: a segment's members or a tag's users) against all users (GrowingIO's 群体画像).
    `values`: the group's most common values, each (value, group users, all users), most
    group users first, ties by value; or, for numbers, `bins`: equal-width bins whose edges
    come from ALL users' min and max (so the two compare bin by bin), each
    (low, high, group users, all users), the last bin closed. An array counts a user once per
    distinct element."""

    group_users: int      # users in the group
    all_users: int        # users in the store
    group_covered: int    # group users with a value of entry
    all_covered: int      # users with a value of entry
    values: list[tuple[Any, int, int]]
    bins: list[tuple[float, float, int, int]]


NUMERIC = (ValueType.INT, ValueType.DOUBLE)


def bin_edges(low: float, high: float, bins: int) -> list[tuple[float, float]]:
    """`bins` equal-width bins from `low` to `high` (one bin when they are equal)."""
    if high <= low:
        return [(low, high)]
    width = (high - low) / bins
    return [(low + i * width, high if i == bins - 1 else low + (i + 1) * width)
            for i in range(bins)]


@dataclass(frozen=True)
class StoredCoverage:
    """A tag's coverage as last measured: its users, all users, and when."""

    tag_key: str
    covered_users: int
    all_users: int
    measured_at: datetime

    @property
    def ratio(self) -> float:
        """The share of all users the tag covers (0 when there are no users)."""
        return self.covered_users / self.all_users if self.all_users else 0.0


# The columns every stored event has (spec section 5; `seq` is the load order, see
# engines/base.py): no attribute may take one of these keys.
RESERVED_EVENT_FIELDS = ("gio_id", "event", "event_key", "time", "dt", "id", "seq")
# An event file's identity columns are `id_<k>`: an attribute so named would read as one.
IDENTITY_COLUMN_PREFIX = "id_"


def bare_key_error(what: str, key: str) -> str | None:
    """Why `key` is not a bare key (letters, digits, `_`, `$`, not starting with a digit)."""
    if _KEY_BODY.match(key):
        return None
    return f"{what} {key!r}: use letters, digits, '_' and '$', not starting with a digit"


def event_attribute_key_error(event_key: str, key: str) -> str | None:
    """Why `key` cannot be an attribute of event `event_key`, or None."""
    where = f"event {event_key!r}, attribute"
    if problem := bare_key_error(where, key):
        return problem
    if key in RESERVED_EVENT_FIELDS:
        return (f"{where} {key!r}: {key!r} is reserved ({', '.join(RESERVED_EVENT_FIELDS)}"
                " are the columns every event has)")
    if key.startswith(IDENTITY_COLUMN_PREFIX):
        return (f"{where} {key!r}: an attribute key cannot start with"
                f" {IDENTITY_COLUMN_PREFIX!r}, which marks the identity columns of event files")
    return None


@dataclass(frozen=True)
class EventAttribute:
    """An attribute of an event: its key, display names and value type."""

    key: str
    name: str
    value_type: ValueType = ValueType.STRING
    name_en: str | None = None


@dataclass(frozen=True)
class EventDefinition:
    """An event of the event catalog, with its attributes by key (in catalog order)."""

    key: str
    name: str
    name_en: str | None = None
    description: str = ""
    attributes: Mapping[str, EventAttribute] = field(default_factory=dict)


def attribute_types(events: Iterable[EventDefinition]) -> dict[str, ValueType]:
    """Every attribute key of the events with its type (one type per key across events)."""
    types: dict[str, ValueType] = {}
    for event in events:
        for attribute in event.attributes.values():
            types.setdefault(attribute.key, attribute.value_type)
    return types


def attribute_type_conflict(events: Iterable[EventDefinition]) -> str | None:
    """Why the events give one attribute key two types, or None."""
    first: dict[str, tuple[str, ValueType]] = {}
    for event in events:
        for attribute in event.attributes.values():
            seen = first.setdefault(attribute.key, (event.key, attribute.value_type))
            if seen[1] is not attribute.value_type:
                return (f"event {event.key!r}, attribute {attribute.key!r}: type"
                        f" {attribute.value_type.value}, but event {seen[0]!r} has it as"
                        f" {seen[1].value}; an attribute key has one type across all events")
    return None
