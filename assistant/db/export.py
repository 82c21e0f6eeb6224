"""A logical copy of the server database: every table's rows as JSON, read in one consistent snapshot.

`ragtune backup` uses it for a database that is not a file in the home (PostgreSQL, or SQLite elsewhere), so
the archive always holds the keys, conversations, feedback and jobs; `ragtune restore` loads it back into the
configured database. Written through SQLAlchemy rather than pg_dump: the same code serves every backend, needs
no server binaries of the matching major version on the backup host, and a dump taken from one backend loads
into another (SQLite -> PostgreSQL). Rows are read in the tables' dependency order inside one REPEATABLE READ
transaction (PostgreSQL; SQLite's read transaction is a snapshot too), so a backup taken while the server writes
is consistent. Loading happens in one transaction: a failure leaves the target database as it was.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, LargeBinary, Table, delete, func, select, text

from assistant.db.database import Database
from assistant.db.models import Base

FORMAT = "ragtune-database-export"
FORMAT_VERSION = 1


class ExportError(ValueError):
    """The dump cannot be loaded here (another schema revision, a database that is not empty); says what to do."""


def export(db: Database) -> dict[str, Any]:
    """Every table's rows (plain JSON values), the schema revision and the row counts."""
    tables: dict[str, list[dict[str, Any]]] = {}
    engine = db.engine if db.is_sqlite else db.engine.execution_options(isolation_level="REPEATABLE READ")
    with engine.connect() as connection, connection.begin():
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        for table in Base.metadata.sorted_tables:
            order = list(table.primary_key.columns)
            rows = connection.execute(select(table).order_by(*order)).mappings()
            tables[table.name] = [{c.name: _dumped(row[c.name], c.type) for c in table.columns} for row in rows]
    return {"format": FORMAT, "version": FORMAT_VERSION, "revision": revision, "backend": db.url.get_backend_name(),
            "counts": {name: len(rows) for name, rows in tables.items()}, "tables": tables}


def load(db: Database, dump: dict[str, Any], replace: bool = False) -> dict[str, int]:
    """Write `dump` into `db` (migrated to the dump's revision first). A database holding rows is refused unless
    `replace`, which deletes them in the same transaction. Returns the rows written per table."""
    if dump.get("format") != FORMAT or not isinstance(dump.get("tables"), dict):
        raise ExportError("not a ragtune database export")
    if dump.get("version", 0) > FORMAT_VERSION:
        raise ExportError(f"database export format {dump['version']} is newer than this ragtune reads")
    db.migrate()
    here = db.revision()
    if dump.get("revision") != here:
        raise ExportError(f"the export is at schema revision {dump.get('revision')}, this ragtune's database at "
                          f"{here}: restore with the ragtune version that wrote it, then upgrade")
    known = {t.name for t in Base.metadata.sorted_tables}
    unknown = sorted(set(dump["tables"]) - known)
    if unknown:
        raise ExportError(f"the export holds tables this schema lacks: {', '.join(unknown)}")
    written: dict[str, int] = {}
    with db.session() as session:
        connection = session.connection()
        present = {t.name: connection.execute(select(func.count()).select_from(t)).scalar() or 0
                   for t in Base.metadata.sorted_tables}
        if any(present.values()) and not replace:
            busy = ", ".join(f"{n} ({c} rows)" for n, c in present.items() if c)
            raise ExportError(f"the database {db.url.render_as_string(hide_password=True)} is not empty ({busy}); "
                              "restore into an empty database, or pass --force to replace its rows")
        for table in reversed(Base.metadata.sorted_tables):  # children first: foreign keys hold throughout
            connection.execute(delete(table))
        for table in Base.metadata.sorted_tables:
            rows = [_loaded(row, table) for row in dump["tables"].get(table.name, [])]
            if rows:
                connection.execute(table.insert(), rows)
            written[table.name] = len(rows)
            if not db.is_sqlite:
                _advance_sequences(connection, table)
    return written


def _dumped(value: Any, type_: Any) -> Any:
    if value is None:
        return None
    if isinstance(type_, DateTime) or isinstance(getattr(type_, "impl", None), DateTime):
        return value.isoformat()
    if isinstance(value, bytes) or isinstance(type_, LargeBinary):
        return base64.b64encode(value).decode("ascii")
    return value


def _loaded(row: dict[str, Any], table: Table) -> dict[str, Any]:
    values = {}
    for column in table.columns:
        value = row.get(column.name)
        type_ = column.type
        if value is not None and (isinstance(type_, DateTime) or isinstance(getattr(type_, "impl", None), DateTime)):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(type_, LargeBinary):
            value = base64.b64decode(value)
        values[column.name] = value
    return values


def _advance_sequences(connection: Any, table: Table) -> None:
    """PostgreSQL serial columns (citations.id) continue after the loaded ids, or the next insert would collide."""
    for column in table.primary_key.columns:
        if column.autoincrement is True or (column.autoincrement == "auto" and column.type.python_type is int):
            connection.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                f"COALESCE((SELECT max({column.name}) FROM {table.name}), 0) + 1, false)"))
