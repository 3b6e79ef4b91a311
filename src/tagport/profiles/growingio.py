"""A user as GrowingIO's 2.9 pages show one on the sibling routes (spec section 8).

`{"gioId": "603542", "identifications": {"id_$basic_userId": ["C001"]}, "properties":
{"usr_age": "28", "tag_rfm": null}}`: `gioId` a string, every identity a list of its
values, scalar values as strings (numbers as the CSV export writes them, `true`/`false`,
dates as in the export), arrays as lists of strings, null as null. The engines read a
user in the export's JSON shape; this turns it into GrowingIO's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from tagport.catalog.models import CatalogEntry, ValueType

UNKNOWN_USER: dict[str, Any] = {"gioId": "0", "identifications": {}, "properties": {}}


def growingio_user(doc: dict[str, Any], entries: Sequence[CatalogEntry], *,
                   identity_prefix: str = "id_") -> dict[str, Any]:
    """`doc` (an export line's shape) in GrowingIO's; identities keyed `id_<k>` (pages)
    or `ids_<k>` (the single-user route)."""
    by_key = {e.key: e for e in entries}
    identities = {identity_prefix + key.removeprefix("id_"):
                  None if value is None else str(value).split("||")
                  for key, value in doc["identifications"].items()}
    properties = {key: _text(by_key[key], value) for key, value in doc["properties"].items()}
    return {"gioId": str(doc["gio_id"]), "identifications": identities,
            "properties": properties}


def _text(entry: CatalogEntry, value: Any) -> Any:
    if value is None:
        return None
    if entry.is_array:
        return [_scalar(entry.value_type, v) for v in value]
    return _scalar(entry.value_type, value)


def _scalar(value_type: ValueType, value: Any) -> str:
    if value_type is ValueType.BOOL:
        return "true" if value else "false"
    if value_type is ValueType.DOUBLE:
        return csv_double(float(value))
    return str(value)


def csv_double(x: float) -> str:
    """A double as the CSV export writes it (pyarrow's writer): the shortest digits that
    read back, decimal notation for exponents in [-6, 10), else `d.ddde±x`; `3`, not `3.0`."""
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    sign = "-" if x < 0 else ""
    exact = Decimal(repr(abs(x))).normalize().as_tuple()
    digits = "".join(map(str, exact.digits))
    point = len(digits) + int(exact.exponent)  # the value is 0.<digits> x 10^point
    exponent = point - 1
    if exponent < -6 or exponent >= 10:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"
