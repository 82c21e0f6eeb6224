"""Which browser origins may call the API: per-key `allowed_origins` plus `server.cors_origins` (CORS).

Policy, in one place (the API contract of issue 7):
- Requests without an `Origin` header (curl, SDKs, servers) and same-origin requests (the chat and
  admin pages served by this server) are not affected.
- A preflight (OPTIONS with Access-Control-Request-Method; browsers send it without the key) is
  answered 204 for an origin that `server.cors_origins` or some active key allows, 403 otherwise.
- An actual request from another origin runs only if `server.cors_origins` lists the origin or the
  key it carries lists it in `allowed_origins`; its response then echoes the origin in
  Access-Control-Allow-Origin with `Vary: Origin`. Otherwise it is refused with 403
  `origin_forbidden` before the handler runs: CORS alone would only hide the response, while a
  "simple" POST would still have been executed.
- A request with a missing, unknown or revoked key from an origin some key (even a revoked one) lists
  gets the handler's 401 with the CORS headers, so an embedded widget can tell "key revoked" from
  "network down".
Keys that list origins are chat-only (enforced when they are created, `assistant.db.keys`), so a key
read out of a web page can ask questions and nothing else.

Only API paths (`/v1/...`, `/metrics`) are policed; the static pages, widget.js and /healthz are public and get
CORS headers only for `server.cors_origins` (as the framework's CORS config did before per-key origins).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from assistant.auth import AuthError, key_from_headers
from assistant.db.keys import KeyStore

ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, X-API-Key, Content-Type"
EXPOSE_HEADERS = "Retry-After"  # a widget reads it on 429/503 to wait before retrying
_POLICED_PREFIXES = ("/v1/", "/metrics")


class OriginPolicy:
    def __init__(self, server_origins: Iterable[str], keys: KeyStore, max_age_s: int):
        self.server_origins = {o.rstrip("/").lower() for o in server_origins}
        self.keys = keys
        self.max_age_s = max_age_s  # how long a browser may cache a preflight answer, in seconds

    # --- decisions (pure apart from the key lookups) ---------------------------------------------
    def preflight_allowed(self, origin: str) -> bool:
        return origin in self.server_origins or origin in self.keys.origins()

    def request_allowed(self, origin: str, headers: dict[str, str]) -> bool:
        """May a request from this foreign origin run? (See the module docstring.)"""
        if origin in self.server_origins:
            return True
        try:
            plaintext = key_from_headers(headers)
        except AuthError:
            plaintext = None
        record = self.keys.find(plaintext) if plaintext else None
        if record is not None:
            return origin in record.allowed_origins
        return origin in self.keys.origins(include_revoked=True)  # the handler answers 401, readable by the page

    def cors_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        return [(b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
                (b"vary", b"Origin")]

    def preflight_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        return [*self.cors_headers(origin),
                (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                (b"access-control-max-age", str(self.max_age_s).encode())]

    # --- ASGI ---------------------------------------------------------------------------------------
    def middleware(self, app: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapped(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            origin = headers.get("origin", "").strip().lower()
            if not origin or _same_origin(origin, headers.get("host", "")):
                await app(scope, receive, send)
                return
            preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
            if not scope["path"].startswith(_POLICED_PREFIXES):  # public: only the server-wide origins get headers
                if origin not in self.server_origins:
                    await app(scope, receive, send)
                elif preflight:
                    await _respond(send, 204, self.preflight_headers(origin), None)
                else:
                    await app(scope, receive, self._with_cors(send, origin))
                return
            if preflight:
                if self.preflight_allowed(origin):
                    await _respond(send, 204, self.preflight_headers(origin), None)
                else:
                    await _forbidden(send, origin)
                return
            if not self.request_allowed(origin, headers):
                await _forbidden(send, origin)
                return
            await app(scope, receive, self._with_cors(send, origin))

        return wrapped

    def _with_cors(self, send: Any, origin: str) -> Any:
        """`send` with this origin's CORS headers on the response head (replacing any the handler set, such as
        widget.js's `*`: two Access-Control-Allow-Origin headers would make the browser reject both)."""
        ours = {b"access-control-allow-origin", b"access-control-expose-headers", b"vary"}

        async def with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                given = message.get("headers", [])
                vary = [v for k, v in given if k.lower() == b"vary"]
                if not any(b"origin" in v.lower() for v in vary):
                    vary.append(b"Origin")
                kept = [(k, v) for k, v in given if k.lower() not in ours]
                message = {**message, "headers": [*kept, *self.cors_headers(origin)[:2], (b"vary", b", ".join(vary))]}
            await send(message)

        return with_cors


def _same_origin(origin: str, host: str) -> bool:
    """The pages this server serves call it with their own origin: same host[:port] as the Host header.

    The scheme is not compared, so a TLS-terminating proxy in front (https outside, http here) still counts.
    """
    _, _, authority = origin.partition("://")
    return bool(host) and authority == host.strip().lower()


async def _forbidden(send: Any, origin: str) -> None:
    body = {"error": {"code": "origin_forbidden",
                      "message": f"the origin {origin[:200]} may not use this API key (see the key's allowed_origins)"}}
    await _respond(send, 403, [(b"vary", b"Origin")], body)


async def _respond(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: dict | None) -> None:
    payload = json.dumps(body).encode() if body is not None else b""
    extra = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())] if body else []
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra]})
    await send({"type": "http.response.body", "body": payload})
