"""llama-cpp-python's OpenAI-compatible server on loopback, for the `openai` backend tests.

`start(args, url, log)` runs `python -m llama_cpp.server ARGS` and waits until `/models` answers; the tests skip,
saying so, where llama-cpp-python[server] could not be built (scripts/setup_test_server.sh).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], url: str, log: Path, ready_s: float = 180) -> subprocess.Popen:
    """The server process once `url`/models answers 200; a failed start fails the test with the log's tail."""
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed (its build failed or was skipped)")
    with open(log, "w") as out:
        engine = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", *args],
                                  stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if engine.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {engine.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return engine
        except httpx.HTTPError:
            time.sleep(0.5)
    engine.kill()
    pytest.fail(f"llama_cpp.server did not become ready in {ready_s:.0f} s")


def stop(engine: subprocess.Popen) -> None:
    engine.terminate()
    engine.wait(timeout=20)
