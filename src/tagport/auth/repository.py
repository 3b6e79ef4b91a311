"""All SQL on tokens. Only a token's SHA-256 hash is stored, never the token."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tagport.auth.models import Token
from tagport.db import as_utc
from tagport.db import tokens as t


def _token(row: sa.Row) -> Token:
    return Token(row.id, row.name, as_utc(row.created_at),  # type: ignore[arg-type]
                 as_utc(row.revoked_at), frozenset(s for s in row.scopes.split(",") if s))


def active_name_taken(conn: Connection, name: str) -> bool:
    """True when an active (unrevoked) token has this name."""
    row = conn.execute(
        sa.select(t.c.id).where(t.c.name == name, t.c.revoked_at.is_(None))
    ).first()
    return row is not None


def insert(conn: Connection, name: str, token_hash: str, scopes: frozenset[str],
           created_at: datetime) -> None:
    conn.execute(t.insert().values(
        name=name, token_hash=token_hash, created_at=created_at,
        scopes=",".join(sorted(scopes)),
    ))


def list_tokens(conn: Connection) -> list[Token]:
    return [_token(r) for r in conn.execute(sa.select(t).order_by(t.c.id))]


def revoke(conn: Connection, name: str, when: datetime) -> int:
    """Revoke the active tokens named `name`; how many there were."""
    result = conn.execute(
        t.update().where(t.c.name == name, t.c.revoked_at.is_(None)).values(revoked_at=when)
    )
    return result.rowcount


def by_hash(conn: Connection, token_hash: str) -> tuple[Token, str] | None:
    """The token stored with this hash (revoked or not), and the stored hash."""
    row = conn.execute(sa.select(t).where(t.c.token_hash == token_hash)).first()
    return (_token(row), row.token_hash) if row else None
