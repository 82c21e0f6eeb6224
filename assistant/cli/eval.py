"""`ragtune eval` (scorecards, compare, CI gates) and `ragtune golden` (golden-set upkeep)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from assistant import assembly
from assistant.settings import Settings
from eval.runner import run_eval

eval_app = typer.Typer(
    help="Scorecards: every golden question through the assistant in each variant (base, rag, lora, rag+lora, "
    "adapter:NAME@vN), scored with RAGAS, written as JSONL/CSV, summary.json/.md and a self-contained HTML "
    "scorecard. Example: ragtune eval --golden golden.jsonl --variants rag,rag+lora --fail-under rag+lora.token_f1=0.3",
    invoke_without_command=True,
)
golden_app = typer.Typer(help="Golden sets: import a CSV, turn thumbs-down feedback into candidate rows.", no_args_is_help=True)


def register(app: typer.Typer, err, or_exit) -> None:
    app.add_typer(eval_app, name="eval")
    app.add_typer(golden_app, name="golden")

    @eval_app.callback()
    def evaluate(
        ctx: typer.Context,
        golden: list[Path] = typer.Option([], "--golden", "-g", help="Golden JSONL or CSV (repeatable: answerable + unanswerable)."),
        variants: Optional[str] = typer.Option(None, "--variants", help="Comma-separated: base, rag, lora, rag+lora, "
                                               "adapter:NAME@vN (default: all four when an adapter is available, else base,rag)."),
        adapter: Optional[str] = typer.Option(None, "--adapter", help="Adapter of lora / rag+lora (default: the promoted one)."),
        url: Optional[str] = typer.Option(None, "--url", help="Evaluate a deployed server instead (http://host:port)."),
        api_key: Optional[str] = typer.Option(None, "--api-key", envvar="RAGTUNE_API_KEY", help="Key for --url (chat scope; the closed-book base and lora variants also need eval)."),
        out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default HOME/evals/TIME)."),
        limit: int = typer.Option(0, "--limit", help="Only the first N questions of each golden file (0 = all)."),
        fail_under: list[str] = typer.Option([], "--fail-under", help="Gate METRIC=VALUE or VARIANT.METRIC=VALUE (repeatable); "
                                             "exit 1 when missed. Lower-is-better metrics (false_refusal_rate) must stay at or below."),
        no_regression_vs: Optional[Path] = typer.Option(None, "--no-regression-vs", help="Exit 1 if any metric is "
                                                         "significantly worse than in this earlier run (paired bootstrap)."),
    ) -> None:
        """Run a scorecard (see the examples in `ragtune eval --help`); `ragtune eval compare A B` compares two."""
        if ctx.invoked_subcommand is not None:
            return
        if not golden:
            err.print(ctx.get_help())
            raise typer.Exit(2)
        settings: Settings = ctx.obj
        columns = (TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as progress:
            def bar(name: str, total: int):
                task = progress.add_task(name, total=total)
                if not err.is_terminal:
                    err.print(f"answering: {name} ({total} questions)")
                return lambda n: progress.advance(task, n)

            run = or_exit(lambda: run_eval(settings, golden, variants, adapter, url, api_key, out, limit, fail_under, bar))
        _print_summary(run.summary, err)
        err.print(f"scorecard: {run.out_dir / 'scorecard.html'}")
        failed = [g for g in run.summary["gates"] if not g["passed"]]
        for gate in failed:
            err.print(f"[red]gate failed:[/red] {gate['rule']} (got {gate['value']})")
        regressed = _regressions(no_regression_vs, run.out_dir, err, or_exit) if no_regression_vs else []
        if failed or regressed:
            raise typer.Exit(1)

    @eval_app.command("compare")
    def compare_cmd(
        run_a: Path = typer.Argument(..., help="The earlier run directory (the baseline)."),
        run_b: Path = typer.Argument(..., help="The later run directory."),
        as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
        fail_on_regression: bool = typer.Option(False, "--fail-on-regression", help="Exit 1 if any metric got significantly worse."),
    ) -> None:
        """Deltas per variant and metric with paired-bootstrap 95% intervals, and the questions that got worse."""
        from eval.compare import compare

        result = or_exit(lambda: compare(run_a, run_b))
        if as_json:
            print(json.dumps({"deltas": [d.to_dict() for d in result.deltas], "worse": result.worse}, indent=2))
        else:
            table = Table(title=f"{run_b} vs {run_a}")
            for column in ("variant", "metric", "before", "after", "delta", "95% CI", "p", ""):
                table.add_column(column)
            for d in result.deltas:
                mark = "[red]worse[/red]" if d.regressed else ("[green]better[/green]" if d.delta.significant else "")
                table.add_row(d.variant, d.metric, f"{d.before:.3f}", f"{d.after:.3f}", f"{d.delta.delta:+.3f}",
                              f"[{d.delta.low:+.3f}, {d.delta.high:+.3f}]", f"{d.delta.p_value:.3f}", mark)
            err.print(table)
            for row in result.worse[:30]:
                err.print(f"  worse  {row['variant']:<12} {row['id']:<16} {row['why']}")
            if len(result.worse) > 30:
                err.print(f"  ... {len(result.worse) - 30} more (use --json)")
        if fail_on_regression and result.regressions:
            raise typer.Exit(1)

    @golden_app.command("import-csv")
    def import_csv(source: Path = typer.Argument(..., help="CSV with id, question, reference, answerable, sources (file.pdf:12; ...)."),
                   out: Path = typer.Option(..., "--out", help="JSONL to write.")) -> None:
        """Convert a CSV golden set into the JSONL format, validating every row."""
        from eval.golden import load, write_jsonl

        count = or_exit(lambda: write_jsonl(load(source), out))
        err.print(f"wrote {count} questions to {out}")

    @golden_app.command("from-feedback")
    def from_feedback(ctx: typer.Context, out: Path = typer.Option(..., "--out", help="Candidate JSONL to write."),
                      limit: int = typer.Option(1000, "--limit", help="At most this many candidates.")) -> None:
        """Thumbs-down answers with a comment → candidate golden rows, each with an empty reference for a person
        to write (such rows are refused by `ragtune eval` until then) and a `review` block to delete."""
        from eval.feedback_golden import candidates

        rows = or_exit(lambda: candidates(assembly.database(ctx.obj), limit))
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        err.print(f"wrote {len(rows)} candidates to {out}; write each reference answer, then delete its review block")


def _regressions(baseline: Path, run_dir: Path, err, or_exit) -> list:
    from eval.compare import compare

    result = or_exit(lambda: compare(baseline, run_dir))
    for d in result.regressions:
        err.print(f"[red]regression:[/red] {d.variant}.{d.metric} {d.before:.3f} -> {d.after:.3f} "
                  f"(95% CI of the change [{d.delta.low:+.3f}, {d.delta.high:+.3f}])")
    return result.regressions


def _print_summary(summary: dict, err) -> None:
    """Metrics down, variants across: four variants fit a terminal, eleven metrics would not."""
    run = summary["run"]
    table = Table(title=f"scorecard: {run['questions']} questions, {run['duration_s']:.0f} s, judge: {run['judge'] or 'none'}")
    table.add_column("metric")
    for name in summary["variants"]:
        table.add_column(name, justify="right")
    for metric, info in summary["metrics"].items():
        cells = []
        for name, values in summary["variants"].items():
            value, ci = values.get(metric), summary["intervals"].get(name, {}).get(metric)
            cells.append("—" if value is None else f"{value:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))
        table.add_row(info["label"] + ("" if info["higher_is_better"] else " ↓"), *cells)
    err.print(table)
