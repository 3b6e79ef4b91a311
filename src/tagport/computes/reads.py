"""The event attributes a definition reads, with their types: what an engine gives as a
typed NULL column when no load has brought the attribute yet (spec section 6: a tag over
an attribute never loaded computes, with nulls for it, rather than failing).

Found by walking the definition's frozen dataclasses: event filters' fields
(`FieldKind.EVENT`), measures of an attribute (`{"sum": a}`, in a tag or a `did`), and
the attribute a type picks, ranks or lists.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tagport.catalog.models import ValueType
from tagport.computes.definitions import Attribution, DataSet, Definition, TopN
from tagport.conditions import Field, FieldKind, Measure, MeasureKind


def event_attributes(definition: Definition) -> dict[str, ValueType]:
    """Attribute key -> the type an absent column of it should have: its own where the
    definition says it (a filter's field, a picked, ranked or listed attribute, a sum,
    min or max), else one that reads alike (an average: double; distinct values: string)."""
    exact: dict[str, ValueType] = {}
    loose: dict[str, ValueType] = {}
    _walk(definition, exact, loose)
    return loose | exact


_SAME_TYPE = frozenset({MeasureKind.SUM, MeasureKind.MIN, MeasureKind.MAX})


def _walk(node: Any, exact: dict[str, ValueType], loose: dict[str, ValueType]) -> None:
    if isinstance(node, tuple | list | frozenset | set):
        for item in node:
            _walk(item, exact, loose)
        return
    if not dataclasses.is_dataclass(node) or isinstance(node, type):
        return
    if isinstance(node, Field) and node.kind is FieldKind.EVENT:
        exact[node.key] = node.value_type
    elif isinstance(node, Measure) and node.attribute is not None:
        if node.kind in _SAME_TYPE:
            exact[node.attribute] = node.value_type
        else:
            loose[node.attribute] = (ValueType.DOUBLE if node.kind is MeasureKind.AVG
                                     else ValueType.STRING)
    elif isinstance(node, Attribution | TopN | DataSet) and node.attribute is not None:
        assert node.attribute_type is not None
        exact[node.attribute] = node.attribute_type
        if isinstance(node, TopN) and node.sum_of is not None:
            loose[node.sum_of] = ValueType.DOUBLE
    for f in dataclasses.fields(node):
        _walk(getattr(node, f.name), exact, loose)
