"""`ragtune chat` (terminal, in-process) and `ragtune serve` (uvicorn) on the test profile."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from assistant import assembly
from assistant.cli import app
from assistant.settings import load_settings
from tests.api_helpers import DOCS
from tests.conftest import make_corpus


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    home = root / "home"
    settings = load_settings(profile="test", overrides={"home": str(home)})
    assert assembly.ingest_job(settings).run([make_corpus(root / "docs", DOCS)]).exit_code() == 0
    return home


def test_terminal_chat_streams_answers_with_citations_and_follow_ups(home):
    questions = "How much does the Basic plan cost?\nand for the Plus plan?\n\n"  # an empty line quits
    result = CliRunner().invoke(app, ["--home", str(home), "--profile", "test", "chat"], input=questions)
    assert result.exit_code == 0, result.output
    shown = result.stderr
    assert "assistant> The Basic plan costs 10 EUR a month. [1]" in shown
    # the follow-up is searched together with the question before it, so it finds the plans again
    assert shown.count("[1] plans.md — Plans > ") == 2, shown


def test_terminal_chat_shows_the_attributed_citation_when_the_model_writes_none(home, monkeypatch):
    from assistant.runtime.fake import FakeGenerator

    real = FakeGenerator.completion
    monkeypatch.setattr(FakeGenerator, "completion", lambda self, request: real(self, request).replace(" [1]", ""))
    result = CliRunner().invoke(app, ["--home", str(home), "--profile", "test", "chat"],
                                input="How much does the Basic plan cost?\n\n")
    assert result.exit_code == 0, result.output
    assert "assistant> The Basic plan costs 10 EUR a month. [1]" in result.stderr  # streamed after the answer


def test_terminal_chat_refuses_an_unknown_adapter(home):
    result = CliRunner().invoke(app, ["--home", str(home), "--profile", "test", "chat", "--adapter", "nope"],
                                input="hotel rates?\n\n")
    assert result.exit_code == 2 and "nope" in result.stderr


def test_serve_starts_on_loopback_and_becomes_ready(home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "assistant.cli", "--home", str(home), "--profile", "test", "serve", "--port", str(port)]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})
    try:
        deadline, ready = time.monotonic() + 60, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert ready is not None and ready.json()["ready"] is True, ready and ready.text
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 401
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}" in stderr and "ragtune keys create" in " ".join(stderr.split())


def test_terminal_chat_refuses_a_collection_without_documents(home):
    result = CliRunner().invoke(app, ["--home", str(home), "--profile", "test", "chat", "-c", "nowhere"], input="\n")
    assert result.exit_code == 2 and "nowhere" in result.stderr
