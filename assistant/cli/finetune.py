"""`ragtune synth`, `ragtune finetune` and `ragtune adapters ...`: teaching the model the documents."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from assistant import assembly
from assistant.settings import Settings

adapters_app = typer.Typer(
    help="The adapter registry: every fine-tune is a version under HOME/adapters/NAME/vN. The server answers "
    "with the promoted version of `generator.default_adapter` by default and with any `NAME@vN` on request.",
    no_args_is_help=True,
)


def register(app: typer.Typer, err, or_exit) -> None:
    """Add the commands to the main CLI (`err`: the stderr console, `or_exit`: its error wrapper)."""

    @app.command()
    def synth(
        ctx: typer.Context,
        collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Collection to generate from."),
        teacher: Optional[str] = typer.Option(
            None, "--teacher", help="`base` (default: the generator's base model), `fake`, a local model directory "
            "or .gguf, or `openai:http://host:port/v1` for a served model (distillation)."),
        teacher_model: Optional[str] = typer.Option(None, "--teacher-model", help="Model name for an openai teacher."),
        exclude_golden: list[Path] = typer.Option([], "--exclude-golden", help="Golden-set JSONL whose questions "
                                                   "must not leak into training data (repeatable)."),
        max_chunks: Optional[int] = typer.Option(None, "--max-chunks", help="Sample at most this many chunks."),
        out: Optional[Path] = typer.Option(None, "--out", help="Dataset directory (default HOME/datasets/COLLECTION-TIME)."),
        reuse: Optional[Path] = typer.Option(None, "--reuse", help="An earlier dataset directory: its teacher questions "
                                             "are reused for the same chunks, so changed filters or RAFT settings "
                                             "rebuild in seconds."),
    ) -> None:
        """Generate grounded question-answer pairs from indexed chunks, as RAFT training examples.

        The teacher writes a question about one sentence of a chunk; the answer is that sentence
        and the ones after it, quoted. Filters (sanity, copy, groundedness, relevance, golden leak,
        near-duplicates, round trip through our retriever) each report an acceptance rate. Output: train/val JSONL split by
        document, every candidate with its filter outcome, and a dataset card (card.md).
        """
        settings: Settings = ctx.obj
        update = {}
        if exclude_golden:
            update["exclude_golden"] = [str(p) for p in exclude_golden]
        if max_chunks is not None:
            update["max_chunks"] = max_chunks
        settings = settings.model_copy(update={"synth": settings.synth.model_copy(update=update)})
        name = collection or settings.default_collection
        out_dir = out or settings.datasets_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        from finetune.synth_job import SynthJob

        retriever = or_exit(lambda: assembly.retriever(settings))
        job = or_exit(lambda: SynthJob(settings, retriever, assembly.teacher(settings, teacher, teacher_model),
                                       assembly.pii_redactor(settings, retriever.store)))
        columns = (TextColumn("questions"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task("synth", total=None)

            def show(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)
                if not err.is_terminal and (done % 25 == 0 or done == total):  # logs get a line now and then
                    err.print(f"questions {done}/{total}")

            result = or_exit(lambda: job.run(name, out_dir, show, reuse))
        table = Table(title=f"synthetic QA from '{name}'", title_justify="left")
        for column in ("filter", "entered", "passed", "acceptance"):
            table.add_column(column, justify="right" if column != "filter" else "left")
        for row in result.filters:
            table.add_row(row["filter"], str(row["entered"]), str(row["passed"]),
                          "-" if row["acceptance"] is None else f"{row['acceptance']:.0%}")
        err.print(table)
        err.print(f"{result.candidates} candidates -> {result.kept_pairs} pairs -> {result.train_examples} train / "
                  f"{result.val_examples} val examples; golden near-duplicates {result.golden_near_duplicates}")
        err.print(f"dataset: {result.out_dir} (card: {result.out_dir}/card.md)")
        if not result.train_examples:
            raise typer.Exit(4)

    @app.command()
    def finetune(
        ctx: typer.Context,
        data: Path = typer.Option(..., "--data", help="A dataset directory written by `ragtune synth`."),
        recipe: Optional[str] = typer.Option(None, "--recipe", "--config", help="`lora-cpu` (default), `lora-gpu`, "
                                             "or a recipe YAML (`base: lora-cpu` plus the fields to change)."),
        name: str = typer.Option("assistant", "--name", help="Adapter name in the registry."),
        resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run of NAME on this dataset."),
        promote: bool = typer.Option(False, "--promote", help="Score the new version against the promoted one (or "
                                     "base+RAG) on the golden set(s) and promote it only if the gate passes."),
        golden: list[Path] = typer.Option([], "--golden", "-g", help="Golden JSONL for --promote's scorecard "
                                          "(repeatable; default: pipeline.golden)."),
        eval_limit: Optional[int] = typer.Option(None, "--eval-limit", help="First N questions of each golden file "
                                                 "for --promote (default: pipeline.eval_limit; 0 = all)."),
        dp: bool = typer.Option(False, "--dp", help="Differentially private training (DP-SGD): needs --epsilon."),
        epsilon: Optional[float] = typer.Option(None, "--epsilon", help="DP: the privacy budget ε to spend at most."),
        delta: Optional[float] = typer.Option(None, "--delta", help="DP: δ, below 1 / training examples "
                                              "(default 1 / (10 × examples))."),
    ) -> None:
        """Train a LoRA adapter on a synthetic dataset (loss on answer tokens only) into the registry.

        Validation loss after every epoch keeps the best weights and stops early; checkpoints make a
        killed run resumable with `--resume`. The new version lands in HOME/adapters/NAME/vN with
        metadata.json (base model hash, dataset hash and card, hyperparameters, losses, code version).
        """
        settings: Settings = ctx.obj
        from finetune.finetune_job import run_finetune
        from finetune.recipe import load_recipe

        chosen = or_exit(lambda: load_recipe(recipe))
        if dp or epsilon is not None:
            if not dp or not epsilon:
                err.print("[red]error:[/red] differential privacy needs both --dp and --epsilon E (and optionally --delta D)")
                raise typer.Exit(2)
            chosen = chosen.model_copy(update={"dp_epsilon": epsilon, "dp_delta": delta or 0.0})
        columns = (TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                   TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task("train", total=None, loss="-")

            def show(step: int, total: int, loss: float) -> None:
                progress.update(task, completed=step, total=total, loss=f"{loss:.3f}")
                if not err.is_terminal:
                    err.print(f"step {step}/{total} loss {loss:.4f}")

            version, result, _ = or_exit(lambda: run_finetune(settings, data, chosen, name, resume, show))
        decision = None
        if promote:
            from assistant.promotion import evaluate_and_gate

            decision, run_dir = or_exit(lambda: evaluate_and_gate(settings, version.ref, golden or None, eval_limit))
            print_gate(err, decision, run_dir)
        table = Table(title=f"fine-tune {version.ref}", title_justify="left")
        for column in ("steps", "epochs", "train loss", "val loss", "tokens/s", "peak RSS MiB", "seconds"):
            table.add_column(column, justify="right")
        table.add_row(str(result.steps), str(result.epochs_completed), _last(result.train_losses),
                      _last(result.val_losses), f"{result.tokens_per_s:.0f}", f"{result.peak_rss_mb:.0f}",
                      f"{result.seconds:.0f}")
        err.print(table)
        if result.privacy:
            p = result.privacy
            err.print(f"differential privacy: ε spent {p['epsilon_spent']:.3f} (target {p['target_epsilon']:g}), "
                      f"δ {p['delta']:.2g}, noise σ {p['noise_multiplier']:.3f}, clip C {p['max_grad_norm']:g}, "
                      f"sampling rate {p['sample_rate']:.3f}, {p['steps']} steps ({p['accountant']})")
        promoted = decision is not None and decision.promote
        err.print(f"adapter: {version.path}" + (" (promoted)" if promoted else f"; promote: ragtune adapters promote {version.ref}"))
        if decision is not None and not promoted:
            raise typer.Exit(5)  # trained, but the gate refused it: scripts must not take it for a promotion

    app.add_typer(adapters_app, name="adapters")

    @adapters_app.command("list")
    def adapters_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
        """Every adapter version, newest last; * marks the promoted one."""
        versions = assembly.adapter_registry(ctx.obj).list()
        if as_json:
            print(json.dumps([{"ref": v.ref, "promoted": v.promoted, "path": str(v.path)} for v in versions], indent=2))
            return
        table = Table(title="adapters", title_justify="left")
        for column in ("", "adapter", "created", "train examples", "val loss", "eval"):
            table.add_column(column)
        for v in versions:
            m = v.metadata
            table.add_row("*" if v.promoted else "", v.ref,
                          time.strftime("%Y-%m-%d %H:%M", time.localtime(m.get("created_at", 0))),
                          str(m.get("dataset", {}).get("train_examples", "-")),
                          str(m.get("training", {}).get("best_val_loss", "-")), json.dumps(m.get("eval") or {})[:60])
        err.print(table)

    @adapters_app.command("show")
    def adapters_show(ctx: typer.Context, ref: str = typer.Argument(..., help="NAME or NAME@vN.")) -> None:
        """Print a version's metadata.json."""
        print(json.dumps(or_exit(lambda: assembly.adapter_registry(ctx.obj).get(ref)).metadata, indent=2, default=str))

    @adapters_app.command("promote")
    def adapters_promote(
        ctx: typer.Context,
        ref: str = typer.Argument(..., help="NAME@vN (or NAME = newest)."),
        require_scorecard: bool = typer.Option(False, "--require-scorecard", help="Refuse unless `ragtune eval` recorded "
                                               "a passing scorecard for this version."),
        minimum: list[str] = typer.Option([], "--min", help="With --require-scorecard: METRIC=VALUE the recorded "
                                          "scorecard must meet (repeatable), e.g. --min token_f1=0.3."),
    ) -> None:
        """Make a version the one served by default (restart the server to pick it up)."""
        registry = assembly.adapter_registry(ctx.obj)
        if require_scorecard or minimum:
            from eval.gates import scorecard_allows

            ok, why = or_exit(lambda: scorecard_allows(registry.get(ref).metadata, minimum))
            if not ok:
                err.print(f"[red]not promoted:[/red] {why}")
                raise typer.Exit(1)
            err.print(f"scorecard: {why}")
        v = or_exit(lambda: registry.promote(ref))
        err.print(f"promoted {v.ref}")

    @adapters_app.command("rollback")
    def adapters_rollback(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
        """Promote the version that was promoted before the current one."""
        v = or_exit(lambda: assembly.adapter_registry(ctx.obj).rollback(name))
        err.print(f"rolled back: {v.ref} is promoted")

    @adapters_app.command("delete")
    def adapters_delete(ctx: typer.Context, ref: str = typer.Argument(..., help="NAME@vN."),
                        force: bool = typer.Option(False, "--force", help="Delete even the promoted version.")) -> None:
        """Delete one version (not the promoted one unless --force)."""
        v = or_exit(lambda: assembly.adapter_registry(ctx.obj).delete(ref, force))
        err.print(f"deleted {v.ref}")

    @adapters_app.command("export")
    def adapters_export(ctx: typer.Context, ref: str = typer.Argument(..., help="NAME or NAME@vN."),
                        out: Path = typer.Option(..., "--out", help="New directory for the merged checkpoint."),
                        dtype: str = typer.Option("float32", "--dtype", help="float32, bfloat16 or float16.")) -> None:
        """Merge the adapter into the base weights: a standalone transformers checkpoint (vLLM, TGI)."""
        from finetune.export import export_merged

        version = or_exit(lambda: assembly.adapter_registry(ctx.obj).get(ref))
        path = or_exit(lambda: export_merged(ctx.obj, version, out, dtype))
        err.print(f"merged {version.ref} into {path}")


def _last(values: list[float]) -> str:
    return f"{values[-1]:.4f}" if values else "-"


def print_gate(err, decision, run_dir) -> None:
    """The gate's checks, one line each, and its verdict (what `finetune --promote` and `retrain` print)."""
    for check in decision.checks:
        mark = "[green]pass[/green]" if check.passed else "[red]fail[/red]"
        err.print(f"  {mark} {check.detail}")
    verdict = "[green]promoted[/green]" if decision.promote else "[red]not promoted[/red]"
    err.print(f"gate: {verdict} {decision.candidate} (baseline {decision.baseline}); scorecard {run_dir}/scorecard.html")
