"""The condition tree's typed nodes (spec section 7), as `check.py` builds them.

Nodes are checked once, against a catalog, and carry what compiling needs: a comparison
knows its key's value type and whether the key holds a list (an array tag, an identity);
its values are already Python values of that type. Nothing here knows SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from tagport.catalog.models import ValueType

Value = str | int | float | bool | date | datetime


class Op(StrEnum):
    """A comparison's operator, spelled as in GrowingIO's Filter JSON."""

    EQ = "="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    BETWEEN = "between"
    IN = "in"
    NOT_IN = "not in"
    CONTAINS = "contains"
    NOT_CONTAINS = "not contains"
    STARTS_WITH = "starts with"
    IS_NULL = "is null"
    IS_NOT_NULL = "is not null"


ORDERING_OPS = frozenset({Op.GT, Op.GE, Op.LT, Op.LE, Op.BETWEEN})
TEXT_OPS = frozenset({Op.CONTAINS, Op.NOT_CONTAINS, Op.STARTS_WITH})
NULL_OPS = frozenset({Op.IS_NULL, Op.IS_NOT_NULL})
SINGLE_VALUE_OPS = frozenset({Op.EQ, Op.NE, Op.GT, Op.GE, Op.LT, Op.LE}) | TEXT_OPS


class FieldKind(StrEnum):
    """Where a key's values live, which decides how an engine reads them."""

    IDENTITY = "identity"  # users: every value of the identity (several for a weak id)
    ATTRIBUTE = "attribute"  # users: one typed value
    TAG = "tag"  # users: one typed value, or a list for an array tag
    SEGMENT = "segment"  # users: a segment's membership column (non-null = member)
    EVENT = "event"  # events: an event attribute, in an event filter (`where`)


@dataclass(frozen=True)
class Field:
    """A key a comparison reads, resolved against the catalog."""

    key: str
    kind: FieldKind
    value_type: ValueType
    is_array: bool = False

    @property
    def is_list(self) -> bool:
        """True when the key holds several values, of which any may satisfy a comparison."""
        return self.is_array or self.kind is FieldKind.IDENTITY


@dataclass(frozen=True)
class Compare:
    """`{"key", "op", "values"}`: the key's value (any element of a list) against values."""

    field: Field
    op: Op
    values: tuple[Value, ...]


@dataclass(frozen=True)
class And:
    exprs: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    exprs: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """Negates the whole condition, nulls included: `not (x = 1)` holds for a null x."""

    expr: Condition


class MeasureKind(StrEnum):
    COUNT = "count"  # matching events
    DAYS = "days"  # distinct days (`dt`) with a matching event
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    DISTINCT = "distinct"  # distinct non-null values of an attribute


# Measures that count: a user with no matching event has 0, not null.
COUNTING = frozenset({MeasureKind.COUNT, MeasureKind.DAYS, MeasureKind.DISTINCT})


@dataclass(frozen=True)
class Measure:
    kind: MeasureKind
    attribute: str | None = None  # for sum, avg, min, max, distinct
    value_type: ValueType = ValueType.INT  # the type of the measure's value

    @property
    def label(self) -> str:
        """How error messages name the measure: `count`, `sum(amount)`."""
        return self.kind.value if self.attribute is None else f"{self.kind}({self.attribute})"


@dataclass(frozen=True)
class LastDays:
    """The `days` whole days before the compute date, the compute date excluded."""

    days: int


@dataclass(frozen=True)
class DateRange:
    """`{"from", "to"}`, both days included."""

    start: date
    end: date


Window = LastDays | DateRange | None  # None: every day before the compute date


def window_days(window: Window, as_of: date) -> tuple[date | None, date]:
    """The first and last day (inclusive) of `window` for a computation on `as_of`;
    the first is None when the window has no start."""
    if isinstance(window, LastDays):
        return as_of - timedelta(days=window.days), as_of - timedelta(days=1)
    if isinstance(window, DateRange):
        return window.start, window.end
    return None, as_of - timedelta(days=1)


@dataclass(frozen=True)
class Behaviour:
    """What a user did: `{"event", "measure", "window", "where"}` (also AGGREGATED's body)."""

    event: str | None  # None: any event ("*")
    measure: Measure
    window: Window = None
    where: Condition | None = None


@dataclass(frozen=True)
class Did:
    """`{"did": behaviour, "op", "values"}`: the user's measure compared with the values."""

    behaviour: Behaviour
    op: Op
    values: tuple[Value, ...]


@dataclass(frozen=True)
class InSegment:
    """`{"segment": "seg_x"}`: the user is a member of segment `seg_x`."""

    key: str


Condition = And | Or | Not | Compare | Did | InSegment
