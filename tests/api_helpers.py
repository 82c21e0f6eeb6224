"""Shared set-up for the API tests: an ingested home, keys, a test client, SSE parsing."""

from __future__ import annotations

import json
from pathlib import Path

from assistant import assembly
from assistant.settings import load_settings
from tests.conftest import make_corpus

DOCS = {
    "travel.md": "# Travel policy\n\n## Hotels\n\nHotel rates are capped at 180 EUR per night in Berlin and 220 EUR "
    "per night in London.\n\n## Flights\n\nEconomy class for flights under six hours.\n",
    "plans.md": "# Plans\n\n## Basic plan\n\nThe Basic plan costs 10 EUR a month.\n\n## Plus plan\n\nThe Plus plan "
    "costs 25 EUR a month and adds priority support.\n",
}
SECRET = {"secret.md": "# Salaries\n\nThe CEO earns 900000 EUR a year. Board bonus rules are confidential.\n"}


def build_home(root: Path) -> Path:
    """Two collections: `default` (travel, plans) and `restricted` (salaries)."""
    home = root / "home"
    settings = load_settings(profile="test", overrides={"home": str(home)})
    job = assembly.ingest_job(settings)
    assert job.run([make_corpus(root / "docs", DOCS)]).exit_code() == 0
    assert job.run([make_corpus(root / "secret", SECRET)], "restricted").exit_code() == 0
    return home


def settings_for(home: Path, database_url: str = "", **overrides):
    """The test profile on `home`; `database_url` (e.g. a PostgreSQL test database) goes to server.database_url."""
    if database_url:
        overrides["server"] = {**overrides.get("server", {}), "database_url": database_url}
    return load_settings(profile="test", overrides={"home": str(home), **overrides})


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    """(event, data) pairs; asserts the framing: every event has a data line."""
    events = []
    for block in text.replace("\r\n", "\n").strip().split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        event = next((line[6:].strip() for line in lines if line.startswith("event:")), None)
        data = [line[5:].strip() for line in lines if line.startswith("data:")]
        assert data, f"an SSE event without data: {block!r}"
        events.append((event, "\n".join(data)))
    return events


def json_events(text: str) -> list[tuple[str | None, dict]]:
    return [(e, json.loads(d)) for e, d in parse_sse(text) if d != "[DONE]"]


class LiveServer:
    """The app under uvicorn on a free loopback port, in a thread: for real clients and disconnects."""

    def __init__(self, app):
        import socket
        import threading

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
