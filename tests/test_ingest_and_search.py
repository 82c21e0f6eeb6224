import json

import pytest
from typer.testing import CliRunner

from assistant import assembly
from assistant.cli import app
from ingestion.langchain_retriever import RagtuneRetriever
from ingestion.parser_pool import ParserPool


@pytest.fixture
def ingested(settings, small_corpus):
    report = assembly.ingest_job(settings).run([small_corpus])
    assert report.exit_code() == 0, report.to_dict()
    return report


def test_ingest_keeps_citation_metadata(settings, ingested):
    assert ingested.counts()["added"] == 3
    hits = assembly.retriever(settings).search("hotel rate per night in London", k=3)
    assert hits[0].document == "travel.md"
    assert hits[0].heading == "Travel policy > Hotels"
    assert "220 EUR" in hits[0].text
    assert hits[0].page is None  # Markdown has no pages
    table = assembly.retriever(settings).search("which printer is on floor 4", k=5)
    assert any(h.document == "printing.html" and "Canon-4B" in h.text and "Floor | Printer" in h.text for h in table)


def test_modes_and_filters(settings, ingested, tmp_path):
    retriever = assembly.retriever(settings)
    for mode in ("dense", "bm25", "hybrid"):
        hits = retriever.search("GlobalProtect MFA push", k=2, mode=mode)
        assert hits[0].document == "vpn.txt", mode
    only = retriever.search("GlobalProtect MFA push", k=5, documents=["travel.md"])
    assert only and {h.document for h in only} == {"travel.md"}
    assert retriever.search("GlobalProtect", collections=["default"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "secret.md").write_text("# Payroll\n\nPayroll runs on the 25th of each month.\n", encoding="utf-8")
    assembly.ingest_job(settings).run([other], collection="finance")
    retriever = assembly.retriever(settings)
    assert {h.collection for h in retriever.search("payroll 25th", collections=["default"])} == {"default"}
    assert retriever.search("payroll 25th", k=1, collections=["finance"])[0].document == "secret.md"
    assert retriever.search("payroll 25th", k=1)[0].collection == "finance"  # no filter: all collections


def test_reingest_of_unchanged_files_does_no_parsing(settings, small_corpus, ingested, monkeypatch):
    def refuse(self, path):
        raise AssertionError(f"parsed {path} although it did not change")

    monkeypatch.setattr(ParserPool, "parse", refuse)
    report = assembly.ingest_job(settings).run([small_corpus])
    assert report.counts()["unchanged"] == 3 and report.exit_code() == 0
    assert not report.changed


def test_changed_document_replaces_its_chunks_and_prune_removes_missing(settings, small_corpus, ingested):
    (small_corpus / "travel.md").write_text("# Travel policy\n\n## Hotels\n\nThe London cap is now 250 EUR.\n")
    (small_corpus / "vpn.txt").unlink()
    report = assembly.ingest_job(settings).run([small_corpus])
    assert report.counts()["updated"] == 1
    store = assembly.index_store(settings)
    assert len(store.docstore.list_documents("default")) == 3  # without --prune the missing file stays
    texts = " ".join(t for _, t in store.docstore.texts("default"))
    assert "250 EUR" in texts and "220 EUR" not in texts
    report = assembly.ingest_job(settings).run([small_corpus], prune=True)
    assert report.counts()["removed"] == 1
    names = {d.name for d in assembly.index_store(settings).docstore.list_documents("default")}
    assert names == {"travel.md", "printing.html"}
    hits = assembly.retriever(settings).search("GlobalProtect VPN MFA", k=5)
    assert all(h.document != "vpn.txt" for h in hits)


def test_run_directory_logs_config_and_report(settings, ingested):
    run = settings.runs_dir
    [run_dir] = [p for p in run.iterdir() if p.name.startswith("ingest-")]
    assert (run_dir / "config.yaml").read_text().startswith("home:")
    report = json.loads((run_dir / "report.json").read_text())
    assert report["counts"]["added"] == 3 and report["exit_code"] == 0
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert manifest["embedder_id"].startswith("fake-hash") and manifest["chunking"]["target_tokens"] == 80


def test_langchain_retriever_adapter(settings, ingested):
    lc = RagtuneRetriever(retriever=assembly.retriever(settings), k=2)
    docs = lc.invoke("hotel cap Berlin")
    assert docs[0].metadata["document"] == "travel.md"
    assert "180 EUR" in docs[0].page_content
    assert {"page", "heading", "chunk_id", "score"} <= set(docs[0].metadata)


def test_two_homes_never_interfere(tmp_path, small_corpus):
    from assistant.settings import load_settings

    a = load_settings(profile="test", overrides={"home": str(tmp_path / "a")})
    b = load_settings(profile="test", overrides={"home": str(tmp_path / "b")})
    assembly.ingest_job(a).run([small_corpus / "vpn.txt"])
    assembly.ingest_job(b).run([small_corpus / "travel.md"])
    assert {h.document for h in assembly.retriever(a).search("hotel VPN", k=5)} == {"vpn.txt"}
    assert {h.document for h in assembly.retriever(b).search("hotel VPN", k=5)} == {"travel.md"}


# --- the command line ---------------------------------------------------------------
def cli(home, *args):
    return CliRunner().invoke(app, ["--home", str(home), "--profile", "test", *args])


def test_cli_help_lists_only_working_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for verb in ("ingest", "search", "config"):
        assert verb in result.output


def test_cli_ingest_and_search_json(tmp_path, small_corpus):
    home = tmp_path / "h"
    result = cli(home, "ingest", str(small_corpus), "--json", "--collection", "kb")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["collection"] == "kb" and report["counts"]["added"] == 3
    result = cli(home, "search", "hotel London", "--json", "-k", "2")
    assert result.exit_code == 0
    hits = json.loads(result.stdout)
    assert len(hits) == 2 and {"document", "page", "heading", "text", "score", "dense_score", "bm25_score"} <= set(hits[0])
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"question": "hotel London"}\n\n{"question": "VPN client"}\n', encoding="utf-8")
    result = cli(home, "search", "--file", str(queries), "--json", "-k", "1")
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [hits[0]["document"] for hits in lines] == ["travel.md", "vpn.txt"]


def test_cli_errors_are_clear(tmp_path, small_corpus):
    result = cli(tmp_path / "empty", "search", "anything")
    assert result.exit_code == 2 and "no index" in result.output
    result = cli(tmp_path / "h", "ingest", str(small_corpus), "--collection", "../etc")
    assert result.exit_code == 2 and "invalid collection name" in result.output
    bad = tmp_path / "q.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    cli(tmp_path / "h", "ingest", str(small_corpus))
    result = cli(tmp_path / "h", "search", "--file", str(bad))
    assert result.exit_code == 2 and "q.jsonl:1" in result.output
    result = cli(tmp_path / "h", "search", "x", "--mode", "fuzzy")
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["--profile", "nope", "config"])
    assert result.exit_code == 2 and "unknown profile" in result.output
