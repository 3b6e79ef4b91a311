"""The condition tree of segments, HORIZONTAL tiers and event filters (spec section 7).

`parse_condition` checks a definition's JSON into typed nodes (or raises a 400
`INVALID_CONDITION` naming the field).
"""

from tagport.conditions.check import (
    ConditionContext,
    EventCatalog,
    parse_behaviour,
    parse_condition,
    parse_event_filter,
)
from tagport.conditions.refusals import CODE as INVALID_CONDITION
from tagport.conditions.tree import (
    And,
    Behaviour,
    Compare,
    Condition,
    DateRange,
    Did,
    Field,
    FieldKind,
    InSegment,
    LastDays,
    Measure,
    MeasureKind,
    Not,
    Op,
    Or,
    Window,
    window_days,
)

__all__ = [
    "INVALID_CONDITION", "And", "Behaviour", "Compare", "Condition", "ConditionContext",
    "DateRange", "Did", "EventCatalog", "Field", "FieldKind", "InSegment", "LastDays",
    "Measure", "MeasureKind", "Not", "Op", "Or", "Window", "parse_behaviour",
    "parse_condition", "parse_event_filter", "window_days",
]
