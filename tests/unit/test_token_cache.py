from datetime import UTC, datetime

from tagport.auth.tokens import Token, TokenCache

TOKEN = Token(1, "t", datetime.now(UTC), None)


def test_cached_token_is_returned_until_its_ttl_ends(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("tagport.auth.tokens.time.monotonic", lambda: now[0])
    cache = TokenCache(ttl=5)
    cache.put("h", TOKEN, cache.generation)
    assert cache.get("h") is TOKEN
    now[0] = 105.5
    assert cache.get("h") is None


def test_lookup_that_began_before_a_clear_is_not_kept():
    cache = TokenCache(ttl=5)
    generation = cache.generation
    cache.clear()  # a revoke while the lookup ran
    cache.put("h", TOKEN, generation)
    assert cache.get("h") is None


def test_zero_ttl_caches_nothing():
    cache = TokenCache(ttl=0)
    cache.put("h", TOKEN, cache.generation)
    assert cache.get("h") is None


def test_oldest_entries_leave_a_full_cache():
    cache = TokenCache(ttl=5, max_entries=2)
    for digest in ("a", "b", "c"):
        cache.put(digest, TOKEN, cache.generation)
    assert [cache.get(d) for d in ("a", "b", "c")] == [None, TOKEN, TOKEN]
