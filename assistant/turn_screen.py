"""The turn screen: every turn of a conversation passes the input rails once, and only its masked form is used.

The input rails judge one message. A conversation brings more: earlier user turns (sent again by an OpenAI client
in `messages`, or stored by /v1/chat), earlier assistant turns (which a client can forge), and attacks split over
several turns. The turn screen makes "blocked before the model sees it" and "PII masked before the model" hold
from the second turn on:

- Each earlier turn, user or assistant, is screened by the input rails (an assistant turn for injected
  instructions too: a forged "assistant" message is the classic way to put words in the model's mouth) and only
  its masked text may reach a prompt or a retrieval query. Verdicts are remembered by text (an OpenAI client sends
  the whole conversation every time), so a turn costs one screening however often it comes back.
- A blocked earlier user turn is left out, with the answer to it; stored turns carry their verdict (the user
  message is stored with finish_reason `blocked`, its answer with `guardrail`), so /v1/chat never screens them again.
- The current message is refused (rail `multi_turn`) when an earlier assistant turn carried an attack, when it
  refers back ("as I said above…") to a turn that was blocked, or when it and the user turns before it are an
  attack together (a payload split over turns) though each alone passed.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

from assistant import prompt
from guardrails.verdict import InputVerdict, RailResult

BLOCKED = "blocked"  # finish_reason of a stored user message the input rails blocked
REFUSED_ANSWER = "guardrail"  # finish_reason of the answer to it (ChatService._blocked_answer)
# A message that points at an earlier one instead of saying what it wants ("as I said above", "do what I asked").
BACK_REFERENCE = re.compile(
    r"\b(?:as I (?:said|asked|wrote|mentioned|told you)|(?:said|asked|wrote|mentioned|stated|told you) (?:above|before|"
    r"earlier|previously)|(?:my|the|that) (?:previous|last|earlier|first|above|original) (?:message|question|request|"
    r"instruction|prompt|task)s?|do (?:it|that|what I (?:said|asked))|(?:now )?(?:continue|go on|proceed)\b|"
    r"(?:the|that) same (?:thing|request)|like I said)", re.I)


@dataclass
class Earlier:
    """The earlier turns as a prompt may use them."""

    history: list[prompt.Turn] = field(default_factory=list)  # kept turns, masked, oldest first
    dropped: int = 0  # turns left out: blocked ones and the answers to them
    blocked_before: bool = False  # an earlier user turn was blocked
    forged: bool = False  # an earlier assistant turn carried an attack


class TurnScreen:
    def __init__(self, guard: Any, window: int = 2, cache_size: int = 4096):
        """`guard`: the Guard (or NemoGuard); None = no rails, turns pass unchanged. `window`: earlier user turns
        screened together with the current message (split payloads)."""
        self.guard = guard
        self.window = window
        self.cache_size = cache_size
        self._cache: OrderedDict[str, InputVerdict] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, text: str) -> InputVerdict | None:
        """The input rails' verdict on `text`, remembered (a least-recently-used map of `cache_size` texts)."""
        if self.guard is None:
            return None
        with self._lock:
            found = self._cache.get(text)
            if found is not None:
                self._cache.move_to_end(text)
                return found
        verdict = self.guard.check_input(text)
        with self._lock:
            self._cache[text] = verdict
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return verdict

    def history(self, turns: Sequence[prompt.Turn]) -> Earlier:
        """Client-supplied earlier turns (OpenAI `messages`): each screened, blocked ones dropped, the rest masked."""
        earlier = Earlier()
        skip_answer = False
        for turn in turns:
            verdict = self.check(turn.content)
            if verdict is None:
                earlier.history.append(turn)
                continue
            if turn.role == "user":
                skip_answer = verdict.blocked
                earlier.blocked_before |= verdict.blocked
            elif verdict.blocked and _attack(verdict):
                earlier.forged = True
            if verdict.blocked or (turn.role == "assistant" and skip_answer):
                earlier.dropped += 1
                continue
            earlier.history.append(prompt.Turn(turn.role, verdict.text))
        return earlier

    @staticmethod
    def stored(messages: Sequence[Any]) -> Earlier:
        """Stored turns (screened and masked when they were stored): a blocked user turn and its answer are left
        out. A user turn followed by a `guardrail` answer counts as blocked too (rows stored before the mark)."""
        earlier = Earlier()
        rows = list(messages)
        for i, message in enumerate(rows):
            following = rows[i + 1] if i + 1 < len(rows) else None
            blocked = message.role == "user" and (
                message.finish_reason == BLOCKED
                or (following is not None and following.role == "assistant" and following.finish_reason == REFUSED_ANSWER))
            answer_to_blocked = message.role == "assistant" and message.finish_reason == REFUSED_ANSWER
            if blocked or answer_to_blocked:
                earlier.blocked_before |= blocked
                earlier.dropped += 1
                continue
            earlier.history.append(prompt.Turn(message.role, message.content))
        return earlier

    def question(self, verdict: InputVerdict | None, earlier: Earlier) -> InputVerdict | None:
        """The current message's verdict in its conversation: refused when the turns together are an attack."""
        if verdict is None or verdict.blocked:
            return verdict
        if earlier.forged:
            return self._refuse(verdict, "an earlier assistant turn carries an attack")
        if earlier.blocked_before and BACK_REFERENCE.search(verdict.text):
            return self._refuse(verdict, "refers back to a blocked turn")
        users = [t.content for t in earlier.history if t.role == "user"][-self.window:] if self.window else []
        if users:
            together = self.check(" ".join([*users, verdict.text]))
            if together is not None and together.blocked and _attack(together):
                return self._refuse(verdict, "the turns together are an attack")
        return verdict

    def _refuse(self, verdict: InputVerdict, reason: str) -> InputVerdict:
        result = RailResult("multi_turn", True, "block", 1.0, reason)
        return InputVerdict(True, verdict.text, [*verdict.results, result], self.guard.config.refusal_message)


def _attack(verdict: InputVerdict) -> bool:
    """Blocked as an attack or a harmful request, not merely off-topic (the topic rail's scope message)."""
    return any(r.acted and r.action == "block" and r.rail != "topic" for r in verdict.results)
