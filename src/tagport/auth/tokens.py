"""API tokens: UUID4 strings, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from tagport.auth import repository
from tagport.auth.models import SCOPES, Token
from tagport.errors import BadRequest, Conflict, NotFound, Unauthorized


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenCache:
    """Recently authenticated tokens by hash, each for `ttl` seconds: most requests then
    skip the lookup. Only active tokens are kept (a new token works at once); a revoke in
    this process empties the cache, one in another process takes effect within `ttl`."""

    def __init__(self, ttl: float, max_entries: int = 4096) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Token]] = OrderedDict()
        self._lock = threading.Lock()
        self.generation = 0  # bumped by clear(): a lookup that began before is not kept

    def get(self, digest: str) -> Token | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: str, token: Token, generation: int) -> None:
        """Keep `token`, read when the cache was at `generation` (a revoke since: not)."""
        if self.ttl <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return
            self._entries[digest] = (time.monotonic() + self.ttl, token)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.generation += 1


class TokenService:
    def __init__(self, db: Engine, cache_seconds: float = 0.0) -> None:
        self.db = db
        self.cache = TokenCache(cache_seconds)

    def create(self, name: str, scopes: tuple[str, ...] = ("export",)) -> str:
        """A new token for `name`; the plain token is returned once and never stored."""
        if not name.strip():
            raise BadRequest("a token needs a name")
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise BadRequest(f"scopes must be among {', '.join(SCOPES)}; got {', '.join(scopes)}")
        token = str(uuid.uuid4())
        with self.db.begin() as conn:
            if repository.active_name_taken(conn, name):
                raise Conflict(f"a token named {name!r} already exists", code="TOKEN_EXISTS")
            repository.insert(conn, name, hash_token(token), frozenset(scopes),
                              datetime.now(UTC))
        return token

    def list(self) -> list[Token]:
        with self.db.connect() as conn:
            return repository.list_tokens(conn)

    def revoke(self, name: str) -> int:
        with self.db.begin() as conn:
            revoked = repository.revoke(conn, name, datetime.now(UTC))
        self.cache.clear()  # revokes are rare: forget every entry, not just this name's
        if revoked == 0:
            raise NotFound(f"no active token named {name!r}", code="TOKEN_NOT_FOUND")
        return revoked

    def cached(self, token: str) -> Token | None:
        """The token if it was authenticated within the cache's TTL, without a lookup."""
        return self.cache.get(hash_token(token))

    def authenticate(self, token: str) -> Token:
        """The active token matching `token`, or Unauthorized."""
        digest = hash_token(token)
        if (cached := self.cache.get(digest)) is not None:
            return cached
        generation = self.cache.generation
        with self.db.connect() as conn:
            stored = repository.by_hash(conn, digest)
        found, stored_hash = stored if stored else (None, "")
        # the lookup is by hash; compare in constant time all the same
        if found is None or not hmac.compare_digest(stored_hash, digest) or found.revoked_at:
            raise Unauthorized("the token is unknown or revoked", code="INVALID_TOKEN")
        self.cache.put(digest, found, generation)
        return found


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or Unauthorized."""
    if not header:
        raise Unauthorized("missing Authorization header: use 'Bearer <token>'",
                           code="MISSING_TOKEN")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'",
                           code="MISSING_TOKEN")
    return value.strip()
