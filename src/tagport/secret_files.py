"""Random secrets kept in files of the data dir (mode 0600), made on first use."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_or_create(path: Path) -> str:
    """The secret in `path`; a new random one if the file does not exist yet.

    The file appears whole or not at all (written aside, then hard-linked into place),
    so processes starting together all read the same secret, never an empty one.
    """
    if not path.exists():
        aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(aside, path)
        except FileExistsError:  # another process made it first: use theirs
            pass
        finally:
            aside.unlink()
    return path.read_text().strip()
