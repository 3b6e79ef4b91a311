"""Parse a condition's JSON and check it against the catalog: typed nodes, or a 400.

Every refusal is a `BadRequest` with code `INVALID_CONDITION` whose message starts with
the JSON path of the field at fault (`definition.exprs[1].values: ...`), so a user can
find it in a definition of any depth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.conditions.behaviour import parse_measure, parse_window
from tagport.conditions.refusals import invalid
from tagport.conditions.tree import (
    NULL_OPS,
    ORDERING_OPS,
    SINGLE_VALUE_OPS,
    TEXT_OPS,
    And,
    Behaviour,
    Compare,
    Condition,
    Did,
    Field,
    FieldKind,
    InSegment,
    Not,
    Op,
    Or,
    Value,
)
from tagport.conditions.values import DESCRIPTIONS, read_value

# event key -> attribute key -> type (an attribute key has one type across events)
EventCatalog = Mapping[str, Mapping[str, ValueType]]

_KINDS = {Kind.IDENTITY: FieldKind.IDENTITY, Kind.ATTRIBUTE: FieldKind.ATTRIBUTE,
          Kind.TAG: FieldKind.TAG}
_OPS = {op.value: op for op in Op}
_OP_LIST = ", ".join(op.value for op in Op)


@dataclass(frozen=True)
class ConditionContext:
    """What a condition may name: catalog keys, the project's segments, the events."""

    catalog: Mapping[str, CatalogEntry] = field(default_factory=dict)
    segments: frozenset[str] = frozenset()  # `seg_<k>` keys
    events: EventCatalog = field(default_factory=dict)

    def attributes(self, event: str | None) -> Mapping[str, ValueType]:
        """The attributes an event filter on `event` may name (None: any event)."""
        if event is not None:
            return self.events[event]
        return {k: t for attributes in self.events.values() for k, t in attributes.items()}


class _UserKeys:
    """Keys of the users table: identities, attributes, tags and segments."""

    in_event_filter = False

    def __init__(self, context: ConditionContext) -> None:
        self.context = context

    def resolve(self, key: str, path: str) -> Field:
        if key in self.context.segments:
            return Field(key, FieldKind.SEGMENT, ValueType.BOOL)
        entry = self.context.catalog.get(key)
        if entry is None:
            raise invalid(path, f"unknown key {key!r}")
        return Field(key, _KINDS[entry.kind], entry.value_type, entry.is_array)


class _EventAttributes:
    """Keys of an event filter: the attributes of the event (of any event for "*")."""

    in_event_filter = True

    def __init__(self, attributes: Mapping[str, ValueType], event: str | None) -> None:
        self.attributes = attributes
        self.event = event

    def resolve(self, key: str, path: str) -> Field:
        if key not in self.attributes:
            of = "any event" if self.event is None else f"event {self.event!r}"
            raise invalid(path, f"unknown attribute {key!r} of {of}")
        return Field(key, FieldKind.EVENT, self.attributes[key])


_Keys = _UserKeys | _EventAttributes


def parse_condition(doc: Any, context: ConditionContext, path: str = "definition") -> Condition:
    """A segment's definition or a HORIZONTAL tier's `when`, checked."""
    return _node(doc, _UserKeys(context), context, path)


def parse_event_filter(doc: Any, context: ConditionContext, event: str | None,
                       path: str = "where") -> Condition:
    """An event filter (`where`) over the attributes of `event` (None: any event)."""
    return _node(doc, _EventAttributes(context.attributes(event), event), context, path)


def parse_behaviour(doc: Any, context: ConditionContext, path: str) -> Behaviour:
    """`{"event", "measure", "window", "where"}`, as in `did` and AGGREGATED tags."""
    if not isinstance(doc, dict):
        raise invalid(path, f"a behaviour is an object, got {doc!r}")
    _known_fields(doc, path, ("event", "measure", "window", "where"))
    event = _event(doc.get("event"), context, f"{path}.event")
    attributes = context.attributes(event)
    measure = parse_measure(doc.get("measure"), attributes, event, f"{path}.measure")
    window = parse_window(doc.get("window"), f"{path}.window")
    where = doc.get("where")
    if where is not None:
        where = parse_event_filter(where, context, event, f"{path}.where")
    return Behaviour(event, measure, window, where)


def _event(raw: Any, context: ConditionContext, path: str) -> str | None:
    if raw == "*":
        return None
    if not isinstance(raw, str):
        raise invalid(path, f'an event key or "*", got {raw!r}')
    if raw not in context.events:
        raise invalid(path, f"unknown event {raw!r}")
    return raw


def _node(doc: Any, keys: _Keys, context: ConditionContext, path: str) -> Condition:
    if not isinstance(doc, dict):
        raise invalid(path, f"a condition is an object, got {doc!r}")
    if "segment" in doc:
        return _segment(doc, keys, context, path)
    if "did" in doc:
        return _did(doc, keys, context, path)
    if "key" in doc:
        return _compare(doc, keys, path)
    if "exprs" in doc or doc.get("op") in ("and", "or", "not"):
        return _logical(doc, keys, context, path)
    raise invalid(path, 'a condition has "op" and "exprs", "key", "did" or "segment"')


def _known_fields(doc: dict[str, Any], path: str, allowed: tuple[str, ...]) -> None:
    """Refuse fields a node does not have; GrowingIO's unused null or empty ones pass."""
    for name, value in doc.items():
        if name not in allowed and value not in (None, []):
            raise invalid(f"{path}.{name}", f"unknown field (here: {', '.join(allowed)})")


def _logical(doc: dict[str, Any], keys: _Keys, context: ConditionContext,
             path: str) -> Condition:
    _known_fields(doc, path, ("op", "exprs"))
    op = doc.get("op")
    if op not in ("and", "or", "not"):
        raise invalid(f"{path}.op", f"{op!r} is not 'and', 'or' or 'not' (a node with exprs)")
    exprs = doc.get("exprs")
    if not isinstance(exprs, list) or not exprs:
        raise invalid(f"{path}.exprs", f"{op!r} takes a list of conditions, got {exprs!r}")
    if op == "not" and len(exprs) != 1:
        raise invalid(f"{path}.exprs", f"'not' takes exactly one condition, got {len(exprs)}")
    nodes = tuple(_node(e, keys, context, f"{path}.exprs[{i}]") for i, e in enumerate(exprs))
    if op == "not":
        return Not(nodes[0])
    return And(nodes) if op == "and" else Or(nodes)


def _compare(doc: dict[str, Any], keys: _Keys, path: str) -> Compare:
    _known_fields(doc, path, ("key", "op", "values"))
    key = doc["key"]
    if not isinstance(key, str):
        raise invalid(f"{path}.key", f"a key is a string, got {key!r}")
    resolved = keys.resolve(key, f"{path}.key")
    op = _op(doc.get("op"), f"{path}.op")
    _op_fits_type(op, resolved.value_type, f"key {key}", f"{path}.op")
    values = _values(doc.get("values"), op, resolved.value_type, f"key {key}", path)
    return Compare(resolved, op, values)


def _did(doc: dict[str, Any], keys: _Keys, context: ConditionContext, path: str) -> Did:
    if keys.in_event_filter:
        raise invalid(path, "an event filter compares event attributes: no 'did' here")
    _known_fields(doc, path, ("did", "op", "values"))
    behaviour = parse_behaviour(doc["did"], context, f"{path}.did")
    measure = behaviour.measure
    op = _op(doc.get("op"), f"{path}.op")
    if op in TEXT_OPS or op in NULL_OPS:
        raise invalid(f"{path}.op", f"{op.value!r} does not apply to a measure "
                      f"({measure.label}): use a comparison")
    values = _values(doc.get("values"), op, measure.value_type, f"measure {measure.label}", path)
    return Did(behaviour, op, values)


def _segment(doc: dict[str, Any], keys: _Keys, context: ConditionContext,
             path: str) -> InSegment:
    if keys.in_event_filter:
        raise invalid(path, "an event filter compares event attributes: no 'segment' here")
    _known_fields(doc, path, ("segment",))
    key = doc["segment"]
    if not isinstance(key, str) or key not in context.segments:
        raise invalid(f"{path}.segment", f"unknown segment {key!r}")
    return InSegment(key)


def _op(raw: Any, path: str) -> Op:
    op = _OPS.get(raw) if isinstance(raw, str) else None
    if op is None:
        raise invalid(path, f"unknown operator {raw!r} (one of {_OP_LIST})")
    return op


def _op_fits_type(op: Op, value_type: ValueType, subject: str, path: str) -> None:
    if op in TEXT_OPS and value_type is not ValueType.STRING:
        raise invalid(path, f"{op.value!r} applies to strings, not to {value_type.value} "
                      f"({subject})")
    if op in ORDERING_OPS and value_type is ValueType.BOOL:
        raise invalid(path, f"{op.value!r} does not apply to a bool ({subject})")


def _values(raw: Any, op: Op, value_type: ValueType, subject: str,
            path: str) -> tuple[Value, ...]:
    """The values, as many as `op` takes, each of `value_type`."""
    path = f"{path}.values"
    if raw is None and op in NULL_OPS:
        return ()
    if not isinstance(raw, list):
        raise invalid(path, f"a list of values, got {raw!r}")
    _count_fits(op, len(raw), path)
    values = []
    for item in raw:
        value = read_value(item, value_type)
        if value is None:
            raise invalid(path, f"{item!r} is not {DESCRIPTIONS[value_type]} ({subject})")
        values.append(value)
    return tuple(values)


def _count_fits(op: Op, count: int, path: str) -> None:
    if op in NULL_OPS and count:
        raise invalid(path, f"{op.value!r} takes no values, got {count}")
    if op is Op.BETWEEN and count != 2:
        raise invalid(path, f"'between' takes two values, got {count}")
    if op in SINGLE_VALUE_OPS and count != 1:
        raise invalid(path, f"{op.value!r} takes one value, got {count}")
    if op in (Op.IN, Op.NOT_IN) and not count:
        raise invalid(path, f"{op.value!r} takes at least one value, got none")
