"""The rollout arm behind each stored answer, and the per-arm counts the live readout is computed from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from assistant.db.models import AnswerVariant, Feedback

if TYPE_CHECKING:
    from assistant.db.database import Database


class VariantStore:
    def __init__(self, database: Database):
        self.db = database

    def record(self, message_id: str, rollout: str, variant: str, adapter: str | None, latency_ms: float | None,
               refused: bool, rail_actions: int) -> None:
        with self.db.session() as session:
            session.merge(AnswerVariant(message_id=message_id, rollout=rollout, variant=variant, adapter=adapter,
                                        latency_ms=latency_ms, refused=refused, rail_actions=rail_actions))

    def variant_of(self, message_id: str) -> str | None:
        with self.db.session() as session:
            return session.scalar(select(AnswerVariant.variant).where(AnswerVariant.message_id == message_id))

    def counts(self, rollout: str) -> dict[str, dict[str, Any]]:
        """arm -> answers, refused, railed (answers a rail acted on), up / down votes, latencies (ms)."""
        out: dict[str, dict[str, Any]] = {}
        with self.db.session() as session:
            rows = session.execute(
                select(AnswerVariant.message_id, AnswerVariant.variant, AnswerVariant.refused, AnswerVariant.rail_actions,
                       AnswerVariant.latency_ms, Feedback.rating)
                .outerjoin(Feedback, Feedback.message_id == AnswerVariant.message_id)
                .where(AnswerVariant.rollout == rollout)).all()
        counted: set[str] = set()  # an answer voted on by several keys is one answer (and several votes)
        for message_id, variant, refused, railed, latency, rating in rows:
            arm = out.setdefault(variant, {"answers": 0, "refused": 0, "railed": 0, "up": 0, "down": 0, "latencies": []})
            if rating == 1:
                arm["up"] += 1
            elif rating == -1:
                arm["down"] += 1
            if message_id in counted:
                continue
            counted.add(message_id)
            arm["answers"] += 1
            arm["refused"] += int(bool(refused))
            arm["railed"] += int(railed > 0)
            if latency is not None:
                arm["latencies"].append(float(latency))
        return out
