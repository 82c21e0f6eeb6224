"""The review queue's use cases: what gets queued, and what a reviewer does with it.

Queued automatically (no one has to remember to look):
- a thumbs-down (with or without a comment);
- a refusal of a question whose best retrieved chunk scored at least `loop.review_min_refusal_score`;
- an answer an output rail replaced (grounding, topic, leakage).

Every text is masked with the PII masker before it is stored (the question already is: the input rails mask it
before anything else sees it; the answer, the comment and whatever the reviewer writes are masked here), so the
reviewer sees masked text and the golden and training rows never hold personal data.
"""

from __future__ import annotations

from typing import Any, Callable

from assistant.auth import Principal, authorize
from assistant.db import Database
from assistant.db.reviews import ReviewRecord, ReviewStateError
from assistant.errors import ApiError, not_found

Mask = Callable[[str], str]
MAX_REFERENCE_CHARS = 4000


class ReviewService:
    def __init__(self, db: Database, mask: Mask, min_refusal_score: float):
        self.db = db
        self.mask = mask
        self.min_refusal_score = min_refusal_score

    # --- what gets queued -------------------------------------------------------------------------
    def flag_answer(self, message_id: str | None, question: str, answer: Any, collections: list[str] | None) -> ReviewRecord | None:
        """Queue a stored answer (a ChatAnswer) if a rail replaced it or it refused what retrieval scored high."""
        scores = [s.dense_score for s in answer.sources if s.dense_score is not None]
        best = max(scores) if scores else None
        replaced = any(getattr(e, "action", "") == "replace" for e in answer.rail_events)
        if replaced:
            reason = "rail_replaced"
        elif answer.refused and answer.finish_reason != "guardrail" and best is not None and best >= self.min_refusal_score:
            reason = "refused_high_score"
        else:
            return None
        sources = [{"document": s.document, "page": s.page} for s in answer.sources]
        return self.db.reviews.add(reason, message_id, self.mask(question), self.mask(answer.text),
                                   collection=_one(collections, answer.sources), adapter=answer.adapter,
                                   best_score=best, sources=sources)

    def flag_feedback(self, message_id: str, rating: int, comment: str | None) -> ReviewRecord | None:
        """Queue a thumbs-down answer with the question before it and the pages it cited."""
        if rating != -1:
            return None
        found = self.db.reviews.answer_context(message_id)
        if found is None:
            return None
        question, message = found
        sources = [{"document": c.document, "page": c.page} for c in message.citations]
        collection = next((c.collection for c in message.citations if c.collection), None)
        return self.db.reviews.add("thumbs_down", message_id, self.mask(question), self.mask(message.content),
                                   comment=self.mask(comment) if comment else None, collection=collection,
                                   adapter=message.adapter, sources=sources)

    # --- the reviewer ------------------------------------------------------------------------------
    def list(self, principal: Principal, status: str | None, limit: int, offset: int) -> dict[str, Any]:
        authorize(principal, "admin")
        if status not in (None, "", "open", "accepted", "rejected", "all"):
            raise ApiError("invalid_request", f"unknown status {status!r} (open, accepted, rejected or all)", 400)
        items = self.db.reviews.list(None if status in ("", "all") else status or "open", limit, offset)
        return {"items": [i.to_dict() for i in items], "counts": self.db.reviews.counts(),
                "golden_version": self.db.reviews.golden_version()}

    def show(self, principal: Principal, item_id: str) -> dict[str, Any]:
        authorize(principal, "admin")
        item = self.db.reviews.get(item_id)
        if item is None:
            raise not_found("review", item_id)
        return item.to_dict()

    def accept(self, principal: Principal, item_id: str, reference: str | None, sources: list[dict[str, Any]] | None,
               answerable: bool, training: bool, note: str, reviewer: str | None = None) -> dict[str, Any]:
        """Accept with a reference answer (masked before storage) or as unanswerable: a new golden-set version."""
        authorize(principal, "admin")
        reference = (reference or "").strip()
        if answerable and not reference:
            raise ApiError("invalid_request", "an answerable item needs a reference answer (or mark it unanswerable)", 400)
        if len(reference) > MAX_REFERENCE_CHARS:
            raise ApiError("invalid_request", f"the reference answer is longer than {MAX_REFERENCE_CHARS} characters", 400)
        clean = [_source(s) for s in sources or []]
        return self._decide(principal, item_id, True, reviewer, reference=self.mask(reference) if answerable else "",
                            sources=clean if answerable else [], answerable=answerable, training=training,
                            note=self.mask(note or ""))

    def reject(self, principal: Principal, item_id: str, note: str, reviewer: str | None = None) -> dict[str, Any]:
        authorize(principal, "admin")
        return self._decide(principal, item_id, False, reviewer, note=self.mask(note or ""))

    def golden(self, principal: Principal, version: int | None) -> dict[str, Any]:
        authorize(principal, "admin")
        rows = self.db.reviews.golden(version)
        return {"version": version or self.db.reviews.golden_version(), "rows": [r.golden_row() for r in rows]}

    def _decide(self, principal: Principal, item_id: str, accept: bool, reviewer: str | None, **fields: Any) -> dict[str, Any]:
        who = reviewer or principal.name or principal.key_id
        try:
            decided = self.db.reviews.decide(item_id, accept, who, **fields)
        except ReviewStateError as exc:
            raise ApiError("already_reviewed", str(exc), 409) from exc
        if decided is None:
            raise not_found("review", item_id)
        item, golden = decided
        return {"item": item.to_dict(), "golden": golden.golden_row() if golden else None}


def _source(value: dict[str, Any]) -> dict[str, Any]:
    document = str(value.get("document") or "").strip()
    if not document:
        raise ApiError("invalid_request", "every source needs a document name", 400)
    page = value.get("page")
    if page is not None and (not isinstance(page, int) or page < 1):
        raise ApiError("invalid_request", f"source {document!r}: page must be a positive whole number", 400)
    return {"document": document, "page": page}


def _one(collections: list[str] | None, sources: list[Any]) -> str | None:
    found = next((s.collection for s in sources if getattr(s, "collection", None)), None)
    return found or (collections[0] if collections and len(collections) == 1 else None)
