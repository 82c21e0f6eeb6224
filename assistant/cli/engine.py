"""`ragtune adapters export-gguf` and `ragtune adapters serve-config`: registry versions for a serving engine.

llama.cpp loads GGUF LoRA adapters; llama-cpp-python's server serves several entries of one base by name from
a config file. These write both, so `generator.mode: openai` can select any version by its ref.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from assistant import assembly
from assistant.cli.finetune import adapters_app


def register(err, or_exit) -> None:
    """Add the commands to `ragtune adapters` (`err`: the stderr console, `or_exit`: its error wrapper)."""

    @adapters_app.command("export-gguf")
    def export_gguf(
        ctx: typer.Context,
        ref: str = typer.Argument(..., help="NAME@vN (or NAME = the promoted version)."),
        out: Optional[Path] = typer.Option(None, "--out", help="Directory for the .gguf (default MODELS_DIR/gguf-lora); "
                                           "an unchanged version is not written again."),
        base: Optional[Path] = typer.Option(None, "--base", help="The base GGUF (default: generator.model's)."),
    ) -> None:
        """Write a version as a GGUF LoRA adapter (llama.cpp, llama-cpp-python `lora_path`); prints its path."""
        from finetune.gguf_lora import export_gguf_lora
        from finetune.serve_config import base_gguf

        settings = ctx.obj
        registry = assembly.adapter_registry(settings)
        version = or_exit(lambda: registry.get(ref))
        or_exit(lambda: registry.verify(version))
        path = or_exit(lambda: export_gguf_lora(version, base_gguf(settings, base), out or settings.models_dir / "gguf-lora"))
        print(path)

    @adapters_app.command("serve-config")
    def serve_config(
        ctx: typer.Context,
        out: Path = typer.Option(..., "--out", help="Config file to write (.json, or .yaml/.yml)."),
        engine: str = typer.Option("llama-cpp", "--engine", help="The serving engine: llama-cpp (llama-cpp-python's "
                                   "server, `python -m llama_cpp.server --config_file OUT`)."),
        ref: list[str] = typer.Option([], "--ref", help="Serve only these versions (repeatable; default: every version)."),
        base: Optional[Path] = typer.Option(None, "--base", help="The base GGUF (default: generator.model's)."),
        adapters_dir: Optional[Path] = typer.Option(None, "--adapters-dir", help="Where the GGUF adapters go "
                                                    "(default MODELS_DIR/gguf-lora)."),
        n_ctx: int = typer.Option(0, "--n-ctx", help="Context window (default: the generator's)."),
        threads: int = typer.Option(0, "--threads", help="CPU threads per request (default: the engine's)."),
        host: str = typer.Option("127.0.0.1", "--host"),
        port: int = typer.Option(8080, "--port"),
    ) -> None:
        """Write an engine config serving the base and every registry version (as NAME@vN) of one base model.

        Point ragtune at it with generator.mode: openai, openai_base_url: http://HOST:PORT/v1 and openai_model
        as written here. Promotion and rollback between served versions need no restart; after training a new
        version, run this again and restart the engine."""
        from finetune.serve_config import base_gguf, llama_cpp_config, write_config

        if engine != "llama-cpp":
            err.print(f"[red]error:[/red] unknown engine {engine!r} (supported: llama-cpp)")
            raise typer.Exit(2)
        settings = ctx.obj
        built = or_exit(lambda: llama_cpp_config(settings, assembly.adapter_registry(settings),
                                                 adapters_dir or settings.models_dir / "gguf-lora",
                                                 base_gguf(settings, base), ref, n_ctx, threads, host, port))
        write_config(built.config, out)
        for skipped, why in built.skipped.items():
            err.print(f"[red]not served:[/red] {skipped}: {why}")
        err.print(f"wrote {out}: base as {settings.generator.openai_model!r}, adapters {', '.join(built.served) or 'none'}")
        err.print(f"run: python -m llama_cpp.server --config_file {out}")
        print(json.dumps({"config": str(out), "served": built.served, "skipped": built.skipped}))
        if built.skipped:
            raise typer.Exit(1)
