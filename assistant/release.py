"""The release policy: which part of an answer a client may see while the model is still writing, and when.

The output rails (system-prompt leakage, grounding, harmful content, PII) judge text; a streaming client reads
text. Showing tokens as they come and judging the whole answer afterwards lets a client read what the rails then
replace. A Release sits between the generator and every streaming route (SSE on /v1/chat, `stream: true` on
/v1/chat/completions, `ragtune chat`, the widget) and lets text out only once it has been judged
(`guardrails.stream_release`):

- `checked` (default): the answer is cut into units (a sentence; or, past `stream_unit_max_chars`, the text up
  to the last clause boundary or word) and each unit is released only after `Guard.check_unit` passed it: leakage
  on the answer so far, the harmful-content rail on the unit and on the answer so far, grounding on the answer so
  far at `grounding_threshold` (the share of supported sentences `check_output` asks of a whole answer). A unit
  that fails only grounding is held back, not refused: later supported sentences may raise the share, and it goes
  out with the first unit after which the answer so far is grounded. What passed then goes through the streaming
  PII masker like any answer. When the generation ends, the rest is a unit too and the whole answer then takes
  `check_output` (the NeMo output flows when that engine is on) before anything held is let out.
- `final`: the same judgement, but nothing is released until the whole answer passed; then it goes out at once
  (a failure shows the rail's message alone).

The verdict never contradicts what a client already has. Released text was judged with everything before it, by
the same rails and thresholds as a whole answer (leakage only grows with the text, so a prefix that passed is not
a leak the whole answer would hide). When leakage or harmful content fails a unit, generation stops; when the
whole-answer check fails at the end, what was held is dropped. Either way the final answer is the text already
released followed by the rail's message, and the failing unit and everything after it (or held) are withheld from
every route and from storage. The final event says `replaced`, and its text starts with everything released, so
a client that appends deltas (an OpenAI SDK) ends with exactly the served answer.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from guardrails.verdict import OutputVerdict

MODES = ("checked", "final")
# A sentence ends at . ! ? (closing quotes or brackets after it) followed by white space, or at a line break:
# grounding splits answers at the same places (guardrails.grounding.sentences), so a unit is whole sentences.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+|\n+")
_CLAUSE_END = re.compile(r"[,;:]\s+")


def unit_end(text: str, max_chars: int) -> int:
    """Where the first complete unit of `text` ends (0: none yet). A unit is a sentence; a sentence longer than
    `max_chars` is cut at its last clause boundary before the cap, else its last word boundary, else at the cap."""
    for match in _SENTENCE_END.finditer(text):
        if text[: match.end()].strip():
            return match.end()
    if len(text) < max_chars:
        return 0
    head = text[:max_chars]
    clauses = [m.end() for m in _CLAUSE_END.finditer(head) if head[: m.start()].strip()]
    if clauses:
        return clauses[-1]
    space = head.rstrip().rfind(" ")
    return space + 1 if space > 0 and head[:space].strip() else max_chars


class Release:
    """One answer's release. `feed(piece) -> str` as the model writes (what may be shown now), then
    `finish(raw) -> OutputVerdict` (the final answer, whose text starts with all that was shown) and
    `rest(final_text) -> str` (what is still to be shown). Blocking (the rails run here): call off the event loop."""

    def __init__(self, guard: Any, contexts: Sequence[str] | None, mode: str = "checked", unit_max_chars: int = 48):
        if mode not in MODES:
            raise ValueError(f"stream_release must be one of {', '.join(MODES)}, not {mode!r}")
        self.guard = guard
        self.contexts = list(contexts or []) or None
        self.mode = mode
        self.unit_max_chars = unit_max_chars
        self.masker = guard.output_stream()
        self.passed = ""  # raw text of the units that passed
        self.holding = ""  # raw units that passed all but grounding: released once the answer so far is grounded
        self.pending = ""  # raw text not judged yet
        self.shown = ""  # what clients were given: masked text of passed units
        self.held = ""  # `final` mode: masked text of passed units, shown once the whole answer passed
        self.results: list[Any] = []  # every rail result, units and whole answer
        self.failed: OutputVerdict | None = None  # the unit (or whole-answer) verdict that replaced the answer

    @property
    def stopped(self) -> bool:
        """A unit failed: nothing more will be shown, so generating more is wasted."""
        return self.failed is not None

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.pending += piece
        out = []
        while not self.stopped and (cut := unit_end(self.pending, self.unit_max_chars)):
            unit, self.pending = self.pending[:cut], self.pending[cut:]
            out.append(self.masker.feed(self._judge(unit)))
        if self.mode == "final":  # judged the same way (so both modes give one verdict), shown only at the end
            self.held += "".join(out)
            return ""
        return self._show("".join(out))

    def finish(self, raw: str) -> OutputVerdict | None:
        """The final verdict on the answer `raw` (all the model wrote); None for an empty answer (the caller says
        so in its own words, which need no rails)."""
        if not raw.strip() and not self.shown.strip():
            return None
        last, self.pending = self.pending, ""
        if not self.stopped and last.strip():
            self._judge(last)
        whole = None
        if not self.stopped:  # the whole answer as a non-streaming one is judged (the NeMo output flows)
            whole = self.guard.check_output((self.passed + self.holding).strip(), self.contexts)
            self.results += whole.results
            if whole.replaced:
                self.failed = whole
        if self.stopped and self.mode == "final":  # nothing was shown: the message alone, as a whole-answer check
            assert self.failed is not None
            return OutputVerdict(self.failed.text, True, self.failed.grounded, self.results, self.failed.unsupported)
        if self.stopped:
            assert self.failed is not None
            passed = self.shown + self.masker.flush()  # units that passed but the masker still held: theirs to show
            text = self.failed.text if not passed.strip() else f"{passed.lstrip()}\n\n{self.failed.text}"
            return OutputVerdict(text, True, self.failed.grounded, self.results, self.failed.unsupported)
        assert whole is not None
        streamed = (self.shown + self.held + self.masker.feed(self.holding + last) + self.masker.flush()).strip()
        # The whole answer's own masking when it extends what was shown (as a non-streamed answer reads), else the
        # streaming masker's.
        text = whole.text if whole.text.startswith(self.shown.lstrip()) else streamed
        return OutputVerdict(text, False, whole.grounded, self.results, whole.unsupported)

    def rest(self, final_text: str) -> str:
        """The part of `final_text` a client does not have yet (all of it in `final` mode)."""
        shown = self.shown.lstrip()
        if not shown.strip():
            return final_text
        if final_text.startswith(shown):
            return final_text[len(shown):]
        if shown.startswith(final_text):  # all of it was shown (the final text is stripped of trailing space)
            return ""
        return "\n\n" + final_text  # never reached: the verdict extends what was shown

    def _judge(self, unit: str) -> str:
        """Judge `unit` after what came before it; the raw text that may now go to the masker ("" if none)."""
        verdict = self.guard.check_unit(self.passed + self.holding + unit, unit, self.contexts)
        self.results += [r for r in verdict.results if r.rail != "grounding"]  # the whole-answer check says grounding
        if not verdict.replaced:
            released, self.holding = self.holding + unit, ""
            self.passed += released
            return released
        if verdict.grounded is False:  # not supported enough yet: later sentences may raise the share
            self.holding += unit
            return ""
        self.failed = verdict
        return ""

    def _show(self, text: str) -> str:
        self.shown += text
        return text
