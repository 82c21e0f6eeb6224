"""Thumbs-down answers with a comment become candidate golden rows, for a person to finish.

A candidate carries the user's question, the answer that was judged wrong, the comment and the
pages that answer cited. Its reference is left empty on purpose: `eval.golden.load` refuses an
answerable row without one, so no candidate enters a scorecard until someone writes the right
answer (or marks it `"answerable": false`) and removes the `review` block.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from assistant.db.models import Feedback, Message


def candidates(database, limit: int = 1000) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with database.session() as session:
        query = (select(Feedback, Message).join(Message, Feedback.message_id == Message.id)
                 .where(Feedback.rating == -1, Feedback.comment.is_not(None), Feedback.comment != "")
                 .order_by(Feedback.created_at).limit(limit))
        for feedback, answer in session.execute(query).all():
            question = session.execute(
                select(Message.content).where(Message.conversation_id == answer.conversation_id,
                                              Message.position < answer.position, Message.role == "user")
                .order_by(Message.position.desc()).limit(1)).scalar_one_or_none()
            if not question:
                continue
            rows.append({
                "id": f"feedback-{feedback.id}",
                "question": " ".join(question.split()),
                "reference": "",
                "answerable": True,
                "sources": [{"document": c.document, "page": c.page} for c in answer.citations],
                "review": {"status": "needs a reference answer", "comment": feedback.comment,
                           "rejected_answer": answer.content, "adapter": answer.adapter,
                           "rated_at": feedback.created_at.isoformat(timespec="seconds")},
            })
    return rows
