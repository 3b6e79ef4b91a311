"""DuckDB SQL text for staging: quoted identifiers and literals, and the DuckDB type that
holds each value type (the DuckDB store's columns use the same types)."""

from __future__ import annotations

from tagport.catalog.models import ValueType

SQL_TYPES: dict[ValueType, str] = {
    ValueType.STRING: "VARCHAR",
    ValueType.INT: "BIGINT",
    ValueType.DOUBLE: "DOUBLE",
    ValueType.BOOL: "BOOLEAN",
    ValueType.DATE: "DATE",
    ValueType.DATETIME: "TIMESTAMP",
}


def ident(name: str) -> str:
    """Quote an identifier (keys may hold `$`)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """Quote a string literal."""
    return "'" + text.replace("'", "''") + "'"
