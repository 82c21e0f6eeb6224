"""`ragtune backup` / `ragtune restore`: a round trip of a whole home, snapshots taken while writers run,
and restores that refuse hostile or damaged archives without touching the target."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import tarfile
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant import assembly, backup
from assistant.restore import restore
from assistant.cli import app
from finetune.registry import AdapterRegistry
from tests.conftest import make_corpus
from tests.api_helpers import settings_for


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A home with an index, keys in the server database, an adapter, an audit log, an eval run and a model cache."""
    root = tmp_path_factory.mktemp("backup")
    home = root / "home"
    settings = settings_for(home)
    corpus = make_corpus(root / "docs", {"travel.md": "# Travel\n\nHotel rates are capped at 180 EUR per night in "
                                                      "Berlin.\n", "vpn.md": "# VPN\n\nInstall GlobalProtect.\n"})
    assert assembly.ingest_job(settings).run([corpus]).exit_code() == 0
    db = assembly.database(settings)
    db.keys.create("helpdesk", "chat", all_collections=True)
    db.dispose()
    registry = AdapterRegistry(settings.adapters_dir)
    staging = registry.staging_dir("assistant")
    (staging / "adapter_config.json").write_text("{}")
    (staging / "adapter_model.safetensors").write_bytes(b"weights")
    registry.promote(registry.publish("assistant", staging, {}).ref)
    (registry.root / "assistant" / ".staging-1-2").mkdir()  # a training run in progress: not state to restore
    (home / "audit").mkdir()
    (home / "audit" / "guardrails.jsonl").write_text('{"rail": "pii"}\n{"rail": "inj')  # an append in flight
    (home / "evals" / "v1").mkdir(parents=True)
    (home / "evals" / "v1" / "summary.json").write_text('{"variants": {}}')
    (settings.models_dir / "gemma-x").mkdir(parents=True)
    (settings.models_dir / "gemma-x" / "model.safetensors").write_bytes(b"big")
    return home


def archive_of(home: Path, out: Path) -> backup.BackupReport:
    return backup.backup(home, out, [settings_for(home).models_dir])


def tree(path: Path) -> dict[str, str]:
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_round_trip_restores_everything_but_the_model_cache(source, tmp_path):
    report = archive_of(source, tmp_path / "b.tar.gz")
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        names = tar.getnames()
    assert names[0] == "MANIFEST.json" and "home/index/docstore.sqlite" in names and "home/ragtune.db" in names
    assert not [n for n in names if "/models/" in n or ".staging-" in n or n.endswith((".lock", "-wal", "-shm"))]
    assert any("unfinished training run" in line for line in report.left_out)

    target = tmp_path / "restored"
    result = restore(tmp_path / "b.tar.gz", target)
    assert result["files"] == report.files == len(names) - 1
    settings = settings_for(target)
    hits = assembly.retriever(settings).search("hotel rate Berlin", 2)
    assert hits and hits[0].document == "travel.md"
    db = assembly.database(settings)
    assert [k.name for k in db.keys.list()] == ["helpdesk"]
    db.dispose()
    registry = AdapterRegistry(settings.adapters_dir)
    assert registry.verify(registry.get("assistant")) and registry.get("assistant").promoted
    assert (target / "audit" / "guardrails.jsonl").read_text() == '{"rail": "pii"}\n'  # the torn line left out
    assert (target / "evals" / "v1" / "summary.json").is_file() and not (target / "models").exists()


def test_snapshot_is_consistent_while_writers_run(tmp_path):
    """A writer commits pairs of rows and appends log lines as fast as it can during the backup."""
    home = tmp_path / "home"
    home.mkdir()
    db = sqlite3.connect(home / "ragtune.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (batch INTEGER, part INTEGER, pad TEXT)")
    db.commit()
    stop, batches = threading.Event(), [0]

    def write():
        writer = sqlite3.connect(home / "ragtune.db", timeout=30)
        with open(home / "events.jsonl", "a") as log:
            while not stop.is_set():
                batches[0] += 1
                with writer:
                    writer.execute("INSERT INTO t VALUES (?, 1, ?)", (batches[0], "x" * 2000))
                    writer.execute("INSERT INTO t VALUES (?, 2, ?)", (batches[0], "y" * 2000))
                log.write(json.dumps({"batch": batches[0], "pad": "z" * 500}))
                log.flush()
                log.write("\n")
        writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        time.sleep(0.3)
        for attempt in range(3):
            archive_of(home, tmp_path / f"b{attempt}.tar.gz")
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
    assert batches[0] > 50
    for attempt in range(3):
        target = tmp_path / f"r{attempt}"
        restore(tmp_path / f"b{attempt}.tar.gz", target)
        copy = sqlite3.connect(target / "ragtune.db")
        counts = copy.execute("SELECT batch, COUNT(*) FROM t GROUP BY batch").fetchall()
        copy.close()
        assert counts and all(n == 2 for _, n in counts), "a half-committed transaction was captured"
        lines = (target / "events.jsonl").read_text().splitlines()
        assert all(json.loads(line)["pad"] for line in lines)
        assert not (target / "ragtune.db-wal").exists()


def test_a_faiss_file_older_than_the_docstore_snapshot_is_left_out(source, tmp_path):
    home = tmp_path / "home"
    archive_of(source, tmp_path / "a.tar.gz")
    restore(tmp_path / "a.tar.gz", home)
    docstore = sqlite3.connect(home / "index" / "docstore.sqlite")
    with docstore:  # what an ingest does first: the docstore moves on before the FAISS file is rewritten
        docstore.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation:default'")
    docstore.close()
    report = archive_of(home, tmp_path / "b.tar.gz")
    assert any(line.startswith("index/vectors/default.faiss") for line in report.left_out)
    target = tmp_path / "restored"
    restore(tmp_path / "b.tar.gz", target)
    assert not (target / "index" / "vectors" / "default.faiss").exists()
    assert assembly.retriever(settings_for(target)).search("hotel", 1, mode="dense")  # rebuilt from the docstore


# --- hostile and damaged archives --------------------------------------------------------------------
def hostile_archive(path: Path, members: list[tuple[str, bytes, bytes]], manifest_files: dict | None = None) -> Path:
    """A tar.gz whose manifest matches its file members: (name, data, type) with type tarfile.REGTYPE etc."""
    files = {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
             for name, data, kind in members if kind == tarfile.REGTYPE}
    manifest = {"format": backup.FORMAT, "version": 1, "files": manifest_files if manifest_files is not None else files}
    with tarfile.open(path, "w:gz") as tar:
        for name, data, kind in [(backup.MANIFEST, json.dumps(manifest).encode(), tarfile.REGTYPE), *members]:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = data.decode()
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


GOOD = ("home/ok.txt", b"fine", tarfile.REGTYPE)


@pytest.mark.parametrize("member", [
    ("home/../../escaped.txt", b"x", tarfile.REGTYPE),
    ("/tmp/absolute.txt", b"x", tarfile.REGTYPE),
    ("../outside.txt", b"x", tarfile.REGTYPE),
    ("elsewhere/file.txt", b"x", tarfile.REGTYPE),
    ("home/link", b"/etc/passwd", tarfile.SYMTYPE),
    ("home/hard", b"home/ok.txt", tarfile.LNKTYPE),
    ("home/fifo", b"", tarfile.FIFOTYPE),
    ("home/./dot/../x.txt", b"x", tarfile.REGTYPE),
], ids=["dotdot", "absolute", "parent", "outside-prefix", "symlink", "hardlink", "fifo", "unnormalised"])
def test_hostile_members_are_refused_before_anything_is_written(tmp_path, member):
    archive = hostile_archive(tmp_path / "evil.tar.gz", [GOOD, member])
    target = tmp_path / "deep" / "home"
    target.mkdir(parents=True)
    (target / "models").mkdir()  # only the model cache: counts as empty
    before = tree(tmp_path)
    with pytest.raises(backup.ArchiveRejected, match="refusing archive member"):
        restore(archive, target)
    assert tree(tmp_path) == before
    assert not list(tmp_path.rglob("escaped.txt")) and not list(tmp_path.rglob("*.restore-*"))


def test_a_failed_restore_leaves_the_target_untouched(source, tmp_path):
    target = tmp_path / "home"
    archive_of(source, tmp_path / "good.tar.gz")
    restore(tmp_path / "good.tar.gz", target)
    (target / "marker.txt").write_text("still here")
    before = tree(target)

    # A member whose bytes differ from the manifest (bit rot in the archive).
    bad = hostile_archive(tmp_path / "rot.tar.gz", [GOOD, ("home/b.txt", b"data", tarfile.REGTYPE)],
                          {"home/ok.txt": {"sha256": hashlib.sha256(b"fine").hexdigest(), "size": 4},
                           "home/b.txt": {"sha256": "0" * 64, "size": 4}})
    with pytest.raises(backup.ArchiveRejected, match="does not match the SHA-256"):
        restore(bad, target, force=True)
    # Not a backup, a manifest that lists other files, a truncated archive.
    plain = tmp_path / "plain.tar.gz"
    with tarfile.open(plain, "w:gz") as tar:
        tar.add(tmp_path / "good.tar.gz", arcname="home/x")
    with pytest.raises(backup.ArchiveRejected, match="no MANIFEST"):
        restore(plain, target, force=True)
    listed = hostile_archive(tmp_path / "listed.tar.gz", [GOOD], {"home/missing.txt": {"sha256": "0", "size": 1}})
    with pytest.raises(backup.ArchiveRejected, match="disagree"):
        restore(listed, target, force=True)
    data = (tmp_path / "good.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(backup.ArchiveRejected, match="damaged"):
        restore(tmp_path / "cut.tar.gz", target, force=True)
    assert tree(target) == before and not list(tmp_path.glob(".home.*"))


def test_a_non_empty_target_needs_force_and_keeps_its_model_cache(source, tmp_path):
    archive = tmp_path / "b.tar.gz"
    archive_of(source, archive)
    target = tmp_path / "home"
    (target / "models" / "gemma").mkdir(parents=True)
    (target / "models" / "gemma" / "w.safetensors").write_bytes(b"cache")
    (target / "old.txt").write_text("old state")
    with pytest.raises(backup.BackupError, match="not empty"):
        restore(archive, target)
    assert (target / "old.txt").is_file()
    restore(archive, target, force=True)
    assert not (target / "old.txt").exists() and (target / "index" / "docstore.sqlite").is_file()
    assert (target / "models" / "gemma" / "w.safetensors").read_bytes() == b"cache"


def test_cli_backup_and_restore_exit_codes(source, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli.tar.gz"
    result = runner.invoke(app, ["--home", str(source), "--profile", "test", "backup", str(out), "--json"])
    assert result.exit_code == 0, result.output
    target = tmp_path / "cli-home"
    assert runner.invoke(app, ["--home", str(target), "--profile", "test", "restore", str(out)]).exit_code == 0
    refused = runner.invoke(app, ["--home", str(target), "--profile", "test", "restore", str(out)])
    assert refused.exit_code == 2 and "not empty" in refused.output
    evil = hostile_archive(tmp_path / "evil.tar.gz", [("home/../../x", b"x", tarfile.REGTYPE)])
    rejected = runner.invoke(app, ["--home", str(tmp_path / "new"), "--profile", "test", "restore", str(evil)])
    assert rejected.exit_code == 3 and "archive rejected" in rejected.output and not (tmp_path / "new").exists()
    missing = runner.invoke(app, ["--home", str(tmp_path / "none"), "--profile", "test", "backup", str(out)])
    assert missing.exit_code == 2 and "no home directory" in missing.output


# --- a PostgreSQL-backed deployment: the database goes into the archive as an export and comes back ---------
def _pg_cli(runner, home, url, *args):
    return runner.invoke(app, ["--home", str(home), "--profile", "test", *args],
                         env={"RAGTUNE_SERVER__DATABASE_URL": url})


def test_a_postgresql_database_is_exported_into_the_archive_and_loaded_back(postgres_server, tmp_path):
    from assistant.db import Database

    home = tmp_path / "pg-home"
    home.mkdir()
    source_url, target_url = postgres_server.create_database("src"), postgres_server.create_database("dst")
    db = Database(source_url)
    db.migrate()
    key, plaintext = db.keys.create("helpdesk", "chat", all_collections=True)
    conversation = db.conversations.create(key.id, title="hotels")
    db.conversations.add_message(conversation.id, key.id, "user", "How much is a hotel?")
    db.dispose()
    runner, out = CliRunner(), tmp_path / "pg.tar.gz"
    result = _pg_cli(runner, home, source_url, "backup", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert "exported" in result.output and "api_keys" in result.output
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    assert manifest["database"]["counts"]["api_keys"] == 1 and manifest["database"]["backend"] == "postgresql"

    restored = _pg_cli(runner, tmp_path / "restored", target_url, "restore", str(out), "--json")
    assert restored.exit_code == 0, restored.output
    assert not (tmp_path / "restored" / backup.DATABASE_EXPORT).exists()  # loaded, not left in the home
    again = Database(target_url)
    assert again.keys.authenticate(plaintext).id == key.id
    assert [m.content for m in again.conversations.history(conversation.id, key.id)] == ["How much is a hotel?"]
    again.conversations.add_message(conversation.id, key.id, "user", "and in London?")  # sequences continue
    again.dispose()
    # A database that holds rows is never overwritten without --force; with it, its rows are replaced.
    refused = _pg_cli(runner, tmp_path / "third", target_url, "restore", str(out))
    assert refused.exit_code == 2 and "not empty" in refused.output and not (tmp_path / "third").exists()
    forced = _pg_cli(runner, tmp_path / "fourth", target_url, "restore", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    unreachable = _pg_cli(runner, home, "postgresql+psycopg://nobody@/none?host=/nonexistent&port=1", "backup",
                          str(tmp_path / "x.tar.gz"))
    assert unreachable.exit_code == 2 and "cannot read the server database" in unreachable.output
    assert not (tmp_path / "x.tar.gz").exists()


def test_a_sqlite_home_archive_restored_into_postgresql_copies_its_rows(source, postgres_server, tmp_path):
    from assistant.db import Database

    out, target_url = tmp_path / "sqlite.tar.gz", postgres_server.create_database("mig")
    archive_of(source, out)
    restored = _pg_cli(CliRunner(), tmp_path / "moved", target_url, "restore", str(out))
    assert restored.exit_code == 0, restored.output
    db = Database(target_url)
    assert [k.name for k in db.keys.list()] == ["helpdesk"]
    db.dispose()
