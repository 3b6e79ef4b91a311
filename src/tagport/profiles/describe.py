"""A computed tag's definition in words, for people: `过去30天 支付订单 次数` or
`Last 30 days · Order paid · count`, with the catalog's display names of events,
attributes and keys in the caller's language.

It reads the `compute` JSON as written in the catalog (checked at `catalog apply` by
tagport.computes, docs/computed-tags.md and docs/conditions.md); a part it does not know
is shown as its JSON, so a description never fails.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tagport.catalog.models import CatalogEntry, EventDefinition
from tagport.i18n import Language

_MEASURES = {  # measure -> (Chinese, English); {a} is the attribute's display name
    "count": ("次数", "count"),
    "days": ("天数", "days"),
    "sum": ("{a} 总和", "sum of {a}"),
    "avg": ("{a} 平均值", "average {a}"),
    "min": ("{a} 最小值", "minimum {a}"),
    "max": ("{a} 最大值", "maximum {a}"),
    "distinct": ("{a} 去重数", "distinct {a}"),
}
_OPERATORS = {  # op -> (Chinese, English); absent: the symbol itself
    "in": ("属于", "in"), "not in": ("不属于", "not in"),
    "contains": ("包含", "contains"), "not contains": ("不包含", "does not contain"),
    "starts with": ("开头是", "starts with"),
    "is null": ("为空", "is empty"), "is not null": ("不为空", "is not empty"),
    "between": ("介于", "between"),
}


class Describer:
    """Describes definitions against one catalog in one language."""

    def __init__(self, catalog: Mapping[str, CatalogEntry],
                 events: Mapping[str, EventDefinition], language: Language) -> None:
        self.catalog = catalog
        self.events = events
        self.us = language is Language.US

    def _t(self, ch: str, us: str) -> str:
        return us if self.us else ch

    def _join(self, *parts: str | None) -> str:
        return (" · " if self.us else " ").join(p for p in parts if p)

    # -- names ---------------------------------------------------------------------------

    def event(self, key: Any) -> str:
        if key == "*":
            return self._t("任意事件", "Any event")
        event = self.events.get(key) if isinstance(key, str) else None
        if event is None:
            return str(key)
        return event.name_en if self.us and event.name_en else event.name

    def attribute(self, event: Any, key: Any) -> str:
        definitions = ([self.events[event]] if event in self.events
                       else list(self.events.values()))
        for definition in definitions:
            attribute = definition.attributes.get(key)
            if attribute is not None:
                return attribute.name_en if self.us and attribute.name_en else attribute.name
        return str(key)

    def key(self, key: Any) -> str:
        entry = self.catalog.get(key) if isinstance(key, str) else None
        if entry is None:
            return str(key)
        return entry.name_en if self.us and entry.name_en else entry.name

    # -- parts ---------------------------------------------------------------------------

    def window(self, window: Any) -> str:
        if window is None:
            return self._t("全部历史", "All time")
        if isinstance(window, dict) and "lastDays" in window:
            days = window["lastDays"]
            return self._t(f"过去{days}天", f"Last {days} day{'' if days == 1 else 's'}")
        if isinstance(window, dict) and {"from", "to"} <= set(window):
            return self._t(f"{window['from']} 至 {window['to']}",
                           f"{window['from']} to {window['to']}")
        return _json(window)

    def measure(self, measure: Any, event: Any) -> str:
        if isinstance(measure, str) and measure in _MEASURES:
            return self._t(*_MEASURES[measure])
        if isinstance(measure, dict) and len(measure) == 1:
            (name, attribute), = measure.items()
            if name in _MEASURES:
                return self._t(*_MEASURES[name]).format(a=self.attribute(event, attribute))
        return _json(measure)

    def where(self, where: Any, event: Any) -> str | None:
        if where is None:
            return None
        text = self.condition(where, event)
        return self._t(f"满足 {text}", f"where {text}")

    def condition(self, c: Any, event: Any = None) -> str:
        """A condition tree; inside an event's `where`, keys are its attributes."""
        if not isinstance(c, dict):
            return _json(c)
        op = c.get("op")
        if op in ("and", "or") and isinstance(c.get("exprs"), list):
            glue = self._t(" 且 ", " and ") if op == "and" else self._t(" 或 ", " or ")
            parts = [self.condition(e, event) for e in c["exprs"]]
            return parts[0] if len(parts) == 1 else "(" + glue.join(parts) + ")"
        if op == "not" and isinstance(c.get("exprs"), list) and len(c["exprs"]) == 1:
            inner = self.condition(c["exprs"][0], event)
            return self._t(f"非（{inner}）", f"not ({inner})")
        if "segment" in c:
            return self._t(f"属于分群 {self.key(c['segment'])}",
                           f"in segment {self.key(c['segment'])}")
        if "did" in c and isinstance(c["did"], dict):
            did = c["did"]
            subject = self._join(self.window(did.get("window")), self.event(did.get("event")),
                                 self.where(did.get("where"), did.get("event")),
                                 self.measure(did.get("measure"), did.get("event")))
            return f"{subject} {self._comparison(op, c.get('values'))}"
        if "key" in c:
            name = (self.attribute(event, c["key"]) if event is not None
                    else self.key(c["key"]))
            return f"{name} {self._comparison(op, c.get('values'))}"
        return _json(c)

    def _comparison(self, op: Any, values: Any) -> str:
        values = values if isinstance(values, list) else []
        word = self._t(*_OPERATORS[op]) if op in _OPERATORS else str(op)
        shown = [_value(v) for v in values]
        if op in ("is null", "is not null"):
            return word
        if op == "between" and len(shown) == 2:
            return self._t(f"{word} {shown[0]} 和 {shown[1]}",
                           f"{word} {shown[0]} and {shown[1]}")
        if op in ("in", "not in"):
            return f"{word} {{{', '.join(shown)}}}"
        return f"{word} {', '.join(shown)}"

    # -- the six types -------------------------------------------------------------------

    def describe(self, compute: Mapping[str, Any]) -> str:
        kind = compute.get("type")
        event = compute.get("event")
        window = self.window(compute.get("window"))
        where = self.where(compute.get("where"), event)
        if kind == "AGGREGATED":
            return self._join(window, self.event(event), where,
                              self.measure(compute.get("measure"), event))
        if kind == "ATTRIBUTION_ATTRIBUTE":
            pick = compute.get("pick")
            picked = self._t("首次", "first") if pick == "first" else self._t("最近一次", "last")
            value = compute.get("value")
            if value == "daysSince":
                what = self._t("距今天数", "days since")
            elif value == "date":
                what = self._t("日期", "date")
            elif isinstance(value, dict) and "attribute" in value:
                what = self.attribute(event, value["attribute"])
            else:
                what = _json(value)
            return self._join(window, self.event(event), where, f"{picked}{self._t(' 的 ', ' · ')}"
                              f"{what}")
        if kind == "TOP_N_ATTRIBUTE":
            attribute = self.attribute(event, compute.get("attribute"))
            most = compute.get("pick") != "min"
            by = compute.get("by")
            if isinstance(by, dict) and "sum" in by:
                summed = self.attribute(event, by["sum"])
                rank = self._t(f"按 {summed} 总和{'最多' if most else '最少'}的 {attribute}",
                               f"{attribute} with the {'highest' if most else 'lowest'}"
                               f" sum of {summed}")
            else:
                rank = self._t(f"次数{'最多' if most else '最少'}的 {attribute}",
                               f"{attribute} with the {'most' if most else 'fewest'} events")
            return self._join(window, self.event(event), where, rank)
        if kind == "DATA_SET_ATTRIBUTE":
            attribute = self.attribute(event, compute.get("attribute"))
            return self._join(window, self.event(event), where,
                              self._t(f"所有 {attribute}", f"every {attribute}"))
        if kind == "HORIZONTAL" and isinstance(compute.get("tiers"), list):
            tiers = [self._t(f"{_value(t.get('value'))}：{self.condition(t.get('when'))}",
                             f"{_value(t.get('value'))} when {self.condition(t.get('when'))}")
                     for t in compute["tiers"] if isinstance(t, dict)]
            tiers.append(self._t("否则为空", "otherwise empty"))
            return self._t("；", "; ").join(tiers)
        if kind == "SQL":
            dialect = compute.get("dialect", "clickhouse")
            return self._t(f"SQL（{dialect}）：{compute.get('sql')}",
                           f"SQL ({dialect}): {compute.get('sql')}")
        return _json(compute)


def describe(compute: Mapping[str, Any], catalog: Mapping[str, CatalogEntry],
             events: Mapping[str, EventDefinition], language: Language) -> str:
    """`compute` (a tag's definition as written) in words, in `language`."""
    return Describer(catalog, events, language).describe(compute)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
