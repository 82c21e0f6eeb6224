"""What the chat service returns: answers with structured citations, and the stream's events."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Citation:
    number: int  # the [n] the answer uses
    document: str
    page: int | None
    page_end: int | None
    heading: str
    chunk_id: int
    collection: str
    snippet: str
    score: float  # fused retrieval score (RRF)
    dense_score: float | None  # cosine similarity to the question, when the dense ranking found it


@dataclass
class ChatAnswer:
    text: str
    citations: list[Citation]  # the sources the answer cites, in first-cited order
    sources: list[Citation]  # every chunk the model was shown, best first
    refused: bool  # "not in the documents": no relevant chunk was found, or the model said so
    model: str
    adapter: str | None
    finish_reason: str  # stop | length | cancelled | no_context
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timing_ms: dict[str, float] = field(default_factory=dict)  # retrieval, first_token, total
    retrieval_query: str = ""
    # Rails that acted: [{"rail", "action"}] only; scores and reasons go to the audit log, not to clients.
    guardrails: list[dict[str, str]] = field(default_factory=list)
    # The output rails withdrew (the rest of) the answer: `text` ends with their message after whatever had already
    # been released to streaming clients (assistant/release.py), so a client shows `text` and nothing else.
    replaced: bool = False
    # The model cited nothing and the service added the citations of the sources the answer's sentences come from
    # (assistant/attribution.py): `citations` and the text's closing [n] are the service's, not the model's.
    attributed: bool = False
    rail_events: list[Any] = field(default_factory=list, repr=False)  # RailResults, for the audit log

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("rail_events")
        return data


@dataclass
class TokenEvent:
    text: str


@dataclass
class FinalEvent:
    answer: ChatAnswer
    message_id: str | None = None  # set once the conversation layer has stored the answer
