"""Auth, isolation between keys, limits and error shapes on the fake backend."""

import pytest
from litestar.testing import TestClient

from assistant.app import create_app
from tests.api_helpers import auth, build_home, settings_for


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return build_home(tmp_path_factory.mktemp("sec"))


def make_client(home, **overrides):
    app = create_app(settings_for(home, **overrides), background_load=False)
    return app, TestClient(app)


@pytest.fixture
def setup(home, module_database_url):  # keys and ownership checks on SQLite and on PostgreSQL
    app, client = make_client(home, database_url=module_database_url)
    with client:
        keys = app.state.services.db.keys
        _, alice = keys.create("alice", "chat", collections=["default"])
        _, bob = keys.create("bob", "chat,ingest", all_collections=True)
        yield app, client, alice, bob


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    return body


def test_missing_invalid_and_revoked_keys_are_401(setup):
    app, client, alice, _ = setup
    assert_error(client.post("/v1/chat", json={"message": "hi"}), 401, "missing_api_key")
    assert_error(client.post("/v1/chat", json={"message": "hi"}, headers=auth("rt_nope")), 401, "invalid_api_key")
    assert_error(client.get("/v1/conversations", headers={"Authorization": "Basic abc"}), 401, "invalid_authorization")
    record, key = app.state.services.db.keys.create("temp", "chat", all_collections=True)
    assert client.get("/v1/conversations", headers={"X-API-Key": key}).status_code == 200
    app.state.services.db.keys.revoke(record.id)
    assert_error(client.get("/v1/conversations", headers={"X-API-Key": key}), 401, "invalid_api_key")
    assert client.get("/healthz").status_code == 200  # health needs no key


def test_scopes_are_enforced(setup):
    _, client, alice, _ = setup
    files = {"files": ("a.md", b"# A\n\nText.", "text/markdown")}
    assert_error(client.post("/v1/documents", files=files, headers=auth(alice)), 403, "insufficient_scope")
    assert_error(client.delete("/v1/documents/1", headers=auth(alice)), 403, "insufficient_scope")


def test_a_key_never_sees_another_keys_collections_conversations_or_feedback(setup):
    _, client, alice, bob = setup
    # alice may read only `default`
    assert_error(client.post("/v1/search", json={"query": "CEO salary", "collections": ["restricted"]},
                             headers=auth(alice)), 403, "collection_forbidden")
    hits = client.post("/v1/search", json={"query": "CEO earns salary", "k": 10}, headers=auth(alice)).json()["results"]
    assert hits and all(h["collection"] == "default" for h in hits)
    answer = client.post("/v1/chat", json={"message": "What does the CEO earn?"}, headers=auth(alice)).json()["answer"]
    assert all(s["collection"] == "default" for s in answer["sources"])
    docs = client.get("/v1/documents", headers=auth(alice)).json()["documents"]
    assert {d["collection"] for d in docs} == {"default"}
    # bob's conversation and message are invisible to alice
    body = client.post("/v1/chat", json={"message": "What does the CEO earn?"}, headers=auth(bob)).json()
    assert body["answer"]["sources"][0]["collection"] == "restricted"
    conversation, message = body["conversation_id"], body["message_id"]
    assert_error(client.get(f"/v1/conversations/{conversation}", headers=auth(alice)), 404, "conversation_not_found")
    assert_error(client.delete(f"/v1/conversations/{conversation}", headers=auth(alice)), 404, "conversation_not_found")
    assert_error(client.post("/v1/chat", json={"message": "more", "conversation_id": conversation}, headers=auth(alice)),
                 404, "conversation_not_found")
    assert_error(client.post(f"/v1/messages/{message}/feedback", json={"rating": -1}, headers=auth(alice)),
                 404, "message_not_found")
    assert all(c["id"] != conversation for c in client.get("/v1/conversations", headers=auth(alice)).json()["conversations"])


def test_rate_limit_is_429_with_retry_after(home):
    app, client = make_client(home, server={"rate_limit_per_minute": 3})
    with client:
        _, key = app.state.services.db.keys.create("burst", "chat", all_collections=True)
        codes = [client.get("/v1/conversations", headers=auth(key)).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200]
        limited = client.get("/v1/conversations", headers=auth(key))
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1


def test_full_queue_is_503_with_retry_after(home):
    app, client = make_client(home, server={"max_queue": 0})
    with client:
        _, key = app.state.services.db.keys.create("q", "chat", all_collections=True)
        queue = app.state.services.queue
        queue.running = queue.max_concurrent  # a generation is running and nobody may wait
        try:
            response = client.post("/v1/chat", json={"message": "hotel rates", "stream": True}, headers=auth(key))
        finally:
            queue.running = 0
        assert_error(response, 503, "busy")
        assert int(response.headers["retry-after"]) >= 1


def test_oversized_bad_and_invalid_bodies_are_4xx_json(home):
    app, client = make_client(home, server={"request_max_bytes": 2048})
    with client:
        _, key = app.state.services.db.keys.create("b", "chat", all_collections=True)
        h = auth(key)
        assert_error(client.post("/v1/chat", content=b'{"message": "' + b"x" * 4000 + b'"}', headers=h), 413,
                     "payload_too_large")
        assert_error(client.post("/v1/chat", content=b"{not json", headers={**h, "content-type": "application/json"}),
                     400, "invalid_request")
        assert_error(client.post("/v1/chat", json={"message": ""}, headers=h), 400, "invalid_request")
        assert_error(client.post("/v1/chat", json={"message": "hi", "surprise": 1}, headers=h), 400, "invalid_request")
        assert_error(client.post("/v1/chat", json={"message": "hi", "adapter": "nope"}, headers=h), 404, "unknown_adapter")
        assert_error(client.post("/v1/search", json={"query": "x", "collections": ["../etc"]}, headers=h), 404,
                     "unknown_collection")
        assert_error(client.post("/v1/search", json={"query": "x", "k": 0}, headers=h), 400, "invalid_request")
        assert_error(client.get("/v1/nothing-here", headers=h), 404, "not_found")
        assert_error(client.put("/v1/chat", json={}, headers=h), 405, "method_not_allowed")
        assert_error(client.get("/v1/jobs/unknown", headers=h), 404, "job_not_found")


def test_cors_allows_only_the_configured_origins(home):
    app, client = make_client(home, server={"cors_origins": ["https://support.example"]})
    with client:
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        ok = client.options("/v1/chat", headers={"Origin": "https://support.example", **preflight})
        assert ok.status_code in (200, 204)
        assert ok.headers["access-control-allow-origin"] == "https://support.example"
        other = client.options("/v1/chat", headers={"Origin": "https://evil.example", **preflight})
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"
        health = client.get("/healthz", headers={"Origin": "https://support.example"})
        assert health.headers["access-control-allow-origin"] == "https://support.example"
