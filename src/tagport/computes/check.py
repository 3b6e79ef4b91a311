"""A tag's `compute` JSON checked into a typed definition, and the catalog's computed tags
checked together: their types, the tags they read, their dependency order.

Every refusal is an `InvalidInput` whose message names the tag and the field
(`tag_paid_30d: compute.measure.sum: unknown attribute 'amout' of event 'payOrderSuccess'`),
so `tagport catalog apply` refuses the whole file, naming the first mistake.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.computes import sql as sql_check
from tagport.computes.definitions import (
    Aggregated,
    Attribution,
    AttributionValue,
    ComputedTag,
    ComputeType,
    DataSet,
    Definition,
    EventSelection,
    Horizontal,
    Pick,
    Rank,
    Scheduler,
    SqlDialect,
    SqlQuery,
    Tier,
    TopN,
    Yield,
    depends_on,
)
from tagport.conditions import (
    And,
    Compare,
    Condition,
    ConditionContext,
    EventCatalog,
    FieldKind,
    Not,
    Or,
    parse_behaviour,
    parse_condition,
    parse_event_filter,
)
from tagport.conditions.behaviour import parse_window
from tagport.conditions.values import DESCRIPTIONS, read_value
from tagport.errors import BadRequest, InvalidInput

_TYPES = ", ".join(t.value for t in ComputeType)
_NUMBERS = frozenset({ValueType.INT, ValueType.DOUBLE})
_SELECTION = ("event", "window", "where")
_FIELDS: dict[ComputeType, tuple[str, ...]] = {
    ComputeType.AGGREGATED: ("event", "measure", "window", "where"),
    ComputeType.ATTRIBUTION_ATTRIBUTE: (*_SELECTION, "pick", "value"),
    ComputeType.TOP_N_ATTRIBUTE: (*_SELECTION, "attribute", "by", "pick"),
    ComputeType.DATA_SET_ATTRIBUTE: (*_SELECTION, "attribute"),
    ComputeType.HORIZONTAL: ("tiers",),
    ComputeType.SQL: ("sql", "dialect"),
}


class _Refused(Exception):
    """A mistake at a path inside `compute`; `check_tag` adds the tag's key."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")


def check_tag(entry: CatalogEntry, context: ConditionContext) -> ComputedTag | None:
    """The entry's checked definition and scheduler; None for a loaded tag."""
    try:
        return _check_tag(entry, context)
    except _Refused as exc:
        raise InvalidInput(f"{entry.key}: {exc}") from None
    except BadRequest as exc:  # a condition's refusal, its path under `compute`
        raise InvalidInput(f"{entry.key}: {exc.message}") from None


def check_catalog(entries: Iterable[CatalogEntry], events: EventCatalog,
                  segments: frozenset[str] = frozenset()) -> list[ComputedTag]:
    """Every computed tag of the catalog checked, in dependency order (cycles refused)."""
    by_key = {e.key: e for e in entries}
    context = ConditionContext(catalog=by_key, segments=segments, events=events)
    computed = [tag for e in by_key.values() if (tag := check_tag(e, context)) is not None]
    return order(computed)


def order(tags: Iterable[ComputedTag]) -> list[ComputedTag]:
    """`tags` so that a tag comes after the tags of the set it reads (their given order
    otherwise); a cycle is refused, naming it."""
    by_key = {t.key: t for t in tags}
    done: dict[str, ComputedTag] = {}
    visiting: list[str] = []

    def visit(key: str) -> None:
        if key in done:
            return
        if key in visiting:
            cycle = " -> ".join([*visiting[visiting.index(key):], key])
            raise InvalidInput(f"{key}: compute.tiers: the computed tags read each other"
                               f" in a cycle: {cycle}")
        visiting.append(key)
        for dependency in sorted(depends_on(by_key[key].definition)):
            if dependency in by_key:
                visit(dependency)
        visiting.pop()
        done[key] = by_key[key]

    for key in by_key:
        visit(key)
    return list(done.values())


def _check_tag(entry: CatalogEntry, context: ConditionContext) -> ComputedTag | None:
    if entry.compute is None:
        if entry.scheduler is not None:
            raise _Refused("scheduler", "only a computed tag (with a compute) has a scheduler")
        return None
    if entry.kind is not Kind.TAG:
        raise _Refused("compute", f"only a tag can be computed, not a {entry.kind.value}")
    definition = parse_definition(entry.compute, entry, context)
    _fits(definition, entry)
    try:
        scheduler = Scheduler(entry.scheduler or Scheduler.DAILY)
    except ValueError:
        raise _Refused("scheduler", f"{entry.scheduler!r} is not DAILY or ONCE") from None
    return ComputedTag(entry.key, definition, scheduler)


def parse_definition(doc: Any, entry: CatalogEntry, context: ConditionContext) -> Definition:
    """`compute` as a typed definition (raises `_Refused` or a condition's BadRequest)."""
    if not isinstance(doc, dict):
        raise _Refused("compute", f"a definition is an object with a type, got {doc!r}")
    try:
        compute_type = ComputeType(doc.get("type"))
    except ValueError:
        raise _Refused("compute.type", f"unknown type {doc.get('type')!r} (one of {_TYPES})"
                       ) from None
    body = {k: v for k, v in doc.items() if k != "type"}
    for name in body:
        if name not in _FIELDS[compute_type]:
            raise _Refused(f"compute.{name}", f"unknown field of a {compute_type} definition"
                           f" (here: {', '.join(_FIELDS[compute_type])})")
    if compute_type is ComputeType.AGGREGATED:
        return Aggregated(parse_behaviour(body, context, "compute"))
    if compute_type is ComputeType.HORIZONTAL:
        return _horizontal(body, entry, context)
    if compute_type is ComputeType.SQL:
        return _sql(body)
    events = _selection(body, context)
    if compute_type is ComputeType.ATTRIBUTION_ATTRIBUTE:
        return _attribution(body, events, context)
    if compute_type is ComputeType.TOP_N_ATTRIBUTE:
        return _top_n(body, events, context)
    attribute, attribute_type = _attribute(body.get("attribute"), events, context,
                                           "compute.attribute")
    return DataSet(events, attribute, attribute_type)


def _selection(body: dict[str, Any], context: ConditionContext) -> EventSelection:
    event = body.get("event")
    if event == "*":
        raise _Refused("compute.event", '"*" (any event) is for AGGREGATED tags: name an event')
    if not isinstance(event, str) or event not in context.events:
        raise _Refused("compute.event", f"unknown event {event!r}")
    window = parse_window(body.get("window"), "compute.window")
    where = body.get("where")
    if where is not None:
        where = parse_event_filter(where, context, event, "compute.where")
    return EventSelection(event, window, where)


def _attribute(raw: Any, events: EventSelection, context: ConditionContext,
               path: str) -> tuple[str, ValueType]:
    attributes = context.attributes(events.event)
    if not isinstance(raw, str) or raw not in attributes:
        raise _Refused(path, f"unknown attribute {raw!r} of event {events.event!r}")
    return raw, attributes[raw]


def _choice(raw: Any, choices: type[Pick] | type[Rank], path: str) -> Any:
    try:
        return choices(raw)
    except ValueError:
        allowed = " or ".join(repr(c.value) for c in choices)
        raise _Refused(path, f"{raw!r} is not {allowed}") from None


def _attribution(body: dict[str, Any], events: EventSelection,
                 context: ConditionContext) -> Attribution:
    pick = _choice(body.get("pick"), Pick, "compute.pick")
    raw = body.get("value")
    if raw in (AttributionValue.DAYS_SINCE.value, AttributionValue.DATE.value):
        return Attribution(events, pick, AttributionValue(raw), None, None)
    if not isinstance(raw, dict) or set(raw) != {"attribute"}:
        raise _Refused("compute.value", f'{{"attribute": a}}, "daysSince" or "date", got {raw!r}')
    attribute, attribute_type = _attribute(raw["attribute"], events, context,
                                           "compute.value.attribute")
    return Attribution(events, pick, AttributionValue.ATTRIBUTE, attribute, attribute_type)


def _top_n(body: dict[str, Any], events: EventSelection, context: ConditionContext) -> TopN:
    attribute, attribute_type = _attribute(body.get("attribute"), events, context,
                                           "compute.attribute")
    by, sum_of = body.get("by"), None
    if isinstance(by, dict) and set(by) == {"sum"}:
        sum_of, sum_type = _attribute(by["sum"], events, context, "compute.by.sum")
        if sum_type not in _NUMBERS:
            raise _Refused("compute.by.sum", f"{sum_of!r} is a {sum_type.value} attribute;"
                           " sum takes an int or double one")
    elif by != "count":
        raise _Refused("compute.by", f'"count" or {{"sum": attribute}}, got {by!r}')
    return TopN(events, attribute, attribute_type, sum_of,
                _choice(body.get("pick"), Rank, "compute.pick"))


def _horizontal(body: dict[str, Any], entry: CatalogEntry,
                context: ConditionContext) -> Horizontal:
    tiers = body.get("tiers")
    if not isinstance(tiers, list) or not tiers:
        raise _Refused("compute.tiers", f'a list of {{"value", "when"}} tiers, got {tiers!r}')
    parsed, reads = [], set()
    for i, tier in enumerate(tiers):
        path = f"compute.tiers[{i}]"
        if not isinstance(tier, dict) or set(tier) != {"value", "when"}:
            raise _Refused(path, f'a tier is {{"value": v, "when": condition}}, got {tier!r}')
        value = read_value(tier["value"], entry.value_type)
        if value is None:
            raise _Refused(f"{path}.value", f"{tier['value']!r} is not"
                           f" {DESCRIPTIONS[entry.value_type]} (the tag's type)")
        when = parse_condition(tier["when"], context, f"{path}.when")
        reads |= _tags_read(when)
        parsed.append(Tier(value, when))
    if entry.key in reads:
        raise _Refused("compute.tiers", f"a tier reads the tag itself ({entry.key})")
    return Horizontal(tuple(parsed), entry.value_type, frozenset(reads))


def _tags_read(condition: Condition) -> set[str]:
    if isinstance(condition, And | Or):
        return set().union(*(_tags_read(c) for c in condition.exprs))
    if isinstance(condition, Not):
        return _tags_read(condition.expr)
    if isinstance(condition, Compare) and condition.field.kind is FieldKind.TAG:
        return {condition.field.key}
    return set()


def _sql(body: dict[str, Any]) -> SqlQuery:
    query, raw_dialect = body.get("sql"), body.get("dialect", SqlDialect.CLICKHOUSE.value)
    if not isinstance(query, str) or not query.strip():
        raise _Refused("compute.sql", f"a SELECT statement as a string, got {query!r}")
    try:
        dialect = SqlDialect(raw_dialect)
    except ValueError:
        raise _Refused("compute.dialect", f"{raw_dialect!r} is not clickhouse, duckdb or spark"
                       ) from None
    try:
        sql_check.parse(query, dialect)
    except sql_check.SqlRefused as exc:
        raise _Refused("compute.sql", str(exc)) from None
    return SqlQuery(query, dialect)


def _fits(definition: Definition, entry: CatalogEntry) -> None:
    """The declared type must hold what the definition yields; an int fits a double tag."""
    made: Yield = definition.yields
    if made.value_type is None:
        return
    same_shape = made.is_array == entry.is_array
    fits = made.value_type is entry.value_type or (
        made.value_type is ValueType.INT and entry.value_type is ValueType.DOUBLE)
    if not (same_shape and fits):
        raise _Refused("type", f"the tag is declared {entry.type_label} but its"
                       f" {definition.type} definition yields {made.label}")


def computed_keys(entries: Mapping[str, CatalogEntry]) -> frozenset[str]:
    """The keys of the catalog's computed tags."""
    return frozenset(k for k, e in entries.items() if e.compute is not None)
