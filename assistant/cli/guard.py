"""`ragtune guard check`: run the input rails (and, with --output, the output rails) on texts and show verdicts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from assistant.cli.jsonl import read_field
from assistant.settings import Settings

guard_app = typer.Typer(
    help="Guardrails: check texts against the input rails (jailbreak/prompt injection, harmful content, PII, topics) "
    "and, with --output, the output rails (leakage, harmful content, PII). Settings: the `guardrails` section.",
    no_args_is_help=True,
)


def verdict_record(prompt: str, verdict, output=None) -> dict:
    """One line of `--json` output: no matched values, only what acted and the scores."""
    results = verdict.results + (output.results if output is not None else [])
    record = {"prompt": prompt, "blocked": verdict.blocked, "acted": [r.rail for r in results if r.acted],
              "scores": {r.rail: round(r.score, 4) for r in results},
              "actions": {r.rail: r.action for r in results if r.acted}, "masked": verdict.text}
    if output is not None:
        record["output"] = output.text
    return record


def register(app: typer.Typer, err: Console, or_exit) -> None:
    """Add `ragtune guard ...` to the main CLI (`err`: the stderr console, `or_exit`: its error wrapper)."""

    @guard_app.command()
    def check(
        ctx: typer.Context,
        text: Optional[str] = typer.Argument(None, help="The text to check (or use --file)."),
        file: Optional[Path] = typer.Option(None, "--file", "-f", help='JSONL with one {"prompt": ...} a line.'),
        as_json: bool = typer.Option(False, "--json", help="One verdict object a line on stdout."),
        output: bool = typer.Option(False, "--output", help="Also run the output rails on the text as an answer "
                                    "(leakage, harmful content, PII; grounding needs contexts and is skipped)."),
    ) -> None:
        """Show each rail's verdict and score for a text, or for every prompt of a JSONL file.

        **Exit codes:** 0 = nothing blocked; 1 = at least one text blocked; 2 = usage or configuration error.
        """
        if (text is None) == (file is None):
            err.print("[red]error:[/red] give a text or --file, not both")
            raise typer.Exit(2)
        settings: Settings = ctx.obj
        prompts = or_exit(lambda: read_field(file, "prompt")) if file else [text]
        from assistant import assembly
        from guardrails.guard import Guard

        # As served: with an index, the corpus's own words are not masked as names (assistant/corpus_words.py).
        store = assembly.index_store(settings, readonly=True) if (settings.index_dir / "docstore.sqlite").exists() else None
        guard = or_exit(lambda: Guard.from_settings(settings, known=assembly.corpus_words(settings, store)))
        blocked = 0
        for prompt in prompts:
            verdict = guard.check_input(prompt)
            out = guard.check_output(prompt) if output else None
            blocked += verdict.blocked
            if as_json:
                sys.stdout.write(json.dumps(verdict_record(prompt, verdict, out)) + "\n")
            else:
                _print_table(prompt, verdict, out)
        if not as_json and len(prompts) > 1:
            err.print(f"{blocked} of {len(prompts)} blocked")
        raise typer.Exit(1 if blocked else 0)

    def _print_table(prompt: str, verdict, out) -> None:
        console = Console()
        title = f"{'BLOCKED' if verdict.blocked else 'passed'}: {prompt[:80]!r}"
        table = Table(title=title, title_justify="left")
        for column in ("stage", "rail", "acted", "action", "score", "reason"):
            table.add_column(column, justify="right" if column == "score" else "left")
        stages = [("input", verdict.results)] + ([("output", out.results)] if out is not None else [])
        for stage, results in stages:
            for r in results:
                table.add_row(stage, r.rail, "yes" if r.acted else "no", r.action, f"{r.score:.3f}", r.reason)
        console.print(table)
        if verdict.reply:
            console.print(f"reply: {verdict.reply}", highlight=False)
        if verdict.text != prompt:
            console.print(f"masked: {verdict.text}", highlight=False)

    app.add_typer(guard_app, name="guard")
