"""The server database's part of `ragtune backup` / `ragtune restore`, whatever backend holds it.

A SQLite database inside the home is a file of the home: the archive copies it with SQLite's online backup.
Any other database (PostgreSQL, or SQLite outside the home) goes into the archive as a logical export
(assistant/db/export.py) and is loaded back into the configured database on restore, before the home is
swapped in; an archive holding the home's SQLite file restored into a PostgreSQL deployment has its rows copied
over. The database is never skipped silently: when it cannot be read or written the command fails and says why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from assistant.backup import DATABASE_EXPORT, BackupError
from assistant.db import Database
from assistant.db.database import StorageError
from assistant.db.export import ExportError, export, load
from assistant.settings import Settings

DEFAULT_FILE = "ragtune.db"


def file_in_home(settings: Settings) -> str | None:
    """The SQLite database's path relative to the home, or None when the database is elsewhere (PostgreSQL)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path, home = Path(url.database).resolve(), settings.home.resolve()
    return path.relative_to(home).as_posix() if path.is_relative_to(home) else None


def backup_arguments(settings: Settings) -> dict[str, Any]:
    """What `assistant.backup.backup` needs for the database: its file in the home, or its rows."""
    in_home = file_in_home(settings)
    if in_home is not None:
        return {"database_file": in_home}
    return {"database_export": _guarded(lambda db: export(db), Database(settings.database_url), "read")}


def restorer(settings: Settings, force: bool) -> Callable[[Path, dict], dict]:
    """The `load_database` hook of `assistant.restore.restore` for these settings."""

    def load_into_target(staging: Path, manifest: dict) -> dict:
        recorded = manifest.get("database") or {}
        dump_path = staging / DATABASE_EXPORT
        in_home = file_in_home(settings)
        if dump_path.is_file():
            dump = json.loads(dump_path.read_text(encoding="utf-8"))
            dump_path.unlink()  # not a file of the home: it is loaded, not restored
            # A SQLite database in the home is replaced with the home: load into the copy being swapped in.
            target = f"sqlite:///{staging / in_home}" if in_home else settings.database_url
            counts = _guarded(lambda db: load(db, dump, replace=force or bool(in_home)), Database(target), "write")
            return {"loaded_from": "export", "into": _shown(target if not in_home else settings.database_url),
                    "rows": counts}
        if in_home is not None:
            return {"loaded_from": "file", "file": in_home}  # restored with the other files
        source = staging / recorded.get("file", DEFAULT_FILE)
        if not source.is_file():
            raise BackupError("the archive holds no copy of the server database, and server.database_url points "
                              f"outside the home ({_shown(settings.database_url)}): nothing was restored. Use an "
                              "archive written by this ragtune version, or restore that database with its own tools "
                              "and restore the home with a SQLite database_url")
        dump = _guarded(lambda db: export(db), Database(f"sqlite:///{source}"), "read")
        counts = _guarded(lambda db: load(db, dump, replace=force), Database(settings.database_url), "write")
        return {"loaded_from": f"archive's {source.relative_to(staging).as_posix()}",
                "into": _shown(settings.database_url), "rows": counts}

    return load_into_target


def _guarded(action: Callable[[Database], Any], db: Database, verb: str) -> Any:
    """The action's result, or BackupError naming the database and the reason (unreachable, not empty, ...)."""
    try:
        return action(db)
    except ExportError as exc:
        raise BackupError(str(exc)) from None
    except (StorageError, SQLAlchemyError) as exc:
        reason = exc.message if isinstance(exc, StorageError) else str(getattr(exc, "orig", exc)).strip()
        raise BackupError(f"cannot {verb} the server database {_shown(str(db.url))}: {reason.splitlines()[0]}") from None
    finally:
        db.dispose()


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
