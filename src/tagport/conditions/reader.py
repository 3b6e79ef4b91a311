"""The one thing engines differ in: how a users key's stored values are read.

DuckDB keeps array tags as JSON text, Spark as `array<T>`; both join an identity's values
with `||`. An engine implements `ValueReader` once (`engines/<name>/conditions.py`) and
the compiler builds everything else, the same for both, as sqlglot expressions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlglot import exp

from tagport.catalog.models import ValueType
from tagport.conditions.tree import Field

# A test of one list element, built by the compiler (`lambda e: e > 30`).
ElementTest = Callable[[exp.Expression], exp.Expression]

_TYPES: dict[ValueType, exp.DataType.Type] = {
    ValueType.STRING: exp.DataType.Type.VARCHAR,
    ValueType.INT: exp.DataType.Type.BIGINT,
    ValueType.DOUBLE: exp.DataType.Type.DOUBLE,
    ValueType.BOOL: exp.DataType.Type.BOOLEAN,
    ValueType.DATE: exp.DataType.Type.DATE,
    ValueType.DATETIME: exp.DataType.Type.TIMESTAMPNTZ,  # DuckDB's TIMESTAMP, Spark's _NTZ
}


def data_type(value_type: ValueType, *, is_list: bool = False) -> exp.DataType:
    """The SQL type of a value (or a list of values) of `value_type`, for any dialect."""
    scalar = exp.DataType(this=_TYPES[value_type])
    if not is_list:
        return scalar
    return exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[scalar], nested=True)


class ValueReader(Protocol):
    """How an engine reads the users table's columns in a condition."""

    dialect: str  # sqlglot's name for the engine's SQL: "duckdb", "spark"

    def scalar(self, field: Field, table: str) -> exp.Expression:
        """The value of a key that holds one (an attribute, a scalar tag, a segment),
        typed as `data_type(field.value_type)`; NULL when the store has no column for it."""
        ...

    def elements(self, field: Field, table: str) -> exp.Expression:
        """The values of a list key (an array tag, an identity) as a list of
        `data_type(field.value_type)`; NULL or empty when the user has none."""
        ...

    def any_element(self, items: exp.Expression, test: ElementTest) -> exp.Expression:
        """TRUE when some element of `items` passes `test`, else FALSE (never NULL: a
        NULL list and a test that is NULL for every element are FALSE)."""
        ...
