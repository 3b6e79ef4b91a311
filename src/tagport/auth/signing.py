"""Signed, expiring download links: a browser can fetch a file without the token.

`/download?file=<uri>&expires=<unix seconds>&signature=<hex>`, where the signature is
HMAC-SHA256 over the file's path and the expiry, with a secret kept in the data dir.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta
from urllib.parse import urlencode

from tagport.errors import Forbidden


class LinkSigner:
    def __init__(self, secret: str, ttl: timedelta) -> None:
        self._key = secret.encode("utf-8")
        self.ttl = ttl

    def _signature(self, path: str, expires: int) -> str:
        message = f"{path}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def link(self, path: str, now: float | None = None) -> str:
        """A signed `/download?...` link to the file at API path `path`."""
        expires = int((now if now is not None else time.time()) + self.ttl.total_seconds())
        query = urlencode({"file": path, "expires": expires,
                           "signature": self._signature(path, expires)})
        return f"/download?{query}"

    def verify(self, path: str, expires: str | None, signature: str,
               now: float | None = None) -> None:
        """Raise Forbidden unless the signature matches and the link has not expired."""
        try:
            when = int(expires or "")
        except ValueError:
            raise Forbidden("the link's expiry is missing or malformed",
                            code="BAD_SIGNATURE") from None
        # bytes: compare_digest refuses non-ASCII str, and a signature is untrusted input
        given = signature.encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(self._signature(path, when).encode(), given):
            raise Forbidden("the link's signature does not match", code="BAD_SIGNATURE")
        if (now if now is not None else time.time()) > when:
            raise Forbidden("the link has expired; ask for a new one", code="LINK_EXPIRED")
