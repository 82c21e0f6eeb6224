"""Auth rules (scopes, collections, headers) and the per-key rate limiter, with a fake clock."""

from __future__ import annotations

import threading

import pytest

from assistant.auth import AuthError, Principal, allowed_collections, authenticate, authorize, key_from_headers
from assistant.db import ApiKeyRecord, Database
from assistant.db.models import utcnow
from assistant.rate_limit import RateLimiter


def _principal(scopes=("chat",), collections=(), all_collections=False) -> Principal:
    record = ApiKeyRecord("k1", "test", "rt_abc", tuple(scopes), tuple(collections), all_collections, utcnow(), None, None)
    return Principal.from_key(record)


def _code(call) -> tuple[str, int]:
    with pytest.raises(AuthError) as caught:
        call()
    return caught.value.code, caught.value.status


# --- scopes ---------------------------------------------------------------------------------------
def test_scopes_and_admin_implies_everything():
    chat = _principal(("chat",), ["hr"])
    authorize(chat, "chat")
    assert _code(lambda: authorize(chat, "ingest")) == ("insufficient_scope", 403)
    admin = _principal(("admin",))
    assert admin.is_admin and admin.all_collections
    for scope in ("chat", "ingest", "admin"):
        authorize(admin, scope)
    with pytest.raises(ValueError):
        authorize(admin, "root")


# --- collections ----------------------------------------------------------------------------------
def test_collections_are_intersected_and_forbidden_ones_are_errors():
    hr_only = _principal(collections=["hr", "legal"])
    existing = ["hr", "it", "sales"]
    assert allowed_collections(hr_only, None, existing) == ["hr"]  # legal not ingested yet
    assert allowed_collections(hr_only, ["hr", "hr"], existing) == ["hr"]
    assert _code(lambda: allowed_collections(hr_only, ["hr", "it"], existing)) == ("collection_forbidden", 403)
    # Forbidden is checked before existence, so a restricted key learns nothing about other collections.
    assert _code(lambda: allowed_collections(hr_only, ["secret"], existing)) == ("collection_forbidden", 403)
    assert _code(lambda: allowed_collections(hr_only, ["legal"], existing)) == ("unknown_collection", 404)
    everything = _principal(all_collections=True)
    assert allowed_collections(everything, None, existing) == ["hr", "it", "sales"]
    assert allowed_collections(everything, ["it"], existing) == ["it"]
    assert _code(lambda: allowed_collections(everything, ["nope"], existing)) == ("unknown_collection", 404)
    assert allowed_collections(_principal(collections=["legal"]), None, existing) == []  # nothing to search


# --- headers --------------------------------------------------------------------------------------
def test_key_from_headers():
    assert key_from_headers({"Authorization": "Bearer rt_abc"}) == "rt_abc"
    assert key_from_headers({"authorization": "bearer  rt_abc "}) == "rt_abc"
    assert key_from_headers({"X-API-Key": "rt_abc"}) == "rt_abc"
    assert key_from_headers({"x-api-key": "rt_abc", "Authorization": "Bearer rt_abc"}) == "rt_abc"
    assert key_from_headers({"Accept": "*/*"}) is None
    assert _code(lambda: key_from_headers({"Authorization": "Basic dXNlcjpwYXNz"})) == ("invalid_authorization", 401)
    assert _code(lambda: key_from_headers({"Authorization": "Bearer"})) == ("invalid_authorization", 401)
    conflicting = {"Authorization": "Bearer rt_a", "X-API-Key": "rt_b"}
    assert _code(lambda: key_from_headers(conflicting)) == ("conflicting_credentials", 401)


def test_authenticate_from_headers(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    db.migrate()
    record, plaintext = db.keys.create("web", "chat,ingest", collections=["hr"])
    principal = authenticate(db.keys, {"X-API-Key": plaintext})
    assert principal.key_id == record.id and principal.collections == ("hr",) and not principal.is_admin
    assert principal.scopes == frozenset({"chat", "ingest"})
    assert _code(lambda: authenticate(db.keys, {})) == ("missing_api_key", 401)
    assert _code(lambda: authenticate(db.keys, {"X-API-Key": "rt_wrong"})) == ("invalid_api_key", 401)
    db.keys.revoke(record.id)
    assert _code(lambda: authenticate(db.keys, {"Authorization": f"Bearer {plaintext}"})) == ("invalid_api_key", 401)


# --- rate limiting --------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_bursts_then_refills_at_the_rate():
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock)  # one a second, burst 60
    assert all(limiter.check("a").allowed for _ in range(60))
    refused = limiter.check("a")
    assert not refused.allowed and refused.retry_after_s == pytest.approx(1.0)
    assert refused.retry_after_header == "1"
    assert limiter.check("b").allowed  # buckets are per key
    clock.now += 0.5
    allowed, retry_after = limiter.check("a")  # unpacks like a (allowed, retry_after_s) tuple
    assert not allowed and retry_after == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.check("a").allowed and not limiter.check("a").allowed
    clock.now += 3600
    assert limiter.remaining("a") == 60  # refills to the burst, never beyond


def test_custom_burst_and_validation():
    clock = FakeClock()
    limiter = RateLimiter(6, burst=2, clock=clock)  # one every 10 s
    assert limiter.check("k").allowed and limiter.check("k").allowed
    decision = limiter.check("k")
    assert not decision.allowed and decision.retry_after_s == pytest.approx(10.0)
    assert decision.retry_after_header == "10"
    limiter.reset("k")
    assert limiter.check("k").allowed
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_limiter_is_thread_safe_and_prunes_idle_buckets():
    clock = FakeClock()
    limiter = RateLimiter(100, clock=clock)
    results: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(50):
            allowed = limiter.check("shared").allowed
            with lock:
                results.append(allowed)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 100  # exactly the burst, no double spending
    for n in range(RateLimiter.PRUNE_EVERY):
        limiter.check(f"key-{n}")
    clock.now += 3600
    for n in range(RateLimiter.PRUNE_EVERY):
        limiter.check("busy")
    assert len(limiter._buckets) < RateLimiter.PRUNE_EVERY
