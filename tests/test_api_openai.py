"""The OpenAI-compatible endpoint with the official `openai` client, and disconnects, on a live server."""

import time

import httpx
import openai
import pytest

from assistant.app import create_app
from tests.api_helpers import LiveServer, build_home, settings_for


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    home = build_home(tmp_path_factory.mktemp("oai"))
    adapter = tmp_path_factory.mktemp("adapter")
    settings = settings_for(home, generator={"fake_delay_s": 0.01, "adapters": {"hr-v1": str(adapter)}})
    app = create_app(settings, background_load=False)
    with LiveServer(app) as server:
        _, key = app.state.services.db.keys.create("sdk", "chat", all_collections=True)
        yield app, server.url, key


def client(live):
    _, url, key = live
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def test_non_streaming_completion_with_usage_and_citations(live):
    response = client(live).chat.completions.create(
        model="ragtune", messages=[{"role": "system", "content": "be nice"},
                                   {"role": "user", "content": "What is the hotel rate cap in Berlin?"}],
    )
    choice = response.choices[0]
    assert choice.message.role == "assistant" and "180 EUR" in choice.message.content
    assert choice.finish_reason == "stop" and response.usage.completion_tokens > 0
    citations = response.model_extra["citations"]
    assert citations[0]["document"] == "travel.md" and citations[0]["page"] is None


def test_streaming_completion_and_adapter_by_model_name(live):
    stream = client(live).chat.completions.create(
        model="hr-v1", stream=True, messages=[{"role": "user", "content": "hotel rate cap Berlin"}]
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("(hr-v1)") and chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"][0]["document"] == "travel.md"
    models = [m.id for m in client(live).models.list()]
    assert models == ["fake", "hr-v1"]


def test_history_from_messages_and_error_mapping(live):
    c = client(live)
    follow = c.chat.completions.create(model="ragtune", messages=[
        {"role": "user", "content": "How much does the Basic plan cost?"},
        {"role": "assistant", "content": "10 EUR [1]."},
        {"role": "user", "content": "and for the Plus plan?"}])
    assert follow.model_extra["citations"][0]["document"] == "plans.md"
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="no-such", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="ragtune", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=c.base_url, api_key="rt_wrong", max_retries=0).models.list()


def test_client_disconnect_cancels_generation_and_keeps_the_partial_answer(live, monkeypatch):
    app, url, key = live
    svc = app.state.services
    generator = svc.chat.generator
    real_stream, runs = generator.stream, []

    def recorded(request, cancel, stats=None):
        runs.append(stats)  # the backend's own account of how the generation ended
        yield from real_stream(request, cancel, stats)

    monkeypatch.setattr(generator, "stream", recorded)
    monkeypatch.setattr(generator, "delay_s", 0.2)  # the one-sentence answer (18 tokens) now takes ~3.6 s
    # (the first token event comes once the first unit, ~10 words, passed the output rails: assistant/release.py)
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as http:
        with http.stream("POST", "/v1/chat", json={"message": "hotel rate cap Berlin", "stream": True}) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("event: token")
            assert next(lines).startswith("data:")
        hung_up = time.monotonic()  # leaving the block closed the connection mid-answer
    while svc.queue.depth and time.monotonic() < hung_up + 10:
        time.sleep(0.02)
    # The slot is freed once the backend itself has stopped: within a token or two, not the ~3 s left.
    assert svc.queue.depth == 0 and time.monotonic() - hung_up < 1.5
    assert runs and runs[-1].finish_reason == "cancelled" and runs[-1].completion_tokens < 15
    conversations = svc.db.conversations.list(svc.db.keys.list()[0].id) or []
    messages = [m for c in conversations for m in svc.db.conversations.history(c.id, c.key_id) or []]
    # Only a stream closed before its final event stores the partial answer as "cancelled".
    cancelled = [m for m in messages if m.finish_reason == "cancelled"]
    assert cancelled and 0 < len(cancelled[-1].content.split()) < 15


def test_the_sources_shown_reach_the_sdk_even_when_the_model_cites_none(live, monkeypatch):
    """The model writes no [n]: the SDK still gets every source shown, and the service's attributed [1] (marked as
    such) in the message, in the stream's deltas and in the last chunk alike (assistant/attribution.py)."""
    generator = live[0].state.services.chat.generator
    monkeypatch.setattr(generator, "completion", lambda request: "Hotels in Berlin cost at most 180 EUR a night.")
    messages = [{"role": "user", "content": "What is the hotel rate cap in Berlin?"}]
    response = client(live).chat.completions.create(model="ragtune", messages=messages)
    sources = response.model_extra["sources"]
    assert sources[0]["document"] == "travel.md" and sources[0]["number"] == 1 and "180 EUR" in sources[0]["snippet"]
    assert response.choices[0].message.content == "Hotels in Berlin cost at most 180 EUR a night. [1]"
    assert response.model_extra["attributed"] is True and response.model_extra["citations"] == sources[:1]
    chunks = list(client(live).chat.completions.create(model="ragtune", stream=True, messages=messages))
    assert [s["chunk_id"] for s in chunks[-1].model_extra["sources"]] == [s["chunk_id"] for s in sources]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == response.choices[0].message.content
    assert chunks[-1].model_extra["attributed"] is True
