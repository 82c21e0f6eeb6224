"""Faults a running server must survive: killed mid-answer, a locked / read-only / full disk, damaged files, a
client that hangs up mid-upload. Each ends in a clear 4xx/503 `{"error": {"code", "message"}}` (never a 500 or a
hang) and leaves the state that was acknowledged intact.

Fake backends throughout; a server that must be SIGKILLed runs as `ragtune serve` in a subprocess, the rest run
in-process (TestClient, or uvicorn in a thread for raw sockets). Index damage during `ragtune ingest` is covered
by tests/test_crash_safety.py; this file covers the server around it.

The full-disk ingest case mounts a 16 MiB tmpfs and needs root (else it is skipped; the upload path is also
tested by injecting ENOSPC, which runs everywhere). A read-only database is made with SQLite's own
`PRAGMA query_only` on the server's connections: root ignores chmod, and the error SQLite raises
(SQLITE_READONLY) is the same one a read-only file gives.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import event

from assistant import assembly
from assistant.db import database
from assistant.app import create_app
from tests.api_helpers import auth, build_home, settings_for

PROJECT = Path(__file__).resolve().parents[1]
QUESTION = "What is the hotel rate cap in Berlin?"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_home(tmp_path_factory.mktemp("faults"))


@pytest.fixture
def home(built, tmp_path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(built, target)
    return target


def make_key(home: Path, scopes: str = "chat,ingest") -> str:
    db = assembly.database(settings_for(home))
    try:
        return db.keys.create("faults", scopes, all_collections=True)[1]
    finally:
        db.dispose()


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code and len(body["message"]) > 20, body
    return body


def table_count(db_file: Path, table: str) -> int:
    with sqlite3.connect(db_file, timeout=10) as connection:
        return connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


# --- a server process that can be killed -------------------------------------------------------


class ServerProcess:
    """`ragtune serve` on a free loopback port, in its own process group (SIGKILL takes it whole)."""

    def __init__(self, home: Path, logs: Path, **env: str):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = logs / f"server-{self.port}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("RAGTUNE_")}
        environ.update(RAGTUNE_PROFILE="test", RAGTUNE_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                       DO_NOT_TRACK="1", PYTHONPATH=str(PROJECT), **env)
        logs.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(self.port)],
                                         cwd=PROJECT, env=environ, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, f"server exited:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"server not ready:\n{self.log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def test_server_killed_mid_stream_keeps_what_was_acknowledged(home, tmp_path):
    """SIGKILL while an answer streams: the acknowledged conversation and feedback survive a restart, and of the
    answer in flight nothing is stored (it is written in one transaction at its end): only its question remains,
    the same state as an answer cut short by a client (stored but marked incomplete), as the next prompt sees it."""
    key = make_key(home)
    # 0.3 s per token: the one-sentence answer takes ~5 s, so the kill lands mid-answer.
    server = ServerProcess(home, tmp_path / "logs", RAGTUNE_GENERATOR__FAKE_DELAY_S="0.3")
    try:
        with httpx.Client(base_url=server.url, headers=auth(key), timeout=30) as http:
            conversation, answered = _answer_and_rate(http)
            tokens = []
            with http.stream("POST", "/v1/chat", json={"message": "and the rate cap in London?", "stream": True,
                                                       "conversation_id": conversation}) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        tokens.append(json.loads(line[5:])["text"])
                    if len(tokens) == 2:
                        server.kill()  # no shutdown hook, no finally: block runs
                        break
        assert server.proc.returncode == -signal.SIGKILL
    finally:
        server.kill()

    db_file = home / "ragtune.db"
    with sqlite3.connect(db_file) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    restarted = ServerProcess(home, tmp_path / "logs")
    try:
        with httpx.Client(base_url=restarted.url, headers=auth(key), timeout=30) as http:
            messages = http.get(f"/v1/conversations/{conversation}").json()["messages"]
            assert [(m["role"], m["finish_reason"]) for m in messages] == [
                ("user", None), ("assistant", "stop"), ("user", None)]
            assert messages[1]["id"] == answered and "180 EUR" in messages[1]["content"]
            assert not any("".join(tokens).strip() in m["content"] for m in messages if m["role"] == "assistant"
                           and m["id"] != answered)
            votes = _feedback_rows(db_file)
            assert votes == [(answered, -1, "too vague")]
            # The conversation goes on: the unanswered question stays, the next answer is whole.
            follow = http.post("/v1/chat", json={"message": QUESTION, "conversation_id": conversation})
            assert follow.status_code == 200, follow.text
            roles = [m["role"] for m in http.get(f"/v1/conversations/{conversation}").json()["messages"]]
            assert roles == ["user", "assistant", "user", "user", "assistant"]
    finally:
        restarted.stop()


def _answer_and_rate(http: httpx.Client) -> tuple[str, str]:
    answer = http.post("/v1/chat", json={"message": QUESTION})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    vote = http.post(f"/v1/messages/{body['message_id']}/feedback", json={"rating": "down", "comment": "too vague"})
    assert vote.status_code == 200, vote.text
    return body["conversation_id"], body["message_id"]


def _feedback_rows(db_file: Path) -> list[tuple]:
    with sqlite3.connect(db_file) as connection:
        return connection.execute("SELECT message_id, rating, comment FROM feedback").fetchall()


# --- in-process servers --------------------------------------------------------------------------


@pytest.fixture
def client(home):
    app = create_app(settings_for(home), background_load=False)
    with TestClient(app, timeout=30) as http:
        _, key = app.state.services.db.keys.create("faults", "chat,ingest", all_collections=True)
        http.headers.update(auth(key))
        yield http


def test_an_answer_cut_short_is_marked_and_never_primes_the_next_prompt(client, monkeypatch):
    """A partial answer (client gone: "cancelled"; generation failed: "error") stays in the conversation, marked,
    but the next prompt does not show it as something the assistant said."""
    svc = client.app.state.services
    first = client.post("/v1/chat", json={"message": QUESTION}).json()
    conversation = first["conversation_id"]
    key_id = svc.db.keys.list()[0].id
    for reason in ("cancelled", "error"):
        svc.db.conversations.add_message(conversation, key_id, "user", f"question left unanswered ({reason})")
        svc.db.conversations.add_message(conversation, key_id, "assistant", f"Hotel zq{reason} rates are", finish_reason=reason)
    generator = svc.chat.generator
    real_stream, prompts = generator.stream, []

    def recorded(request, cancel, stats=None):
        prompts.append(request.prompt)
        yield from real_stream(request, cancel, stats)

    monkeypatch.setattr(generator, "stream", recorded)
    follow = client.post("/v1/chat", json={"message": "and in London?", "conversation_id": conversation})
    assert follow.status_code == 200, follow.text
    assert "180 EUR" in prompts[-1]  # the complete earlier answer is history
    assert "question left unanswered (cancelled)" in prompts[-1]  # so are the questions
    assert "zqcancelled" not in prompts[-1] and "zqerror" not in prompts[-1]
    stored = client.get(f"/v1/conversations/{conversation}").json()["messages"]
    assert [m["finish_reason"] for m in stored if m["role"] == "assistant"] == ["stop", "cancelled", "error", "stop"]


def test_a_request_shed_by_the_full_queue_stores_nothing(home, monkeypatch):
    app = create_app(settings_for(home, server={"max_queue": 0}), background_load=False)
    with TestClient(app, timeout=30) as http:
        _, key = app.state.services.db.keys.create("faults", "chat", all_collections=True)
        http.headers.update(auth(key))
        first = http.post("/v1/chat", json={"message": QUESTION}).json()
        queue = app.state.services.queue
        queue.running = queue.max_concurrent  # a generation runs and nobody may wait
        try:
            for body in ({"message": QUESTION}, {"message": QUESTION, "stream": True},
                         {"message": QUESTION, "conversation_id": first["conversation_id"]}):
                shed = http.post("/v1/chat", json=body)
                assert_error(shed, 503, "busy")
                assert int(shed.headers["retry-after"]) >= 1
            # The queue filled up between the early check and the generation slot: the 503 takes the new
            # conversation away again (a continued one keeps the unanswered question, as after a crash).
            monkeypatch.setattr(app.state.services.conversations, "_shed_if_full", lambda: None)
            assert_error(http.post("/v1/chat", json={"message": QUESTION, "stream": True}), 503, "busy")
        finally:
            queue.running = 0
        assert table_count(home / "ragtune.db", "conversations") == 1
        assert table_count(home / "ragtune.db", "messages") == 2  # the first question and its answer only


def test_locked_database_answers_503_with_retry_after_instead_of_hanging(client, home, monkeypatch):
    first = client.post("/v1/chat", json={"message": QUESTION}).json()
    # A shorter busy timeout than the shipped 3 s keeps this test short; the code path is the same.
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 500)
    client.app.state.services.db.engine.dispose()  # new connections take it
    db_file = home / "ragtune.db"
    before = {t: table_count(db_file, t) for t in ("conversations", "messages", "feedback", "jobs")}
    lock = sqlite3.connect(db_file, isolation_level=None, timeout=1)
    lock.execute("BEGIN EXCLUSIVE")  # another process writing and never committing
    try:
        attempts = {
            "chat": lambda: client.post("/v1/chat", json={"message": QUESTION}),
            "stream": lambda: client.post("/v1/chat", json={"message": QUESTION, "stream": True}),
            "feedback": lambda: client.post(f"/v1/messages/{first['message_id']}/feedback", json={"rating": 1}),
            "upload": lambda: client.post("/v1/documents", files={"files": ("late.md", b"# Late\n\nLate text.\n")}),
        }
        for name, attempt in attempts.items():
            started = time.monotonic()
            response = attempt()
            waited = time.monotonic() - started
            body = assert_error(response, 503, "database_busy")
            assert response.headers["retry-after"] == "2" and "locked" in body["message"], name
            assert waited < 5, f"{name} waited {waited:.1f} s"  # the busy timeout once or twice, no hang
        # Reads need no write lock; they answer (or, while the key's use is recorded, say busy too).
        read = client.get(f"/v1/conversations/{first['conversation_id']}")
        assert read.status_code == 200 or read.json()["error"]["code"] == "database_busy", read.text
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert {t: table_count(db_file, t) for t in before} == before  # nothing half-written
    upload_dir = home / "uploads"
    assert not upload_dir.exists() or not any(upload_dir.iterdir())  # the refused upload left no file
    assert client.post("/v1/chat", json={"message": QUESTION}).status_code == 200  # and it recovers at once


def test_read_only_database_answers_503_not_500(client, home):
    first = client.post("/v1/chat", json={"message": QUESTION}).json()
    engine = client.app.state.services.db.engine
    with engine.begin() as connection:  # the key's last use is stale, so the next request tries to record it
        connection.exec_driver_sql("UPDATE api_keys SET last_used_at = NULL")

    def query_only(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA query_only=ON")

    event.listen(engine, "connect", query_only)
    engine.dispose()  # every new connection is read-only
    try:
        for response in (
            client.post("/v1/chat", json={"message": QUESTION}),
            client.post(f"/v1/messages/{first['message_id']}/feedback", json={"rating": 1}),
            client.post("/v1/documents", files={"files": ("late.md", b"# Late\n\nLate text.\n")}),
        ):
            if response.status_code == 503 and response.json()["error"]["code"] == "database_read_only":
                assert "read-only" in response.json()["error"]["message"]
                assert "retry-after" not in response.headers  # retrying soon will not help
            else:
                pytest.fail(f"expected 503 database_read_only, got {response.status_code} {response.text}")
        # Reads stay reads: recording a key's use is best-effort, so search (another database) still answers,
        # also when the key's last use is older than the once-a-minute touch.
        search = client.post("/v1/search", json={"query": QUESTION})
        assert search.status_code == 200, search.text
    finally:
        event.remove(engine, "connect", query_only)
        engine.dispose()
    assert client.post("/v1/chat", json={"message": QUESTION}).status_code == 200


def test_disk_full_while_an_upload_is_saved_leaves_no_job_and_no_partial_file(client, home, monkeypatch):
    real_write = Path.write_bytes

    def full_after_half(self, data):
        real_write(self, data[: len(data) // 2])  # what a full disk leaves: part of the file
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_bytes", full_after_half)
    response = client.post("/v1/documents", files={"files": ("big.md", b"# Big\n\n" + b"word " * 4000)})
    body = assert_error(response, 503, "storage_full")
    assert "disk is full" in body["message"]
    monkeypatch.undo()
    assert table_count(home / "ragtune.db", "jobs") == 0
    assert not any((home / "uploads").iterdir()) and not (home / "documents").exists()
    again = client.post("/v1/documents", files={"files": ("big.md", b"# Big\n\n" + b"word " * 4000)})
    assert again.status_code == 202, again.text
    assert wait_job(client, again.json()["job_id"])["status"] == "done"


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs (needs root or CAP_SYS_ADMIN; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip() or made.returncode}); the injected-ENOSPC "
                    "upload test still runs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path, leave_bytes: int = 0) -> Path:
    """Write a filler file until the disk is full, then give back `leave_bytes`."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:  # unbuffered: nothing left to flush (and fail) at close
        for block in (1 << 20, 1 << 12):
            try:
                while True:
                    handle.write(b"\0" * block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave_bytes))
    return filler


def test_disk_full_during_ingest_fails_the_job_clearly_and_keeps_the_index(built, small_disk):
    home = small_disk / "home"
    shutil.copytree(built, home)
    app = create_app(settings_for(home, server={"rate_limit_per_minute": 100_000}), background_load=False)
    with TestClient(app, timeout=30) as http:
        _, key = app.state.services.db.keys.create("faults", "chat,ingest", all_collections=True)
        http.headers.update(auth(key))
        before = http.post("/v1/search", json={"query": QUESTION}).json()["results"]
        documents = http.get("/v1/documents").json()["documents"]
        upload = {"files": ("manual.md", b"# Manual\n\n" + b"The zqmanual pump needs a new seal every year. " * 3000)}

        filler = fill(small_disk)
        assert_error(http.post("/v1/documents", files=upload), 503, "storage_full")  # nowhere to put the upload

        os.truncate(filler, filler.stat().st_size - 200_000)  # room for the upload (140 KB), not for its index
        accepted = http.post("/v1/documents", files=upload)
        assert accepted.status_code == 202, accepted.text
        job = wait_job(http, accepted.json()["job_id"])
        assert job["status"] == "failed", job
        assert "disk" in job["error"] and "full" in job["error"], job  # the reason, in words

        # The index is as it was: same documents, same answers, SQLite intact, nothing of the new file.
        assert http.get("/v1/documents").json()["documents"] == documents
        assert http.post("/v1/search", json={"query": QUESTION}).json()["results"] == before
        hits = http.post("/v1/search", json={"query": "zqmanual pump seal", "mode": "bm25"}).json()["results"]
        assert all(h["document"] != "manual.md" for h in hits), hits
        with sqlite3.connect(home / "index" / "docstore.sqlite") as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)

        filler.unlink()  # space again: the same upload goes through
        again = http.post("/v1/documents", files=upload)
        assert wait_job(http, again.json()["job_id"])["status"] == "done"
        hits = http.post("/v1/search", json={"query": "zqmanual pump seal", "mode": "bm25"}).json()["results"]
        assert hits and hits[0]["document"] == "manual.md"


class Collected(logging.Handler):
    """Log records of one logger (pytest's caplog loses them once NeMo Guardrails has configured logging)."""

    def __init__(self, name: str):
        super().__init__(logging.WARNING)
        self.logger, self.messages = logging.getLogger(name), []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> "Collected":
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self)


def test_disk_full_while_a_stale_faiss_file_is_rebuilt_still_answers_from_memory(built, small_disk):
    """A crash (or a full disk) between the docstore commit and the FAISS write leaves a stale file; a server that
    rebuilds it but cannot save it serves the rebuilt index from memory instead of failing every search."""
    home = small_disk / "home"
    shutil.copytree(built, home)
    meta_path = home / "index" / "vectors" / "default.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "generation": meta["generation"] - 1}))
    app = create_app(settings_for(home), background_load=False)
    with TestClient(app, timeout=30) as http, Collected("ingestion.index_store") as warnings:
        _, key = app.state.services.db.keys.create("faults", "chat", all_collections=True)
        http.headers.update(auth(key))
        assert http.get("/v1/documents").status_code == 200  # the key's use is recorded before the disk fills
        fill(small_disk)
        hits = http.post("/v1/search", json={"query": "hotel rate cap Berlin", "mode": "dense"})
        assert hits.status_code == 200 and hits.json()["results"][0]["document"] == "travel.md", hits.text
    assert json.loads(meta_path.read_text())["generation"] == meta["generation"] - 1  # still says: rebuild me
    assert not list(meta_path.parent.glob(".*.tmp"))  # no half-written file left on the full disk
    assert any("serving it from memory" in m and "incomplete" in m for m in warnings.messages), warnings.messages


def wait_job(client, job_id: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.get(f"/v1/jobs/{job_id}")
        if response.status_code == 429:  # polled past the key's per-minute limit while a loaded host ingests: wait
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        job = response.json()
        assert "status" in job, job
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    pytest.fail(f"job {job_id} did not finish in {timeout_s} s")


def test_corrupt_faiss_file_is_rebuilt_and_search_keeps_answering(home):
    faiss_file = home / "index" / "vectors" / "default.faiss"
    faiss_file.write_bytes(b"IxFI" + os.urandom(faiss_file.stat().st_size))  # a plausible header, garbage after
    app = create_app(settings_for(home), background_load=False)
    with TestClient(app, timeout=30) as http:
        assert http.get("/readyz").status_code == 200
        _, key = app.state.services.db.keys.create("faults", "chat", all_collections=True)
        hits = http.post("/v1/search", json={"query": "hotel rate cap Berlin", "mode": "dense"}, headers=auth(key))
        assert hits.status_code == 200 and hits.json()["results"][0]["document"] == "travel.md", hits.text


def test_corrupt_docstore_is_refused_clearly_and_the_server_stays_up(home):
    """The docstore is the index's source of truth: nothing to fall back on, so the server says so (not ready,
    503 with the reason) and keeps answering health checks; a damaged file found while serving is a 503 too."""
    docstore = home / "index" / "docstore.sqlite"
    with sqlite3.connect(docstore) as connection:  # everything into the main file, so its bytes are the index
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    good = docstore.read_bytes()
    docstore.write_bytes(b"this is not a SQLite file" + os.urandom(4096))
    for suffix in ("-wal", "-shm"):
        Path(f"{docstore}{suffix}").unlink(missing_ok=True)
    app = create_app(settings_for(home), background_load=False)
    with TestClient(app, timeout=30) as http:
        _, key = app.state.services.db.keys.create("faults", "chat", all_collections=True)
        assert http.get("/healthz").status_code == 200
        ready = http.get("/readyz")
        assert ready.status_code == 503 and "not a database" in ready.json()["error"], ready.text
        refused = http.post("/v1/chat", json={"message": QUESTION}, headers=auth(key))
        assert_error(refused, 503, "not_ready")
    docstore.write_bytes(good)
    app = create_app(settings_for(home), background_load=False)
    with TestClient(app, timeout=30) as http:
        _, key = app.state.services.db.keys.create("faults2", "chat", all_collections=True)
        assert http.post("/v1/search", json={"query": QUESTION}, headers=auth(key)).status_code == 200
        # Damaged under a running server (a disk error, a bad restore): it keeps answering from its open connection
        # (WAL: pages it already knows), or says 503 with the reason; never a 500.
        before = http.post("/v1/search", json={"query": QUESTION}, headers=auth(key)).json()["results"]
        with docstore.open("r+b") as handle:
            handle.write(b"\0" * 100)  # the 100-byte header: magic string, page size, file format
        after = http.post("/v1/search", json={"query": QUESTION}, headers=auth(key))
        if after.status_code == 200:
            assert after.json()["results"] == before
        else:
            assert_error(after, 503, "database_corrupt")
        assert http.get("/healthz").status_code == 200


# --- a client that hangs up mid-upload ----------------------------------------------------------


def test_client_gone_mid_upload_leaves_no_partial_document(home):
    from tests.api_helpers import LiveServer

    app = create_app(settings_for(home), background_load=False)
    with LiveServer(app) as server:
        svc = app.state.services
        _, key = svc.db.keys.create("faults", "chat,ingest", all_collections=True)
        documents_before = {d.name for d in svc.conversations.store.docstore.list_documents()}
        boundary = uuid.uuid4().hex
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"half.md\"\r\n"
                f"Content-Type: text/markdown\r\n\r\n# Half\n\n").encode()
        promised = 400_000
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall((f"POST /v1/documents HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\n"
                          f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                          f"Content-Length: {promised}\r\n\r\n").encode() + head + b"half a document " * 5000)
            time.sleep(0.3)  # the server is reading the body
        # the socket is closed with ~80 KB of the promised 400 KB sent
        time.sleep(0.5)
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=10) as http:
            assert http.get("/healthz").status_code == 200
            assert svc.db.jobs.list(svc.db.keys.list()[0].id) == []
            uploads = svc.settings.home / "uploads"
            assert not uploads.exists() or not any(uploads.iterdir())
            assert not (svc.settings.home / "documents" / "default" / "half.md").exists()
            assert {d.name for d in svc.conversations.store.docstore.list_documents()} == documents_before
            metrics = http.get("/metrics").text
            assert 'status="500"' not in metrics and 'route="/v1/documents",status="400"' in metrics, metrics
            whole = http.post("/v1/documents", files={"files": ("whole.md", b"# Whole\n\nA complete document.\n")})
            assert whole.status_code == 202, whole.text


# --- an adapter saved onto a full disk ------------------------------------------------------------


def test_disk_full_while_an_adapter_is_saved_keeps_the_promoted_version(tmp_path, monkeypatch):
    """Training writes into a staging folder that only a finished save turns into a version: ENOSPC while the
    weights are written fails the run with the OS's reason, and the registry still serves the promoted v1."""
    import shutil as sh

    import peft.peft_model

    from finetune.finetune_job import run_finetune
    from finetune.registry import AdapterRegistry
    from tests.test_finetune import dataset, recipe
    from tests.test_finetune import settings_for as finetune_settings
    from tests.test_runtime_contract import tiny_model_dir

    base, adapter = tiny_model_dir(tmp_path / "tiny")
    settings = finetune_settings(tmp_path, base)
    registry = AdapterRegistry(settings.adapters_dir)
    staging = registry.staging_dir("assistant")
    for file in adapter.iterdir():
        sh.copy(file, staging / file.name)
    registry.publish("assistant", staging, {"base_model": "tiny"})
    registry.promote("assistant@v1")

    def full_disk(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 64)  # the start of the file, then no space
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

    monkeypatch.setattr(peft.peft_model, "safe_save_file", full_disk)
    with pytest.raises(OSError, match="No space left on device") as caught:
        run_finetune(settings, dataset(tmp_path), recipe(epochs=1, checkpoint_every_steps=100), "assistant")
    assert caught.value.errno == errno.ENOSPC and "adapter_model.safetensors" in str(caught.value)
    monkeypatch.undo()

    assert [v.ref for v in registry.versions("assistant")] == ["assistant@v1"]
    assert registry.promoted("assistant").ref == "assistant@v1"
    built = assembly.generator(settings)  # v1 verifies against its recorded hashes and loads
    try:
        assert built.adapters() == ["assistant", "assistant@v1"]
        assert assembly.default_adapter(settings, built) == "assistant"
    finally:
        built.close()
