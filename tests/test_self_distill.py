"""Self-distilled targets: which of the model's own answers may train it, and the retries."""

from __future__ import annotations

import threading

from assistant import prompt
from assistant.runtime.base import GenerationStats
from finetune.self_distill import DistillConfig, accept, coverage, distill

ORACLE = "Hotel rates are capped at 180 EUR per night in Berlin and 220 EUR per night in London."
FACT = ORACLE
CFG = DistillConfig(samples=3, temperature=0.7, max_new_tokens=64, min_recall=0.6, min_coverage=0.5)


def test_an_answer_is_kept_only_when_grounded_covering_and_citing_the_oracle():
    good = "In Berlin hotel rates are capped at 180 EUR per night, and in London at 220 EUR [2]."
    assert accept(good, "stop", ORACLE, FACT, 2, 4, CFG) == (good, "")
    assert accept(good.replace(" [2]", ""), "stop", ORACLE, FACT, 2, 4, CFG)[0] == good.replace(" [2]", "") + " [2]"
    assert accept(good, "stop", ORACLE, FACT, 1, 4, CFG) == (None, "cites another passage")
    assert accept(good, "length", ORACLE, FACT, 2, 4, CFG) == (None, "cut at the token cap")
    assert accept(prompt.REFUSAL, "stop", ORACLE, FACT, 2, 4, CFG) == (None, "empty or refusal")
    assert accept("Employees may book any hotel they like in Paris and Rome [2].", "stop", ORACLE, FACT, 2, 4, CFG)[1] \
        == "not grounded in the oracle"
    assert accept("Rates in Berlin are capped [2].", "stop", ORACLE, FACT, 2, 4, CFG)[1] == "misses the fact"
    invented = "In Berlin hotel rates are capped at 190 EUR per night, and in London at 220 EUR [2]."
    assert accept(invented, "stop", ORACLE, FACT, 2, 4, CFG) == (None, "a number not in the oracle")
    assert coverage("180 EUR in Berlin", "The cap is 180 EUR in Berlin.") == 0.75  # cap, 180, eur, berlin: 3 of 4


class Scripted:
    """Answers each prompt from a list, one entry per try; records the requests."""

    name, context_window = "scripted", 2048

    def __init__(self, answers: dict[str, list[str]]):
        self.answers, self.requests = answers, []

    def stream(self, request, cancel: threading.Event, stats: GenerationStats | None = None):
        self.requests.append(request)
        tries = [r for r in self.requests if r.prompt == request.prompt]
        if stats is not None:
            stats.finish_reason = "stop"
        yield self.answers[request.prompt][len(tries) - 1]


def example(ident: str, oracle: bool) -> dict:
    return {"id": ident, "prompt": f"prompt {ident}", "oracle_in_context": oracle, "oracle_chunk_id": 7,
            "oracle_position": 1 if oracle else None, "context_chunk_ids": [7, 8], "answer": "quote [1]",
            "completion": " quote [1]", "answer_source": "quote"}


def test_distill_retries_until_an_answer_passes_and_keeps_the_quote_otherwise():
    rows = [example("a", True), example("b", True), example("c", False)]
    good = "Hotel rates in Berlin are capped at 180 EUR per night and at 220 EUR in London [1]."
    generator = Scripted({"prompt a": [prompt.REFUSAL, good, good], "prompt b": ["No idea [2]."] * 3})
    tally = distill(rows, {"a": ORACLE, "b": ORACLE}, {"a": FACT, "b": FACT}, generator, CFG)
    assert rows[0]["answer"] == good and rows[0]["completion"] == prompt.completion(good)
    assert rows[0]["answer_source"] == "self" and rows[0]["distill_attempt"] == 1
    assert rows[1]["answer"] == "quote [1]" and rows[2]["answer"] == "quote [1]"  # rejected thrice; no oracle: untouched
    assert tally["accepted"] == 1 and tally["kept_quote"] == 1
    assert [r.temperature for r in generator.requests if r.prompt == "prompt b"] == [0.0, 0.7, 0.7]  # greedy first
    assert all(r.prompt != "prompt c" for r in generator.requests)


def test_the_synth_job_writes_self_distilled_targets_when_asked(settings, tmp_path):
    import json

    from assistant import assembly
    from finetune.synth_job import SynthJob
    from tests.conftest import make_corpus

    corpus = make_corpus(tmp_path / "kb", {
        f"site_{n}.md": f"## Badges at site {n}\n\nLost badges are replaced by reception within one working day at "
        f"site {n} after a report to security.\n\n## Parking at site {n}\n\nParking permits are issued by facilities "
        f"and renewed every January at site {n} for a small annual fee.\n" for n in range(3)})
    assembly.ingest_job(settings).run([corpus])
    settings = settings.model_copy(update={"synth": settings.synth.model_copy(update={
        "min_relevance": -1.0, "distill_samples": 1, "oracle_drop_fraction": 0.0, "val_fraction": 0.0})})
    job = SynthJob(settings, assembly.retriever(settings), assembly.teacher(settings, "fake"), None)
    job.run("default", tmp_path / "ds")
    card = json.loads((tmp_path / "ds" / "card.json").read_text())
    train = [json.loads(x) for x in (tmp_path / "ds" / "train.jsonl").read_text().splitlines()]
    distilled = [e for e in train if e["answer_source"] == "self"]
    assert card["self_distilled"]["accepted"] == len(distilled) > 0
    for e in distilled:  # the fake answers with the first sentence of passage [1]: kept only where that is the oracle
        assert e["oracle_position"] == 1 and e["completion"].endswith("[1]") and e["completion"] != e["reasoning"]
    tries = [json.loads(x) for x in (tmp_path / "ds" / "distill_tries.jsonl").read_text().splitlines()]
    assert sum(t["refused"] == "" for t in tries) == len(distilled) and len(tries) >= len(distilled)
    dropped = settings.model_copy(update={"synth": settings.synth.model_copy(update={"distill_fallback": "drop"})})
    SynthJob(dropped, assembly.retriever(dropped), assembly.teacher(dropped, "fake"), None).run("default", tmp_path / "d2")
    only = [json.loads(x) for x in (tmp_path / "d2" / "train.jsonl").read_text().splitlines()]
    assert only and all(e["answer_source"] == "self" for e in only) and len(only) == len(distilled)


def test_best_of_n_makes_every_try_and_keeps_the_best_ranked_accepted_answer():
    rows = [example("a", True), example("b", True)]
    short = "Hotel rates in Berlin are capped at 180 EUR per night [1]."
    full = "Hotel rates are capped at 180 EUR per night in Berlin and 220 EUR per night in London [1]."
    generator = Scripted({"prompt a": [short, full, "No idea [2]."], "prompt b": [short, prompt.REFUSAL, prompt.REFUSAL]})
    ranked = []

    def rank(row, answers):
        ranked.append((row["id"], answers))
        return [len(a) for a in answers]  # longer is better, for the test

    best = DistillConfig(samples=3, temperature=0.7, max_new_tokens=64, min_recall=0.6, min_coverage=0.3,
                         select="best")
    tally = distill(rows, {"a": ORACLE, "b": ORACLE}, {"a": FACT, "b": FACT}, generator, best, rank=rank)
    assert len(generator.requests) == 6  # an accepted first try does not stop the others
    assert rows[0]["answer"] == full and rows[0]["distill_attempt"] == 1
    assert rows[1]["answer"] == short and rows[1]["distill_attempt"] == 0  # the only accepted one: not ranked
    assert ranked == [("a", [short, full])]
    assert tally["accepted"] == 2 and tally["ranked"] == 1 and tally["kept_quote"] == 0
    first = DistillConfig(**{**best.__dict__, "select": "first"})
    rows = [example("a", True)]
    generator = Scripted({"prompt a": [short, full, full]})
    distill(rows, {"a": ORACLE, "b": ORACLE}, {"a": FACT}, generator, first)
    assert rows[0]["answer"] == short and len(generator.requests) == 1


def test_best_of_n_without_a_ranker_is_an_error():
    import pytest

    with pytest.raises(ValueError, match="rank"):
        distill([example("a", True)], {"a": ORACLE, "b": ORACLE}, {"a": FACT}, Scripted({}),
                DistillConfig(samples=2, temperature=0.7, max_new_tokens=64, min_recall=0.6, min_coverage=0.5,
                              select="best"))


def test_every_try_is_logged_with_why_it_was_refused():
    rows = [example("a", True)]
    good = "Hotel rates in Berlin are capped at 180 EUR per night and at 220 EUR in London [1]."
    log: list = []
    distill(rows, {"a": ORACLE}, {"a": FACT}, Scripted({"prompt a": [prompt.REFUSAL, good]}), CFG, log=log)
    assert [(r["attempt"], r["refused"]) for r in log] == [(0, "empty or refusal"), (1, "")]
    assert log[1]["answer"] == good and log[1]["finish"] == "stop"


def test_dropping_the_quotes_keeps_refusals_at_their_share():
    from finetune.self_distill import only_distilled

    def row(n, side, oracle, source):
        return {"id": f"{side}{n}", "split": side, "oracle_in_context": oracle, "answer_source": source}

    rows = [row(n, "train", True, "self") for n in range(6)] + [row(n, "train", True, "quote") for n in range(6, 20)]
    rows += [row(n, "train", False, "quote") for n in range(20, 24)] + [row(0, "val", True, "self"),
                                                                        row(1, "val", False, "quote")]
    kept = only_distilled(rows, 0.25, seed=0)  # 6 answered in train -> room for 2 refusals; 1 in val -> 0
    assert [r["id"] for r in kept if r["answer_source"] == "self"] == [f"train{n}" for n in range(6)] + ["val0"]
    refusals = [r for r in kept if not r["oracle_in_context"]]
    assert len(refusals) == 2 and all(r["split"] == "train" for r in refusals)
    assert [r["id"] for r in kept] == [r["id"] for r in rows if r in kept]  # the dataset's order
