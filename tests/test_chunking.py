import pytest

from assistant.settings import ChunkingSettings, EmbedderSettings
from ingestion.chunking import Chunker
from ingestion.embedder import HashEmbedder, build_embedder


def el(text, kind="NarrativeText", page=None, heading=""):
    return {"text": text, "kind": kind, "page": page, "heading": heading}


def sentences(n, word="policy"):
    return " ".join(f"Sentence {i} explains the {word} rule number {i}." for i in range(n))


@pytest.fixture
def chunker():
    return Chunker(ChunkingSettings(target_tokens=60, overlap_tokens=10), HashEmbedder(dim=16, max_tokens=100))


def test_long_sections_split_within_target_with_overlap(chunker):
    chunks = chunker.chunk([el("Leave", "Title", heading="Leave"), el(sentences(40), heading="Leave")], "Handbook")
    assert len(chunks) > 3
    assert all(c.token_count <= chunker.target for c in chunks)
    assert all(c.context == "Handbook > Leave" and c.heading == "Leave" for c in chunks)
    first_tail = chunks[0].text.split()[-3:]
    assert " ".join(first_tail) in chunks[1].text  # consecutive chunks overlap


def test_sections_run_across_pages_citing_start_and_end_page_but_never_across_headings(chunker):
    elements = [
        el("Intro on page one.", page=1, heading="A"),
        el("More on page two.", page=2, heading="A"),
        el("B", "Title", page=2, heading="B"),
        el("Text under B.", page=2, heading="B"),
    ]
    chunks = chunker.chunk(elements, "Doc")
    assert [(c.page, c.page_end, c.heading) for c in chunks] == [(1, 2, "A"), (2, 2, "B")]


def test_split_pieces_know_the_page_they_start_on(chunker):
    elements = [el(sentences(12, "alpha"), page=3, heading="A"), el(sentences(12, "omega"), page=4, heading="A")]
    chunks = chunker.chunk(elements, "Doc")
    assert len(chunks) >= 3
    for chunk in chunks:
        starts_on = 3 if chunk.text.split(" rule")[0].endswith("alpha") else 4
        ends_on = 4 if "omega" in chunk.text else 3
        assert (chunk.page, chunk.page_end) == (starts_on, ends_on), chunk.text


def test_tables_stay_whole_when_they_fit_and_split_by_rows_with_header_otherwise(chunker):
    small = "City | Limit\nBerlin | 180\nLondon | 220"
    chunks = chunker.chunk([el(small, "Table", heading="Hotels")], "Travel")
    assert [c.text for c in chunks] == [small] and chunks[0].kind == "table"
    big = "City | Limit\n" + "\n".join(f"City{i} | {100 + i}" for i in range(60))
    parts = chunker.chunk([el(big, "Table", heading="Hotels")], "Travel")
    assert len(parts) > 1
    assert all(p.text.startswith("City | Limit\n") for p in parts)
    assert all(p.token_count <= chunker.cap for p in parts)
    rows = [r for p in parts for r in p.text.split("\n")[1:]]
    assert rows == big.split("\n")[1:]  # every row exactly once, in order


def test_heading_context_off_puts_heading_in_text():
    chunker = Chunker(ChunkingSettings(heading_context=False), HashEmbedder(max_tokens=100))
    [chunk] = chunker.chunk([el("Body text.", heading="Parent > Child")], "Doc")
    assert chunk.context == "" and chunk.text == "Child\nBody text."


def test_signature_changes_with_parameters():
    embedder = HashEmbedder()
    a = Chunker(ChunkingSettings(target_tokens=100), embedder).signature()
    b = Chunker(ChunkingSettings(target_tokens=120), embedder).signature()
    assert a != b


@pytest.mark.integration
def test_real_tokenizer_never_exceeds_the_model_window():
    embedder = build_embedder(EmbedderSettings())
    chunker = Chunker(ChunkingSettings(target_tokens=10_000), embedder)  # asks for more than the window
    assert chunker.cap == embedder.max_tokens == 254
    weird = "Ünïcödé façade naïve 東京 " * 300 + "x" * 3000  # few words, many word pieces
    chunks = chunker.chunk([el(weird, heading="H" * 400), el(sentences(200))], "T" * 300)
    counts = embedder.count_tokens([c.embed_text for c in chunks])
    assert max(counts) <= 254 and counts == [c.token_count for c in chunks]


def test_titles_without_body_are_kept_as_text_but_parent_headings_are_not_repeated(chunker):
    elements = [
        el("Guest Wi-Fi password: kestrel", "Title", page=1, heading="Guest Wi-Fi password: kestrel"),
        el("Benefits", "Title", page=1, heading="Benefits"),
        el("Medical", "Title", page=1, heading="Benefits > Medical"),
        el("Medical cover starts on day one.", page=1, heading="Benefits > Medical"),
        el("Fire drill in March.", "Title", page=2, heading="Fire drill in March."),
    ]
    texts = [(c.text, c.heading) for c in chunker.chunk(elements, "Doc")]
    # The orphan title joins the next body; the parent "Benefits" stays context only; a trailing title is kept.
    assert texts == [
        ("Guest Wi-Fi password: kestrel\nMedical cover starts on day one.", "Benefits > Medical"),
        ("Fire drill in March.", ""),
    ]
