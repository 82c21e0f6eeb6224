"""The chat API on the fake backend: JSON and SSE answers, conversations, feedback, search, schema."""

import pytest
from litestar.testing import TestClient

from assistant.app import create_app
from assistant.runtime.base import GeneratorError
from tests.api_helpers import auth, build_home, json_events, parse_sse, settings_for


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return build_home(tmp_path_factory.mktemp("api"))


@pytest.fixture
def client(home, module_database_url):  # SQLite and PostgreSQL: the conversations and feedback are stored there
    app = create_app(settings_for(home, module_database_url), background_load=False)
    with TestClient(app) as client:
        record, key = app.state.services.db.keys.create("tester", "chat", all_collections=True)
        client.headers.update(auth(key))
        yield client


def test_chat_json_answer_with_citations_and_a_stored_conversation(client):
    response = client.post("/v1/chat", json={"message": "What is the hotel rate cap in Berlin?"})
    assert response.status_code == 200, response.text
    body = response.json()
    answer = body["answer"]
    assert answer["text"] and not answer["refused"] and answer["model"] == "fake"
    citation = answer["citations"][0]
    assert set(citation) >= {"document", "page", "heading", "chunk_id", "snippet", "score"}
    assert citation["document"] == "travel.md"
    assert answer["usage"]["completion_tokens"] > 0 and answer["timing_ms"]["total"] > 0
    stored = client.get(f"/v1/conversations/{body['conversation_id']}").json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"]
    assert stored["messages"][1]["citations"][0]["document"] == "travel.md"
    assert stored["messages"][1]["id"] == body["message_id"]


def test_follow_up_continues_the_conversation_and_uses_its_context(client):
    first = client.post("/v1/chat", json={"message": "How much does the Basic plan cost?"}).json()
    follow = client.post("/v1/chat", json={"message": "and for the Plus plan?", "conversation_id": first["conversation_id"]})
    answer = follow.json()["answer"]
    assert answer["retrieval_query"].startswith("How much does the Basic plan cost?")
    assert answer["sources"][0]["document"] == "plans.md"
    listed = client.get("/v1/conversations").json()["conversations"]
    assert listed[0]["id"] == first["conversation_id"]
    messages = client.get(f"/v1/conversations/{first['conversation_id']}").json()["messages"]
    assert len(messages) == 4


def test_sse_stream_frames_tokens_then_one_final_event(client):
    response = client.post("/v1/chat", json={"message": "hotel rate cap Berlin", "stream": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    parse_sse(response.text)  # framing
    events = json_events(response.text)
    kinds = [e for e, _ in events]
    assert kinds[-1] == "final" and set(kinds[:-1]) == {"token"} and len(kinds) > 2
    final = events[-1][1]
    assert "".join(d["text"] for _, d in events[:-1]).strip() == final["answer"]["text"]
    assert final["conversation_id"] and final["message_id"]


def test_an_uncited_answer_gets_its_source_attributed_in_json_sse_and_the_stored_turn(client, monkeypatch):
    generator = client.app.state.services.chat.generator
    monkeypatch.setattr(generator, "completion", lambda request: "Hotels in Berlin cost at most 180 EUR a night.")
    body = client.post("/v1/chat", json={"message": "What is the hotel rate cap in Berlin?"}).json()
    answer = body["answer"]
    assert answer["text"] == "Hotels in Berlin cost at most 180 EUR a night. [1]" and answer["attributed"] is True
    assert answer["citations"][0]["document"] == "travel.md"
    stored = client.get(f"/v1/conversations/{body['conversation_id']}").json()["messages"][1]
    assert stored["content"] == answer["text"] and stored["citations"][0]["document"] == "travel.md"
    events = json_events(client.post("/v1/chat", json={"message": "What is the hotel rate cap in Berlin?",
                                                         "stream": True}).text)
    assert "".join(d["text"] for _, d in events[:-1]).strip() == answer["text"] == events[-1][1]["answer"]["text"]


def test_feedback_on_an_answer_is_kept_and_replaced(client):
    body = client.post("/v1/chat", json={"message": "hotel rates"}).json()
    url = f"/v1/messages/{body['message_id']}/feedback"
    assert client.post(url, json={"rating": "down", "comment": "wrong city"}).json()["rating"] == -1
    assert client.post(url, json={"rating": 1}).json()["rating"] == 1
    assert client.post("/v1/messages/nope/feedback", json={"rating": 1}).status_code == 404


def test_search_returns_hits_with_scores(client):
    hits = client.post("/v1/search", json={"query": "economy flights", "k": 2}).json()["results"]
    assert 1 <= len(hits) <= 2 and hits[0]["document"] == "travel.md" and "score" in hits[0]


def test_deleting_a_conversation(client):
    body = client.post("/v1/chat", json={"message": "hotel rates"}).json()
    assert client.delete(f"/v1/conversations/{body['conversation_id']}").status_code == 204
    assert client.get(f"/v1/conversations/{body['conversation_id']}").status_code == 404


def test_health_ready_metrics_and_schema(client):
    assert client.get("/healthz", headers={"Authorization": ""}).json() == {"status": "ok"}
    assert client.get("/readyz").json()["ready"] is True
    client.post("/v1/chat", json={"message": "hotel rates"})
    metrics = client.get("/metrics").text
    assert 'ragtune_http_requests_total{method="POST",route="/v1/chat",status="200"}' in metrics
    assert "ragtune_generated_tokens_total" in metrics and "ragtune_generation_queue_depth" in metrics
    docs = client.get("/schema", headers={"Authorization": ""})
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    schema = client.get("/schema/openapi.json", headers={"Authorization": ""}).json()
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert len(operations) >= 15 and all(op.get("operationId") and op.get("summary") and op.get("description") for op in operations)


def test_a_generation_failing_midway_ends_the_stream_with_an_error_event(client, monkeypatch):
    generator = client.app.state.services.chat.generator
    real_stream = generator.stream

    def failing(request, cancel, stats=None):
        pieces = real_stream(request, cancel, stats)
        for _ in range(14):  # past the first released unit (48 characters) and the PII masker's hold-back
            yield next(pieces)
        raise GeneratorError("the model ran out of memory")

    monkeypatch.setattr(generator, "stream", failing)
    response = client.post("/v1/chat", json={"message": "hotel rate cap Berlin", "stream": True})
    assert response.status_code == 200  # the head was sent before the failure
    events = json_events(response.text)
    kinds = [e for e, _ in events]
    assert kinds[-1] == "error" and set(kinds[:-1]) == {"token"} and len(kinds) >= 2
    assert events[-1][1] == {"code": "generation_failed", "message": "the model ran out of memory"}
    conversation = client.get("/v1/conversations").json()["conversations"][0]
    messages = client.get(f"/v1/conversations/{conversation['id']}").json()["messages"]
    assert messages[-1]["role"] == "assistant" and messages[-1]["finish_reason"] == "error"
    # the same failure before any token is a plain JSON error with a status code
    monkeypatch.setattr(generator, "stream", lambda *a, **k: (_ for _ in ()).throw(GeneratorError("broken")))
    failed = client.post("/v1/chat", json={"message": "hotel rate cap Berlin"})
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "generation_failed"


def test_closed_book_and_base_model_requests_for_evaluators(client):
    # A closed-book answer skips the documents and the grounding rail: a chat key (a widget's too) may not ask one.
    denied = client.post("/v1/chat", json={"message": "What is the hotel rate cap in Berlin?", "retrieval": False})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "insufficient_scope"
    assert "'eval' scope" in denied.json()["error"]["message"]
    _, evaluator = client.app.state.services.db.keys.create("evaluator", "chat,eval", all_collections=True)
    closed = client.post("/v1/chat", json={"message": "What is the hotel rate cap in Berlin?", "retrieval": False},
                         headers={"Authorization": f"Bearer {evaluator}"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["answer"]["sources"] == [] and closed.json()["answer"]["refused"]
    base = client.post("/v1/chat", json={"message": "What is the hotel rate cap in Berlin?", "adapter": "base"})
    assert base.status_code == 200 and base.json()["answer"]["adapter"] is None
    unknown = client.post("/v1/chat", json={"message": "hotel?", "adapter": "nope@v9"})
    assert unknown.status_code == 404 and "nope@v9" in unknown.text
