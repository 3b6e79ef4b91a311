"""How conditions read the Spark users dataset (store.py): identities are strings with
the values joined by `||`, array tags `array<T>` (an empty array stored as NULL)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from tagport.conditions import ElementTest, Field, FieldKind, data_type
from tagport.engines.spark.store import SPARK_TYPES

_SEPARATOR = "||"  # how the store joins an identity's values


def _spark_type(field: Field) -> str | None:
    """The stored type a field's column must have to hold its values (None: any)."""
    if field.kind is FieldKind.SEGMENT:
        return None
    if field.kind is FieldKind.IDENTITY:
        return "string"
    scalar = SPARK_TYPES[field.value_type]
    return f"array<{scalar}>" if field.is_array else scalar


class SparkValues:
    """The `ValueReader` of the Spark engine."""

    dialect = "spark"

    def __init__(self, columns: Mapping[str, str] | None = None) -> None:
        """`columns`: the dataset's column -> Spark type (`simpleString`); a key without
        a column of its type holds no data and reads as NULL (see lines.stored_column)."""
        self.columns = columns

    def scalar(self, field: Field, table: str) -> exp.Expression:
        column = self._column(field, table)
        return column if column is not None else exp.cast(exp.null(), data_type(field.value_type))

    def elements(self, field: Field, table: str) -> exp.Expression:
        column = self._column(field, table)
        if column is None:
            return exp.cast(exp.null(), data_type(field.value_type, is_list=True))
        if field.kind is FieldKind.IDENTITY:
            # Spark's split takes a regex: sqlglot renders exp.Split (a plain separator)
            # as split(s, concat('\\Q', '||', '\\E')), which quotes it (tested)
            return exp.Split(this=column, expression=exp.Literal.string(_SEPARATOR))
        return column

    def any_element(self, items: exp.Expression, test: ElementTest) -> exp.Expression:
        """Spark's `exists(items, _v -> test)`, which stops at the first element that
        passes; NULL when none passes but one is NULL, hence the coalesce."""
        element = exp.to_identifier("_v")
        lam = exp.Lambda(this=test(exp.column(element)), expressions=[element])
        some = exp.Anonymous(this="exists", expressions=[items, lam])
        return exp.Coalesce(this=some, expressions=[exp.false()])

    def _column(self, field: Field, table: str) -> exp.Column | None:
        if self.columns is not None:
            stored = self.columns.get(field.key)
            want = _spark_type(field)
            if stored is None or (want is not None and stored != want):
                return None
        return exp.column(field.key, table=table, quoted=True)

