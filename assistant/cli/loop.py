"""`ragtune review ...`, `ragtune retrain` and `ragtune rollout ...`: the improvement loop from a terminal.

The commands run the same services as the admin API, as a local administrator (whoever can read HOME).
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from assistant import assembly
from assistant.auth import Principal
from assistant.errors import ApiError
from assistant.settings import Settings

review_app = typer.Typer(help="The review queue: thumbs-down answers, refusals of well-retrieved questions and answers "
                         "a rail replaced. Accepted items become rows of the reviewed golden set.", no_args_is_help=True)
rollout_app = typer.Typer(help="Staged rollout: a share of conversations answers with a candidate version; live "
                          "figures per arm; promote or stop.", no_args_is_help=True)


def local_admin() -> Principal:
    name = f"cli:{getpass.getuser()}"
    return Principal(key_id=name, name=name, scopes=frozenset({"admin", "chat", "ingest"}), collections=(),
                     all_collections=True, is_admin=True)


def register(app: typer.Typer, err, or_exit) -> None:
    app.add_typer(review_app, name="review")
    app.add_typer(rollout_app, name="rollout")

    def call(action):
        try:
            return or_exit(action)
        except ApiError as exc:
            err.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(2) from None

    def reviews(settings: Settings):
        from assistant.review_service import ReviewService

        return ReviewService(assembly.database(settings), assembly.review_masker(settings),
                             settings.loop.review_min_refusal_score)

    @review_app.command("list")
    def review_list(ctx: typer.Context, status: str = typer.Option("open", "--status", help="open, accepted, rejected or all."),
                    limit: int = typer.Option(50, "--limit"), as_json: bool = typer.Option(False, "--json")) -> None:
        """Queued items, newest first (texts are PII-masked)."""
        found = call(lambda: reviews(ctx.obj).list(local_admin(), status, limit, 0))
        if as_json:
            print(json.dumps(found, indent=2))
            return
        table = Table(title=f"review queue ({', '.join(f'{k} {v}' for k, v in found['counts'].items())}; golden set "
                      f"v{found['golden_version']})", title_justify="left")
        for column in ("id", "reason", "status", "question", "answer"):
            table.add_column(column, overflow="fold")
        for item in found["items"]:
            table.add_row(item["id"], item["reason"], item["status"], item["question"][:80], item["answer"][:80])
        err.print(table)

    @review_app.command("show")
    def review_show(ctx: typer.Context, item_id: str) -> None:
        """One item as JSON."""
        print(json.dumps(call(lambda: reviews(ctx.obj).show(local_admin(), item_id)), indent=2))

    @review_app.command("accept")
    def review_accept(
        ctx: typer.Context, item_id: str,
        reference: Optional[str] = typer.Option(None, "--reference", help="The right answer (masked before storage)."),
        source: list[str] = typer.Option([], "--source", help="DOCUMENT or DOCUMENT:PAGE that answers it (repeatable)."),
        unanswerable: bool = typer.Option(False, "--unanswerable", help="The documents do not answer it."),
        training: bool = typer.Option(False, "--training", help="Also a training row for `ragtune retrain`."),
        note: str = typer.Option("", "--note", help="Why (kept with the golden row)."),
    ) -> None:
        """Accept an item: a row of the next golden-set version (and optionally a training row)."""
        sources = []
        for text in source:
            document, _, page = text.rpartition(":")
            sources.append({"document": document, "page": int(page)} if document and page.isdigit()
                           else {"document": text, "page": None})
        done = call(lambda: reviews(ctx.obj).accept(local_admin(), item_id, reference, sources, not unanswerable,
                                                    training, note))
        err.print(f"accepted {item_id}: golden set v{done['golden']['provenance']['version']}")

    @review_app.command("reject")
    def review_reject(ctx: typer.Context, item_id: str, note: str = typer.Option("", "--note", help="Why.")) -> None:
        """Reject an item: no golden row."""
        call(lambda: reviews(ctx.obj).reject(local_admin(), item_id, note))
        err.print(f"rejected {item_id}")

    @review_app.command("export")
    def review_export(ctx: typer.Context, out: Path = typer.Option(..., "--out", help="Golden JSONL to write."),
                      version: int = typer.Option(0, "--version", help="Golden-set version (0 = newest).")) -> None:
        """The reviewed golden set as JSONL (`ragtune eval --golden` reads it), with who/when/why per row."""
        found = call(lambda: reviews(ctx.obj).golden(local_admin(), version or None))
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in found["rows"]), encoding="utf-8")
        err.print(f"{len(found['rows'])} rows of golden set v{found['version']} → {out}")

    @app.command()
    def retrain(
        ctx: typer.Context,
        data: Optional[Path] = typer.Option(None, "--data", help="Synthetic dataset to extend (default: the newest)."),
        eval_limit: Optional[int] = typer.Option(None, "--eval-limit", help="First N questions of each golden file "
                                                 "(default: pipeline.eval_limit; 0 = all)."),
        promote: bool = typer.Option(False, "--promote", help="Promote at once when the gate passes (default: the "
                                     "version waits for a staged rollout: `ragtune rollout start`)."),
    ) -> None:
        """Synthetic data + accepted reviews (weighted up) → next adapter version → scored against the promoted
        one → promotion gate. Exit 5 when the gate refuses."""
        from assistant.cli.finetune import print_gate
        from assistant.retrain import retrain as run

        result = call(lambda: run(ctx.obj, data, eval_limit, promote, lambda line: err.print(line)))
        print_gate(err, result.decision, result.run_dir)
        if not result.decision.promote:
            raise typer.Exit(5)

    def rollouts(settings: Settings):
        from assistant.rollout_service import RolloutService

        return RolloutService(settings, assembly.database(settings), lambda: None, assembly.rollout_state(settings))

    @rollout_app.command("start")
    def rollout_start(ctx: typer.Context, candidate: str,
                      share: float = typer.Option(0.1, "--share", help="Share of conversations for the candidate.")) -> None:
        """Send SHARE of conversations to CANDIDATE (NAME@vN; it needs a passing gate decision)."""
        done = call(lambda: rollouts(ctx.obj).start(local_admin(), candidate, share))
        err.print(done["message"] + " (a running server picks this up at its next request)")

    @rollout_app.command("status")
    def rollout_status(ctx: typer.Context) -> None:
        """The live per-arm readout as JSON, with its verdict."""
        print(json.dumps(call(lambda: rollouts(ctx.obj).status(local_admin())), indent=2))

    @rollout_app.command("promote")
    def rollout_promote(ctx: typer.Context) -> None:
        """Promote the candidate and end the rollout (a running local server needs the admin page or a restart)."""
        done = call(lambda: rollouts(ctx.obj).promote(local_admin()))
        err.print(done["message"])

    @rollout_app.command("stop")
    def rollout_stop(ctx: typer.Context) -> None:
        """End the rollout: every conversation answers with the control again."""
        err.print(call(lambda: rollouts(ctx.obj).stop(local_admin()))["message"])
