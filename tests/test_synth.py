"""Synthetic QA: the filters on crafted cases, the RAFT example builder, and the synth job end to end."""

import json
from collections import Counter

import numpy as np
import pytest

from assistant import assembly, prompt
from finetune import qa_filters as F
from finetune.raft import QaPair, build_examples, split_by_chunk, split_by_document, unit
from finetune.synth_job import SynthJob
from finetune.teacher import parse_output, teacher_prompt
from tests.conftest import make_corpus


# --- filters ---------------------------------------------------------------------------------------
def test_sanity_accepts_questions_and_rejects_the_rest():
    assert F.sanity("How many days of leave do new employees get?", 4, 30).ok
    for bad, reason in [("The leave policy.", "not a question"), ("Why?", "words"),
                        ("How many days? And who approves?", "several"),
                        ("Wie viele Tage Urlaub bekommen neue Mitarbeitende für Überstunden?", "English"),
                        ("Leave days that new employees get per year?", "start like a question")]:
        result = F.sanity(bad, 4, 30)
        assert not result.ok and reason in result.reason, bad


def test_a_question_that_copies_its_chunk_is_rejected():
    chunk = "Employees may carry over up to five unused vacation days into the next calendar year."
    assert not F.not_a_copy("Employees may carry over up to five unused vacation days into the next year?", chunk, 0.7).ok
    assert F.not_a_copy("How many vacation days can I move to next year?", chunk, 0.7).ok
    assert F.longest_shared_run("a b c d", "x b c d y") == 3


def test_groundedness_is_the_share_of_answer_words_in_the_chunk():
    chunk = "Hotel rates are capped at 180 EUR per night in Berlin."
    assert F.grounded("capped at 180 EUR per night", chunk, 0.8).score == 1.0
    result = F.grounded("Hotels cost 300 dollars in Paris", chunk, 0.8)
    assert not result.ok and result.score < 0.5
    assert not F.grounded("", chunk, 0.8).ok


def test_fact_sentences_skip_headings_and_fragments_and_prefer_rich_sentences():
    text = ("Travel policy. Hotels in Berlin are capped at 180 EUR per night for all staff members. "
            "| 3 | HP-3A | Economy class applies to flights under six hours unless a manager approves.")
    facts = F.fact_sentences(text, 6, 60, 5)
    assert "Travel policy." not in facts
    assert facts[0].startswith("Hotels in Berlin") or facts[0].startswith("| 3") is False
    assert all(len(F.words(f)) >= 6 for f in facts)


def test_near_duplicates_point_at_the_first_kept_row():
    vectors = np.array([[1, 0], [0.99, 0.05], [0, 1], [0.02, 1]], dtype=np.float32)
    assert F.near_duplicates(vectors, 0.95) == [None, 0, None, 2]


def test_teacher_prompt_ends_at_the_question_and_output_parses():
    text = teacher_prompt("Passage text.", "The fact.")
    assert text.endswith("Fact: The fact.\nQuestion:")
    out = parse_output(" How long is it?\nShort answer: Three weeks.")
    assert (out.question, out.short_answer) == ("How long is it?", "Three weeks.")
    assert parse_output(" What?").short_answer == ""


# --- RAFT examples ------------------------------------------------------------------------------
@pytest.fixture
def indexed(settings, tmp_path):
    docs = {
        f"policy_{n}.md": "\n\n".join(
            f"## Section {n}.{s}\n\nRule {n}.{s}: employees in team {n} submit form {s} to the office within {s + 2} "
            f"working days of the request, and the manager of team {n} confirms it in writing."
            for s in range(6))
        for n in range(5)
    }
    assembly.ingest_job(settings).run([make_corpus(tmp_path / "docs", docs)])
    return settings


def pairs_for(settings, per_doc=4):
    store = assembly.index_store(settings, readonly=True)
    chunks = store.docstore.collection_chunks("default")
    pairs = []
    for chunk in chunks:
        if sum(p.document == chunk.document for p in pairs) >= per_doc:
            continue
        sentence = F.sentences(chunk.text)[-1]
        pairs.append(QaPair(f"q{chunk.id}", f"What must employees do under {chunk.heading}?", sentence, sentence,
                            chunk.id, "default", chunk.document, "sha", "fake", "quote"))
    return pairs, {c.id: c for c in chunks}


def test_split_is_by_document():
    pairs = [QaPair(str(i), "q?", "a", "a", i, "c", f"doc{i % 5}", "", "t", "quote") for i in range(50)]
    split = split_by_document(pairs, 0.2, seed=1)
    assert set(split.values()) == {"train", "val"}
    assert sum(split[p.document] == "val" for p in pairs) == 10
    assert split == split_by_document(pairs, 0.2, seed=1)


def test_split_by_chunk_keeps_every_document_in_training_and_no_chunk_on_both_sides():
    pairs = [QaPair(f"{i}-{j}", "q?", "a", "a", i, "c", f"doc{i % 3}", "", "t", "quote") for i in range(40) for j in range(2)]
    split = split_by_chunk(pairs, 0.25, seed=1)
    val = [p for p in pairs if split[unit("chunk", p.document, p.chunk_id)] == "val"]
    assert len(val) == 20 and len({p.chunk_id for p in val}) == 10  # both questions of a chunk go together
    assert {p.document for p in pairs if split[unit("chunk", p.document, p.chunk_id)] == "train"} == {"doc0", "doc1", "doc2"}
    assert split == split_by_chunk(pairs, 0.25, seed=1)


def test_raft_examples_split_by_chunk_never_show_a_validation_oracle_in_training(indexed):
    pairs, chunks = pairs_for(indexed, per_doc=100)
    split = split_by_chunk(pairs, 0.3, seed=0)
    examples = build_examples(pairs, chunks, assembly.retriever(indexed), split, 3, 0.0, 0, by="chunk")
    val_oracles = {p.chunk_id for p in pairs if split[unit("chunk", p.document, p.chunk_id)] == "val"}
    assert val_oracles and any(e["split"] == "train" for e in examples)
    for example in examples:
        if example["split"] == "train":
            assert not val_oracles & set(example["context_chunk_ids"])


def test_raft_examples_hold_oracle_and_hard_negatives_in_the_served_format(indexed):
    pairs, chunks = pairs_for(indexed)
    retriever = assembly.retriever(indexed)
    split = split_by_document(pairs, 0.2, seed=0)
    examples = build_examples(pairs, chunks, retriever, split, distractors=3, oracle_drop_fraction=0.2, seed=0)
    assert len(examples) == len(pairs)
    for pair, example in zip(pairs, examples):
        context = example["context_chunk_ids"]
        # Hard negatives: the retriever's own top hits for the question, minus the oracle, same split only.
        ranked = [h.chunk_id for h in retriever.search(pair.question, k=15)
                  if h.chunk_id != pair.chunk_id and split[h.document] == example["split"]]
        assert example["distractor_chunk_ids"] == ranked[:3]
        assert {chunks[c].document for c in context} <= {d for d, s in split.items() if s == example["split"]}
        docs = [prompt.PromptDoc(chunks[c].document, chunks[c].page, chunks[c].heading, chunks[c].text) for c in context]
        assert example["prompt"] == prompt.render(docs, pair.question)
        order = [h.chunk_id for h in retriever.search(pair.question, k=15)]
        if all(c in order for c in context):  # the served order: as the retriever ranked them
            assert context == sorted(context, key=order.index)
        if example["oracle_in_context"]:
            position = context.index(pair.chunk_id) + 1
            assert example["completion"] == prompt.completion(f"{pair.answer} [{position}]")
        else:
            assert pair.chunk_id not in context and example["completion"] == prompt.completion(prompt.REFUSAL)


def test_the_oracle_is_dropped_in_the_configured_fraction(indexed):
    pairs, chunks = pairs_for(indexed, per_doc=100)
    many = [QaPair(f"{p.id}-{i}", p.question, p.answer, p.quote, p.chunk_id, p.collection, p.document, "", "t", "quote")
            for i in range(8) for p in pairs]
    split = {p.document: "train" for p in pairs}
    examples = build_examples(many, chunks, assembly.retriever(indexed), split, 2, 0.2, seed=3)
    assert sum(not e["oracle_in_context"] for e in examples) == round(0.2 * len(examples))
    assert all(build_examples(many, chunks, assembly.retriever(indexed), split, 2, 0.0, 3)[i]["oracle_in_context"]
               for i in range(10))


# --- the job -----------------------------------------------------------------------------------------
def test_synth_job_writes_a_split_redacted_dataset_with_a_card(settings, tmp_path):
    topics = [
        ("badge", "Lost badges are replaced by reception within one working day after a report to security."),
        ("parking", "Parking permits are issued by facilities and renewed every January for a small annual fee."),
        ("locker", "Lockers on the ground floor are assigned for twelve months and must be emptied before holidays."),
        ("visitor", "Visitors receive a printed pass at the desk and stay accompanied by their host at all times."),
        ("laptop", "Laptops are refreshed after four years unless the battery fails earlier during normal use."),
        ("expenses", "Expense claims need receipts and must be submitted within sixty days of the purchase date."),
        ("training", "Mandatory privacy training is completed online before the end of the first month."),
        ("holiday", "Public holidays follow the calendar of the country where the employee is contracted."),
    ]
    corpus = make_corpus(tmp_path / "kb", {
        f"guide_{n}.md": "\n\n".join(
            f"## {name.title()} rules for site {n}\n\n{sentence.replace('.', f' at site {n}.')} "
            f"Questions go to helpdesk{n}@contoso.example or phone +44 20 7946 09{n}{s}."
            for s, (name, sentence) in enumerate(topics[n * 2 : n * 2 + 4]))
        for n in range(4)
    })
    assembly.ingest_job(settings).run([corpus])
    golden = tmp_path / "golden.jsonl"
    # The fake teacher's question for one fact, given as a golden question: it must not leak in.
    leaked = "What does the policy say about accompanied and visitors and printed?"
    golden.write_text(json.dumps({"question": leaked}) + "\n")
    settings = settings.model_copy(update={"synth": settings.synth.model_copy(update={
        "exclude_golden": [str(golden)], "min_relevance": -1.0, "exclude_documents": ["guide_3.md"]})})
    job = SynthJob(settings, assembly.retriever(settings), assembly.teacher(settings, "fake"), assembly.pii_redactor(settings))
    result = job.run("default", tmp_path / "ds")
    out = tmp_path / "ds"
    train = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    val = [json.loads(x) for x in (out / "val.jsonl").read_text().splitlines()]
    assert train and val and result.train_examples == len(train)
    # Split by chunk (the default): no oracle of one split is shown in the other's prompts.
    # Passages are whole sections as served (chat.expand_pages): no chunk of them either.
    assert not {e["oracle_chunk_id"] for e in val} & {c for e in train for p in e["passage_chunk_ids"] for c in p}
    assert not {e["oracle_chunk_id"] for e in train} & {c for e in val for p in e["passage_chunk_ids"] for c in p}
    text = (out / "train.jsonl").read_text() + (out / "val.jsonl").read_text() + (out / "candidates.jsonl").read_text()
    assert "@contoso.example" not in text and "7946" not in text  # PII redacted everywhere written
    assert "guide_3.md" not in text  # excluded document: neither oracle nor distractor
    assert leaked not in [e["question"] for e in train + val]
    card = json.loads((out / "card.json").read_text())
    assert card["excluded_documents"] == ["guide_3.md"] and card["excluded_golden_sets"] == [str(golden)]
    filters = {row["filter"]: row for row in card["filters"]}
    assert filters["golden_leak"]["passed"] < filters["golden_leak"]["entered"]
    assert card["golden_near_duplicates"]["kept"] == 0 and card["golden_near_duplicates"]["generated"] >= 1
    assert set(filters) >= {"sanity", "not_a_copy", "grounded", "relevance", "near_duplicate", "round_trip"}
    assert all(e["teacher"] == "fake" and e["document_sha256"] and "round_trip" in e["scores"] for e in train)
    assert "## Filters" in (out / "card.md").read_text()
    assert Counter(e["split"] for e in train) == {"train": len(train)}

    class Mute:
        id = "fake"

        def ask(self, passage, fact):
            raise AssertionError("the teacher must not be asked again")

        ask_many = ask

    again = SynthJob(settings, assembly.retriever(settings), Mute(), assembly.pii_redactor(settings))
    again.run("default", tmp_path / "ds2", reuse=out)
    questions = lambda d: [(r["chunk_id"], r["question"]) for r in map(json.loads, (d / "candidates.jsonl").open())]
    assert questions(tmp_path / "ds2") == questions(out)  # as written (redacted), nothing asked again


def test_quoted_answers_take_the_following_sentences_and_the_one_a_pronoun_needs():
    from finetune.qa_filters import answer_passage

    chunk = ("Dental cover starts after 90 days. This means that claims before then are declined. "
             "Appeals go to the plan office. Orthodontics is excluded. | Table | 3 |")
    fact = "This means that claims before then are declined."
    assert answer_passage(chunk, fact, 1) == ("Dental cover starts after 90 days. This means that claims before "
                                              "then are declined. Appeals go to the plan office.")
    assert answer_passage(chunk, "Appeals go to the plan office.", 0) == "Appeals go to the plan office."
    assert answer_passage(chunk, "Orthodontics is excluded.", 3) == "Orthodontics is excluded."  # table fragment stops it
    assert answer_passage(chunk, "not in the chunk.", 2) == "not in the chunk."


def test_question_kinds_change_the_asking_not_the_passage():
    from finetune.teacher import KINDS, teacher_prompt

    prompts = {kind: teacher_prompt("Passage text.", "The fact.", kind) for kind in KINDS}
    assert len(set(prompts.values())) == 3 and "how do I" in prompts["procedural"] and "everyday" in prompts["paraphrase"]
    assert all(p.endswith("Passage: Passage text.\nFact: The fact.\nQuestion:") for p in prompts.values())
