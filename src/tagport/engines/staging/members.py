"""A segment's members file (FROM_FILES): one CSV column headed by an identity key.

Both engines check the header here, in Python, from the file's first line only (the rest
is streamed by the engine), so they refuse a file with the same messages.
"""

from __future__ import annotations

from pathlib import Path

from tagport.engines.staging.parse import csv_header
from tagport.errors import InvalidInput


def members_header(path: Path, identity_key: str) -> bool:
    """Check that `path`'s header is exactly `identity_key`; False when the file is empty
    (no byte at all: it makes no members), InvalidInput naming line 1 otherwise."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    if path.stat().st_size == 0:
        return False
    header = csv_header(path)
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


def too_many_fields(path: Path, line: int, fields: int | None, identity_key: str) -> InvalidInput:
    """The refusal of a line with more than one field."""
    found = f"{fields} fields" if fields is not None else "more than one field"
    return InvalidInput(f"{path}: line {line}: {found}; a members file has one column,"
                        f" headed {identity_key!r}")
