"""The condition tree of segments, HORIZONTAL tiers and event filters (spec section 7).

`parse_condition` checks a definition's JSON into typed nodes (or raises a 400
`INVALID_CONDITION` naming the field); `compile_condition` turns them into one sqlglot
boolean expression over the users table, for any engine given its `ValueReader`
(`engines/duckdb/conditions.py`, `engines/spark/conditions.py`). See docs/conditions.md.
"""

from tagport.conditions.check import (
    ConditionContext,
    EventCatalog,
    parse_behaviour,
    parse_condition,
    parse_event_filter,
)
from tagport.conditions.compile import (
    behaviour_filter,
    compile_condition,
    compile_event_filter,
    literal,
    measure_expression,
    select_members,
    to_sql,
    window_predicate,
)
from tagport.conditions.reader import ElementTest, ValueReader, data_type
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
    "DateRange", "Did", "ElementTest", "EventCatalog", "Field", "FieldKind", "InSegment",
    "LastDays", "Measure", "MeasureKind", "Not", "Op", "Or", "ValueReader", "Window",
    "behaviour_filter", "compile_condition", "compile_event_filter", "data_type", "literal",
    "measure_expression", "parse_behaviour", "parse_condition", "parse_event_filter",
    "select_members", "to_sql", "window_days", "window_predicate",
]
