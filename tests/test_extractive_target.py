"""Extractive answer targets (finetune/extractive_target.py): the oracle passage's sentences closest to the
question, in page order, as the target of an answerable RAFT example."""

import numpy as np

from assistant import assembly, prompt
from finetune.extractive_target import ExtractiveTargets, extract_answer, prose_sentences
from finetune.raft import QaPair, build_examples, split_by_document
from tests.test_synth import indexed, pairs_for  # noqa: F401  (the fixture)


def test_prose_sentences_leave_out_headings_fragments_and_table_rows():
    text = ("etwork providers may not be there. Cost Savings\nUsing an in-network provider can help you save money.\n"
            "| Plan | 20 | 40 |\nCall 555-0100 or 555-0101 or 555-0102.\nIn-network providers charge lower rates.")
    assert prose_sentences(text) == ["Using an in-network provider can help you save money.",
                                     "In-network providers charge lower rates."]


def test_extract_answer_keeps_the_k_closest_sentences_in_passage_order_once_each():
    sentences = ["A one.", "B two.", "C three.", "B two.", "D four."]
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.9, 0.1], [0.8, 0.2]], dtype=np.float32)
    question = np.array([0, 1], dtype=np.float32)  # closest: C, then D, then the B twins, then A
    assert extract_answer(question, sentences, vectors, 2) == "C three. D four."
    assert extract_answer(question, sentences, vectors, 3) == "B two. C three. D four."
    assert extract_answer(question, [], np.zeros((0, 2)), 3) == ""


def test_examples_with_extractive_targets_answer_from_the_oracle_passage_and_cite_it(indexed):  # noqa: F811
    pairs, chunks = pairs_for(indexed)
    retriever = assembly.retriever(indexed)
    split = split_by_document(pairs, 0.2, seed=0)
    extract = ExtractiveTargets(retriever.store.embedder.embed, sentences=1)
    examples = build_examples(pairs, chunks, retriever, split, 3, 0.2, 0, extract=extract)
    quoted = build_examples(pairs, chunks, retriever, split, 3, 0.2, 0)
    answered = [e for e in examples if e["oracle_in_context"]]
    assert answered and any(not e["oracle_in_context"] for e in examples)
    for example, plain in zip(examples, quoted):
        assert example["prompt"] == plain["prompt"]  # only the target changes
        if not example["oracle_in_context"]:
            assert example["completion"] == plain["completion"] == prompt.completion(prompt.REFUSAL)
            continue
        position = example["oracle_position"]
        oracle_text = chunks[example["context_chunk_ids"][position - 1]].text
        answer = example["answer"].removesuffix(f" [{position}]")
        assert example["answer_source"] == "extract" and answer in " ".join(oracle_text.split())
        assert answer == extract(example["question"], oracle_text)
        assert example["completion"] == prompt.completion(example["answer"])


def test_a_passage_without_prose_keeps_the_quoted_target(indexed):  # noqa: F811
    pairs, chunks = pairs_for(indexed)
    split = {p.document: "train" for p in pairs}
    examples = build_examples(pairs[:3], chunks, assembly.retriever(indexed), split, 2, 0.0, 0,
                              extract=lambda question, passage: None)
    assert [e["answer"] for e in examples] == [f"{p.answer} [{e['oracle_position']}]" for p, e in zip(pairs, examples)]
    assert {e["answer_source"] for e in examples} == {"quote"}
