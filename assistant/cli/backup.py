"""`ragtune backup` and `ragtune restore`: the home directory in one verifiable archive (assistant/backup.py,
assistant/restore.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from assistant import backup as backups
from assistant import database_backup
from assistant import restore as restores
from assistant.settings import Settings


def _kept_names(settings: Settings) -> tuple[str, ...]:
    """The model cache's top-level name when it lives inside the home (it is never backed up or replaced)."""
    home, models = settings.home.resolve(), settings.models_dir.resolve()
    return (models.relative_to(home).parts[0],) if models.is_relative_to(home) and models != home else ()


def register(app: typer.Typer, err: Console, or_exit) -> None:
    """Add the two commands to the main CLI (`err`: the stderr console, `or_exit`: its error wrapper)."""

    @app.command("backup")
    def backup_command(
        ctx: typer.Context,
        out: Path = typer.Argument(..., help="The archive to write, e.g. ragtune-2026-11-30.tar.gz."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    ) -> None:
        """Archive the home directory (index, databases, adapters, audit log, eval and ingest runs) into OUT.

        Safe while `ragtune serve` or an ingest runs: databases are copied with SQLite's online backup API. A server
        database outside the home (PostgreSQL) goes in as a logical export of its rows, read in one snapshot.
        The model cache is left out (it is rebuilt from the model package). Every file's SHA-256 goes into
        the archive's MANIFEST.json, which `ragtune restore` checks.

        **Exit codes:** 0 = written; 2 = no home directory or the archive cannot be written.
        """
        settings: Settings = ctx.obj
        models = [settings.models_dir]
        report = or_exit(lambda: _or_os_error(lambda: backups.backup(
            settings.home, out, models, **database_backup.backup_arguments(settings))))
        if as_json:
            print(json.dumps(report.to_dict(), indent=2))
        err.print(f"backed up {report.files} files ({report.bytes / 1e6:.1f} MB) from {settings.home.resolve()} to "
                  f"{report.archive} in {report.seconds:.1f} s", soft_wrap=True)
        for line in report.left_out:
            err.print(f"[dim]left out[/dim] {line}", soft_wrap=True)
        if "export" in report.database:
            counts = report.database.get("counts") or {}
            err.print(f"server database ({report.database.get('backend')}) exported: "
                      + ", ".join(f"{n} {t}" for t, n in counts.items()), soft_wrap=True)

    @app.command("restore")
    def restore_command(
        ctx: typer.Context,
        archive: Path = typer.Argument(..., help="An archive written by `ragtune backup`."),
        force: bool = typer.Option(False, "--force", help="Replace a home that is not empty (its model cache is kept)."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    ) -> None:
        """Restore the home directory (--home) from ARCHIVE, verifying every file's SHA-256 first.

        Refuses a home that holds anything but the model cache unless --force, and archive members that are
        not plain files under `home/` (absolute paths, `..`, links). Nothing in the home changes unless every
        check passes. Stop the server first. A database export in the archive is loaded into server.database_url
        (PostgreSQL: it must be empty unless --force, which replaces its rows in one transaction).

        **Exit codes:** 0 = restored; 2 = refused (home not empty, no archive, an ingest running, no space);
        3 = the archive is rejected (not a ragtune backup, a bad member, a hash mismatch).
        """
        settings: Settings = ctx.obj
        try:
            result = _or_os_error(lambda: restores.restore(archive, settings.home, force, _kept_names(settings),
                                                           database_backup.restorer(settings, force)))
        except backups.ArchiveRejected as exc:
            err.print(f"[red]error:[/red] archive rejected, nothing restored: {exc}", soft_wrap=True)
            raise typer.Exit(3) from None
        except backups.BackupError as exc:
            err.print(f"[red]error:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(2) from None
        if as_json:
            print(json.dumps(result, indent=2))
        err.print(f"restored {result['files']} files ({result['bytes'] / 1e6:.1f} MB) into {result['home']}",
                  soft_wrap=True)


def _or_os_error(action):
    """Disk full, permissions: a BackupError with the OS's reason instead of a traceback."""
    try:
        return action()
    except OSError as exc:
        raise backups.BackupError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None
