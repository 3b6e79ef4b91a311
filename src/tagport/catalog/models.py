"""Catalog entries: identities (`id_`), user attributes (`usr_`) and user tags (`tag_`)."""

from __future__ import annotations

import re
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
