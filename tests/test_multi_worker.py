"""`ragtune serve --workers 2`: two real worker processes behind one loopback port, on the fake model, sharing one
home and one database (SQLite and PostgreSQL). Ingest through one worker, search through the other; a promotion
made through one is applied by both; a key's rate limit holds across both (not twice the limit).

Which worker answered is read from the X-Ragtune-Worker header; each request opens a new connection so the kernel
spreads them over both workers. Every loop is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from assistant.db import Database
from finetune.registry import AdapterRegistry
from tests.api_helpers import auth, build_home
from tests.conftest import PROJECT
from tests.test_api_admin import add_version

RATE_PER_MINUTE = 30
WORKER = "x-ragtune-worker"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Workers:
    def __init__(self, home: Path, database_url: str, count: int = 2):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAGTUNE_")}
        env.update({"RAGTUNE_SERVER__DATABASE_URL": database_url, "RAGTUNE_SERVER__SHARED_POLL_S": "0.2",
                    "RAGTUNE_SERVER__RATE_LIMIT_PER_MINUTE": str(RATE_PER_MINUTE),
                    "RAGTUNE_GUARDRAILS__ENABLED": "false"})  # not under test here; each worker starts seconds sooner
        self.log = open(home.parent / "workers.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "assistant.cli", "--home", str(home), "--profile", "test", "serve",
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(count)],
            cwd=PROJECT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """On a fresh connection, so either worker may take it."""
        return httpx.request(method, self.url + path, timeout=30, headers={"Connection": "close",
                                                                           **kwargs.pop("headers", {})}, **kwargs)

    def until(self, predicate, what: str, timeout_s: float = 180, pause_s: float = 0.05):
        deadline = time.monotonic() + timeout_s  # generous: workers load the guardrails on a shared 2-core machine
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited: {Path(self.log.name).read_text()[-2000:]}"
            try:
                result = predicate()
            except httpx.TransportError:
                result = None
            if result:
                return result
            time.sleep(pause_s)
        raise AssertionError(f"gave up waiting for {what}: {Path(self.log.name).read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the server and its workers: our own process group
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def database_url(request, tmp_path):
    """PostgreSQL, what a multi-worker deployment would run on; SQLite where its binaries are missing (both pass:
    tests/test_shared_state.py checks the shared pieces on both; this end-to-end run is kept to one for time)."""
    from tests.conftest import database_url_for
    from tests.postgres_server import find_binaries

    return database_url_for("postgresql" if find_binaries() else "sqlite", request, tmp_path)


@pytest.fixture
def deployment(tmp_path, database_url):
    home = build_home(tmp_path)
    add_version(home / "adapters", "assistant", 1)
    add_version(home / "adapters", "assistant", 2)
    AdapterRegistry(home / "adapters").promote("assistant@v1")
    db = Database(database_url)
    db.migrate()
    keys = {name: auth(db.keys.create(name, scopes, all_collections=True)[1])
            for name, scopes in [("writer", "chat,ingest"), ("reader", "chat"), ("chatter", "chat"), ("limited", "chat")]}
    keys["admin"] = auth(db.keys.create("root", "admin")[1])
    db.dispose()
    workers = Workers(home, database_url)
    try:
        seen: set[str] = set()

        def both_ready():
            response = workers.request("GET", "/readyz")
            if response.status_code == 200:
                seen.add(response.headers[WORKER])
            return len(seen) >= 2

        workers.until(both_ready, "both workers ready")
        yield workers, keys
    finally:
        workers.stop()


def test_two_workers_share_the_index_jobs_promotions_and_rate_limits(deployment):
    workers, keys = deployment
    # Ingest through one worker; the job runs exactly once (claimed under a lease) and both workers search it.
    files = [("files", ("badge.md", b"# Badges\n\nLost badges are replaced at reception for 15 EUR.", "text/markdown"))]
    upload = workers.request("POST", "/v1/documents", files=files, data={"collection": "default"},
                             headers=keys["writer"])
    assert upload.status_code == 202, upload.text
    ingested_by, job_id = upload.headers[WORKER], upload.json()["job_id"]

    def job_done():
        response = workers.request("GET", f"/v1/jobs/{job_id}", headers=keys["writer"])
        if response.status_code == 429:  # polled faster than the limit allows: wait
            return None
        job = response.json()
        assert job["status"] != "failed", job
        return job if job["status"] == "done" else None

    job = workers.until(job_done, "the ingest job", pause_s=1.0)
    assert job["report"]["files"][0]["status"] == "added"
    searched_by: set[str] = set()

    def found_by_both():
        response = workers.request("POST", "/v1/search", json={"query": "lost badge replaced at reception"},
                                   headers=keys["reader"])
        if response.status_code == 429:  # the kernel kept picking one worker: this key's minute is spent, wait
            return None
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["document"] == "badge.md"  # every worker sees the new index
        searched_by.add(response.headers[WORKER])
        return len(searched_by) >= 2

    workers.until(found_by_both, "searches answered by both workers")
    assert searched_by - {ingested_by}  # a worker that did not run the ingest found the document

    # A promotion through one worker reaches the other without a restart.
    promoted = workers.request("POST", "/v1/adapters/assistant/promote", json={"version": 2}, headers=keys["admin"])
    assert promoted.status_code == 200 and promoted.json()["applied"], promoted.text
    time.sleep(0.6)  # three polls of the registry (server.shared_poll_s = 0.2)
    answered: dict[str, str] = {}

    def both_answer_with_v2():
        response = workers.request("POST", "/v1/chat", json={"message": "hotel rate cap Berlin"},
                                   headers=keys["chatter"])
        if response.status_code == 429:
            return None
        assert response.status_code == 200, response.text
        answered[response.headers[WORKER]] = response.json()["answer"]["adapter"]
        return len(answered) >= 2

    workers.until(both_answer_with_v2, "chats answered by both workers")
    assert set(answered.values()) == {"assistant@v2"}, answered

    # One key, 2 x the limit spread over both workers: the limit holds for the deployment, not per worker.
    started, allowed, refused_by = time.monotonic(), 0, set()
    for _ in range(2 * RATE_PER_MINUTE):
        response = workers.request("POST", "/v1/search", json={"query": "hotel"}, headers=keys["limited"])
        assert response.status_code in (200, 429), response.text
        allowed += response.status_code == 200
        if response.status_code == 429:
            refused_by.add(response.headers[WORKER])
            assert int(response.headers["Retry-After"]) >= 1
    refilled = (time.monotonic() - started) * RATE_PER_MINUTE / 60  # tokens that came back while the loop ran
    assert RATE_PER_MINUTE <= allowed <= RATE_PER_MINUTE + refilled + 1, (allowed, refilled)
    assert len(refused_by) == 2  # each worker refused: each knew what the other had spent
