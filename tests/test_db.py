"""The database: migrations match the models, keys are hashed, and every key sees only its own data."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from assistant import assembly
from assistant.answer import Citation
from assistant.db import Database, JobStateError, KeySpecError
from assistant.db.models import Base


@pytest.fixture
def db(tmp_path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'ragtune.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def two_keys(db):
    alice, _ = db.keys.create("alice", "chat,ingest", all_collections=True)
    bob, _ = db.keys.create("bob", "chat,ingest", all_collections=True)
    return alice.id, bob.id


def _answer(db, key_id, conversation_id, text_="Hotels cost 180 EUR [1]."):
    citation = Citation(1, "travel.md", 2, 3, "Hotels", 7, "hr", "Hotel rates are capped", 0.03, 0.71)
    return db.conversations.add_message(
        conversation_id, key_id, "assistant", text_, [citation], model="fake", timing={"total": 12.5}
    )


# --- schema ---------------------------------------------------------------------------------------
def test_migrating_an_empty_database_matches_the_models(db):
    assert db.revision() == "0003"
    assert set(db.table_names()) >= {"api_keys", "conversations", "messages", "citations", "feedback", "jobs"}
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_migrate_is_idempotent_persistent_and_reversible(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Database(url).migrate()
    again = Database(url)  # a fresh engine: the first migration was committed
    assert again.revision() == "0003"
    again.migrate()
    again.downgrade("base")
    assert again.table_names() == ["alembic_version"]
    again.migrate()
    assert again.revision() == "0003"


def test_sqlite_is_tuned_and_enforces_foreign_keys(db):
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
    with pytest.raises(Exception, match="FOREIGN KEY"):
        db.conversations.create("no-such-key")


def test_assembly_database_uses_the_home_and_migrates(settings):
    database = assembly.database(settings)
    assert database.revision() == "0003"
    assert (settings.home / "ragtune.db").exists()


def test_in_memory_database_is_shared_across_threads():
    database = Database("sqlite://")
    database.migrate()
    record, plaintext = database.keys.create("mem", "chat", all_collections=True)
    found = []
    thread = threading.Thread(target=lambda: found.append(database.keys.authenticate(plaintext)))
    thread.start()
    thread.join()
    assert found[0].id == record.id


# --- keys -----------------------------------------------------------------------------------------
def test_key_is_stored_hashed_and_authenticates_until_revoked(db):
    record, plaintext = db.keys.create("web", "chat", collections="hr, it")
    assert plaintext.startswith("rt_") and len(plaintext) >= 40
    assert record.prefix == plaintext[: len(record.prefix)] and len(record.prefix) < len(plaintext)
    assert record.collections == ("hr", "it") and not record.all_collections
    with db.engine.connect() as connection:
        stored = connection.execute(text("SELECT key_hash FROM api_keys")).scalar()
        dump = " ".join(str(v) for row in connection.execute(text("SELECT * FROM api_keys")) for v in row)
    assert plaintext not in dump and len(stored) == 64
    assert db.keys.authenticate(plaintext).id == record.id
    assert db.keys.get(record.id).last_used_at is not None  # touched
    assert db.keys.authenticate(plaintext + "x") is None
    assert db.keys.authenticate("not-a-key") is None
    assert db.keys.revoke(record.id).revoked_at is not None
    assert db.keys.authenticate(plaintext) is None
    assert db.keys.revoke("nope") is None
    assert [k.id for k in db.keys.list(include_revoked=False)] == []


def test_key_scopes_and_collections_are_validated(db):
    with pytest.raises(KeySpecError, match="unknown scope"):
        db.keys.create("x", "chat,root", all_collections=True)
    with pytest.raises(KeySpecError, match="at least one scope"):
        db.keys.create("x", "", all_collections=True)
    with pytest.raises(KeySpecError, match="collections"):
        db.keys.create("x", "chat")  # neither collections nor all_collections
    with pytest.raises(KeySpecError, match="admin"):
        db.keys.create("x", "admin", collections=["hr"])
    admin, _ = db.keys.create("ops", "admin")
    assert admin.all_collections and admin.scopes == ("admin",)
    assert db.keys.create("x", ["ingest", "chat"], all_collections=True)[0].scopes == ("chat", "ingest")


# --- conversations, feedback, jobs ----------------------------------------------------------------
def test_conversation_history_keeps_order_citations_and_metadata(db, two_keys):
    alice, _ = two_keys
    conversation = db.conversations.create(alice, collections=["hr"])
    db.conversations.add_message(conversation.id, alice, "user", "How much may a hotel cost in Berlin?")
    answer = _answer(db, alice, conversation.id)
    history = db.conversations.history(conversation.id, alice)
    assert [m.role for m in history] == ["user", "assistant"] and [m.position for m in history] == [0, 1]
    assert history[1].id == answer.id and history[1].timing == {"total": 12.5} and history[1].model == "fake"
    cited = history[1].citations[0]
    assert (cited.number, cited.document, cited.page, cited.page_end, cited.chunk_id) == (1, "travel.md", 2, 3, 7)
    assert db.conversations.history(conversation.id, alice, limit=1)[0].role == "assistant"
    updated = db.conversations.get(conversation.id, alice)
    assert updated.title.startswith("How much") and updated.collections == ("hr",)
    assert history[1].to_dict()["citations"][0]["document"] == "travel.md"
    with pytest.raises(ValueError):
        db.conversations.add_message(conversation.id, alice, "system", "x")


def test_a_key_never_sees_another_keys_conversations(db, two_keys):
    alice, bob = two_keys
    conversation = db.conversations.create(alice, title="mine")
    answer = _answer(db, alice, conversation.id)
    assert db.conversations.get(conversation.id, bob) is None
    assert db.conversations.history(conversation.id, bob) is None
    assert db.conversations.add_message(conversation.id, bob, "user", "hi") is None
    assert db.conversations.rename(conversation.id, bob, "stolen") is None
    assert db.conversations.delete(conversation.id, bob) is False
    assert db.conversations.list(bob) == [] and len(db.conversations.list(alice)) == 1
    assert len(db.conversations.list(bob, all_keys=True)) == 1  # admins only
    assert db.conversations.get(conversation.id, bob, admin=True).title == "mine"
    assert db.feedback.set(answer.id, bob, 1) is None  # not bob's conversation
    assert db.feedback.get(answer.id, bob) is None


def test_feedback_is_one_vote_per_key_and_message(db, two_keys):
    alice, _ = two_keys
    conversation = db.conversations.create(alice)
    question = db.conversations.add_message(conversation.id, alice, "user", "q")
    answer = _answer(db, alice, conversation.id)
    first = db.feedback.set(answer.id, alice, 1, "  helpful  ")
    second = db.feedback.set(answer.id, alice, -1)
    assert first.id == second.id and second.rating == -1 and second.comment is None
    assert first.comment == "helpful"
    assert len(db.feedback.list()) == 1 and db.feedback.list(rating=1) == []
    assert db.feedback.set(question.id, alice, 1) is None  # only answers are rated
    assert db.feedback.set("missing", alice, 1) is None
    with pytest.raises(ValueError):
        db.feedback.set(answer.id, alice, 5)
    assert db.feedback.clear(answer.id, alice) and not db.feedback.clear(answer.id, alice)
    db.feedback.set(answer.id, alice, 1)
    assert db.conversations.delete(conversation.id, alice)  # cascades to messages, citations, feedback
    with db.engine.connect() as connection:
        for table in ("messages", "citations", "feedback"):
            assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0


def test_jobs_are_owner_scoped_and_move_forward_only(db, two_keys):
    alice, bob = two_keys
    job = db.jobs.create(alice, "hr", {"files": ["travel.pdf"]})
    assert job.status == "queued" and db.jobs.queued()[0].id == job.id
    assert db.jobs.get(job.id, bob) is None and db.jobs.list(bob) == []
    assert db.jobs.get(job.id, bob, admin=True).id == job.id
    running = db.jobs.update(job.id, "running")
    assert running.started_at is not None and db.jobs.queued() == []
    with pytest.raises(JobStateError):
        db.jobs.update(job.id, "running")  # a second worker cannot start it again
    done = db.jobs.update(job.id, "done", report={"added": 1})
    assert done.report == {"added": 1} and done.finished_at is not None
    with pytest.raises(JobStateError):
        db.jobs.update(job.id, "failed")
    assert db.jobs.update("missing", "running") is None
    assert [j.status for j in db.jobs.list(alice, status="done")] == ["done"]


def test_jobs_left_running_by_a_crash_are_failed_at_startup(db, two_keys):
    alice, _ = two_keys
    job = db.jobs.create(alice, "hr", {"files": []})
    db.jobs.update(job.id, "running")
    assert db.jobs.fail_running() == 1
    failed = db.jobs.get(job.id, alice)
    assert failed.status == "failed" and "interrupted" in failed.error
