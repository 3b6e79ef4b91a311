"""A computed tag's definition as typed values (spec section 6), as `check.py` builds them.

Each of GrowingIO's six tag types is one frozen class; its windows, `where` filters and
tier conditions are the condition tree's own nodes (tagport.conditions), already checked
against the catalog. A definition knows what it yields (`Yield`), which the tag's declared
type must fit, and which other tags it reads (`depends_on`). Nothing here knows SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tagport.catalog.models import ValueType
from tagport.conditions import Behaviour, Condition, Window
from tagport.conditions.tree import Value


class ComputeType(StrEnum):
    """GrowingIO's tag types; a tag without a definition is `IMPORT` (loaded values)."""

    AGGREGATED = "AGGREGATED"
    ATTRIBUTION_ATTRIBUTE = "ATTRIBUTION_ATTRIBUTE"
    TOP_N_ATTRIBUTE = "TOP_N_ATTRIBUTE"
    DATA_SET_ATTRIBUTE = "DATA_SET_ATTRIBUTE"
    HORIZONTAL = "HORIZONTAL"
    SQL = "SQL"


IMPORT = "IMPORT"  # the tag list's `type` of a loaded tag


class Scheduler(StrEnum):
    DAILY = "DAILY"  # every day at TAGPORT_COMPUTE_AT
    ONCE = "ONCE"  # on demand only


class Pick(StrEnum):
    FIRST = "first"
    LAST = "last"


class AttributionValue(StrEnum):
    ATTRIBUTE = "attribute"  # the picked event's value of an attribute
    DAYS_SINCE = "daysSince"  # whole days from its `dt` to the compute date
    DATE = "date"  # its `dt`


class Rank(StrEnum):
    MAX = "max"
    MIN = "min"


@dataclass(frozen=True)
class Yield:
    """What a definition yields: a value type, a list of it, or (SQL) unknown until run."""

    value_type: ValueType | None
    is_array: bool = False

    @property
    def label(self) -> str:
        if self.value_type is None:
            return "any"
        return f"{self.value_type.value}[]" if self.is_array else self.value_type.value


@dataclass(frozen=True)
class EventSelection:
    """The events a definition reads: an event key (None: any event), a window, a filter."""

    event: str | None
    window: Window = None
    where: Condition | None = None


@dataclass(frozen=True)
class Aggregated:
    """`{"event": E | "*", "measure": M, "window": W, "where": C}`: a measure per user."""

    behaviour: Behaviour
    type = ComputeType.AGGREGATED

    @property
    def yields(self) -> Yield:
        return Yield(self.behaviour.measure.value_type)


@dataclass(frozen=True)
class Attribution:
    """The first or last matching event by (time, seq), and its attribute, date or age."""

    events: EventSelection
    pick: Pick
    value: AttributionValue
    attribute: str | None  # for AttributionValue.ATTRIBUTE
    attribute_type: ValueType | None
    type = ComputeType.ATTRIBUTION_ATTRIBUTE

    @property
    def yields(self) -> Yield:
        if self.value is AttributionValue.DAYS_SINCE:
            return Yield(ValueType.INT)
        if self.value is AttributionValue.DATE:
            return Yield(ValueType.DATE)
        return Yield(self.attribute_type)


@dataclass(frozen=True)
class TopN:
    """The value of `attribute` whose events have the largest (smallest) count or sum of
    `sum_of`; ties go to the smallest value; null values are ignored."""

    events: EventSelection
    attribute: str
    attribute_type: ValueType
    sum_of: str | None  # None: by count
    rank: Rank
    type = ComputeType.TOP_N_ATTRIBUTE

    @property
    def yields(self) -> Yield:
        return Yield(self.attribute_type)


@dataclass(frozen=True)
class DataSet:
    """The distinct non-null values of `attribute`, ascending: an array tag."""

    events: EventSelection
    attribute: str
    attribute_type: ValueType
    type = ComputeType.DATA_SET_ATTRIBUTE

    @property
    def yields(self) -> Yield:
        return Yield(self.attribute_type, is_array=True)


@dataclass(frozen=True)
class Tier:
    value: Value
    when: Condition


@dataclass(frozen=True)
class Horizontal:
    """The value of the first tier whose condition holds, else null."""

    tiers: tuple[Tier, ...]
    value_type: ValueType  # the tag's: every tier value is read as one
    reads: frozenset[str]  # the tags the tiers' conditions read
    type = ComputeType.HORIZONTAL

    @property
    def yields(self) -> Yield:
        return Yield(self.value_type)


class SqlDialect(StrEnum):
    CLICKHOUSE = "clickhouse"  # GrowingIO's SQL tags
    DUCKDB = "duckdb"
    SPARK = "spark"


@dataclass(frozen=True)
class SqlQuery:
    """`{"sql", "dialect"}`: one checked SELECT over `event` and `user` (see sql.py)."""

    sql: str
    dialect: SqlDialect
    type = ComputeType.SQL

    @property
    def yields(self) -> Yield:
        return Yield(None)  # the result is cast to the tag's type when it runs


@dataclass(frozen=True)
class Membership:
    """A segment's members (spec section 8): TRUE for the users `condition` holds for;
    None: nobody (a segment cleared). Not a tag type: segments are computed like tags."""

    condition: Condition | None
    type = "SEGMENT"

    @property
    def yields(self) -> Yield:
        return Yield(ValueType.BOOL)


Definition = Aggregated | Attribution | TopN | DataSet | Horizontal | SqlQuery | Membership


def depends_on(definition: Definition) -> frozenset[str]:
    """The tags a definition reads (only HORIZONTAL tiers read other tags)."""
    return definition.reads if isinstance(definition, Horizontal) else frozenset()


@dataclass(frozen=True)
class ComputedTag:
    """A tag's checked definition and its trigger."""

    key: str
    definition: Definition
    scheduler: Scheduler
