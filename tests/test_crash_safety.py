"""Crash safety: an ingest killed with SIGKILL at any moment leaves an index that loads and answers.

A first batch is ingested once (module fixture) and its home copied into each test. A second,
larger batch is ingested by `python -m assistant.cli` in a subprocess, killed at a chosen point,
and then: the index opens, answers about the first batch, holds only whole documents; a second
run completes with exit code 0, reports the files committed before the kill as "unchanged" and
makes the whole second batch searchable. Some kill points need the subprocess to stop at an
exact place (inside the docstore transaction, during the FAISS write): a small wrapper patches
one function to announce itself and sleep there, which is where the kill lands.

The FAISS file and its sidecar are also damaged by hand: a truncated file, a stale generation
and a different embedder.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from assistant import assembly  # noqa: E402
from assistant.settings import Settings, load_settings  # noqa: E402
from ingestion.index_store import IndexStore, IndexStoreError  # noqa: E402
from ingestion.vector_index import VectorIndex  # noqa: E402
from tests.conftest import count_builds  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
COLLECTION = "default"

FIRST_BATCH = {
    "badges.md": "# Badges\n\nLost badges are replaced at the security desk in building C. "
    "Bring photo identification; a replacement badge costs 15 EUR.\n",
    "parking.md": "# Parking\n\nVisitor parking spaces are on level P2. Register the licence plate "
    "at reception before 09:00 to avoid a clamp.\n",
    "expenses.md": "# Expenses\n\nSubmit expense claims within 30 days through the finance portal. "
    "Receipts above 25 EUR must be scanned and attached.\n",
    "canteen.md": "# Canteen\n\nThe canteen serves a vegetarian dish every day and closes at 14:30. "
    "Payment is by badge only.\n",
    "laptops.md": "# Laptops\n\nLaptop refresh happens every four years. Return the old laptop to the "
    "IT service point within two weeks of receiving the new one.\n",
}
FIRST_QUERY = ("lost badges are replaced at the security desk in building C", "badges.md")

SECOND_BATCH_SIZE = 30


def settings_for(home: Path, **embedder) -> Settings:
    overrides: dict = {"home": str(home)}
    if embedder:
        overrides["embedder"] = embedder
    return load_settings(profile="test", overrides=overrides, environ={})


def marker(n: int) -> str:
    return f"zq{n:03d}marker"


def write_second_batch(directory: Path) -> list[Path]:
    """30 Markdown files of ~12 KiB, each with a unique marker word to search for."""
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for n in range(SECOND_BATCH_SIZE):
        paragraphs = [
            f"Procedure {marker(n)} step {p}: calibrate the sensor array of unit {n}, record the reading in the "
            f"log, compare it with the reference value and escalate deviations above {p % 7 + 1} percent."
            for p in range(40)
        ]
        path = directory / f"proc_{n:03d}.md"
        path.write_text(f"# Procedure {n}\n\n## Calibration\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
        files.append(path)
    return files


@pytest.fixture(scope="module")
def first_index(tmp_path_factory) -> Path:
    """A home holding the first batch; tests copy it (sources stay at this module-wide path)."""
    root = tmp_path_factory.mktemp("first_batch")
    docs = root / "docs"
    docs.mkdir()
    for name, text in FIRST_BATCH.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = settings_for(root / "home")
    job = assembly.ingest_job(settings)
    report = job.run([docs])
    job.store.close()
    assert report.exit_code() == 0 and report.counts()["added"] == len(FIRST_BATCH), report.to_dict()
    retriever = assembly.retriever(settings)
    assert retriever.search(FIRST_QUERY[0], k=1)[0].document == FIRST_QUERY[1]
    retriever.store.close()
    return root / "home"


@pytest.fixture
def home(first_index, tmp_path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(first_index, target)
    return target


# --- inspecting an index on disk -----------------------------------------------------------


def db_path(home: Path) -> Path:
    return home / "index" / "docstore.sqlite"


def query_db(home: Path, sql: str, args: tuple = ()) -> list[tuple]:
    connection = sqlite3.connect(db_path(home), timeout=10)
    try:
        return connection.execute(sql, args).fetchall()
    finally:
        connection.close()


def document_count(home: Path) -> int:
    return query_db(home, "SELECT COUNT(*) FROM documents")[0][0]


def committed_sources(home: Path) -> set[str]:
    return {row[0] for row in query_db(home, "SELECT source FROM documents")}


def sidecar(home: Path) -> dict:
    return json.loads((home / "index" / "vectors" / f"{COLLECTION}.json").read_text())


def docstore_generation(home: Path) -> int:
    rows = query_db(home, "SELECT value FROM meta WHERE key=?", (f"generation:{COLLECTION}",))
    return int(rows[0][0]) if rows else 0


def assert_index_consistent(home: Path) -> None:
    """SQLite intact; every document has exactly its chunk_count chunks (ords 0..n-1); no orphans."""
    assert query_db(home, "PRAGMA integrity_check") == [("ok",)]
    rows = query_db(
        home,
        "SELECT d.name, d.chunk_count, COUNT(c.id), COALESCE(MIN(c.ord), 0), COALESCE(MAX(c.ord), -1)"
        " FROM documents d LEFT JOIN chunks c ON c.document_id = d.id GROUP BY d.id",
    )
    for name, expected, actual, low, high in rows:
        assert expected >= 1 and actual == expected and (low, high) == (0, expected - 1), (name, expected, actual)
    orphans = query_db(home, "SELECT COUNT(*) FROM chunks WHERE document_id NOT IN (SELECT id FROM documents)")
    assert orphans == [(0,)]


def assert_first_batch_answers(home: Path) -> None:
    """A fresh writable IndexStore and a fresh (read-only) Retriever both open and answer."""
    settings = settings_for(home)
    store = assembly.index_store(settings)
    try:
        assert {d.name for d in store.docstore.list_documents(COLLECTION)} >= set(FIRST_BATCH)
    finally:
        store.close()
    retriever = assembly.retriever(settings)
    try:
        for mode in ("dense", "bm25", "hybrid"):
            hits = retriever.search(FIRST_QUERY[0], k=1, mode=mode)
            assert hits and hits[0].document == FIRST_QUERY[1], (mode, hits)
        assert retriever.store.dense(COLLECTION).size == query_db(home, "SELECT COUNT(*) FROM chunks")[0][0]
    finally:
        retriever.store.close()


def assert_batch_searchable(home: Path, files: list[Path]) -> None:
    """BM25 ranks each file first for its marker word; the FAISS index holds each file's vectors.

    (The fake hash embedder cannot tell 30 near-identical files apart by one word, so the dense
    check restricts the search to the file and asserts that its chunks come back.)
    """
    retriever = assembly.retriever(settings_for(home))
    try:
        queries = [f"procedure {marker(int(p.stem.split('_')[1]))} calibrate sensor" for p in files]
        for path, hits in zip(files, retriever.search_many(queries, k=1, mode="bm25")):
            assert hits and hits[0].document == path.name, (path.name, hits)
        for path, query in zip(files, queries):
            hits = retriever.search(query, k=3, documents=[path.name], mode="dense")
            assert len(hits) == 3 and {h.document for h in hits} == {path.name}, (path.name, hits)
    finally:
        retriever.store.close()


# --- running `ragtune ingest` in a subprocess ------------------------------------------------

# Runs the real CLI, with one function patched to announce itself on stderr and sleep there,
# so that the test's SIGKILL lands at an exact point (RT_CRASH_PAUSE picks it).
PAUSING_CLI = r"""
import os, sys, time

point = os.environ["RT_CRASH_PAUSE"]


def pause():
    sys.stderr.write(f"RT-PAUSED-AT:{point}\n")
    sys.stderr.flush()
    time.sleep(3600)


if point.startswith("transaction:"):
    # Inside DocStore.replace_document's transaction: rows inserted, not yet committed.
    from ingestion.docstore import DocStore

    real_bump, seen, stop_at = DocStore._bump, [0], int(point.split(":")[1])

    def bump(self, collection):
        real_bump(self, collection)
        seen[0] += 1
        if seen[0] == stop_at:
            pause()

    DocStore._bump = bump
elif point == "faiss-write":
    # The new FAISS file is written to its temporary name, not yet renamed over the old one.
    import faiss

    real_write = faiss.write_index

    def write_index(index, path):
        real_write(index, path)
        pause()

    faiss.write_index = write_index
elif point == "sidecar-write":
    # The new FAISS file is in place; its sidecar still names the old generation.
    import ingestion.index_store as index_store

    real_atomic = index_store._atomic_write

    def atomic_write(path, text):
        if path.parent.name == "vectors" and path.suffix == ".json":
            pause()
        real_atomic(path, text)

    index_store._atomic_write = atomic_write

from assistant.cli import main

main()
"""


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGTUNE_")}
    env.update(RAGTUNE_PROFILE="test", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DO_NOT_TRACK="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


@dataclass
class Ingest:
    proc: subprocess.Popen
    stdout: Path
    stderr: Path
    started: float

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the ingest and its parser worker (its own process group): no cleanup runs."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def alive_or_fail(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"ingest ended (rc {self.proc.returncode}) before the kill point:\n{self.output()[-3000:]}")


def start_ingest(home: Path, batch: Path, logs: Path, pause: str | None = None) -> Ingest:
    logs.mkdir(parents=True, exist_ok=True)
    out, err = logs / "stdout.txt", logs / "stderr.txt"
    args = ["--home", str(home), "ingest", str(batch), "--json"]
    command = [sys.executable, "-c", PAUSING_CLI, *args] if pause else [sys.executable, "-m", "assistant.cli", *args]
    env = cli_env(RT_CRASH_PAUSE=pause) if pause else cli_env()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            command, cwd=PROJECT, env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True
        )
    return Ingest(proc, out, err, time.monotonic())


def wait_for(ingest: Ingest, condition, what: str, timeout: float = 180.0, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        ingest.alive_or_fail()
        time.sleep(interval)
    ingest.kill()
    pytest.fail(f"timed out waiting for {what}:\n{ingest.output()[-3000:]}")


def run_ingest(home: Path, batch: Path) -> tuple[int, dict, str]:
    result = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "--home", str(home), "ingest", str(batch), "--json"],
        cwd=PROJECT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        report = {}
    return result.returncode, report, result.stdout + result.stderr


# --- kill points -----------------------------------------------------------------------------


def kill_after_seconds(seconds: float):
    def trigger(ingest: Ingest, home: Path, base: int) -> None:
        wait_for(ingest, lambda: time.monotonic() - ingest.started >= seconds, f"{seconds} s", interval=0.005)

    return trigger


def kill_when_documents(grown_by: int):
    def trigger(ingest: Ingest, home: Path, base: int) -> None:
        wait_for(ingest, lambda: document_count(home) >= base + grown_by, f"{grown_by} committed document(s)")

    return trigger


def kill_when_paused(ingest: Ingest, home: Path, base: int) -> None:
    wait_for(ingest, lambda: "RT-PAUSED-AT:" in ingest.stderr.read_text(errors="replace"), "the pause point", interval=0.05)


SCENARIOS = {
    # name: (pause point for the wrapper or None, trigger, committed batch-2 documents at the kill or None)
    "after-0.5s": (None, kill_after_seconds(0.5), None),
    "after-2s": (None, kill_after_seconds(2.0), None),
    "first-document-committed": (None, kill_when_documents(1), None),
    "half-the-batch-committed": (None, kill_when_documents(SECOND_BATCH_SIZE // 2), None),
    "inside-third-transaction": ("transaction:3", kill_when_paused, 2),
    "during-faiss-write": ("faiss-write", kill_when_paused, SECOND_BATCH_SIZE),
    "between-faiss-and-sidecar": ("sidecar-write", kill_when_paused, SECOND_BATCH_SIZE),
}


@pytest.mark.integration
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_sigkill_during_ingest_leaves_a_usable_index(home, tmp_path, scenario):
    pause, trigger, expected_committed = SCENARIOS[scenario]
    batch = write_second_batch(tmp_path / "batch2")
    base = document_count(home)
    first_generation = sidecar(home)["generation"]
    assert docstore_generation(home) == first_generation

    ingest = start_ingest(home, tmp_path / "batch2", tmp_path / "logs", pause)
    trigger(ingest, home, base)
    ingest.kill()
    assert ingest.proc.returncode == -signal.SIGKILL

    # 1. After the kill: the index loads, answers about the first batch and holds whole documents.
    committed = committed_sources(home) & {str(p) for p in batch}
    if expected_committed is not None:
        assert len(committed) == expected_committed, sorted(committed)
    assert_index_consistent(home)
    assert_first_batch_answers(home)
    if committed:
        # The docstore moved on; the FAISS file on disk did not (or not fully): readers rebuilt it.
        assert docstore_generation(home) != sidecar(home)["generation"]
        assert_batch_searchable(home, [p for p in batch if str(p) in committed])

    # 2. A second run completes, skips what was committed and makes the whole batch searchable.
    code, report, output = run_ingest(home, tmp_path / "batch2")
    assert code == 0, output[-3000:]
    statuses = {f["path"]: f["status"] for f in report["files"]}
    assert set(statuses) == {str(p) for p in batch}
    for path in batch:
        assert statuses[str(path)] == ("unchanged" if str(path) in committed else "added"), (path.name, statuses)
    assert document_count(home) == len(FIRST_BATCH) + SECOND_BATCH_SIZE
    assert_index_consistent(home)
    assert_first_batch_answers(home)
    assert_batch_searchable(home, batch)

    # 3. The FAISS file on disk is current again after a successful run (not rebuilt by every reader).
    meta = sidecar(home)
    assert meta["generation"] == docstore_generation(home), (
        f"after a successful re-run the sidecar names generation {meta['generation']} but the docstore is at "
        f"{docstore_generation(home)}: the FAISS file was left stale, so every reader rebuilds it"
    )
    assert meta["count"] == query_db(home, "SELECT COUNT(*) FROM chunks")[0][0]


# --- damaged FAISS files and sidecars ---------------------------------------------------------


def test_intact_index_loads_without_a_rebuild(home, monkeypatch):
    builds = count_builds(monkeypatch)
    retriever = assembly.retriever(settings_for(home))
    assert retriever.search(FIRST_QUERY[0], k=1, mode="dense")[0].document == FIRST_QUERY[1]
    assert builds == []  # the control for the tests below: a rebuild is observable


@pytest.mark.parametrize("keep", ["nothing", "16 bytes", "half", "all but 8 bytes"])
def test_truncated_faiss_file_is_rebuilt_from_the_docstore(home, monkeypatch, caplog, keep):
    faiss_path = home / "index" / "vectors" / f"{COLLECTION}.faiss"
    size = faiss_path.stat().st_size
    length = {"nothing": 0, "16 bytes": 16, "half": size // 2, "all but 8 bytes": size - 8}[keep]
    with faiss_path.open("r+b") as handle:
        handle.truncate(length)
    builds = count_builds(monkeypatch)
    caplog.set_level(logging.WARNING, logger="ingestion.index_store")

    retriever = assembly.retriever(settings_for(home))  # read-only: rebuilds in memory
    assert retriever.search(FIRST_QUERY[0], k=1, mode="dense")[0].document == FIRST_QUERY[1]
    assert len(builds) == 1
    assert "rebuilding from the docstore" in caplog.text
    assert faiss_path.stat().st_size == length  # a reader never writes

    store = assembly.index_store(settings_for(home))  # a writer rebuilds and saves a good file
    rows = query_db(home, "SELECT COUNT(*) FROM chunks")[0][0]
    assert store.dense(COLLECTION).size == rows
    store.close()
    assert VectorIndex.load(faiss_path, settings_for(home).index).size == rows
    assert sidecar(home)["generation"] == docstore_generation(home)


def test_stale_sidecar_generation_triggers_a_rebuild(home, monkeypatch):
    meta_path = home / "index" / "vectors" / f"{COLLECTION}.json"
    meta = sidecar(home)
    meta["generation"] -= 1
    meta_path.write_text(json.dumps(meta))
    builds = count_builds(monkeypatch)

    retriever = assembly.retriever(settings_for(home))
    assert retriever.search(FIRST_QUERY[0], k=1, mode="dense")[0].document == FIRST_QUERY[1]
    assert len(builds) == 1

    store = assembly.index_store(settings_for(home))
    store.dense(COLLECTION)
    store.close()
    assert len(builds) == 2 and sidecar(home)["generation"] == docstore_generation(home)
    fresh = assembly.retriever(settings_for(home))  # repaired: the next reader loads the file
    fresh.search(FIRST_QUERY[0], k=1, mode="dense")
    assert len(builds) == 2


def test_sidecar_count_mismatch_or_missing_sidecar_triggers_a_rebuild(home, monkeypatch):
    meta_path = home / "index" / "vectors" / f"{COLLECTION}.json"
    meta = sidecar(home)
    meta["count"] += 1
    meta_path.write_text(json.dumps(meta))
    builds = count_builds(monkeypatch)
    assert assembly.retriever(settings_for(home)).search(FIRST_QUERY[0], k=1, mode="dense")[0].document == FIRST_QUERY[1]
    assert len(builds) == 1
    meta_path.unlink()
    assert assembly.retriever(settings_for(home)).search(FIRST_QUERY[0], k=1, mode="dense")[0].document == FIRST_QUERY[1]
    assert len(builds) == 2
    meta_path.write_text("{not json")
    assert assembly.retriever(settings_for(home)).search(FIRST_QUERY[0], k=1, mode="dense")[0].document == FIRST_QUERY[1]
    assert len(builds) == 3


def test_opening_with_a_different_embedder_is_refused_clearly(home):
    other = settings_for(home, fake_dim=32)
    for open_index in (
        lambda: assembly.index_store(other),
        lambda: assembly.index_store(other, readonly=True),
        lambda: assembly.retriever(other),
        lambda: assembly.ingest_job(other),
    ):
        with pytest.raises(IndexStoreError) as caught:
            open_index()
        message = str(caught.value)
        assert "fake-hash-v1:64" in message and "fake-hash-v1:32" in message
        assert "cannot be mixed" in message and "--home" in message
    # The refusal changed nothing: the original embedder still opens and answers.
    assert_first_batch_answers(home)


def test_readonly_open_of_a_missing_index_says_what_to_do(tmp_path):
    settings = settings_for(tmp_path / "nowhere")
    with pytest.raises(IndexStoreError, match="ragtune ingest"):
        IndexStore(settings.index_dir, assembly.embedder(settings), settings.index, readonly=True)
    assert not (tmp_path / "nowhere").exists()
