"""Who is calling and what they may do: pure rules the HTTP layer applies (no web framework here).

Policy, in one place:
- A request carries a key as `Authorization: Bearer rt_...` or `X-API-Key: rt_...`.
- Scopes: `chat` (ask, conversations, feedback), `ingest` (upload, jobs), `eval` (closed-book answers,
  `retrieval: false`, which skip the documents and the grounding rail), `admin` (key management, everyone's
  conversations/jobs/feedback). `admin` implies the others.
- Collections: a key reads the collections it lists, or every one with `all_collections`
  (admin keys always). Asking for a collection the key may not read is a 403 with a stable
  code, never silently narrowed: a caller must not mistake "no answer" for "no access".

Errors carry `code` (stable, for clients), `message` (for people) and the HTTP `status`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.db.records import SCOPES, ApiKeyRecord

if TYPE_CHECKING:
    from assistant.db.keys import KeyStore


class AuthError(Exception):
    def __init__(self, code: str, message: str, status: int):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    scopes: frozenset[str]
    collections: tuple[str, ...]
    all_collections: bool
    is_admin: bool

    @classmethod
    def from_key(cls, key: ApiKeyRecord) -> Principal:
        admin = "admin" in key.scopes
        return cls(
            key_id=key.id,
            name=key.name,
            scopes=frozenset(key.scopes),
            collections=tuple(key.collections),
            all_collections=key.all_collections or admin,
            is_admin=admin,
        )

    def has(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes


def authorize(principal: Principal, scope: str, needed_for: str = "") -> None:
    """Raise a 403 AuthError unless the principal holds `scope` (admins hold every scope); `needed_for` says
    what the scope guards when that is not obvious from the route."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")  # a programming error, not the caller's
    if not principal.has(scope):
        why = f" ({needed_for})" if needed_for else ""
        raise AuthError("insufficient_scope", f"this API key lacks the '{scope}' scope{why}", 403)


def allowed_collections(principal: Principal, requested: Iterable[str] | None, existing: Iterable[str]) -> list[str]:
    """The collections a request may search, from those that exist.

    `requested` None means "everything I may read". A requested collection the key may not read
    is 403 `collection_forbidden` (checked first, so existence is not revealed to such a key); a
    permitted one that does not exist is 404 `unknown_collection`. An empty result means there is
    nothing to search: callers must not pass it on as "no filter".
    """
    existing_set = set(existing)
    if requested is None:
        permitted = sorted(existing_set) if principal.all_collections else list(principal.collections)
        return [c for c in permitted if c in existing_set]
    wanted = list(dict.fromkeys(requested))
    if not principal.all_collections:
        forbidden = [c for c in wanted if c not in principal.collections]
        if forbidden:
            raise AuthError(
                "collection_forbidden", f"this API key may not read collection(s): {', '.join(forbidden)}", 403
            )
    unknown = [c for c in wanted if c not in existing_set]
    if unknown:
        raise AuthError("unknown_collection", f"no such collection(s): {', '.join(unknown)}", 404)
    return wanted


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The API key a request presents, or None when it presents none.

    Header names are matched case-insensitively. A malformed Authorization header, or two
    different keys in the two headers, is a 401 rather than a guess about which one was meant.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    bearer = None
    authorization = lowered.get("authorization", "").strip()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("invalid_authorization", "use 'Authorization: Bearer <API key>'", 401)
        bearer = token.strip()
    header_key = lowered.get("x-api-key", "").strip() or None
    if bearer and header_key and bearer != header_key:
        raise AuthError("conflicting_credentials", "Authorization and X-API-Key carry different keys", 401)
    return bearer or header_key


def authenticate(keys: KeyStore, headers: Mapping[str, str]) -> Principal:
    """Headers -> Principal, or a 401 AuthError (`missing_api_key`, `invalid_api_key`)."""
    plaintext = key_from_headers(headers)
    if plaintext is None:
        raise AuthError("missing_api_key", "send an API key: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'", 401)
    record = keys.authenticate(plaintext)
    if record is None:
        raise AuthError("invalid_api_key", "the API key is unknown or revoked", 401)
    return Principal.from_key(record)
