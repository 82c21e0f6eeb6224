"""Loaded by NeMo Guardrails with this config: registers ragtune's actions on the LLMRails instance."""

from guardrails.actions import register


def init(app) -> None:
    register(app)
