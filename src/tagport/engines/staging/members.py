"""A segment's members file (FROM_FILES): one CSV column headed by an identity key.

Both engines check the header here, in Python, from the file's first line only (the rest
is streamed by the engine), so they refuse a file with the same messages.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tagport.errors import InvalidInput

_MAX_HEADER = 1024 * 1024


def members_header(path: Path, identity_key: str) -> bool:
    """Check that `path`'s header is exactly `identity_key`; False when the file is empty
    (no byte at all: it makes no members), InvalidInput naming line 1 otherwise."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    if path.stat().st_size == 0:
        return False
    header = _header(path)
    if not header:
        raise InvalidInput(f"{path}: line 1: no header; a members file has one column,"
                           f" headed {identity_key!r}")
    if len(header) > 1:
        raise InvalidInput(f"{path}: line 1: {len(header)} columns ({', '.join(header)});"
                           f" a members file has one column, headed {identity_key!r}")
    if header[0] != identity_key:
        raise InvalidInput(f"{path}: line 1, field {header[0]!r}: the header must be the"
                           f" identity key {identity_key!r}")
    return True


def _header(path: Path) -> list[str]:
    """The first line's fields (its bytes alone: a later line is the engine's to read)."""
    with path.open("rb") as f:
        first = f.readline(_MAX_HEADER)
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: line 1: not UTF-8 ({exc.reason})") from exc
    try:
        return next(csv.reader([text.rstrip("\r\n")]), [])
    except csv.Error as exc:
        raise InvalidInput(f"{path}: line 1: not a readable csv header: {exc}") from exc


def too_many_fields(path: Path, line: int | None, identity_key: str) -> InvalidInput:
    """The refusal of a line with a (non-empty) field after its first."""
    where = f"line {line}" if line else "a line"
    return InvalidInput(f"{path}: {where}: more than one field; a members file has one"
                        f" column, headed {identity_key!r}")
