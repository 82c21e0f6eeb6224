"""`ragtune <verb>`: the command line, one module per group of verbs.

main.py builds the Typer app (ingest, search, serve, chat, keys, adapters ...) and registers the groups:
finetune.py (synth, finetune, adapters), engine.py (adapters export-gguf, serve-config), guard.py (guard
check/train), eval.py (eval, eval compare), backup.py (backup, restore), pipeline.py (up), loop.py (review,
retrain, rollout, drift).
`python -m assistant.cli` and the `ragtune` script both run `main()`.
"""

from assistant.cli.main import app, main

__all__ = ["app", "main"]
