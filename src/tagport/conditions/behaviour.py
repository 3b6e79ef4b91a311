"""A behaviour's measure and window, checked (shared by `did` and AGGREGATED tags)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from tagport.catalog.models import ValueType
from tagport.conditions.refusals import invalid
from tagport.conditions.tree import DateRange, LastDays, Measure, MeasureKind, Window
from tagport.conditions.values import read_value

_NUMBERS = frozenset({ValueType.INT, ValueType.DOUBLE})
_ORDERED = _NUMBERS | {ValueType.STRING, ValueType.DATE, ValueType.DATETIME}
# the attribute types each measure takes, and how a refusal names them
_TAKES = {
    MeasureKind.SUM: (_NUMBERS, "an int or double"),
    MeasureKind.AVG: (_NUMBERS, "an int or double"),
    MeasureKind.MIN: (_ORDERED, "an int, double, string, date or datetime"),
    MeasureKind.MAX: (_ORDERED, "an int, double, string, date or datetime"),
    MeasureKind.DISTINCT: (frozenset(ValueType), "any"),
}
_MEASURE_HELP = 'use "count", "days" or {"sum"|"avg"|"min"|"max"|"distinct": attribute}'
_WINDOW_HELP = '{"lastDays": N} or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}'


def parse_measure(raw: Any, attributes: Mapping[str, ValueType], event: str | None,
                  path: str) -> Measure:
    """`"count"`, `"days"` or `{"sum": a}` ...; the measure knows its value's type."""
    if raw in ("count", "days"):
        return Measure(MeasureKind(raw))
    if not isinstance(raw, dict) or len(raw) != 1:
        raise invalid(path, f"unknown measure {raw!r} ({_MEASURE_HELP})")
    (name, attribute), = raw.items()
    if name not in _TAKES:
        raise invalid(path, f"unknown measure {raw!r} ({_MEASURE_HELP})")
    kind = MeasureKind(name)
    path = f"{path}.{name}"
    if not isinstance(attribute, str) or attribute not in attributes:
        of = "any event" if event is None else f"event {event!r}"
        raise invalid(path, f"unknown attribute {attribute!r} of {of}")
    attribute_type = attributes[attribute]
    types, described = _TAKES[kind]
    if attribute_type not in types:
        raise invalid(path, f"{attribute!r} is a {attribute_type.value} attribute; "
                      f"{name} takes {described} one")
    return Measure(kind, attribute, _value_type(kind, attribute_type))


def _value_type(kind: MeasureKind, attribute_type: ValueType) -> ValueType:
    if kind is MeasureKind.DISTINCT:
        return ValueType.INT
    if kind is MeasureKind.AVG:
        return ValueType.DOUBLE
    return attribute_type  # sum, min and max are of the attribute's type


def parse_window(raw: Any, path: str) -> Window:
    """`{"lastDays": N}`, `{"from", "to"}` (inclusive) or absent (before the compute date)."""
    if raw is None:
        return None
    if isinstance(raw, dict) and set(raw) == {"lastDays"}:
        days = raw["lastDays"]
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise invalid(f"{path}.lastDays", f"{days!r} is not a whole number of days (1 or more)")
        return LastDays(days)
    if isinstance(raw, dict) and set(raw) == {"from", "to"}:
        start, end = (_day(raw[end], f"{path}.{end}") for end in ("from", "to"))
        if start > end:
            raise invalid(path, f"'from' {start} is after 'to' {end}")
        return DateRange(start, end)
    raise invalid(path, f"a window is {_WINDOW_HELP}, got {raw!r}")


def _day(raw: Any, path: str) -> date:
    day = read_value(raw, ValueType.DATE)
    if not isinstance(day, date):
        raise invalid(path, f"{raw!r} is not a date 'YYYY-MM-DD'")
    return day
