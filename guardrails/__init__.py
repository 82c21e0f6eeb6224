"""ragtune: guardrails."""
