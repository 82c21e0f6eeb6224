"""The improvement loop through the API on the fake backend: feedback → review accepted → retrain → gate (once
refusing, once passing) → 10% split → live figures → promote → rollback.

The fake generator answers with the first sentence of document [1], prefixed with the adapter's name. Here one
retrained version is made worse (it always refuses) and a later one better (no prefix, so closer to the
reference), so the gate has a real difference to find each time. Retraining trains a tiny random Gemma."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from litestar.testing import TestClient

from assistant import prompt
from assistant.app import create_app
from assistant.runtime.fake import FakeGenerator
from finetune.registry import AdapterRegistry
from tests.api_helpers import auth, build_home, settings_for
from tests.test_runtime_contract import tiny_model_dir

WORSE, BETTER = "assistant@v2", "assistant@v3"
GOLDEN = [
    ("What are hotel rates capped at?", "Hotel rates are capped at 180 EUR per night in Berlin and 220 EUR per night in London.", "travel.md"),
    ("What class for flights under six hours?", "Economy class for flights under six hours.", "travel.md"),
    ("How much does the Basic plan cost?", "The Basic plan costs 10 EUR a month.", "plans.md"),
    ("How much is the Plus plan?", "The Plus plan costs 25 EUR a month and adds priority support.", "plans.md"),
    ("What is the hotel cap in London?", "Hotel rates are capped at 220 EUR per night in London.", "travel.md"),
    ("What does the Plus plan add?", "The Plus plan adds priority support.", "plans.md"),
    ("Hotel rates in Berlin?", "Hotel rates are capped at 180 EUR per night in Berlin.", "travel.md"),
    ("Basic plan monthly price?", "The Basic plan costs 10 EUR a month.", "plans.md"),
]


@pytest.fixture(scope="module")
def loop_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    home = build_home(root)
    base, _ = tiny_model_dir(root / "tiny")
    golden = root / "golden.jsonl"
    golden.write_text("".join(json.dumps({"id": f"g{i}", "question": q, "reference": r, "sources": [{"document": d}]}) + "\n"
                              for i, (q, r, d) in enumerate(GOLDEN)))
    recipe = root / "recipe.yaml"
    recipe.write_text("base: lora-cpu\ntarget_modules: [q_proj, v_proj]\nrank: 4\nalpha: 8\nepochs: 1\n"
                      "max_train_examples: 8\nmax_val_examples: 2\nmax_seq_tokens: 256\ncheckpoint_every_steps: 100\n")
    dataset = home / "datasets" / "default-synth"  # the synthetic dataset retrain extends
    dataset.mkdir(parents=True)
    example = {"prompt": prompt.render([], "What is the travel policy?"), "completion": " Economy class [1]",
               "question": "What is the travel policy?"}
    (dataset / "train.jsonl").write_text(json.dumps(example) + "\n")
    v1 = home / "adapters" / "assistant" / "v1"  # what serves before the loop: the fake loads any directory
    v1.mkdir(parents=True)
    (v1 / "adapter_config.json").write_text("{}")
    (v1 / "metadata.json").write_text(json.dumps({"name": "assistant", "version": "v1", "eval": {}}))
    AdapterRegistry(home / "adapters").promote("assistant@v1")
    settings = settings_for(home, server={"rate_limit_per_minute": 100_000},
                            generator={"model": str(base), "default_adapter": "assistant"},
                            pipeline={"golden": [str(golden)], "recipe": str(recipe), "eval_limit": 0,
                                      "adapter_name": "assistant"})
    return settings


@pytest.fixture
def quality(monkeypatch):
    """assistant@v2 always refuses; assistant@v3 answers like the base model (no adapter prefix)."""
    original = FakeGenerator.completion

    def completion(self, request):
        if request.adapter == WORSE:
            return prompt.REFUSAL
        if request.adapter == BETTER:
            return original(self, dataclasses.replace(request, adapter=None))
        return original(self, request)

    monkeypatch.setattr(FakeGenerator, "completion", completion)


def retrain(client, admin) -> dict:
    job = client.post("/v1/retrain", json={}, headers=admin)
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 120
    while True:
        found = client.get(f"/v1/jobs/{job.json()['id']}", headers=admin).json()
        if found["status"] in ("done", "failed"):
            assert found["status"] == "done", found
            return found["report"]
        assert time.monotonic() < deadline, "retrain did not finish"
        time.sleep(0.2)


def test_the_loop_through_the_api(loop_app, quality):
    app = create_app(loop_app, background_load=False)
    with TestClient(app) as client:
        db = app.state.services.db
        admin = auth(db.keys.create("ops", "admin")[1])
        user = auth(db.keys.create("web", "chat", all_collections=True)[1])

        # feedback → review queue (masked) → accepted as a training row
        answer = client.post("/v1/chat", json={"message": "Hotel rates? Mail me at jane.doe@example.com"}, headers=user)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert client.post(f"/v1/messages/{body['message_id']}/feedback",
                           json={"rating": -1, "comment": "wrong city, call +1 415 555 0100"}, headers=user).status_code in (200, 201)
        queue = client.get("/v1/reviews", headers=admin).json()
        item = next(i for i in queue["items"] if i["message_id"] == body["message_id"])
        assert item["reason"] == "thumbs_down" and "jane.doe" not in item["question"] and "555" not in item["comment"]
        assert client.get("/v1/reviews", headers=user).status_code == 403
        accepted = client.post(f"/v1/reviews/{item['id']}/accept", headers=admin, json={
            "reference": "Hotels are capped at 180 EUR per night in Berlin.", "sources": [{"document": "travel.md"}],
            "training": True, "note": "the cap is per city"}).json()
        assert accepted["golden"]["provenance"]["by"] == "ops" and accepted["golden"]["provenance"]["version"] == 1
        assert client.post(f"/v1/reviews/{item['id']}/accept", headers=admin, json={"reference": "x"}).status_code == 409

        # retrain → v2 (worse): the gate refuses, and a refused version cannot go to real traffic
        report = retrain(client, admin)
        assert report["ref"] == WORSE and report["reviewed_examples"] == loop_app.loop.review_training_weight
        assert report["gate"]["promote"] is False and report["gate"]["baseline"] == "assistant@v1"
        refused = client.post("/v1/rollout", json={"candidate": WORSE, "share": 0.1}, headers=admin)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "gate_refused"

        # retrain → v3 (better): the gate passes; 10% of conversations go to it
        report = retrain(client, admin)
        assert report["ref"] == BETTER and report["gate"]["promote"] is True, report["gate"]["reason"]
        started = client.post("/v1/rollout", json={"candidate": BETTER, "share": 0.1}, headers=admin)
        assert started.status_code == 201, started.text
        arms, answers, n = {}, {"control": 0, "candidate": 0}, 0
        while sum(a == BETTER for a in arms.values()) < 3:  # new conversations until the 10% arm has a few
            n += 1
            assert n <= 300, "the 10% arm got fewer than 3 of 300 conversations"
            reply = client.post("/v1/chat", json={"message": "How much does the Basic plan cost?"}, headers=user).json()
            arm = "candidate" if reply["answer"]["adapter"] == BETTER else "control"
            arms[reply["conversation_id"]] = reply["answer"]["adapter"]
            answers[arm] += 1
            if arm == "candidate" or n <= 3:
                again = client.post("/v1/chat", json={"message": "And the Plus plan?",
                                                      "conversation_id": reply["conversation_id"]}, headers=user).json()
                assert again["answer"]["adapter"] == reply["answer"]["adapter"]  # sticky per conversation
                answers[arm] += 1
            client.post(f"/v1/messages/{reply['message_id']}/feedback", json={"rating": 1 if n % 2 else -1}, headers=user)
        figures = client.get("/v1/rollout", headers=admin).json()
        readout = figures["readout"]["arms"]
        assert {arm: readout[arm]["answers"] for arm in answers} == answers  # every answer recorded its arm
        assert readout["candidate"]["thumbs_up"]["n"] == 3 and readout["control"]["thumbs_up"]["n"] == n - 3
        assert figures["readout"]["verdict"].startswith(("significant", "not yet"))

        # promote → v3 answers by default; rollback → v1 again
        promoted = client.post("/v1/rollout/promote", headers=admin)
        assert promoted.status_code == 200 and promoted.json()["applied"] is True
        assert client.get("/v1/rollout", headers=admin).json()["rollout"] is None
        assert client.post("/v1/chat", json={"message": "Basic plan?"}, headers=user).json()["answer"]["adapter"] == BETTER
        assert client.post("/v1/adapters/assistant/rollback", headers=admin).status_code == 200
        assert client.post("/v1/chat", json={"message": "Basic plan?"}, headers=user).json()["answer"]["adapter"] == "assistant@v1"
