"""Alembic's entry point, run by `Database.migrate()` (and by `alembic` with `Database.alembic_config()`).

Online only: `Database.migrate()` passes its own connection (so the SQLite pragmas and the
write lock it took apply); without one we connect to the configured URL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from assistant.db.models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("ragtune migrations run online only (Database.migrate())")

_given = config.attributes.get("connection")
if _given is not None:
    _run(_given)
else:
    with create_engine(config.get_main_option("sqlalchemy.url"), poolclass=NullPool).begin() as _connection:
        _run(_connection)
