"""Where the chat path meets the improvement loop: which arm answers, and what happens after an answer or a vote.

The conversation service calls three methods: `assign` before a turn (the rollout's arm, if a rollout runs and
the request named no adapter), `answered` after an answer is stored (review queue, rollout record, drift watch)
and `voted` after feedback (a thumbs-down is queued for review). None of them may fail a chat: a hook that
raises is logged and the answer stands.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from assistant.db import Database
from assistant.drift import DriftWatch
from assistant.review_service import ReviewService
from assistant.rollout import RolloutState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arm:
    rollout: str
    name: str  # "control" | "candidate"
    adapter: str


class LoopHooks:
    def __init__(self, db: Database, reviews: ReviewService, rollouts: RolloutState, drift: DriftWatch | None = None,
                 resident: Any = None):
        self.db = db
        self.reviews = reviews
        self.rollouts = rollouts
        self.drift = drift
        self.resident = resident  # () -> adapters the generator can answer with; None = do not check

    def assign(self, key_id: str, conversation_id: str | None) -> Arm | None:
        """The arm of the running rollout for this conversation (or, without one, this key); None without a rollout."""
        try:
            rollout = self.rollouts.active()
        except (OSError, ValueError, TypeError) as exc:  # an unreadable state file never stops chat
            log.error("rollout state unreadable, serving the default: %s", exc)
            return None
        if rollout is None:
            return None
        name = rollout.arm(conversation_id or f"key:{key_id}")
        adapter = rollout.adapter(name)
        if adapter != "base" and self.resident is not None and adapter not in self.resident():
            log.error("rollout %s: adapter %s is not resident; serving the default", rollout.id, adapter)
            return None
        return Arm(rollout.id, name, adapter)

    def answered(self, message_id: str | None, question: str, answer: Any, collections: list[str] | None,
                 arm: Arm | None) -> None:
        for step in (self._review, self._variant, self._drift):
            try:
                step(message_id, question, answer, collections, arm)
            except Exception:  # noqa: BLE001 - the loop's bookkeeping must not cost the user the answer
                log.exception("improvement-loop hook %s failed", step.__name__)

    def voted(self, message_id: str, rating: int, comment: str | None) -> None:
        try:
            self.reviews.flag_feedback(message_id, rating, comment)
        except Exception:  # noqa: BLE001
            log.exception("queueing feedback for review failed")

    def _review(self, message_id, question, answer, collections, arm) -> None:
        self.reviews.flag_answer(message_id, question, answer, collections)

    def _variant(self, message_id, question, answer, collections, arm) -> None:
        if arm is not None and message_id is not None:
            self.db.variants.record(message_id, arm.rollout, arm.name, answer.adapter, answer.timing_ms.get("total"),
                                    answer.refused, len(answer.rail_events))

    def _drift(self, message_id, question, answer, collections, arm) -> None:
        if self.drift is None or answer.finish_reason == "guardrail":  # blocked attacks are not the question mix
            return
        scores = [s.dense_score for s in answer.sources if s.dense_score is not None]
        collection = next((s.collection for s in answer.sources if s.collection), None) or \
            (collections[0] if collections and len(collections) == 1 else "all")
        self.drift.observe(collection, question, max(scores) if scores else None, answer.refused,
                           answer.finish_reason == "no_context")
