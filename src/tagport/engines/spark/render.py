"""Spark SQL text that renders stored values as the DuckDB engine's JSON (lines.py: the
pages of a tag's users and the one-user lookup), and SQL quoting for the engine's queries.

Exports do not render in Spark SQL (parts.py runs the DuckDB engine's own rendering on
the executors); these render what the API answers from Spark queries:

- strings: JSON escapes through Spark's own `to_json`, whose escapes (`\\n`, `\\"`,
  `\\u000B` ...) are byte-for-byte DuckDB's.
- doubles: the shortest round-trip digits, laid out as DuckDB's JSON writer does (`3.0`,
  `100000000000000000000.0`, `1e21`, `1e-7`). Java's `Double.toString` (Spark's cast)
  is not always the shortest on Java 17 (about 1 in 700 random doubles get a 17th or
  18th digit), so values with more than 15 digits are re-derived from
  `format_string('%.{14,15,16}e')`, the first that reads back.
- datetimes: Spark's string cast of TIMESTAMP_NTZ (`2024-02-29 23:59:01.5`) is DuckDB's.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

_names = itertools.count()


def let(value: str, body: Callable[[str], str]) -> str:
    """`body(v)` with `v` bound to `value`, computed once (Spark SQL has no LET)."""
    var = f"v{next(_names)}"
    return f"element_at(transform(array({value}), {var} -> {body(var)}), 1)"


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def literal(text: str) -> str:
    """A Spark SQL string literal (backslash is an escape in Spark's parser)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- doubles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DoubleStyle:
    """How shortest digits are laid out: decimal notation for decimal exponents in
    [low, high), else `d.ddde±x`."""

    low: int
    high: int
    integral_dot_zero: bool  # `3.0` rather than `3`
    plus_sign: bool  # `1e+21` rather than `1e21`
    exponent_digits: int  # 2 gives `1e-05`


DUCKDB_JSON = DoubleStyle(-6, 21, True, False, 1)


MIN_NORMAL = "2.2250738585072014E-308D"


def _digits(text: str) -> str:
    """struct(d, p) from a positive number's text (`123.4`, `1.5E-7`, `1.50e-07`): d the
    significant digits without leading or trailing zeros, value = 0.d x 10^p.

    Written out without `let` (a lambda is interpreted, row by row): Spark's
    subexpression elimination computes the repeated parts once.
    """
    ip = f"regexp_extract({text}, '^([0-9]*)', 1)"
    digits = f"regexp_replace(regexp_extract({text}, '^([0-9.]*)', 1), '[.]', '')"
    ex = (f"cast(coalesce(nullif(regexp_extract({text}, '[eE]([-+]?[0-9]+)$', 1), ''), '0')"
          " AS int)")
    nz = f"trim(LEADING '0' FROM {digits})"
    return (f"named_struct('d', trim(TRAILING '0' FROM {nz}),"
            f" 'p', length({ip}) + {ex} - length({digits}) + length({nz}))")


def shortest_digits(x: str) -> str:
    """SQL struct(d, p) of the shortest digits that read back as abs(`x`) (finite); NULL
    for NULL and 0.

    Java's own digits when it gives at most 15 of them for a normal double; else the
    first precision of `%.{n}e` that reads back (Java 17's 16+ digits, and subnormals
    such as 4.9E-324 for 5e-324, are not always the shortest).
    """
    ax = f"abs({x})"
    fast = _digits(f"cast({ax} AS string)")
    tries = (f"filter(transform(sequence(0, 16), n -> format_string(concat('%.', n, 'e'),"
             f" {ax})), t -> try_cast(t AS double) = {ax})[0]")
    return (f"CASE WHEN {x} IS NULL OR {x} = 0 THEN NULL"
            f" WHEN length({fast}.d) <= 15 AND {ax} >= {MIN_NORMAL} THEN {fast}"
            f" ELSE {_digits(tries)} END")


def _layout(style: DoubleStyle, s: str) -> str:
    """The text of the positive number whose digits are `s.d`, point position `s.p`."""
    d, p = f"{s}.d", f"{s}.p"
    x = f"({p} - 1)"
    plus = "'+'" if style.plus_sign else "''"
    mantissa = f"concat(substr({d}, 1, 1), CASE WHEN length({d}) > 1 THEN '.' ELSE '' END,"\
               f" substr({d}, 2))"
    exponent = (f"concat('e', CASE WHEN {x} < 0 THEN '-' ELSE {plus} END,"
                f" format_string('%0{style.exponent_digits}d', abs({x})))")
    dot_zero = "'.0'" if style.integral_dot_zero else "''"
    return (
        f"CASE WHEN {x} < {style.low} OR {x} >= {style.high} THEN concat({mantissa}, {exponent})"
        f" WHEN {p} <= 0 THEN concat('0.', repeat('0', -{p}), {d})"
        f" WHEN {p} >= length({d}) THEN concat({d}, repeat('0', {p} - length({d})), {dot_zero})"
        f" ELSE concat(substr({d}, 1, {p}), '.', substr({d}, {p} + 1)) END"
    )


def double_from_digits(x: str, digits: str, style: DoubleStyle) -> str:
    """SQL: the double `x` as text in `style`, given `digits` = shortest_digits(x) (a
    column computed beforehand); NULL stays NULL."""
    zero = "'0.0'" if style.integral_dot_zero else "'0'"
    return (
        f"CASE WHEN {x} IS NULL THEN NULL"
        f" WHEN {x} = 0 THEN concat(CASE WHEN cast({x} AS string) LIKE '-%' THEN '-' ELSE ''"
        f" END, {zero})"
        f" ELSE concat(CASE WHEN {x} < 0 THEN '-' ELSE '' END, {_layout(style, digits)}) END"
    )


def double_text(x: str, style: DoubleStyle) -> str:
    """SQL: the double `x` as text in `style`, self-contained (for array elements, inside
    a lambda, where no column can be computed beforehand)."""
    return let(x, lambda v: let(shortest_digits(v), lambda s: double_from_digits(v, s, style)))
