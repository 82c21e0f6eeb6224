"""One path: the in-process scorecard answers exactly what /v1/chat serves (same cap, temperature,
collection filter and rails), with the fake backend and (integration) the real models."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from assistant import assembly
from assistant.app import create_app
from eval.golden import GoldenRow
from eval.runner import in_process_answerer
from eval.variants import Variant
from tests.api_helpers import settings_for
from tests.conftest import SAMPLES, make_corpus

# A first sentence of 106 words: the fake answers with it, so a scorecard cap below the served 256 cuts it.
LONG = "The onboarding checklist for new staff " + " ".join(f"step{n}" for n in range(95)) + " ends with a badge photo."
DOCS = {"onboarding.md": f"# Onboarding\n\n## Checklist\n\n{LONG}\n",
        "travel.md": "# Travel policy\n\n## Hotels\n\nHotel rates are capped at 180 EUR per night in Berlin.\n"}
OTHER = {"travel-old.md": "# Old travel policy\n\n## Hotels\n\nHotel rates are capped at 150 EUR per night in Berlin.\n"}
QUESTIONS = ["What is on the onboarding checklist for new staff?", "What is the hotel rate cap in Berlin?"]


def configured(home, **overrides):
    """Served cap 256 fake tokens (words) and chunks long enough to hold the long sentence whole."""
    return settings_for(home, generator={"max_new_tokens": 256}, chunking={"target_tokens": 300}, **overrides)


def served(settings, question: str, collections=None) -> dict:
    app = create_app(settings, background_load=False)
    with TestClient(app) as client:
        _, key = app.state.services.db.keys.create("eval", "chat", all_collections=True)
        body = {"message": question, **({"collections": collections} if collections else {})}
        response = client.post("/v1/chat", json=body, headers={"X-API-Key": key})
        assert response.status_code == 200, response.text
        return response.json()["answer"]


def scored(settings, questions: list[str]) -> list[dict]:
    rows = [GoldenRow(f"q{n}", q, "x", True, []) for n, q in enumerate(questions)]
    answerer = in_process_answerer(settings)
    return answerer.answer(Variant("rag", "base", True), rows, lambda n: None)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    settings = configured(root / "home")
    job = assembly.ingest_job(settings)
    assert job.run([make_corpus(root / "docs", DOCS)]).exit_code() == 0
    assert job.run([make_corpus(root / "other", OTHER)], "archive").exit_code() == 0
    return root / "home"


def test_a_scorecard_answer_is_the_answer_chat_serves(home):
    settings = configured(home)
    rows = scored(settings, QUESTIONS)
    for question, row in zip(QUESTIONS, rows):
        answer = served(settings, question)
        assert row["answer"] == answer["text"]
        assert row["finish_reason"] == answer["finish_reason"]
        assert [(c["document"], c["page"]) for c in row["contexts"]] == [(s["document"], s["page"]) for s in answer["sources"]]
    assert "badge photo" in rows[0]["answer"]  # the whole 106-word answer: no scorecard-only cap


def test_the_scorecard_searches_the_collections_it_is_given_like_a_request_that_names_them(home):
    # The chunks, not one page, so the contexts show every document the search reached (chat.expand_pages 0).
    settings = configured(home, eval={"collections": ["default"]}, chat={"expand_pages": 0})
    row = scored(settings, [QUESTIONS[1]])[0]
    answer = served(settings, QUESTIONS[1], ["default"])
    assert row["answer"] == answer["text"]
    assert {c["document"] for c in row["contexts"]} == {s["document"] for s in answer["sources"]} == {"onboarding.md", "travel.md"}


@pytest.mark.integration
def test_with_the_real_model_the_scorecard_answer_is_the_served_answer(tmp_path, pytestconfig):
    from assistant.settings import load_settings

    models = pytestconfig.cache.mkdir("ragtune-models")
    settings = load_settings(overrides={"home": str(tmp_path / "home"),
                                        "generator": {"cache_dir": str(models), "max_new_tokens": 40}}, environ={})
    docs = [SAMPLES / "docs" / name for name in ("leave_policy.md", "it_vpn_setup.html")]
    assert assembly.ingest_job(settings).run(docs).exit_code() == 0
    question = "How do I connect to the VPN?"
    row = scored(settings, [question])[0]
    answer = served(settings, question)
    assert row["answer"] == answer["text"] and row["answer"].strip()
    assert [c["document"] for c in row["contexts"]] == [s["document"] for s in answer["sources"]]
