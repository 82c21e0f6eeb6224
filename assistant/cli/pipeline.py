"""`ragtune up`: the main job, from documents to a served, measured assistant, in one command."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assistant import assembly
from assistant.settings import Settings

QUICKSTART_KEY = "quickstart"  # the key `up` prints; each run revokes the previous one (plaintext is never stored)


def register(app: typer.Typer, err, or_exit) -> None:
    @app.command()
    def up(
        ctx: typer.Context,
        docs: Optional[Path] = typer.Option(None, "--docs", help="Your documents (default: pipeline.documents, the "
                                            "sample Kestrel Labs knowledge base)."),
        collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Collection name (default: pipeline.collection)."),
        golden: list[Path] = typer.Option([], "--golden", "-g", help="Golden JSONL for the scorecard (repeatable; "
                                          "default: pipeline.golden). See `ragtune eval --help` for the format."),
        eval_limit: Optional[int] = typer.Option(None, "--eval-limit", help="First N questions of each golden file (0 = all)."),
        synth_chunks: Optional[int] = typer.Option(None, "--synth-chunks", help="Chunks to generate questions from (0 = all)."),
        serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the server when the pipeline is done."),
        host: Optional[str] = typer.Option(None, "--host", help="Bind address (default: server.host, loopback)."),
        port: Optional[int] = typer.Option(None, "--port", help="TCP port (default: server.port)."),
    ) -> None:
        """Ingest → synthetic QA → LoRA fine-tune → scorecard (base+RAG vs LoRA+RAG) → promote if it wins → serve.

        Every stage remembers a hash of its inputs in HOME/pipeline/state.json: a second run with the same
        documents and settings skips to serving, and a changed document re-runs the stages after ingestion.
        The scorecard (HTML) lands in HOME/evals/up-TIME/. The server prints the chat page's URL and an API
        key (a fresh `quickstart` key each run; the previous one is revoked).

        **Your own documents:** `ragtune up --docs ~/handbook --collection handbook --golden my_golden.jsonl`,
        or the `pipeline:` section of a settings file (`ragtune --config my.yaml up`).
        """
        from assistant.pipeline import Pipeline, PipelineError

        settings: Settings = ctx.obj
        settings = _with_options(settings, docs, collection, golden, eval_limit, synth_chunks)
        started = time.monotonic()
        err.print(f"ragtune up: {settings.pipeline.documents} → collection '{settings.pipeline.collection}' "
                  f"(home {settings.home})")
        columns = (TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
            tasks: dict[str, int] = {}

            logged: dict[str, tuple[int, int]] = {}  # stage -> (its total, tenths logged)

            def show(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.add_task(stage, total=total or None)
                progress.update(tasks[stage], completed=done, total=total or None)
                line = log_line(logged, stage, done, total)
                if line and not err.is_terminal:  # a log gets a line per tenth of a stage instead of a bar
                    err.print(line)

            try:
                reports = or_exit(lambda: Pipeline(settings, show).run())
            except PipelineError as exc:  # a stage without output: say which; finished stages are kept
                err.print(f"[red]error:[/red] {exc}")
                raise typer.Exit(1) from None
        table = Table(title=f"ragtune up: {time.monotonic() - started:.0f} s", title_justify="left")
        for column in ("stage", "status", "seconds", "result"):
            table.add_column(column, justify="right" if column == "seconds" else "left")
        for report in reports:
            colour = {"ran": "green", "skipped": "dim", "kept": "yellow"}.get(report.status, "")
            table.add_row(report.name, f"[{colour}]{report.status}[/{colour}]", f"{report.seconds:.0f}", report.detail)
        err.print(table)
        scorecard = next((r.outputs.get("scorecard") for r in reports if r.name == "eval"), None)
        if scorecard:
            err.print(f"scorecard: {scorecard}", soft_wrap=True)
        gate = next((r.outputs.get("gate") for r in reports if r.name == "promote"), None)
        for check in (gate or {}).get("checks", []):  # the gate's reasoning, one line per check
            err.print(f"gate {'pass' if check['passed'] else 'FAIL'}: {check['detail']}", soft_wrap=True)
        if serve:
            _serve(settings, host, port, err)

    def _serve(settings: Settings, host: Optional[str], port: Optional[int], err) -> None:
        import uvicorn

        from assistant.app import create_app

        plaintext = quickstart_key(settings)
        host, port = host or settings.server.host, port or settings.server.port
        err.print(f"\nchat page: http://{host}:{port}/   API key (chat scope): {plaintext}", soft_wrap=True)
        err.print(f"API: http://{host}:{port}/schema   OpenAI-compatible: http://{host}:{port}/v1/chat/completions   "
                  "admin key: `ragtune keys create --name admin --scopes admin`   stop: Ctrl-C", soft_wrap=True)
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def quickstart_key(settings: Settings) -> str:
    """A new chat key for the chat page; the previous quickstart key stops working."""
    keys = assembly.database(settings).keys
    for record in keys.list(include_revoked=False):
        if record.name == QUICKSTART_KEY:
            keys.revoke(record.id)
    return keys.create(QUICKSTART_KEY, "chat", all_collections=True)[1]


def _with_options(settings: Settings, docs, collection, golden, eval_limit, synth_chunks) -> Settings:
    update = {"documents": docs, "collection": collection, "golden": golden or None, "eval_limit": eval_limit,
              "synth_max_chunks": synth_chunks}
    pipeline = settings.pipeline.model_copy(update={k: v for k, v in update.items() if v is not None})
    return settings.model_copy(update={"pipeline": pipeline})


def log_line(logged: dict[str, tuple[int, int]], stage: str, done: int, total: int) -> str | None:
    """The progress line a log gets, once per tenth of a stage; a new total starts a new phase of the stage (synth:
    the teacher's questions, then the self-distilled answers), logged from its start. `logged` is updated."""
    tenth = 10 * done // total if total else 0
    seen_total, seen = logged.get(stage, (total, -1))
    if seen_total == total and seen >= tenth:
        return None
    logged[stage] = (total, tenth)
    return f"{stage}: {done}/{total or '?'}"
