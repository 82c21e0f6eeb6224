"""Errors the services raise for the API to map: a stable code, a message for people, an HTTP status."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def not_found(what: str, ident: object) -> ApiError:
    # Another key's object answers exactly like a missing one: existence is not revealed.
    return ApiError(f"{what}_not_found", f"no {what.replace('_', ' ')} {ident}", 404)
