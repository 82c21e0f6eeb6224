"""State several API workers share through the database, on SQLite and PostgreSQL: one token bucket per key,
one deployment-wide admission bound, job claims with leases, and promotions picked up from the registry."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from assistant.db import Database
from assistant.promotion_watch import PromotionWatcher
from assistant.shared_limits import DatabaseAdmission, DatabaseRateLimiter
from finetune.registry import AdapterRegistry
from tests.test_api_admin import add_version


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def urls(database_url):
    Database(database_url).migrate()
    return database_url


def test_two_workers_spend_from_one_bucket_per_key(urls):
    clock = Clock()
    first, second = Database(urls), Database(urls)  # two engines: two processes' connection pools
    a, b = DatabaseRateLimiter(first, 10, clock=clock), DatabaseRateLimiter(second, 10, clock=clock)
    decisions = [(a if i % 2 else b).check("alice") for i in range(20)]
    assert sum(d.allowed for d in decisions) == 10  # in-process buckets would have allowed all 20
    refused = decisions[-1]
    assert not refused.allowed and refused.retry_after_s == pytest.approx(6.0)  # 10/min: a token every 6 s
    assert a.check("bob").allowed and a.remaining("bob") == 9  # another key, its own bucket
    clock.now += 6.0
    assert b.check("alice").allowed and not a.check("alice").allowed
    a.reset()
    assert b.remaining("alice") == 10
    first.dispose(), second.dispose()


def test_concurrent_checks_never_spend_a_token_twice(urls):
    db = Database(urls)
    limiter = DatabaseRateLimiter(db, 15, clock=Clock())
    allowed = []

    def hammer():
        for _ in range(10):
            allowed.append(limiter.check("carol").allowed)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(allowed) == 40 and sum(allowed) == 15
    db.dispose()


def test_admission_bounds_the_whole_deployment_and_lapses_dead_workers_tickets(urls):
    clock = Clock()
    first, second = Database(urls), Database(urls)
    a = DatabaseAdmission(first, capacity=2, ticket_ttl_s=60, clock=clock)
    b = DatabaseAdmission(second, capacity=2, ticket_ttl_s=60, clock=clock)
    one, two = a.enter(), b.enter()
    assert one and two and a.depth() == 2
    assert a.enter() is None and b.enter() is None and b.depth() == 2  # a refused request leaves no ticket
    b.leave(one)
    assert (three := a.enter()) is not None
    clock.now += 61  # the holders died without leaving: their tickets stop counting
    assert a.depth() == 0 and b.enter() is not None
    a.leave(three)
    first.dispose(), second.dispose()


def test_a_job_is_claimed_by_exactly_one_worker_and_only_lapsed_leases_are_failed(urls):
    db = Database(urls)
    key, _ = db.keys.create("w", "ingest", all_collections=True)
    job = db.jobs.create(key.id, "default", {"files": []})
    winners = []
    barrier = threading.Barrier(4)

    def claim(owner):
        barrier.wait()
        winners.append(db.jobs.claim(job.id, owner, lease_s=60))

    threads = [threading.Thread(target=claim, args=(f"worker-{i}",)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    won = [w for w in winners if w is not None]
    assert len(won) == 1 and won[0].status == "running"
    owner = next(f"worker-{i}" for i in range(4) if db.jobs.renew(job.id, f"worker-{i}", 60))
    assert db.jobs.fail_running() == 0  # another worker starting up leaves a live lease alone
    assert db.jobs.get(job.id, key.id).status == "running"
    assert not db.jobs.renew(job.id, "someone-else", 60)
    assert db.jobs.renew(job.id, owner, -1)  # as if the owner died a second ago: the lease lapsed
    assert db.jobs.fail_running("interrupted") == 1
    assert db.jobs.get(job.id, key.id).status == "failed"
    db.dispose()


def test_a_promotion_through_another_worker_is_applied_here(tmp_path):
    registry = AdapterRegistry(tmp_path / "adapters")
    add_version(registry.root, "assistant", 1)
    add_version(registry.root, "assistant", 2)
    add_version(registry.root, "assistant", 3, integrity={"files": {"adapter_config.json": {"size": 2, "sha256": "0" * 64}}})
    registry.promote("assistant@v1")
    calls = []
    chat = SimpleNamespace(aliases={}, use_version=lambda name, ref, path, default: (
        calls.append(ref), chat.aliases.__setitem__(name, ref)))
    watcher = PromotionWatcher(registry, lambda: chat, "assistant", poll_s=0.05)
    assert watcher.check() == ["assistant@v1"] and watcher.check() == []  # applied once, then nothing to do
    AdapterRegistry(registry.root).promote("assistant@v2")  # another worker's promotion, on the shared home
    assert watcher.check() == ["assistant@v2"] and chat.aliases["assistant"] == "assistant@v2"
    AdapterRegistry(registry.root).promote("assistant@v3")  # corrupt files: never applied, logged once
    assert watcher.check() == [] and watcher.check() == [] and chat.aliases["assistant"] == "assistant@v2"
    assert PromotionWatcher(registry, lambda: None, "", 1).check() == []  # model still loading: later
