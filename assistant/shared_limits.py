"""Rate limits and queue admission that every API worker of one deployment shares, kept in the database.

With `server.shared_state: database` (set by `ragtune serve --workers N`), N worker processes spend from one
token bucket per key and admit generations against one deployment-wide bound, instead of each counting alone
(N workers would otherwise allow N times the limit). The database is the store because every deployment already
has one that all workers reach (SQLite in the home, or PostgreSQL); no extra service to run. The in-process
`RateLimiter` stays the single-process default: no database write per request.

Each check is one conditional UPDATE (the row lock makes concurrent workers serialise on it: PostgreSQL re-checks
the WHERE clause on the locked row, SQLite has one writer), so two workers can never both spend the last token.
Times are Unix seconds from the workers' clocks (one machine, or NTP-synchronised hosts).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable

from sqlalchemy import case, delete, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from assistant.db import Database
from assistant.db.models import AdmissionTicket, RateBucket
from assistant.rate_limit import Decision


def worker_id() -> str:
    """This process, as other workers see it in the shared tables (host:pid)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


class DatabaseRateLimiter:
    """The same token bucket as `assistant.rate_limit.RateLimiter`, with the buckets in the `rate_buckets` table."""

    PRUNE_EVERY = 1024  # calls between deletions of buckets that are full again (they carry no information)
    shared = True

    def __init__(self, db: Database, rate_per_minute: float, burst: float | None = None,
                 clock: Callable[[], float] = time.time):
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self.db = db
        self.rate_per_s = rate_per_minute / 60.0
        self.burst = float(burst if burst is not None else rate_per_minute)
        if self.burst < 1:
            raise ValueError("burst must allow at least one request")
        self._clock = clock
        self._calls = 0

    def _level(self, now: float):
        """SQL for the bucket's tokens at `now`: refilled since its last update, capped at the burst."""
        refilled = RateBucket.tokens + (literal(now) - RateBucket.updated_at) * self.rate_per_s
        return case((refilled >= self.burst, literal(self.burst)), else_=refilled)

    def check(self, key: str, cost: float = 1.0) -> Decision:
        now = self._clock()
        with self.db.session() as session:
            level = self._level(now)
            # RETURNING tells whether a row changed on every backend (an ORM-session INSERT reports rowcount -1).
            spent = session.execute(
                update(RateBucket).where(RateBucket.key == key, level >= cost)
                .values(tokens=level - cost, updated_at=now).returning(RateBucket.key)
                .execution_options(synchronize_session=False)
            ).first() is not None
            if not spent:  # no bucket yet (a full one), or too few tokens
                spent = session.execute(
                    self._insert_if_absent(key, self.burst - cost, now).returning(RateBucket.key)).first() is not None
            if spent:
                decision = Decision(True, 0.0)
            else:
                tokens = session.execute(select(self._level(now)).where(RateBucket.key == key)).scalar() or 0.0
                decision = Decision(False, max(0.0, cost - tokens) / self.rate_per_s)
            self._calls += 1
            if self._calls % self.PRUNE_EVERY == 0:
                session.execute(delete(RateBucket).where(self._level(now) >= self.burst))
            return decision

    def remaining(self, key: str) -> int:
        with self.db.session() as session:
            tokens = session.execute(select(self._level(self._clock())).where(RateBucket.key == key)).scalar()
        return int(self.burst if tokens is None else tokens)

    def reset(self, key: str | None = None) -> None:
        with self.db.session() as session:
            session.execute(delete(RateBucket) if key is None else delete(RateBucket).where(RateBucket.key == key))

    def _insert_if_absent(self, key: str, tokens: float, now: float):
        values = {"key": key, "tokens": tokens, "updated_at": now}
        if self.db.is_sqlite:
            return sqlite.insert(RateBucket).values(**values).on_conflict_do_nothing()
        if self.db.url.get_backend_name() == "postgresql":
            return postgresql.insert(RateBucket).values(**values).on_conflict_do_nothing()
        # Another backend: a plain INSERT; a concurrent first request for the key then fails with an
        # IntegrityError (a 500 once per new key) rather than over-admitting.
        return insert(RateBucket).values(**values)


class DatabaseAdmission:
    """A deployment-wide bound on generations running or waiting: one ticket row each, in any worker.

    `enter()` inserts this request's ticket, then counts the live ones: over `capacity` it withdraws the ticket
    and refuses. Inserting before counting means two workers racing for the last place may both refuse, never
    both enter. A ticket expires after `ticket_ttl_s`, so a killed worker's tickets stop counting.
    """

    def __init__(self, db: Database, capacity: int, ticket_ttl_s: float, clock: Callable[[], float] = time.time):
        self.db = db
        self.capacity = capacity
        self.ticket_ttl_s = ticket_ttl_s
        self.worker = worker_id()
        self._clock = clock

    def enter(self) -> str | None:
        """The ticket's id, or None when the deployment is full (the caller answers 503)."""
        now, ticket = self._clock(), uuid.uuid4().hex
        with self.db.session() as session:
            session.execute(delete(AdmissionTicket).where(AdmissionTicket.expires_at < now))
            session.add(AdmissionTicket(id=ticket, worker=self.worker, expires_at=now + self.ticket_ttl_s))
        with self.db.session() as session:
            live = session.execute(select(func.count()).select_from(AdmissionTicket)
                                   .where(AdmissionTicket.expires_at >= now)).scalar() or 0
        if live > self.capacity:
            self.leave(ticket)
            return None
        return ticket

    def leave(self, ticket: str) -> None:
        with self.db.session() as session:
            session.execute(delete(AdmissionTicket).where(AdmissionTicket.id == ticket))

    def depth(self) -> int:
        """Generations running or waiting across the deployment."""
        with self.db.session() as session:
            return session.execute(select(func.count()).select_from(AdmissionTicket)
                                   .where(AdmissionTicket.expires_at >= self._clock())).scalar() or 0
