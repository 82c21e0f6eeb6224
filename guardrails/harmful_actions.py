"""NeMo Guardrails actions of the harmful-content rail, for the flows `ragtune check harmful input` and
`ragtune check harmful output` in guardrails/config/rails.co.

Each takes the verdict the flow before it produced (`$verdict`, the dict of InputVerdict / OutputVerdict) and the
text, and returns that verdict with the harmful-content result added: blocked with the Guard's `harmful_message`
(input) or replaced with `harmful_output_message` (output) when the rail acts, unchanged otherwise. So the flow
decides what is served, and removing the flow removes the rail.
"""

from __future__ import annotations

from typing import Any, Optional

from nemoguardrails.actions import action

from guardrails import harmful as harmful_rail


def _guard(guard):
    from guardrails.actions import _default_guard

    return guard or _default_guard()


def merge_input(guard, verdict: dict | None, text: str) -> dict:
    """`verdict` (an InputVerdict dict) with the harmful rail's result on `text`; blocked when it acted."""
    out = dict(verdict or {"blocked": False, "text": text, "reply": None, "acted": [], "results": []})
    if out.get("blocked") or guard.harmful is None or not guard.config.enabled:
        return out
    result = harmful_rail.input_result(guard.harmful, text, guard._vector)
    out["results"] = [*(out.get("results") or []), result.to_dict()]
    if result.acted:
        out.update(blocked=True, reply=guard.config.harmful_message, acted=[*(out.get("acted") or []), "harmful"])
    return out


def merge_output(guard, verdict: dict | None, text: str) -> dict:
    """`verdict` (an OutputVerdict dict) with the harmful rail's result on the answer; replaced when it acted."""
    out = dict(verdict or {"text": text, "replaced": False, "grounded": None, "acted": [], "unsupported": [], "results": []})
    if out.get("replaced") or guard.harmful is None or not guard.config.enabled:
        return out
    result = harmful_rail.output_result(guard.harmful, text, guard._vector)
    out["results"] = [*(out.get("results") or []), result.to_dict()]
    if result.acted:
        out.update(text=guard.config.harmful_output_message, replaced=True, acted=[*(out.get("acted") or []), "harmful"])
    return out


@action(name="ragtune_check_harmful_input")
async def check_harmful_input(verdict: Optional[dict] = None, text: str = "", guard: Optional[Any] = None) -> dict:
    return merge_input(_guard(guard), verdict, text or "")


@action(name="ragtune_check_harmful_output")
async def check_harmful_output(verdict: Optional[dict] = None, text: str = "", guard: Optional[Any] = None) -> dict:
    return merge_output(_guard(guard), verdict, text or "")


def register(rails) -> None:
    rails.register_action(check_harmful_input, "ragtune_check_harmful_input")
    rails.register_action(check_harmful_output, "ragtune_check_harmful_output")
