"""API keys: created with their plaintext shown once, stored only as a hash, revoked (never deleted).

A key is `rt_` + `secrets.token_urlsafe(32)`: 256 random bits. We store its SHA-256 hex. A slow
password hash (bcrypt, argon2) exists to make guessing *low-entropy human passwords* expensive;
nobody can enumerate 2**256 candidates however fast the hash is, so a salted slow hash would
buy nothing and cost ~100 ms of CPU on every request. An unsalted fast hash also lets us find the
row by an indexed lookup instead of testing every stored key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update
from sqlalchemy.exc import OperationalError

from assistant.db.database import StorageError
from assistant.db.models import ApiKey, utcnow
from assistant.db.records import SCOPES, ApiKeyRecord

if TYPE_CHECKING:
    from assistant.db.database import Database

log = logging.getLogger(__name__)
KEY_PREFIX = "rt_"
DISPLAY_CHARS = 11  # "rt_" + 8 characters: enough to tell keys apart in a list, useless for guessing
MAX_KEY_CHARS = 128  # anything longer is not one of ours; refuse it before hashing
TOUCH_EVERY = timedelta(seconds=60)  # last_used_at granularity: not one write per request
MAX_ORIGINS = 20  # per key: a widget is embedded in a few ticket tools, not in hundreds of sites
# An origin as browsers send it: scheme://host[:port], lower-case, no path, no trailing slash, no wildcard.
_ORIGIN = re.compile(r"^https?://(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?)(?::[0-9]{1,5})?$")


class KeySpecError(ValueError):
    """A key request that cannot be honoured (bad scopes or collections); the message says why."""


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def parse_scopes(scopes: str | Iterable[str]) -> tuple[str, ...]:
    """'chat,ingest' or ['chat', 'ingest'] -> ('chat', 'ingest'), in canonical order; unknown scopes are errors."""
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    wanted = {s.strip().lower() for s in items if s.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise KeySpecError(f"unknown scope(s) {', '.join(unknown)}; valid scopes: {', '.join(SCOPES)}")
    if not wanted:
        raise KeySpecError(f"a key needs at least one scope ({', '.join(SCOPES)})")
    return tuple(s for s in SCOPES if s in wanted)


def parse_origins(origins: str | Iterable[str] | None) -> tuple[str, ...]:
    """'https://a.example,https://b.example' or a list -> exact origins; anything a browser would not send is an error.

    Upper-case letters are folded (browsers send the host lower-case); a path, query, trailing slash, wildcard or
    a scheme other than http(s) is refused rather than guessed at, so the stored value is what `Origin` will say.
    """
    if origins is None:
        return ()
    items = origins.split(",") if isinstance(origins, str) else list(origins)
    wanted = tuple(dict.fromkeys(o.strip().lower() for o in items if o.strip()))
    bad = [o for o in wanted if not _ORIGIN.match(o)]
    if bad:
        raise KeySpecError(f"not an exact origin (scheme://host[:port], no path or wildcard): {', '.join(bad)}")
    if len(wanted) > MAX_ORIGINS:
        raise KeySpecError(f"a key may list at most {MAX_ORIGINS} origins")
    return wanted


def parse_collections(collections: str | Iterable[str] | None) -> tuple[str, ...]:
    if collections is None:
        return ()
    items = collections.split(",") if isinstance(collections, str) else list(collections)
    return tuple(dict.fromkeys(c.strip() for c in items if c.strip()))  # de-duplicated, order kept


class KeyStore:
    def __init__(self, database: Database):
        self.db = database

    def create(
        self,
        name: str,
        scopes: str | Iterable[str],
        collections: str | Iterable[str] | None = None,
        all_collections: bool = False,
        allowed_origins: str | Iterable[str] | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """Returns the record and the plaintext key, which is not stored and cannot be shown again.

        A key reads either the listed collections or, with `all_collections`, every one; admin keys
        always read every collection, so listing collections for one is an error, not ignored.
        A key with `allowed_origins` is meant to sit in a web page, where anyone can read it: it
        must have the `chat` scope only.
        """
        name = name.strip()
        if not name:
            raise KeySpecError("a key needs a name")
        scope_list = parse_scopes(scopes)
        wanted = parse_collections(collections)
        origins = parse_origins(allowed_origins)
        if origins and scope_list != ("chat",):
            raise KeySpecError("a key with allowed origins is embedded in web pages: it may have the 'chat' scope only")
        if "admin" in scope_list:
            if wanted:
                raise KeySpecError("admin keys read every collection; do not restrict them with collections")
            all_collections = True
        if all_collections and wanted:
            raise KeySpecError("give collections or all_collections, not both")
        if not all_collections and not wanted:
            raise KeySpecError("a key needs collections to read, or all_collections")
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            id=uuid.uuid4().hex[:12],  # short: people type it into `ragtune keys revoke`
            name=name,
            key_hash=hash_key(plaintext),
            prefix=plaintext[:DISPLAY_CHARS],
            scopes=list(scope_list),
            collections=list(wanted),
            all_collections=all_collections,
            allowed_origins=list(origins),
            created_at=utcnow(),
        )
        with self.db.session() as session:
            session.add(row)
        return _record(row), plaintext

    def authenticate(self, plaintext: str, now: datetime | None = None) -> ApiKeyRecord | None:
        """The active key whose plaintext this is, or None; records its use (at most once a minute).

        The returned record's last_used_at is the previous use, before this one.
        """
        record = self.find(plaintext)
        now = now or utcnow()
        if record is not None and (record.last_used_at is None or record.last_used_at < now - TOUCH_EVERY):
            try:
                self.touch(record.id, now)
            except (OperationalError, StorageError) as exc:  # locked or read-only: a use time is not worth failing a read for
                log.warning("could not record the use of key %s: %s", record.id, exc)
        return record

    def find(self, plaintext: str) -> ApiKeyRecord | None:
        """The active key whose plaintext this is, or None; a read only (no last_used_at update)."""
        if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > MAX_KEY_CHARS:
            return None
        digest = hash_key(plaintext)
        with self.db.session() as session:
            row = session.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).one_or_none()
            # The lookup compares hashes, so its timing reveals nothing usable about the key; the
            # constant-time compare is a second, explicit guard should the lookup ever change.
            if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
                return None
            return _record(row)

    def origins(self, include_revoked: bool = False) -> set[str]:
        """Every origin some key allows (active keys only, unless `include_revoked`)."""
        query = select(ApiKey.allowed_origins)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        with self.db.session() as session:
            return {origin for origins in session.scalars(query) for origin in (origins or [])}

    def touch(self, key_id: str, now: datetime | None = None) -> None:
        """Set last_used_at, unless it was set less than TOUCH_EVERY ago (reads stay reads)."""
        now = now or utcnow()
        with self.db.session() as session:
            session.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id)
                .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - TOUCH_EVERY))
                .values(last_used_at=now)
            )

    def get(self, key_id: str) -> ApiKeyRecord | None:
        with self.db.session() as session:
            row = session.get(ApiKey, key_id)
            return _record(row) if row else None

    def list(self, include_revoked: bool = True) -> list[ApiKeyRecord]:
        query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        with self.db.session() as session:
            return [_record(row) for row in session.scalars(query)]

    def revoke(self, key_id: str) -> ApiKeyRecord | None:
        """Revoke at once (the next request with it is refused). None: no such key. Idempotent."""
        with self.db.session() as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return _record(row)


def _record(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=tuple(row.scopes),
        collections=tuple(row.collections),
        all_collections=row.all_collections,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        allowed_origins=tuple(row.allowed_origins or ()),
    )
