"""A condition's values read as Python values of the key's type, or refused.

GrowingIO's Filter JSON sends every value as a string (`"values": ["30"]`), so numbers
and booleans are also taken in their text form, as the loader takes them from CSV.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any

from tagport.catalog.models import ValueType
from tagport.conditions.tree import Value

_INT_TEXT = re.compile(r"^[+-]?[0-9]+$")
_DATE_TEXT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_DATETIME_TEXT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}.*)?$")
_BIGINT = range(-(2**63), 2**63)

DESCRIPTIONS: dict[ValueType, str] = {
    ValueType.STRING: "a string",
    ValueType.INT: "an int",
    ValueType.DOUBLE: "a double",
    ValueType.BOOL: "a bool",
    ValueType.DATE: "a date 'YYYY-MM-DD'",
    ValueType.DATETIME: "a datetime 'YYYY-MM-DD HH:MM:SS'",
}


def read_value(raw: Any, value_type: ValueType) -> Value | None:
    """`raw` as a value of `value_type`, or None when it does not fit."""
    return _READERS[value_type](raw)


def _string(raw: Any) -> str | None:
    return raw if isinstance(raw, str) else None


def _int(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, float) and raw.is_integer():  # JSON's 5.0 is still an int
        raw = int(raw)
    if isinstance(raw, str) and _INT_TEXT.match(raw.strip()):
        raw = int(raw.strip())
    return raw if isinstance(raw, int) and raw in _BIGINT else None


def _double(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        try:
            raw = float(raw.strip())
        except ValueError:
            return None
    if isinstance(raw, int | float) and math.isfinite(raw):
        return float(raw)
    return None


def _bool(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        return {"true": True, "false": False}.get(raw.strip().lower())
    return None


def _date(raw: Any) -> date | None:
    if not isinstance(raw, str) or not _DATE_TEXT.match(raw):
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


def _datetime(raw: Any) -> datetime | None:
    """A value with a UTC offset is compared in UTC, as the loader stores it."""
    if not isinstance(raw, str) or not _DATETIME_TEXT.match(raw):
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


_READERS = {
    ValueType.STRING: _string,
    ValueType.INT: _int,
    ValueType.DOUBLE: _double,
    ValueType.BOOL: _bool,
    ValueType.DATE: _date,
    ValueType.DATETIME: _datetime,
}
