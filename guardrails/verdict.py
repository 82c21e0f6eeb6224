"""What a rail says about a text: small, serialisable results shared by every check and the Guard.

A rail never raises on odd input; it returns a `RailResult` whose `action` is what the caller should do:
`block` (refuse the request), `mask` (the text was rewritten with PII/secret placeholders), `replace` (answer
with a fixed message instead: off-topic scope message, grounding refusal, leakage refusal), `drop` (leave a
retrieved chunk out) or `none`. `score` is the rail's own measure (higher = more suspicious, except grounding
where it is the support score); `reason` is short, for logs, and never contains the matched text itself
(it may hold PII).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Action = Literal["block", "mask", "replace", "drop", "none"]
ACTIONS: tuple[str, ...] = ("block", "mask", "replace", "drop", "none")


@dataclass(frozen=True)
class RailResult:
    rail: str  # "injection", "pii", "topic", "chunk_injection", "grounding", "leakage", "secrets"
    acted: bool
    action: Action
    score: float
    reason: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown rail action {self.action!r}; known: {', '.join(ACTIONS)}")
        if self.acted != (self.action != "none"):
            raise ValueError(f"rail {self.rail!r}: acted={self.acted} contradicts action={self.action!r}")

    @classmethod
    def passed(cls, rail: str, score: float, reason: str = "") -> "RailResult":
        return cls(rail, False, "none", float(score), reason)

    def to_dict(self) -> dict:
        return asdict(self)


def _acted(results: list[RailResult]) -> list[str]:
    return [r.rail for r in results if r.acted]


@dataclass
class InputVerdict:
    """The user's message after the input rails.

    `blocked`: do not send it to the model; answer `reply` instead (an attack refusal or, when only the
    topic rail acted, the polite scope message). `text`: the message with PII masked, the only form that
    may reach the model, the logs or the stored conversation.
    """

    blocked: bool
    text: str
    results: list[RailResult] = field(default_factory=list)
    reply: str | None = None

    @property
    def acted(self) -> list[str]:
        return _acted(self.results)

    def to_dict(self) -> dict:
        return {"blocked": self.blocked, "text": self.text, "reply": self.reply, "acted": self.acted,
                "results": [r.to_dict() for r in self.results]}


@dataclass
class ChunkVerdict:
    """One retrieved chunk after the retrieval rail: `dropped` = leave it out of the prompt; otherwise
    `text` is what to put in the prompt (the original, or with instruction-like sentences neutralised)."""

    index: int
    dropped: bool
    text: str
    results: list[RailResult] = field(default_factory=list)

    @property
    def acted(self) -> list[str]:
        return _acted(self.results)

    def to_dict(self) -> dict:
        return {"index": self.index, "dropped": self.dropped, "text": self.text, "acted": self.acted,
                "results": [r.to_dict() for r in self.results]}


@dataclass
class OutputVerdict:
    """The model's answer after the output rails. `text` is what the user may see: PII and secrets masked,
    or the whole answer replaced (`replaced`) by a refusal when it is ungrounded or leaks the system prompt.
    `grounded` is None when grounding was not checked (disabled, or no contexts given)."""

    text: str
    replaced: bool
    grounded: bool | None
    results: list[RailResult] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)  # answer sentences the context does not support

    @property
    def acted(self) -> list[str]:
        return _acted(self.results)

    def to_dict(self) -> dict:
        return {"text": self.text, "replaced": self.replaced, "grounded": self.grounded, "acted": self.acted,
                "unsupported": self.unsupported, "results": [r.to_dict() for r in self.results]}
