"""How a condition is refused: a 400 `INVALID_CONDITION` naming the field's JSON path."""

from __future__ import annotations

from tagport.errors import BadRequest

CODE = "INVALID_CONDITION"


def invalid(path: str, message: str) -> BadRequest:
    """The error for the field at `path` (`definition.exprs[1].values`)."""
    return BadRequest(f"{path}: {message}", code=CODE)
