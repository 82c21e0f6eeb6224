"""NeMo Guardrails actions of the harmful-content rail, for the flows `ragtune check harmful input` and
`ragtune check harmful output` in guardrails/config/rails.co.

Each takes the findings of the flow before it (`$verdict`, the dict of InputVerdict / OutputVerdict) and the text
the flows left (`$user_message` / `$bot_message`), and returns those findings with the harmful-content result added,
`harmful` (whether the rail acted) and the Guard's `harmful_message` as `reply` (input) or `harmful_output_message` as
`text` (output) when it acted. The flow decides what is served from them (guardrails/config/rails.co), so editing
or removing the flow changes or removes the rail. The text is checked whatever the findings before it say: a
flow that chose not to apply an earlier finding still gets this rail.
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
    out = dict(verdict or {"blocked": False, "text": text, "reply": None, "acted": [], "results": []}, harmful=False)
    if guard.harmful is None or not guard.config.enabled:
        return out
    result = harmful_rail.input_result(guard.harmful, text, guard._vector)
    out["results"] = [*(out.get("results") or []), result.to_dict()]
    if result.acted:
        out.update(blocked=True, harmful=True, reply=guard.config.harmful_message,
                   acted=[*(out.get("acted") or []), "harmful"])
    return out


def merge_output(guard, verdict: dict | None, text: str) -> dict:
    """`verdict` (an OutputVerdict dict) with the harmful rail's result on the answer; replaced when it acted."""
    out = dict(verdict or {"text": text, "replaced": False, "grounded": None, "acted": [], "unsupported": [], "results": []},
               harmful=False)
    if guard.harmful is None or not guard.config.enabled:
        return out
    result = harmful_rail.output_result(guard.harmful, text, guard._vector)
    out["results"] = [*(out.get("results") or []), result.to_dict()]
    if result.acted:
        out.update(text=guard.config.harmful_output_message, replaced=True, harmful=True,
                   acted=[*(out.get("acted") or []), "harmful"])
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
