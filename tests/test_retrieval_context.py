"""Contextual chunk headers, page boundaries, page collapse and document naming (fake embedder, fast)."""

from __future__ import annotations

import sqlite3

from assistant import assembly
from assistant.settings import ChunkingSettings, load_settings
from ingestion.chunking import Chunker
from ingestion.doc_context import describe
from ingestion.doc_match import DocumentMatcher, naming_tokens
from ingestion.embedder import HashEmbedder
from tests.conftest import make_corpus

COVER = (
    "UNITED STATES SECURITIES AND EXCHANGE COMMISSION\nFORM 10-Q\n"
    "For the quarterly period ended April 1, 2023\nCommission File Number: 001-36743\n"
    "Apple Inc.\n(Exact name of Registrant as specified in its charter)\nCalifornia 94-2404110"
)


def el(text, page=1, heading="", kind="NarrativeText"):
    return {"text": text, "kind": kind, "page": page, "heading": heading}


def test_cover_page_gives_issuer_form_and_period():
    context = describe([el(COVER), el("Apple Inc. | Q2 2023 Form 10-Q | 1", page=2)], "aapl 20230401")
    assert (context.issuer, context.form) == ("Apple Inc.", "10-Q")
    assert context.period == "quarterly period ended April 1, 2023, Q2 2023"
    assert context.header() == "aapl 20230401 | Apple Inc. | Form 10-Q | quarterly period ended April 1, 2023, Q2 2023"


def test_company_suffix_without_a_cover_and_nothing_guessed_without_one():
    upper = describe([el("MICROSOFT CORPORATION\nFORM 10-Q\nFor the Quarter Ended March 31, 2023")], "msft 10q")
    assert upper.header() == "msft 10q | Microsoft Corporation | Form 10-Q | Quarter Ended March 31, 2023"
    plain = describe([el("Chief Executive Officer Company overview. Employees get 20 days of leave.")], "role library")
    assert plain.header() == "role library"  # no issuer, form or period: the title alone, as before
    late = describe([el("Intro", page=1), el("Globex Corporation signed on page nine.", page=9)], "report")
    assert late.issuer == ""  # only the first pages are read


def test_chunk_context_carries_the_header_and_the_text_stays_clean():
    chunker = Chunker(ChunkingSettings(target_tokens=60, overlap_tokens=10), HashEmbedder(dim=16, max_tokens=100))
    chunks = chunker.chunk([el(COVER), el("Net sales rose 5 percent.", page=3, heading="Results")], "aapl")
    results = [c for c in chunks if c.heading == "Results"][0]
    assert results.context == "aapl | Apple Inc. | Form 10-Q | quarterly period ended April 1, 2023 > Results"
    assert results.text == "Net sales rose 5 percent."  # what the prompt shows
    assert results.embed_text.startswith(results.context)  # what is embedded


def test_page_boundaries_end_chunks_at_page_breaks_and_change_the_signature():
    embedder = HashEmbedder(dim=16, max_tokens=100)
    elements = [el("Intro on page one.", 1, "A"), el("More on page two.", 2, "A"), el("And page three.", 3, "A")]
    spanning = Chunker(ChunkingSettings(target_tokens=60), embedder)
    paged = Chunker(ChunkingSettings(target_tokens=60, page_boundaries=True), embedder)
    assert [(c.page, c.page_end) for c in spanning.chunk(elements, "Doc")] == [(1, 3)]
    assert [(c.page, c.page_end) for c in paged.chunk(elements, "Doc")] == [(1, 1), (2, 2), (3, 3)]
    assert spanning.signature() != paged.signature() and spanning.signature().startswith("v3:")


def test_naming_words_and_document_scores():
    assert naming_tokens("What drove the change in Apple's net income in Q2 2023?") == {"appl", "q2", "2023"}
    assert naming_tokens("what is the deductible?") == set()
    headers = {1: "aapl.pdf aapl | Apple Inc. | Form 10-Q | Q2 2023", 2: "msft.pdf msft | Microsoft Corporation | Form 10-Q",
               3: "aapl-q3.pdf aapl | Apple Inc. | Form 10-Q | Q3 2023"}
    matcher = DocumentMatcher(headers, {10: 1, 20: 2, 30: 3})
    scores = matcher.document_scores("How did Apple's services revenue change in Q2 2023?")
    assert scores[1] == 1.0 and 0 < scores[3] < 1 and 2 not in scores  # "Form 10-Q" is in every header: no signal
    assert matcher.chunk_scores("What did Microsoft say about Azure?", [10, 20, 30]) == {20: 1.0}


def _filings(tmp_path):
    return make_corpus(tmp_path / "docs", {
        "filing_a.md": "Form 10-Q of Globex Corporation for the quarterly period ended March 31, 2024.\n\n"
                       "# Results\n\nNet income rose because unit shipments grew.\n",
        "filing_b.md": "Form 10-Q of Initech Corporation for the quarterly period ended March 31, 2024.\n\n"
                       "# Results\n\nNet income fell because unit shipments shrank.\n",
    })


def test_bm25_finds_the_company_named_only_on_the_cover(tmp_path):
    settings = load_settings(profile="test", overrides={"home": str(tmp_path / "home")}, environ={})
    job = assembly.ingest_job(settings)
    job.run([_filings(tmp_path)])
    job.store.close()
    retriever = assembly.retriever(settings)
    for company, document in (("Globex", "filing_a.md"), ("Initech", "filing_b.md")):
        hits = retriever.search(f"Why did {company} net income change?", k=2, mode="bm25")
        results = [h for h in hits if h.heading == "Results"]
        assert results[0].document == document, [(h.document, h.heading) for h in hits]
        assert company not in results[0].text  # the header is indexed, not pasted into the passage


def test_an_index_of_the_previous_chunk_format_is_rebuilt_in_place(tmp_path):
    settings = load_settings(profile="test", overrides={"home": str(tmp_path / "home")}, environ={})
    docs = _filings(tmp_path)
    job = assembly.ingest_job(settings)
    job.run([docs])
    job.store.close()
    db = sqlite3.connect(settings.home / "index" / "docstore.sqlite")
    with db:  # what a v2 index looks like: an older signature and title-only contexts
        db.execute("UPDATE documents SET chunking = 'v2:old'")
        db.execute("UPDATE chunks SET context = 'filing a'")
    db.close()
    job = assembly.ingest_job(settings)
    report = job.run([docs])
    job.store.close()
    assert report.counts()["updated"] == 2 and report.exit_code() == 0
    store = assembly.index_store(settings, readonly=True)
    try:
        contexts = {row.context for row in store.docstore.collection_chunks("default")}
        assert any("Globex Corporation" in c for c in contexts) and "filing a" not in contexts
    finally:
        store.close()


def test_collapse_gives_each_page_one_slot(tmp_path):
    base = {"home": str(tmp_path / "home"), "chunking": {"target_tokens": 24, "overlap_tokens": 0}}
    from tests.hostile_corpus import text_pdf

    docs = tmp_path / "docs"
    docs.mkdir()
    lines = [f"Clause {i}: the parking permit costs {i} euros per month in zone {i}." for i in range(12)]
    (docs / "parking.pdf").write_bytes(text_pdf(lines))
    (docs / "other.md").write_text("# Parking\n\nBicycle parking permits are free.\n", encoding="utf-8")
    settings = load_settings(profile="test", overrides=base, environ={})
    job = assembly.ingest_job(settings)
    job.run([docs])
    job.store.close()
    plain_settings = load_settings(profile="test", overrides={**base, "retrieval": {"collapse_pages": False}}, environ={})
    plain = assembly.retriever(plain_settings).search("parking permit euros per month zone", k=3, mode="bm25")
    assert [h.document for h in plain].count("parking.pdf") >= 2  # one page fills several slots
    collapsed_settings = load_settings(profile="test", overrides={**base, "retrieval": {"collapse_pages": True}}, environ={})
    collapsed = assembly.retriever(collapsed_settings).search("parking permit euros per month zone", k=3, mode="bm25")
    pages = [(h.document, h.page) for h in collapsed if h.page is not None]
    assert len(pages) == len(set(pages)) == 1 and "other.md" in [h.document for h in collapsed]
