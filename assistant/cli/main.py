"""`ragtune <verb>`: the command line. Thin: parse flags, build parts via `assembly`, print.

Machine-readable output (`--json`) goes to stdout; progress bars, tables and messages go to
stderr, so `ragtune search --json ... | jq` always sees clean JSON.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assistant import assembly
from assistant.cli.jsonl import read_field
from assistant.settings import Settings, SettingsError, load_settings

for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # no weight-loading bars on every command
    "TRANSFORMERS_VERBOSITY": "error",
}.items():
    os.environ.setdefault(_key, _value)  # ragtune never reaches a model hub or telemetry endpoint

err = Console(stderr=True)
app = typer.Typer(
    name="ragtune",
    help="A domain assistant that learns your documents: hybrid retrieval over FAISS + BM25, offline on a CPU.\n\n"
    "Start with `ragtune ingest DOCS/`, then `ragtune search \"your question\"` or `ragtune chat`; `ragtune serve` "
    "runs the HTTP API (create a key first: `ragtune keys create`). Teach the model the documents with "
    "`ragtune synth` then `ragtune finetune --data DATASET`; `ragtune adapters` manages the versions. All state lives under one home "
    "directory (--home or RAGTUNE_HOME, default ./.ragtune).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)


@app.callback()
def _root(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(None, "--home", envvar="RAGTUNE_HOME", help="State directory (index, runs, ...)."),
    profile: Optional[str] = typer.Option(None, "--profile", envvar="RAGTUNE_PROFILE", help="Settings profile, e.g. `test`."),
    config: Optional[Path] = typer.Option(None, "--config", envvar="RAGTUNE_CONFIG", help="A YAML settings file."),
) -> None:
    overrides = {"home": str(home)} if home else {}
    try:
        ctx.obj = load_settings(profile=profile, config_file=config, overrides=overrides)
    except SettingsError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def ingest(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files or directories (searched recursively)."),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Collection to ingest into."),
    prune: bool = typer.Option(False, "--prune", help="Remove documents that disappeared from the given directories."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's report as JSON on stdout."),
) -> None:
    """Parse, chunk, embed and index documents (PDF, DOCX, HTML, Markdown, text).

    Unchanged files (same content hash) are skipped without parsing; changed files replace
    their old chunks. A bad file is reported and skipped; the rest is ingested.

    **Exit codes:** 0 = everything ingested or unchanged; 3 = partial (some files failed);
    4 = failed (nothing ingested); 2 = usage or configuration error.
    """
    settings: Settings = ctx.obj
    job = _or_exit(lambda: assembly.ingest_job(settings))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
        report = _or_exit(lambda: job.run(paths, collection, prune=prune, progress=progress))
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    table = Table(title=f"ingest into '{report.collection}'", title_justify="left")
    for column in ("added", "updated", "unchanged", "removed", "skipped", "failed", "chunks", "pages", "seconds"):
        table.add_column(column, justify="right")
    counts = report.counts()
    table.add_row(*(str(v) for v in counts.values()), str(report.chunks), str(report.pages), f"{report.seconds:.1f}")
    err.print(table)
    for result in report.files:
        if result.status in ("failed", "skipped"):
            colour = "red" if result.status == "failed" else "yellow"
            err.print(f"[{colour}]{result.status}[/{colour}] {result.path}: {result.reason}")
    err.print(f"report: {report.run_dir}/report.json")
    raise typer.Exit(report.exit_code())


@app.command()
def search(
    ctx: typer.Context,
    query: Optional[str] = typer.Argument(None, help="The question or keywords."),
    k: int = typer.Option(5, "--k", "-k", min=1, max=200, help="Number of results."),
    collection: Optional[list[str]] = typer.Option(None, "--collection", "-c", help="Restrict to collection(s)."),
    document: Optional[list[str]] = typer.Option(None, "--document", "-d", help="Restrict to document(s) by file name."),
    mode: Optional[str] = typer.Option(None, "--mode", help="hybrid (default), dense or bm25."),
    file: Optional[Path] = typer.Option(None, "--file", help='JSONL of {"question": ...}; one JSON list per line out.'),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON (document, page, heading, text, scores)."),
) -> None:
    """Retrieve the passages that best answer a question (hybrid BM25 + dense, fused by RRF).

    **Exit codes:** 0 = searched (even with no results); 2 = usage error or no index.
    """
    settings: Settings = ctx.obj
    if (query is None) == (file is None):
        err.print("[red]error:[/red] give a QUERY or --file QUERIES.jsonl (not both)")
        raise typer.Exit(2)
    if mode not in (None, "hybrid", "dense", "bm25"):
        err.print(f"[red]error:[/red] --mode must be hybrid, dense or bm25, not {mode!r}")
        raise typer.Exit(2)
    retriever = _or_exit(lambda: assembly.retriever(settings))
    if file is not None:
        questions = _or_exit(lambda: read_field(file, "question"))
        batch = 64  # questions embedded per call
        for start in range(0, len(questions), batch):
            chunk = questions[start : start + batch]
            for hits in _or_exit(lambda: retriever.search_many(chunk, k, collection, document, mode)):
                print(json.dumps([h.to_dict() for h in hits]))
        return
    hits = _or_exit(lambda: retriever.search(query, k, collection, document, mode))
    if as_json:
        print(json.dumps([h.to_dict() for h in hits], indent=2))
        return
    if not hits:
        err.print("no results")
    for hit in hits:
        where = f"{hit.document}" + (f", page {hit.page}" if hit.page else "")
        err.print(f"[bold]{hit.rank}. {where}[/bold] [dim]{hit.heading}[/dim]  score {hit.score:.4f}")
        err.print("   " + hit.text[:400].replace("\n", "\n   "))


@app.command("config")
def show_config(ctx: typer.Context) -> None:
    """Print the resolved settings (defaults + profile + file + environment) as YAML."""
    print(ctx.obj.to_yaml(), end="")


# --- keys: API keys for the server -----------------------------------------------------------
keys_app = typer.Typer(
    help="Create, list and revoke the API keys the server accepts. Keys are stored hashed; "
    "a key's plaintext is shown once, when it is created.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="Who or what the key is for (shown in lists)."),
    scopes: str = typer.Option("chat", "--scopes", help="Comma-separated: chat, ingest, eval (closed-book answers), admin (admin implies all)."),
    collections: Optional[str] = typer.Option(
        None, "--collections", help="Comma-separated collections the key may read; default: every collection."
    ),
    origin: Optional[list[str]] = typer.Option(
        None, "--origin", help="A browser origin (https://tickets.example.com) that may use the key from a web page, "
        "e.g. the embeddable widget; repeatable. Such keys must have the chat scope only."
    ),
    as_json: bool = typer.Option(False, "--json", help='Print {"id", "key", ...} as JSON on stdout.'),
) -> None:
    """Create an API key and print it. **The key is shown only this once**; store it now.

    **Exit codes:** 0 = created; 2 = bad scopes, collections or configuration.
    """
    from rich.panel import Panel

    from assistant.db import KeySpecError

    db = _or_exit(lambda: assembly.database(ctx.obj))
    try:
        record, plaintext = db.keys.create(name, scopes, collections, all_collections=collections is None,
                                           allowed_origins=origin)
    except KeySpecError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps({**record.to_dict(), "key": plaintext}, indent=2))
        return
    reach = "all collections" if record.all_collections else ", ".join(record.collections)
    origins = f" · origins {', '.join(record.allowed_origins)}" if record.allowed_origins else ""
    err.print(
        Panel(
            f"[bold]{plaintext}[/bold]\n\nid {record.id} · scopes {', '.join(record.scopes)} · {reach}{origins}\n"
            "[yellow]This is the only time the key is shown: it is stored hashed and cannot be recovered.[/yellow]",
            title=f"API key '{record.name}'",
            title_align="left",
        )
    )


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    active: bool = typer.Option(False, "--active", help="Hide revoked keys."),
    as_json: bool = typer.Option(False, "--json", help="Print the keys as JSON (never the keys themselves)."),
) -> None:
    """List API keys: id, name, prefix, scopes, collections, when created, last used and revoked."""
    db = _or_exit(lambda: assembly.database(ctx.obj))
    records = db.keys.list(include_revoked=not active)
    if as_json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
        return
    table = Table(title="API keys", title_justify="left")
    for column in ("id", "name", "prefix", "scopes", "collections", "created", "last used", "status"):
        table.add_column(column, no_wrap=column in ("id", "prefix"))  # ids are typed into `keys revoke`

    def when(moment):
        return f"{moment:%Y-%m-%d}" if moment else "-"

    for r in records:
        reach = "*" if r.all_collections else ",".join(r.collections)
        status = "active" if r.active else f"revoked {when(r.revoked_at)}"
        table.add_row(r.id, r.name, r.prefix, ",".join(r.scopes), reach, when(r.created_at), when(r.last_used_at), status)
    err.print(table if records else "no API keys; create one with `ragtune keys create --name NAME`")


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    key_id: str = typer.Argument(..., help="The key's id (from `ragtune keys list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the revoked key's record as JSON."),
) -> None:
    """Revoke an API key: requests with it are refused from now on. Revoking twice is harmless.

    **Exit codes:** 0 = revoked (or already was); 2 = no key with that id.
    """
    db = _or_exit(lambda: assembly.database(ctx.obj))
    record = db.keys.revoke(key_id)
    if record is None:
        err.print(f"[red]error:[/red] no API key with id {key_id!r} (see `ragtune keys list`)")
        raise typer.Exit(2)
    if as_json:
        print(json.dumps(record.to_dict(), indent=2))
    err.print(f"revoked key {record.id} ('{record.name}', {record.prefix}…) at {record.revoked_at:%Y-%m-%d %H:%M} UTC")


@app.command()
def serve(
    ctx: typer.Context,
    host: Optional[str] = typer.Option(None, "--host", help="Bind address (default: server.host, loopback)."),
    port: Optional[int] = typer.Option(None, "--port", help="TCP port (default: server.port, 8000)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, max=64, help="Worker processes on the one port "
                                          "(default: server.workers, 1). Above 1 they share rate limits, the queue "
                                          "bound, ingest jobs and adapter promotions through the database."),
) -> None:
    """Run the HTTP API: chat (JSON/SSE), OpenAI-compatible endpoint, search, documents, metrics.

    Every route but /healthz and /readyz needs an API key: create one with
    `ragtune keys create --name web --scopes chat`. OpenAPI docs at /schema. With `--workers N` each worker loads
    its own copy of the model (N times the memory).
    """
    import uvicorn

    from assistant.app import SETTINGS_ENV, create_app

    settings: Settings = ctx.obj
    if workers is not None:
        settings = settings.model_copy(update={"server": settings.server.model_copy(update={"workers": workers})})
    host, port = host or settings.server.host, port or settings.server.port
    err.print(f"ragtune API on http://{host}:{port}  (docs: /schema; keys: `ragtune keys create --name NAME --scopes chat`)",
              soft_wrap=True)  # a URL and a command are copied: never wrap them
    if settings.server.workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
        return
    # Migrate once here, so N workers do not race to; each worker rebuilds these exact settings from the environment.
    _or_exit(lambda: assembly.database(settings).dispose())
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    err.print(f"{settings.server.workers} workers; rate limits, admission and jobs shared through the database")
    uvicorn.run("assistant.app:app_from_environment", factory=True, host=host, port=port, log_level="warning",
                workers=settings.server.workers)


@app.command()
def chat(
    ctx: typer.Context,
    collection: Optional[list[str]] = typer.Option(None, "--collection", "-c", help="Search only this collection (repeatable)."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="LoRA adapter to answer with, or `base` (default: the "
                                          "promoted adapter, else the base model)."),
) -> None:
    """Chat with the assistant in this terminal: streamed answers with their citations (no server needed)."""
    from assistant import terminal_chat

    _or_exit(lambda: terminal_chat.run(ctx.obj, collection or None, adapter, err))


def _or_exit(action):
    """Run `action`; turn configuration and input errors into a message and exit code 2."""
    from ingestion.embedder import EmbedderError
    from ingestion.index_store import IndexStoreError

    try:
        return action()
    except (SettingsError, EmbedderError, IndexStoreError, ValueError, FileNotFoundError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


from assistant.cli.finetune import register as _register_finetune  # noqa: E402

_register_finetune(app, err, _or_exit)

from assistant.cli.guard import register as _register_guard  # noqa: E402

_register_guard(app, err, _or_exit)

from assistant.cli.eval import register as _register_eval  # noqa: E402

_register_eval(app, err, _or_exit)

from assistant.cli.backup import register as _register_backup  # noqa: E402

_register_backup(app, err, _or_exit)

from assistant.cli.pipeline import register as _register_pipeline  # noqa: E402

_register_pipeline(app, err, _or_exit)

from assistant.cli.loop import register as _register_loop  # noqa: E402

_register_loop(app, err, _or_exit)

from assistant.cli.engine import register as _register_engine  # noqa: E402

_register_engine(err, _or_exit)


def main() -> None:
    app(prog_name="ragtune")


if __name__ == "__main__":
    sys.exit(main())
