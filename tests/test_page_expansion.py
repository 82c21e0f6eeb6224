"""Page expansion: the model reads the best hit's whole page (or section) merged back into one passage."""

import numpy as np
import pytest

from assistant import assembly, prompt
from assistant.chat_service import ChatRequest, ChatService
from assistant.inference_queue import InferenceQueue
from assistant.settings import load_settings
from ingestion.chunking import Chunk
from ingestion.docstore import ChunkRow, DocStore
from finetune.raft import QaPair, build_examples, split_by_chunk, unit
from ingestion.page_expansion import PageExpander, merge, overlap, window
from tests.conftest import make_corpus


def row(id, text, heading="H", page=None, page_end=None):
    return ChunkRow(id, 1, "c", "d.pdf", "d.pdf", id, text, "", page, page_end, heading, "text")


def test_merge_drops_the_text_a_chunk_repeats_and_keeps_new_headings_as_lines():
    rows = [row(1, "Alpha beta gamma. The overlap sentence is here."),
            row(2, "The overlap sentence is here. Delta epsilon."),
            row(3, "Zeta eta.", heading="Second heading")]
    assert merge(rows) == "Alpha beta gamma. The overlap sentence is here. Delta epsilon.\n\nSecond heading\nZeta eta."


def test_a_chance_match_of_a_few_characters_is_not_overlap():
    assert overlap("ends with the", "the start") == 0  # "the" is chance, not a repeated passage
    assert merge([row(1, "one line ends with the"), row(2, "the next starts")]) == "one line ends with the\nthe next starts"


def test_the_window_grows_around_the_hit_within_the_cap_and_always_holds_the_hit():
    rows = [row(i, "x" * 100) for i in range(1, 8)]
    assert [r.id for r in window(rows, 4, 300)] == [3, 4, 5]
    assert [r.id for r in window(rows, 1, 350)] == [1, 2, 3]
    assert [r.id for r in window(rows, 7, 10)] == [7]  # longer than the cap alone: the hit still goes in
    assert [r.id for r in window(rows, 4, 10_000)] == list(range(1, 8))


def test_a_page_unit_is_every_chunk_starting_on_or_spanning_the_page(tmp_path):
    store = DocStore(tmp_path / "docstore.sqlite")
    chunks = [Chunk("p1 a", "", 1, "A", "text", page_end=1), Chunk("p1 b spans", "", 1, "A", "text", page_end=2),
              Chunk("p2 a", "", 2, "B", "text", page_end=2), Chunk("p3 a", "", 3, "B", "text", page_end=3)]
    store.replace_document("c", "d.pdf", "d.pdf", "x", 1, 3, "v", chunks, np.zeros((4, 2)))
    ids = {r.text: r.id for r in store.collection_chunks("c")}
    assert [r.text for r in store.unit_chunks(ids["p2 a"])] == ["p1 b spans", "p2 a"]
    assert [r.text for r in store.unit_chunks(ids["p1 a"])] == ["p1 a", "p1 b spans"]
    assert store.unit_chunks(10_000) == []
    flat = [Chunk(f"md {n}", "", None, f"H{n}", "text") for n in range(3)]
    store.replace_document("c", "d.md", "d.md", "y", 1, None, "v", flat, np.zeros((3, 2)))
    md = {r.text: r.id for r in store.collection_chunks("c")}
    assert [r.text for r in store.unit_chunks(md["md 1"])] == ["md 0", "md 1", "md 2"]  # no pages: the document
    long = [Chunk(f"long {n}", "", None, "H", "text") for n in range(200)]
    store.replace_document("c", "long.md", "long.md", "z", 1, None, "v", long, np.zeros((200, 2)))
    ids = {r.text: r.id for r in store.collection_chunks("c")}
    near = [r.text for r in store.unit_chunks(ids["long 100"], radius=40)]
    assert near == [f"long {n}" for n in range(60, 141)]  # a long document is never read whole


LONG = " ".join(f"Rule {n}: the allowance for item {n} is {n * 10} EUR per month." for n in range(1, 25))
DOCS = {"allowances.md": f"# Allowances\n\n## Monthly allowances\n\n{LONG}\n\n## Other\n\nNothing else applies.\n",
        "plans.md": "# Plans\n\n## Basic plan\n\nThe Basic plan costs 10 EUR a month.\n"}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    settings = load_settings(profile="test", overrides={"home": str(root / "home")})
    assert assembly.ingest_job(settings).run([make_corpus(root / "docs", DOCS)]).exit_code() == 0
    return root / "home"


def service(home, **chat):
    settings = load_settings(profile="test", overrides={"home": str(home), "chat": chat})
    return ChatService(assembly.retriever(settings), assembly.generator(settings), InferenceQueue(), settings.chat,
                       settings.generator)


def test_without_pages_the_model_reads_the_text_around_the_best_hit_once_and_the_citation_shows_the_chunk(home):
    question = "What is the allowance for item 20?"
    chunked = service(home, expand_pages=0).prepare(ChatRequest(question))
    paged = service(home, expand_pages=1).prepare(ChatRequest(question))
    section = [c for c in chunked.sources if c.document == "allowances.md"]
    assert len(section) >= 1 and len(chunked.sources) > 1  # the chunks, several documents
    assert len(paged.sources) == 1 and len(paged.contexts) == 1  # one passage: a page's worth around the hit
    page = paged.contexts[0]
    assert page.startswith("Rule 1:")
    for n in range(1, 25):  # the overlap between chunks appears once
        assert page.count(f"Rule {n}:") == 1
    assert page.endswith("per month.\n\nAllowances > Other\nNothing else applies.")  # the next section, headed
    assert "Basic plan" not in page  # another document
    assert paged.sources[0].chunk_id == chunked.sources[0].chunk_id
    assert paged.sources[0].snippet == chunked.sources[0].snippet  # the chunk found, not the section's start
    assert page in paged.prompt_text


def test_a_page_longer_than_the_cap_keeps_the_chunks_around_the_hit(home):
    ask = ChatRequest("What is the allowance for item 12?")
    paged = service(home, expand_pages=1, window_chars_without_pages=400).prepare(ask)
    assert 200 < len(paged.contexts[0]) <= 400 and "Rule 1:" not in paged.contexts[0]
    assert "Rule 12:" in service(home, expand_pages=1, page_max_chars=400).prepare(ask).contexts[0]


class DroppingGuard:
    """A retrieval rail that drops any passage holding `poison` (stands in for the injection rail)."""

    def __init__(self, poison):
        self.poison, self.seen = poison, []

    def check_chunks(self, chunks):
        from guardrails.verdict import ChunkVerdict

        self.seen += list(chunks)
        return [ChunkVerdict(i, self.poison in c, "" if self.poison in c else c) for i, c in enumerate(chunks)]

    def mask_output_text(self, text):
        return text


def test_the_retrieval_rail_checks_the_neighbours_and_a_dropped_page_yields_to_the_next(home):
    chat = service(home, expand_pages=1)
    chat.guard = DroppingGuard("Rule 3:")  # a neighbour of the chunk found, never itself a search hit here
    prepared = chat.prepare(ChatRequest("What is the allowance for item 20?"))
    assert any("Rule 3:" in seen for seen in chat.guard.seen)
    assert len(prepared.contexts) == 1 and "Rule" not in prepared.contexts[0]  # the next section instead
    assert not prepared.sources[0].heading.endswith("Monthly allowances")



def test_training_prompts_show_the_oracles_page_exactly_as_chat_serves_it_and_never_the_other_splits_chunks(home):
    settings = load_settings(profile="test", overrides={"home": str(home)})
    retriever = assembly.retriever(settings)
    rows = [c for c in retriever.store.docstore.collection_chunks("default") if c.document == "allowances.md"]
    section = [c for c in rows if c.heading.endswith("Monthly allowances")]
    assert len(section) >= 4  # several chunks: the page is more than the oracle
    question = "What is the allowance for item 20?"
    pairs = [QaPair(f"q{c.id}", question if n == 0 else f"What does rule {n} say?", "x", c.text.split(".")[0],
                    c.id, "default", c.document, "sha", "fake", "quote") for n, c in enumerate(section)]
    chunks = {c.id: c for c in retriever.store.docstore.collection_chunks("default")}
    pages = PageExpander(retriever.store.docstore, settings.chat.page_max_chars)
    examples = build_examples(pairs, chunks, retriever, {p.document: "train" for p in pairs}, 3, 0.0, 0, by="document",
                              pages=pages, units=1)
    served = service(home, expand_pages=1).prepare(ChatRequest(question))
    assert served.sources[0].heading.endswith("Monthly allowances")
    assert examples[0]["prompt"] == served.prompt_text  # what is trained is what is served
    assert examples[0]["completion"].strip().endswith("[1]") and len(examples[0]["passage_chunk_ids"]) == 1
    assert {c.id for c in section} <= set(examples[0]["passage_chunk_ids"][0])

    split = split_by_chunk(pairs, 0.5, seed=0)
    held_out = {p.chunk_id for p in pairs if split[unit("chunk", p.document, p.chunk_id)] == "val"}
    assert held_out
    examples = build_examples(pairs, chunks, retriever, split, 3, 0.0, 0, by="chunk", pages=pages, units=1)
    for example in (e for e in examples if e["split"] == "train"):
        assert not held_out & {c for p in example["passage_chunk_ids"] for c in p}
        assert example["oracle_chunk_id"] in example["passage_chunk_ids"][0]

    both = {"allowances.md": "train", "plans.md": "train"}  # by document, a document without pairs has no side
    dropped = build_examples(pairs, chunks, retriever, both, 3, 1.0, 0, by="document", pages=pages, units=1)
    for example, pair in zip(dropped, pairs):
        assert example["completion"].strip() == prompt.completion(prompt.REFUSAL).strip()
        assert not set(example["passage_chunk_ids"][0]) & {c.id for c in section}  # another page, not the oracle's


def test_a_reviewed_example_shows_the_page_chat_would_serve_within_the_windows_room(home):
    from types import SimpleNamespace

    from assistant.retrain import reviewed_example

    settings = load_settings(profile="test", overrides={"home": str(home)})
    retriever = assembly.retriever(settings)
    row = SimpleNamespace(question="What is the allowance for item 20?", collection="default", answerable=True,
                          reference="200 EUR per month.", sources=[{"document": "allowances.md", "page": None}],
                          review_id=7)
    roomy = reviewed_example(row, retriever, 8, lambda text: text, 1, 4000, 2400, None)
    assert roomy["prompt"] == service(home, expand_pages=1).prepare(ChatRequest(row.question)).prompt_text
    tight = reviewed_example(row, retriever, 8, lambda text: text, 1, 4000, 2400, 300)
    passage = tight["prompt"].split("Documents:\n", 1)[1].split("\n", 1)[1].split("\n\nQuestion:")[0]
    assert 0 < len(passage) <= 300 and roomy["completion"].strip().endswith("[1]")
