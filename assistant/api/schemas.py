"""Request bodies, validated by Litestar from these pydantic models (limits are explicit); and what the
OpenAPI schema says about errors and authentication, so clients and the schema fuzzer (tests/test_fuzz_schema.py)
see the same contract the handlers keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from litestar.datastructures import UploadFile
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from pydantic import BaseModel, ConfigDict, Field

_TEXT_MAX = 8_000  # characters of one message; the model window is far smaller anyway


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatBody(_Body):
    message: str = Field(min_length=1, max_length=_TEXT_MAX, description="The user's question.")
    conversation_id: str | None = Field(None, max_length=64, description="Continue this conversation; omit to start one.")
    collections: list[str] | None = Field(None, max_length=32, description="Search only these (default: all the key may read).")
    adapter: str | None = Field(
        None, max_length=128, description="LoRA adapter to answer with (NAME or NAME@vN); 'base' for none; omit for the promoted default."
    )
    retrieval: bool = Field(True, description="false = closed book: answer from the model alone, no documents (for "
                            "evaluations; needs the `eval` scope, else 403 insufficient_scope).")
    stream: bool = Field(False, description="Server-Sent Events: `token` events, then one `final` event.")
    max_new_tokens: int | None = Field(None, ge=1, le=4096, description="Cap below the server's own cap.")


class SearchBody(_Body):
    query: str = Field(min_length=1, max_length=2_000)
    k: int = Field(5, ge=1, le=50)
    collections: list[str] | None = Field(None, max_length=32)
    documents: list[str] | None = Field(None, max_length=100, description="File names to restrict the search to.")
    mode: Literal["hybrid", "dense", "bm25"] | None = None


class FeedbackBody(_Body):
    rating: Literal[1, -1, "up", "down"] = Field(description="1/'up' or -1/'down'.")
    comment: str | None = Field(None, max_length=4_000)

    @property
    def value(self) -> int:
        return 1 if self.rating in (1, "up") else -1



@dataclass
class UploadForm:
    """POST /v1/documents, multipart: a dataclass because Litestar reads multipart forms into these
    (a single `files` part becomes a one-item list)."""

    files: list[UploadFile] = field(metadata={"description": "One or more documents (PDF, DOCX, HTML, Markdown, text)"})
    collection: str | None = field(default=None, metadata={"description": "Target collection (default: the server's)"})

class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionBody(BaseModel):
    # OpenAI clients send many optional fields (top_p, n, user …): accepted, and ignored unless listed here.
    model_config = ConfigDict(extra="allow")
    model: str | None = Field(None, max_length=128, description="An adapter name, or 'ragtune' / the base model name.")
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    collections: list[str] | None = Field(None, max_length=32, description="ragtune extension: collections to search.")


class TicketBody(_Body):
    ticket: str = Field(min_length=1, max_length=20_000, description="The customer ticket's text, as the agent sees it.")
    collections: list[str] | None = Field(None, max_length=32, description="Search only these (default: all the key may read).")
    adapter: str | None = Field(None, max_length=128, description="LoRA adapter (NAME or NAME@vN); 'base' for none; omit for the default.")


class KeyBody(_Body):
    name: str = Field(min_length=1, max_length=200, description="Who or what the key is for.")
    scopes: list[Literal["chat", "ingest", "eval", "admin"]] = Field(
        min_length=1, max_length=4, description="admin implies the others; eval allows closed-book answers (retrieval: false).")
    collections: list[str] | None = Field(None, max_length=100, description="Collections the key may read.")
    all_collections: bool | None = Field(None, description="Every collection; default: true when `collections` is omitted.")
    allowed_origins: list[str] | None = Field(
        None, max_length=20, description="Exact browser origins (https://tickets.example.com) that may use the key; "
        "only for chat-scope keys.")


class PromoteBody(_Body):
    version: int = Field(ge=1, le=1_000_000, description="The version to promote: 3 for NAME@v3.")


# --- errors and auth in the OpenAPI schema ------------------------------------------------------------

class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # a handler may add fields (e.g. `details` of a validation error)
    code: str = Field(description="Stable, machine-readable: missing_api_key, collection_forbidden, busy, ...")
    message: str = Field(description="For people; never holds another key's data.")
    details: list[Any] | dict[str, Any] | None = Field(None, description="Validation errors: which field, why.")


class ErrorBody(BaseModel):
    """Every error response: `{"error": {"code", "message"}}` (see assistant.api.errors)."""

    error: ErrorDetail


_ERROR_DESCRIPTIONS = {
    400: "Invalid request: a malformed body, a parameter out of range, an unusable value.",
    401: "No API key, an unknown or revoked one, or a malformed Authorization header.",
    403: "The key lacks the scope, or may not read the collection.",
    404: "No such object, or one that belongs to another key (the two look the same).",
    413: "The request body is over the server's limit.",
    409: "The request conflicts with the current state (a corrupt adapter version, no earlier version to roll back to).",
    415: "An uploaded file type that is not ingested.",
    429: "Over the key's rate limit; Retry-After says when to try again.",
    502: "The model failed while answering.",
    503: "The model is still loading, or the generation queue is full; Retry-After says when to try again.",
}
# What any route that takes an API key can answer besides its own errors.
KEYED = (401, 403, 429)


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI `responses` for these error statuses, all with the ErrorBody shape."""
    return {
        status: ResponseSpec(ErrorBody, description=_ERROR_DESCRIPTIONS[status], generate_examples=False)
        for status in sorted(set(statuses))
    }


@dataclass
class PublicOperation(Operation):
    """An operation that needs no API key: `security: []` lifts the document-wide API-key requirement
    (`assistant.app`), which every other operation inherits, so a route cannot be left open by accident."""

    def __post_init__(self) -> None:
        self.security = []


@dataclass
class EventStreamOperation(Operation):
    """A JSON operation that answers Server-Sent Events instead when the body says `stream: true`: its 200
    response lists both media types (Litestar's own schema knows only the handler's JSON one)."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            stream = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
            ok.content = {**(ok.content or {}), "text/event-stream": stream}
