"""How conditions read the DuckDB users table (store.py): identities are VARCHAR with
the values joined by `||`, array tags JSON text (`'["a","b"]'`, an empty array NULL)."""

from __future__ import annotations

from collections.abc import Collection

from sqlglot import exp

from tagport.conditions import ElementTest, Field, FieldKind, data_type

_SEPARATOR = "||"  # how the store joins an identity's values


class DuckDBValues:
    """The `ValueReader` of the DuckDB engine."""

    dialect = "duckdb"

    def __init__(self, columns: Collection[str] | None = None) -> None:
        """`columns`: the users table's columns (a key never loaded has none and reads
        as NULL); None when every key the conditions name has a column."""
        self.columns = columns

    def scalar(self, field: Field, table: str) -> exp.Expression:
        column = self._column(field, table)
        return column if column is not None else exp.cast(exp.null(), data_type(field.value_type))

    def elements(self, field: Field, table: str) -> exp.Expression:
        list_type = data_type(field.value_type, is_list=True)
        column = self._column(field, table)
        if column is None:
            return exp.cast(exp.null(), list_type)
        if field.kind is FieldKind.IDENTITY:  # STR_SPLIT: a plain separator, not a regex
            return exp.Split(this=column, expression=exp.Literal.string(_SEPARATOR))
        return exp.cast(column, list_type)  # DuckDB casts JSON text to a typed list

    def any_element(self, items: exp.Expression, test: ElementTest) -> exp.Expression:
        """`len(list_filter(items, lambda _v: test)) > 0`: DuckDB has no `exists` over a
        list (sqlglot renders Spark's `exists(a, f)` as DuckDB's subquery EXISTS(a))."""
        element = exp.to_identifier("_v")
        kept = exp.ArrayFilter(this=items, expression=exp.Lambda(
            this=test(exp.column(element)), expressions=[element]))
        some = exp.GT(this=exp.ArraySize(this=kept), expression=exp.Literal.number(0))
        return exp.Coalesce(this=some, expressions=[exp.false()])

    def _column(self, field: Field, table: str) -> exp.Column | None:
        if self.columns is not None and field.key not in self.columns:
            return None
        return exp.column(field.key, table=table, quoted=True)
