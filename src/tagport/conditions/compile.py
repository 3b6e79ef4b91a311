"""A checked condition as one sqlglot boolean expression over the users table.

Semantics (spec section 7, docs/conditions.md):
- a comparison on a null value is NULL, which every caller treats as false; `not` wraps
  its condition as `NOT coalesce(c, FALSE)`, so it negates nulls too; and/or keep SQL's
  three-valued logic, which agrees with "null is false" until a `not` (handled there);
  the whole condition is `coalesce(c, FALSE)`: TRUE or FALSE, never NULL.
- a comparison on a list key holds when any element satisfies it (the engine's
  `ValueReader.any_element`); `is null` holds when no element is non-null.
- `did` is a semi-join on the events aggregated per user (`gio_id IN (SELECT ... GROUP BY
  gio_id HAVING ...)`); counting measures of no events are 0, the others NULL. A caller
  that has already aggregated a behaviour per user (`measured`, a column that is NULL for
  a user without matching events) gets the comparison of that column instead.
- windows are computed into literal days here, from the compute date: no SQL date
  arithmetic, whose spelling differs by dialect.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from sqlglot import exp

from tagport.catalog.models import ValueType
from tagport.conditions.reader import ValueReader, data_type
from tagport.conditions.tree import (
    COUNTING,
    And,
    Behaviour,
    Compare,
    Condition,
    Did,
    Field,
    FieldKind,
    InSegment,
    Measure,
    MeasureKind,
    Not,
    Op,
    Or,
    Value,
    Window,
    window_days,
)

EVENTS_ALIAS = "ev"  # the events table inside a `did` subquery


def compile_condition(condition: Condition, reader: ValueReader, *, as_of: date,
                      users: str = "u", events: str | exp.Expression = "events",
                      as_filter: bool = False,
                      measured: Mapping[Behaviour, exp.Expression] | None = None
                      ) -> exp.Expression:
    """The condition over the users table aliased `users`, TRUE or FALSE for each user;
    `did` reads `events` (a table name or a relation) as of the compute date `as_of`.
    `as_filter`: for a WHERE clause, where NULL keeps no row as FALSE does, so the outer
    coalesce is left out and the engine's optimizer sees the conjunction itself.
    `measured`: behaviours the caller has aggregated per user already (the user's
    `measure_expression` over its matching events, NULL when it has none), read there."""
    if users == EVENTS_ALIAS:
        raise ValueError(f"the users alias {users!r} is the events subquery's own")
    compiled = _Compiler(reader, users, events, as_of, measured=measured).node(condition)
    return compiled if as_filter else _false_if_null(compiled)


def compile_event_filter(condition: Condition, events_alias: str) -> exp.Expression:
    """An event filter (`where`) over the events table aliased `events_alias`."""
    return _false_if_null(_Compiler(None, "", "", None, events_alias).node(condition))


def select_members(condition: Condition, reader: ValueReader, *, as_of: date,
                   users_table: str | exp.Expression = "users",
                   events: str | exp.Expression = "events", users: str = "u") -> exp.Select:
    """`SELECT gio_id FROM users WHERE <condition> ORDER BY gio_id`: a segment's members."""
    predicate = compile_condition(condition, reader, as_of=as_of, users=users, events=events,
                                  as_filter=True)
    gio_id = exp.column("gio_id", table=users)
    return (exp.select(gio_id).from_(exp.alias_(_relation(users_table), users, table=True))
            .where(predicate).order_by(gio_id))


def to_sql(expression: exp.Expression, reader: ValueReader) -> str:
    """The expression in the engine's SQL dialect."""
    return expression.sql(dialect=reader.dialect)


def behaviour_filter(behaviour: Behaviour, as_of: date, events_alias: str) -> exp.Expression:
    """Which events a behaviour counts: its event key, its window and its `where`."""
    parts = [window_predicate(behaviour.window, as_of, exp.column("dt", table=events_alias))]
    if behaviour.event is not None:
        parts.insert(0, exp.column("event", table=events_alias).eq(exp.Literal.string(
            behaviour.event)))
    if behaviour.where is not None:
        parts.append(compile_event_filter(behaviour.where, events_alias))
    return exp.and_(*parts)


def window_predicate(window: Window, as_of: date, dt: exp.Expression) -> exp.Expression:
    """`dt` within the window's days, computed from `as_of`."""
    first, last = window_days(window, as_of)
    if first is None:
        return exp.LTE(this=dt, expression=literal(last, ValueType.DATE))
    return exp.Between(this=dt, low=literal(first, ValueType.DATE),
                       high=literal(last, ValueType.DATE))


def measure_expression(measure: Measure, events_alias: str) -> exp.Expression:
    """The aggregate a measure is over the matching events (NULL or 0 for none)."""
    if measure.kind is MeasureKind.COUNT:
        return exp.Count(this=exp.Star())
    if measure.kind is MeasureKind.DAYS:
        return exp.Count(this=exp.Distinct(expressions=[exp.column("dt", table=events_alias)]))
    assert measure.attribute is not None
    column = exp.column(measure.attribute, table=events_alias, quoted=True)
    if measure.kind is MeasureKind.DISTINCT:
        return exp.Count(this=exp.Distinct(expressions=[column]))
    aggregate = {MeasureKind.SUM: exp.Sum, MeasureKind.AVG: exp.Avg,
                 MeasureKind.MIN: exp.Min, MeasureKind.MAX: exp.Max}[measure.kind]
    return aggregate(this=column)


def literal(value: Value, value_type: ValueType) -> exp.Expression:
    """A typed SQL literal: dates and datetimes as casts, which both dialects read."""
    if value_type is ValueType.STRING:
        return exp.Literal.string(str(value))
    if value_type is ValueType.BOOL:
        return exp.Boolean(this=bool(value))
    if value_type in (ValueType.INT, ValueType.DOUBLE):
        return exp.Literal.number(repr(value))
    assert isinstance(value, date)
    text = value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return exp.cast(exp.Literal.string(text), data_type(value_type))


def _false_if_null(condition: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=condition, expressions=[exp.false()])


def _relation(relation: str | exp.Expression) -> exp.Expression:
    return exp.to_table(relation) if isinstance(relation, str) else relation


class _Compiler:
    """One condition's translation; `reader` is None in an event filter (no user keys)."""

    def __init__(self, reader: ValueReader | None, users: str, events: str | exp.Expression,
                 as_of: date | None, events_alias: str = EVENTS_ALIAS,
                 measured: Mapping[Behaviour, exp.Expression] | None = None) -> None:
        self.reader = reader
        self.measured = measured or {}
        self.users = users
        self.events = events
        self.as_of = as_of
        self.events_alias = events_alias

    def node(self, condition: Condition) -> exp.Expression:
        if isinstance(condition, And):
            return exp.and_(*(self.node(c) for c in condition.exprs))
        if isinstance(condition, Or):
            return exp.or_(*(self.node(c) for c in condition.exprs))
        if isinstance(condition, Not):
            return exp.not_(_false_if_null(self.node(condition.expr)))
        if isinstance(condition, Compare):
            return self.compare(condition)
        if isinstance(condition, Did):
            if condition.behaviour in self.measured:
                return self.measured_did(condition)
            return self.did(condition)
        return self.segment(condition)

    def compare(self, compare: Compare) -> exp.Expression:
        field, op = compare.field, compare.op
        values = [literal(v, field.value_type) for v in compare.values]
        if field.kind is FieldKind.EVENT:
            column = exp.column(field.key, table=self.events_alias, quoted=True)
            return _predicate(op, column, values)
        assert self.reader is not None
        if not field.is_list:
            return _predicate(op, self.reader.scalar(field, self.users), values)
        items = self.reader.elements(field, self.users)
        if op is Op.IS_NULL:  # no element, or none that is not null
            return exp.not_(self.reader.any_element(items, lambda e: e.is_(exp.null()).not_()))
        if op is Op.IS_NOT_NULL:
            return self.reader.any_element(items, lambda e: e.is_(exp.null()).not_())
        return self.reader.any_element(items, lambda e: _predicate(op, e, values))

    def did(self, did: Did) -> exp.Expression:
        """`gio_id IN (SELECT gio_id FROM events WHERE <behaviour> GROUP BY gio_id HAVING
        <measure op values>)`: a semi-join both engines run as a hash join (a correlated
        scalar subquery was 5x slower on DuckDB). A user with no matching event has the
        measure 0 (counting) or NULL: when 0 satisfies the comparison (`count = 0`,
        `count < 2`), the users kept are those NOT among the ones whose measure fails it."""
        assert self.as_of is not None
        behaviour = did.behaviour
        alias = self.events_alias
        values = [literal(v, behaviour.measure.value_type) for v in did.values]
        measure = measure_expression(behaviour.measure, alias)
        holds_at_zero = (behaviour.measure.kind in COUNTING
                         and _holds(did.op, 0, list(did.values)))
        having = _predicate(did.op, measure, values)
        if holds_at_zero:
            having = exp.not_(_false_if_null(having))
        gio_id = exp.column("gio_id", table=alias)
        users = (exp.select(gio_id).from_(exp.alias_(_relation(self.events), alias, table=True))
                 .where(behaviour_filter(behaviour, self.as_of, alias))
                 .group_by(gio_id).having(having))
        member = exp.In(this=exp.column("gio_id", table=self.users),
                        query=exp.Subquery(this=users))
        return exp.not_(member) if holds_at_zero else member

    def measured_did(self, did: Did) -> exp.Expression:
        """The comparison of the caller's per-user measure: 0 for a counting measure of
        no events, and TRUE or FALSE as the semi-join is."""
        measure = self.measured[did.behaviour].copy()
        if did.behaviour.measure.kind in COUNTING:
            measure = exp.Coalesce(this=measure, expressions=[exp.Literal.number(0)])
        values = [literal(v, did.behaviour.measure.value_type) for v in did.values]
        return _false_if_null(_predicate(did.op, measure, values))

    def segment(self, segment: InSegment) -> exp.Expression:
        """A member holds a value in the segment's column, as an export selects them."""
        assert self.reader is not None
        column = self.reader.scalar(Field(segment.key, FieldKind.SEGMENT, ValueType.BOOL),
                                    self.users)
        return column.is_(exp.null()).not_()


def _holds(op: Op, value: float, values: list[Value]) -> bool:
    """Whether the number `value` satisfies `op values` (a measure's comparison)."""
    numbers = [float(v) for v in values]  # type: ignore[arg-type]
    if op is Op.BETWEEN:
        return numbers[0] <= value <= numbers[1]
    if op in (Op.IN, Op.NOT_IN):
        return (value in numbers) is (op is Op.IN)
    first = numbers[0]
    return {Op.EQ: value == first, Op.NE: value != first, Op.GT: value > first,
            Op.GE: value >= first, Op.LT: value < first, Op.LE: value <= first}[op]


def _predicate(op: Op, value: exp.Expression, values: list[exp.Expression]) -> exp.Expression:
    """`value <op> values`, NULL when `value` is NULL (except for the null tests)."""
    if op is Op.IS_NULL:
        return value.is_(exp.null())
    if op is Op.IS_NOT_NULL:
        return value.is_(exp.null()).not_()
    if op is Op.BETWEEN:
        return exp.Between(this=value, low=values[0], high=values[1])
    if op in (Op.IN, Op.NOT_IN):
        found = exp.In(this=value, expressions=values)
        return found if op is Op.IN else exp.not_(found)
    if op in (Op.CONTAINS, Op.NOT_CONTAINS):
        found = exp.Contains(this=value, expression=values[0])
        return found if op is Op.CONTAINS else exp.not_(found)
    if op is Op.STARTS_WITH:
        return exp.StartsWith(this=value, expression=values[0])
    return _COMPARISONS[op](this=value, expression=values[0])


_COMPARISONS: dict[Op, type[exp.Expression]] = {
    Op.EQ: exp.EQ, Op.NE: exp.NEQ, Op.GT: exp.GT, Op.GE: exp.GTE, Op.LT: exp.LT, Op.LE: exp.LTE,
}
