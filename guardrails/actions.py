"""NeMo Guardrails actions over the Guard, and helpers to run the rails with or without NeMo.

The Colang flows in guardrails/config/rails.co call three actions:
- `ragtune_check_input(text)` -> {"blocked", "reply", "text" (PII masked), "acted", "results"}
- `ragtune_check_retrieval(chunks)` -> NeMo's knowledge-base text (chunks separated by blank lines) with injected
  chunks neutralised or dropped; or, given a list (ragtune's own retrieval, guardrails/nemo_guard.py), one
  ChunkVerdict dict per chunk ({"index", "dropped", "text", "acted", "results"}), in order
- `ragtune_check_output(text, context)` -> {"text" (masked or replaced), "replaced", "grounded", "acted", ...};
  the retrieved chunks are read from the action context (`relevant_chunks`), where NeMo keeps them.

The Guard is the one given to `register(rails, guard)`; without one the first action call builds it from
the ragtune settings (RAGTUNE_* environment / profile), which loads the embedder once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from nemoguardrails.actions import action

CONFIG_DIR = Path(__file__).parent / "config"
_guard_cache: dict[str, Any] = {}


def _default_guard():
    if "guard" not in _guard_cache:
        from assistant.settings import load_settings
        from guardrails.guard import Guard

        _guard_cache["guard"] = Guard.from_settings(load_settings())
    return _guard_cache["guard"]


def _split_chunks(chunks: Any) -> list[str]:
    if isinstance(chunks, (list, tuple)):
        return [str(c) for c in chunks]
    return [c for c in str(chunks or "").split("\n\n") if c.strip()]


@action(name="ragtune_check_input")
async def check_input(text: str = "", guard: Optional[Any] = None) -> dict:
    return (guard or _default_guard()).check_input(text or "", harmful=False).to_dict()  # harmful: its own flow


@action(name="ragtune_check_retrieval")
async def check_retrieval(chunks: Any = "", guard: Optional[Any] = None) -> Any:
    verdicts = (guard or _default_guard()).check_chunks(_split_chunks(chunks))
    if isinstance(chunks, (list, tuple)):
        return [v.to_dict() for v in verdicts]
    return "\n\n".join(v.text for v in verdicts if not v.dropped)


@action(name="ragtune_check_output")
async def check_output(text: str = "", context: Optional[dict] = None, guard: Optional[Any] = None) -> dict:
    chunks = _split_chunks((context or {}).get("relevant_chunks") or "")
    return (guard or _default_guard()).check_output(text or "", chunks or None, harmful=False).to_dict()


from guardrails.harmful_actions import register as register_harmful  # noqa: E402  (the harmful-content flows)


def register(rails, guard=None) -> None:
    """Register the actions (and the Guard they use, when given) on an LLMRails instance."""
    rails.register_action(check_input, "ragtune_check_input")
    rails.register_action(check_retrieval, "ragtune_check_retrieval")
    rails.register_action(check_output, "ragtune_check_output")
    register_harmful(rails)
    if guard is not None:
        rails.register_action_param("guard", guard)


def load_config(config_dir: str | Path | None = None):
    """The RailsConfig of `config_dir` (None or empty: the packaged guardrails/config)."""
    os.environ.setdefault("NEMO_GUARDRAILS_NO_USAGE_STATS", "1")
    from nemoguardrails import RailsConfig

    return RailsConfig.from_path(str(config_dir or CONFIG_DIR))


def load_rails(guard=None, llm=None, config=None):
    """LLMRails for guardrails/config (or `config`: a RailsConfig or a configuration directory), telemetry off;
    `llm`: the answering model (None: rails-only use, e.g. `check_async`), `guard`: the Guard (None: built from
    settings on first use)."""
    from nemoguardrails import LLMRails, RailsConfig

    rails = LLMRails(config if isinstance(config, RailsConfig) else load_config(config), llm=llm)
    register(rails, guard)
    return rails
