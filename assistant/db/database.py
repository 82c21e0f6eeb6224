"""One database: the engine, short transactional sessions, and migrations to the current schema.

SQLite (the default, `<home>/ragtune.db`) is tuned on every new connection: WAL so readers
never block the writer, foreign keys on (SQLite leaves them off, and our cascades depend on
them), and a busy timeout so a second writer waits instead of failing at once. Any other URL
(PostgreSQL) is passed to SQLAlchemy untouched.

A database that cannot do what was asked (locked by another writer past the busy timeout,
read-only, disk full, unreadable) raises `StorageError` with a stable code and a message for
people, never the driver's error with its SQL and parameters: the API answers it with 503.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from sqlalchemy import URL, Engine, create_engine, event, inspect, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from alembic.config import Config

    from assistant.db.conversations import ConversationStore
    from assistant.db.feedback import FeedbackStore
    from assistant.db.jobs import JobStore
    from assistant.db.keys import KeyStore
    from assistant.db.reviews import ReviewStore
    from assistant.db.variants import VariantStore

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# How long a statement waits for another writer's lock, in ms. Our transactions last milliseconds;
# the wait blocks the caller (request handlers run it on the event loop), so past this a request
# gets 503 `database_busy` instead of stalling the server.
SQLITE_BUSY_TIMEOUT_MS = 3_000
# Migrations wait longer, in ms: a second process starting at once waits for the first one's upgrade.
SQLITE_MIGRATION_BUSY_TIMEOUT_MS = 60_000
RETRY_AFTER_BUSY_S = 2  # Retry-After for a locked database, in seconds


class StorageError(RuntimeError):
    """The database cannot serve the request right now; `code` is stable, `message` is for people."""

    def __init__(self, code: str, message: str, retry_after_s: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s  # None: retrying soon will not help (read-only, full, corrupt)


def storage_error(exc: BaseException) -> StorageError | None:
    """The StorageError for a driver error about the database itself, or None (a bug: let it surface).

    Takes SQLAlchemy's errors and raw sqlite3 ones (the index's docstore uses sqlite3 directly)."""
    if isinstance(exc, DBAPIError):
        orig = exc.orig
    elif isinstance(exc, sqlite3.Error):
        orig = exc
    else:
        return None
    name = getattr(orig, "sqlite_errorname", "") or ""
    text = str(orig).lower()
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return StorageError("database_busy", f"the database is locked by another writer (waited "
                            f"{SQLITE_BUSY_TIMEOUT_MS / 1000:g} s); try again shortly", RETRY_AFTER_BUSY_S)
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        return StorageError("database_read_only", "the database is read-only: nothing can be saved until it is "
                            "writable again (check the permissions and the mount of the home directory)")
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return StorageError("storage_full", "the disk holding the database is full: nothing can be saved until "
                            "space is freed")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return StorageError("database_corrupt", "the database file is damaged; restore it from a backup")
    if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN")) or "disk i/o error" in text or "unable to open" in text:
        return StorageError("database_unavailable", "the database file cannot be read or written (I/O error)")
    if not name and isinstance(exc, OperationalError):  # a database server (PostgreSQL) down or unreachable
        return StorageError("database_unavailable", "the database server is unreachable; try again shortly",
                            RETRY_AFTER_BUSY_S)
    return None


class Database:
    def __init__(self, url: str | URL, *, echo: bool = False):
        self.url = make_url(url)
        self.engine = _create_engine(self.url, echo)
        # expire_on_commit=False: stores copy rows into records after commit without reloading them.
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back if it raises (StorageError: see above)."""
        try:
            with self._sessions.begin() as session:
                yield session
        except DBAPIError as exc:
            mapped = storage_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    # --- schema -------------------------------------------------------------------------------
    def alembic_config(self) -> Config:
        """Alembic settings built in code, so migrations run from an installed wheel (no alembic.ini).

        For a new revision during development:
        `alembic.command.revision(Database(url).alembic_config(), "what changed", autogenerate=True)`.
        """
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("path_separator", "os")
        # configparser treats % as interpolation; URL-encoded passwords contain it.
        config.set_main_option("sqlalchemy.url", self.url.render_as_string(hide_password=False).replace("%", "%%"))
        return config

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to `revision`; a no-op when it is already there. Safe to call on every start."""
        from alembic import command

        config = self.alembic_config()
        with self.engine.begin() as connection:
            if self.is_sqlite:
                # pysqlite runs DDL outside transactions unless one is open: take the write lock first,
                # so a crash mid-migration rolls back and two processes starting at once run it once.
                connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_MIGRATION_BUSY_TIMEOUT_MS}")
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            config.attributes["connection"] = connection
            try:
                command.upgrade(config, revision)
            finally:
                if self.is_sqlite:  # this pooled connection serves requests next: back to their timeout
                    connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")

    def downgrade(self, revision: str) -> None:
        from alembic import command

        config = self.alembic_config()
        with self.engine.begin() as connection:
            if self.is_sqlite:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            config.attributes["connection"] = connection
            command.downgrade(config, revision)

    def revision(self) -> str | None:
        """The schema revision the database is at (None: never migrated)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def table_names(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def dispose(self) -> None:
        self.engine.dispose()

    # --- stores -------------------------------------------------------------------------------
    @cached_property
    def keys(self) -> KeyStore:
        from assistant.db.keys import KeyStore

        return KeyStore(self)

    @cached_property
    def conversations(self) -> ConversationStore:
        from assistant.db.conversations import ConversationStore

        return ConversationStore(self)

    @cached_property
    def feedback(self) -> FeedbackStore:
        from assistant.db.feedback import FeedbackStore

        return FeedbackStore(self)

    @cached_property
    def reviews(self) -> ReviewStore:
        from assistant.db.reviews import ReviewStore

        return ReviewStore(self)

    @cached_property
    def variants(self) -> VariantStore:
        from assistant.db.variants import VariantStore

        return VariantStore(self)

    @cached_property
    def jobs(self) -> JobStore:
        from assistant.db.jobs import JobStore

        return JobStore(self)


def _create_engine(url: URL, echo: bool) -> Engine:
    if url.get_backend_name() != "sqlite":
        return create_engine(url, echo=echo, pool_pre_ping=True)
    in_memory = url.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if in_memory:
        kwargs["poolclass"] = StaticPool  # one shared connection, or each would see its own empty database
    else:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, **kwargs)
    event.listen(engine, "connect", _tune_sqlite)
    return engine


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # NORMAL in WAL: no corruption and no loss on a process crash; a power cut may lose the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
