"""A live ragtune server with the real models over the sample knowledge base, for the API benches."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import _common as common

SAMPLE_DOCS = common.PROJECT / "samples" / "kestrel" / "docs"
QUESTIONS = [
    "How do I connect to the VPN?",
    "How many days of annual leave do employees get?",
    "What is the hotel limit when travelling?",
    "How do I reset my password?",
    "Who approves remote work?",
    "How do I release a print job?",
]


def settings(max_queue: int = 64, max_new_tokens: int = 64, mode: str | None = None, **generator: Any):
    from assistant.settings import load_settings

    home = common.CACHE_ROOT / "api-kestrel"
    return load_settings(profile="default", environ={}, overrides={
        "home": str(home), "generator": {"cache_dir": str(common.CACHE_ROOT / "models"), "max_new_tokens": max_new_tokens,
                                         **({"mode": mode} if mode else {}), **generator},
        "server": {"max_queue": max_queue, "rate_limit_per_minute": 100000},
    })


def ingest(s) -> None:
    from assistant import assembly

    report = assembly.ingest_job(s).run([SAMPLE_DOCS], s.default_collection)
    if report.exit_code() != 0:
        raise SystemExit(f"ingest failed: {report.counts()}")


class Live:
    def __init__(self, s):
        import uvicorn

        from assistant.app import create_app

        self.app = create_app(s, background_load=False)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "Live":
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        _, self.key = self.app.state.services.db.keys.create("bench", "chat", all_collections=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def services(self):
        return self.app.state.services
