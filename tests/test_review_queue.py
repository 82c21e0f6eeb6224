"""The review queue: what gets queued, masked storage, decisions once, a versioned golden set with provenance."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from assistant.auth import AuthError, Principal
from assistant.db import Database
from assistant.errors import ApiError
from assistant.review_service import ReviewService
from eval.canary import STRUCTURED_KINDS
from finetune.pii import PiiRedactor

REDACTOR = PiiRedactor(kinds=STRUCTURED_KINDS)
ADMIN = Principal("k1", "reviewer-ann", frozenset({"admin"}), (), True, True)
CHAT = Principal("k2", "web", frozenset({"chat"}), (), True, False)


@pytest.fixture
def service(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    db.migrate()
    yield ReviewService(db, lambda text: REDACTOR.redact(text).text, 0.6)
    db.dispose()


def answer(refused=False, scores=(0.7,), events=(), finish="stop", text="I can't find that in the documents."):
    sources = [SimpleNamespace(document="travel.md", page=2, dense_score=s, collection="hr") for s in scores]
    return SimpleNamespace(text=text, refused=refused, sources=sources, rail_events=list(events), finish_reason=finish,
                           adapter="assistant@v1")


def test_what_gets_queued(service):
    assert service.flag_answer("m1", "q", answer(refused=True, scores=(0.72,)), None).reason == "refused_high_score"
    assert service.flag_answer("m2", "q", answer(refused=True, scores=(0.40,)), None) is None  # retrieval found nothing good
    assert service.flag_answer("m3", "q", answer(refused=False), None) is None
    replaced = answer(refused=True, events=[SimpleNamespace(rail="grounding", action="replace")])
    assert service.flag_answer("m4", "q", replaced, None).reason == "rail_replaced"
    assert service.flag_answer("m5", "q", answer(refused=True, finish="guardrail"), None) is None  # a blocked attack
    again = service.flag_answer("m1", "q", answer(refused=True, scores=(0.9,)), None)
    assert again.reason == "refused_high_score" and service.db.reviews.counts()["open"] == 2  # one item per answer


def test_texts_are_masked_before_storage_and_decisions_happen_once(service):
    item = service.flag_answer("m1", "mail jane.doe@example.com", answer(refused=True, text="Call +1 415 555 0100"), ["hr"])
    stored = service.show(ADMIN, item.id)
    assert "jane.doe" not in stored["question"] and "555" not in stored["answer"] and stored["collection"] == "hr"
    with pytest.raises(AuthError, match="admin"):
        service.show(CHAT, item.id)
    with pytest.raises(ApiError, match="needs a reference"):
        service.accept(ADMIN, item.id, "", [], True, False, "")
    done = service.accept(ADMIN, item.id, "Write to hr@example.com", [{"document": "travel.md", "page": 2}], True, True,
                          "policy changed")
    assert "hr@example.com" not in done["golden"]["reference"] and done["golden"]["provenance"]["by"] == "reviewer-ann"
    with pytest.raises(ApiError) as twice:
        service.reject(ADMIN, item.id, "")
    assert twice.value.status == 409


def test_the_golden_set_is_versioned(service):
    first = service.flag_answer("m1", "q1", answer(refused=True), None)
    second = service.flag_answer("m2", "q2", answer(refused=True), None)
    service.accept(ADMIN, first.id, "a1", [], True, False, "why 1")
    service.accept(ADMIN, second.id, None, [], False, False, "not in the documents")
    assert [r["question"] for r in service.golden(ADMIN, 1)["rows"]] == ["q1"]
    rows = service.golden(ADMIN, None)["rows"]
    assert [r["provenance"]["version"] for r in rows] == [1, 2] and rows[1]["answerable"] is False
    from eval.golden import parse_row

    assert [parse_row(r, "x").answerable for r in rows] == [True, False]  # what `ragtune eval --golden` reads
