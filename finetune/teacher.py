"""The teacher that writes synthetic questions (and, when trusted, short answers) about a passage.

Any ragtune generator can teach: the embedded base model (few-shot prompting), another local
transformers model, or an OpenAI-compatible server running a larger model (distillation). Each
request points the teacher at one *fact* sentence of the chunk, so the answer is grounded by
construction: the fact is quoted verbatim from the chunk and the teacher only phrases the question.
The few-shot examples are invented here and share no text with any golden set.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Sequence

from assistant.runtime.base import GenerationRequest, Generator
from assistant.runtime.batching import generate_many

# Invented snippets on topics absent from the demo and evaluation corpora showing the pattern: passage, the
# sentence to ask about, a question a colleague would type, a short answer.
_SHOTS = [
    (
        "Company library. Books from the company library can be borrowed for up to three weeks. "
        "Overdue books block new loans until they are returned.",
        "Books from the company library can be borrowed for up to three weeks.",
        "How long can I keep a book from the company library?",
        "Up to three weeks.",
    ),
    (
        "Office plants. Plants are watered by the facilities team every Tuesday. Staff should not move "
        "plants between floors because each floor has its own watering plan.",
        "Plants are watered by the facilities team every Tuesday.",
        "Who waters the office plants, and on which day?",
        "The facilities team, every Tuesday.",
    ),
    (
        "Staff choir. The choir rehearses on Thursdays at 17:30 in the atrium. New singers can join at "
        "any rehearsal without an audition.",
        "New singers can join at any rehearsal without an audition.",
        "Do I need to audition to join the staff choir?",
        "No, new singers can join at any rehearsal.",
    ),
]
_HEADER = "Write one question an employee would ask that the fact answers, then a short answer.\n\n"
# Question kinds, so the data asks the way people do and not one narrow way (each job gets one in turn):
# kind -> (header, shots); the passages and facts of the shots are shared, only the asking changes.
KINDS = {
    "direct": (_HEADER, [(p, f, q, a) for p, f, q, a in _SHOTS]),
    "procedural": (
        "Write one 'how do I' or 'what should I do' question an employee would ask that the fact answers, then a "
        "short answer.\n\n",
        [(_SHOTS[0][0], _SHOTS[0][1], "What should I do if I need a library book for a month?",
          "Books can be borrowed for up to three weeks, so return it and borrow it again."),
         (_SHOTS[1][0], _SHOTS[1][1], "How do I get the plants on my floor watered?",
          "You do not need to: the facilities team waters them every Tuesday."),
         (_SHOTS[2][0], _SHOTS[2][1], "How do I join the staff choir?", "Come to any rehearsal; no audition is needed.")],
    ),
    "paraphrase": (
        "Write one question an employee would ask that the fact answers, in everyday words rather than the "
        "passage's wording, then a short answer.\n\n",
        [(_SHOTS[0][0], _SHOTS[0][1], "For how long may I hang on to a book I took from the library?", "Up to three weeks."),
         (_SHOTS[1][0], _SHOTS[1][1], "Is someone looking after the greenery in the office?",
          "Yes, the facilities team waters the plants every Tuesday."),
         (_SHOTS[2][0], _SHOTS[2][1], "Is there a try-out before I can sing with the company choir?",
          "No, new singers can join at any rehearsal.")],
    ),
}


@dataclass
class TeacherOutput:
    question: str
    short_answer: str  # "" when the teacher wrote none


def teacher_prompt(passage: str, fact: str, kind: str = "direct") -> str:
    header, shots = KINDS[kind]
    parts = [header]
    for shot_passage, shot_fact, question, answer in shots:
        parts.append(f"Passage: {shot_passage}\nFact: {shot_fact}\nQuestion: {question}\nShort answer: {answer}\n\n")
    parts.append(f"Passage: {' '.join(passage.split())}\nFact: {' '.join(fact.split())}\nQuestion:")
    return "".join(parts)


def parse_output(text: str) -> TeacherOutput:
    """The completion after "Question:": the question line, then an optional "Short answer:" line."""
    question, _, rest = text.strip().partition("\n")
    answer = ""
    if rest.strip().lower().startswith("short answer:"):
        answer = rest.strip()[len("short answer:"):].strip().split("\n")[0]
    return TeacherOutput(" ".join(question.split()), " ".join(answer.split()))


class Teacher:
    def __init__(self, generator: Generator, teacher_id: str, want_answers: bool = False, seed: int = 0):
        self.generator = generator
        self.id = teacher_id  # recorded in every row's provenance
        # Without teacher answers the completion ends at the question's line break: a base model
        # would otherwise spend most of its tokens (about 4x the time on a CPU) on an unused answer.
        self.want_answers = want_answers
        self.seed = seed

    def ask(self, passage: str, fact: str, kind: str = "direct") -> TeacherOutput:
        return parse_output("".join(self.generator.stream(self._request(passage, fact, kind), threading.Event())))

    def ask_many(self, pairs: Sequence[tuple[str, str]], batch_size: int = 8,
                 on_done: Callable[[int], None] | None = None, kinds: Sequence[str] = ()) -> list[TeacherOutput]:
        """`ask` for many (passage, fact) pairs, decoded together where the backend can (same outputs);
        `kinds` gives each pair its question kind (default: direct)."""
        kinds = list(kinds) or ["direct"] * len(pairs)
        requests = [self._request(passage, fact, kind) for (passage, fact), kind in zip(pairs, kinds)]
        return [parse_output(text) for text, _ in generate_many(self.generator, requests, batch_size, on_done)]

    def _request(self, passage: str, fact: str, kind: str = "direct") -> GenerationRequest:
        return GenerationRequest(
            prompt=teacher_prompt(passage, fact, kind),
            max_new_tokens=96 if self.want_answers else 40,
            stop=["\n\n", "\nPassage:", "\nFact:"] if self.want_answers else ["\n"],
            temperature=0.0,  # greedy: the same chunks give the same dataset
            seed=self.seed,
        )
