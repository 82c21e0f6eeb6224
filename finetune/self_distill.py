"""Self-distilled answer targets with rejection sampling: the model's own good answers become what it trains on.

For each RAFT example whose prompt holds the oracle, the teacher's model (the base model by default:
self-distillation) answers the served-format prompt, greedily first and then sampled, up to
`samples` tries. The first answer is kept that
  - is neither empty, cut at the token cap, nor a refusal,
  - cites no passage other than the oracle (an uncited answer gets the oracle's [n] appended: it
    was checked against that passage alone),
  - is grounded in the oracle (the share of its words found there, as the quote filter measures, and every
    number it states is written there),
  - covers the fact (the share of the fact sentence's content words it contains).
Otherwise the quoted target stays. Training on the model's own accepted answers keeps the adapter
close to the base model (InstructRAG; self-distillation fine-tuning) while teaching it to answer in
full sentences and cite, which copied quotes never showed it.

With `select="best"` every try is made and the accepted answer that `rank` scores highest is kept
(best-of-n distillation, as in ReST / reward-ranked fine-tuning): the adapter then learns the base
model's best answer rather than its first passable one, the one way self-distillation can end above
the base model instead of level with it. The synth job ranks by the embedder's cosine between the
answer and the question with its quoted fact paragraph, the only reference a synthetic pair has.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from assistant import prompt
from assistant.runtime.base import GenerationRequest, Generator
from assistant.runtime.batching import generate_many
from finetune import qa_filters as F

_STOP = frozenset("the a an of to in for on at by is are was be or and with as that this from it its your you".split())
_CITATION = re.compile(r"\s*\[\d{1,2}\]")
_NUMBER = re.compile(r"\d(?:[\d,.]*\d)?")


def _numbers(text: str) -> list[str]:
    return _NUMBER.findall(text)


@dataclass
class DistillConfig:
    samples: int  # tries per example (the first greedy); 0 = off
    temperature: float  # of the tries after the first
    max_new_tokens: int
    min_recall: float  # groundedness in the oracle, as `qa_filters.grounded`
    min_coverage: float  # share of the fact's content words in the answer
    seed: int = 0
    select: str = "first"  # "first": the first accepted try; "best": every try, the best-ranked accepted one


def coverage(answer: str, fact: str) -> float:
    wanted = {w for w in F.words(fact) if w not in _STOP and len(w) > 2}
    return len(wanted & set(F.words(answer))) / len(wanted) if wanted else 0.0


def accept(answer: str, finish_reason: str, oracle: str, fact: str, position: int, shown: int,
           cfg: DistillConfig) -> tuple[str | None, str]:
    """(the target, "") when the answer is kept, else (None, why not)."""
    text = " ".join(answer.split())
    if not text or prompt.is_refusal(text):
        return None, "empty or refusal"
    if finish_reason == "length":
        return None, "cut at the token cap"
    cited = prompt.cited_numbers(text, shown)
    if any(n != position for n in cited):
        return None, "cites another passage"
    body = _CITATION.sub("", text)
    if not F.grounded(body, oracle, cfg.min_recall).ok:
        return None, "not grounded in the oracle"
    if any(n not in oracle for n in _numbers(body)):
        # word share misses an invented figure: 11 of 115 accepted Contoso tries held one ("1000 copayments")
        return None, "a number not in the oracle"
    if coverage(body, fact) < cfg.min_coverage:
        return None, "misses the fact"
    return (text if cited else f"{text} [{position}]"), ""


def distill(examples: list[dict], oracles: dict[int, str], facts: dict[str, str], generator: Generator,
            cfg: DistillConfig, on_done: Callable[[int], None] | None = None,
            rank: Callable[[dict, list[str]], list[float]] | None = None,
            log: list[dict] | None = None) -> dict[str, int]:
    """Replace the targets of `examples` (in place) where a try is accepted; returns the tally of outcomes.

    `oracles`: example id -> the oracle passage's text as the prompt shows it (with page expansion the whole page
    around the oracle chunk: the model may answer from any of it); `facts`: example id -> the fact sentence;
    `rank(example, answers)` -> one score per answer, higher is better (needed by `select="best"`); `log` gets one
    row per try (the example id, attempt, answer, finish reason and why it was refused, "" when accepted).
    """
    if cfg.select not in ("first", "best"):
        raise ValueError(f"select must be 'first' or 'best', not {cfg.select!r}")
    if cfg.select == "best" and rank is None:
        raise ValueError("select='best' needs a rank function")
    tally = {"accepted": 0, "kept_quote": 0}
    pending = [e for e in examples if e["oracle_in_context"] and cfg.samples > 0]
    kept: dict[str, list[tuple[int, str]]] = {}  # example id -> accepted (attempt, target)
    for attempt in range(cfg.samples):
        if not pending:
            break
        requests = [_request(e, cfg, attempt) for e in pending]
        outputs = generate_many(generator, requests, 1, on_done)
        still = []
        for example, (text, stats) in zip(pending, outputs):
            target, why = accept(text, stats.finish_reason, oracles[example["id"]], facts[example["id"]],
                                 example["oracle_position"], len(example["context_chunk_ids"]), cfg)
            if log is not None:
                log.append({"id": example["id"], "attempt": attempt, "answer": text, "finish": stats.finish_reason,
                            "refused": why})
            if target is None:
                tally[why] = tally.get(why, 0) + 1
            else:
                kept.setdefault(example["id"], []).append((attempt, target))
            if target is None or cfg.select == "best":  # "best" makes every try
                still.append(example)
        pending = still
    by_id = {e["id"]: e for e in examples}
    for ident, accepted in kept.items():
        if len(accepted) > 1:
            scores = rank(by_id[ident], [t for _, t in accepted])
            accepted = [max(zip(scores, accepted), key=lambda pair: pair[0])[1]]
            tally["ranked"] = tally.get("ranked", 0) + 1
        attempt, target = accepted[0]
        by_id[ident].update(answer=target, completion=prompt.completion(target), answer_source="self",
                            distill_attempt=attempt)
        tally["accepted"] += 1
    tally["kept_quote"] = sum(1 for e in examples if e["oracle_in_context"] and cfg.samples > 0 and e["id"] not in kept)
    return tally


def _request(example: dict, cfg: DistillConfig, attempt: int) -> GenerationRequest:
    return GenerationRequest(
        prompt=example["prompt"], max_new_tokens=cfg.max_new_tokens, stop=list(prompt.STOP_SEQUENCES),
        stop_repeats=True, inline_start=True,  # as served: a target must read like a served answer
        temperature=0.0 if attempt == 0 else cfg.temperature, seed=cfg.seed + attempt,
    )


def tries(examples: Sequence[dict], cfg: DistillConfig) -> int:
    """Upper bound on generations, for a progress bar."""
    return cfg.samples * sum(bool(e["oracle_in_context"]) for e in examples)


def only_distilled(examples: list[dict], refusal_share: float, seed: int) -> list[dict]:
    """The examples whose target is the model's own accepted answer, plus refusal targets (no oracle) cut back to
    `refusal_share` of what is left in each split: dropping the quotes must not turn the set into a refusal set."""
    rng = random.Random(seed)
    kept = []
    for side in ("train", "val"):
        answered = [e for e in examples if e["split"] == side and e["oracle_in_context"] and e["answer_source"] == "self"]
        refusals = [e for e in examples if e["split"] == side and not e["oracle_in_context"]]
        room = round(refusal_share / (1 - refusal_share) * len(answered)) if refusal_share < 1 else len(refusals)
        kept += answered + rng.sample(refusals, min(room, len(refusals)))
    order = {id(e): n for n, e in enumerate(examples)}
    return sorted(kept, key=lambda e: order[id(e)])
