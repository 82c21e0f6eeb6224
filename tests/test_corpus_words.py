"""The corpus's own words are not masked as person names; real names still are."""

import json

import numpy as np
import pytest

from assistant import assembly
from assistant.settings import load_settings
from finetune.pii import PiiRedactor
from ingestion.bm25_index import BM25Index
from tests.conftest import make_corpus

SENTENCE = "At Contoso, the benefits team answers questions about X-rays and dental care within {n} days."


def test_document_frequency_counts_chunks_and_a_hyphenated_word_by_its_rarest_term():
    index = BM25Index(np.array([1, 2, 3]), ["Contoso offers X-rays", "Contoso rays", "the Contoso officer"])
    assert index.document_frequency("Contoso") == 3 and index.document_frequency("contoso") == 3
    assert index.document_frequency("rays") == 2 and index.document_frequency("X-rays") == 2
    assert index.document_frequency("officers") == 1  # stemmed like the index
    assert index.document_frequency("Garcia") == 0 and index.document_frequency("the") == 0


def test_a_tagged_name_made_only_of_known_words_is_kept_and_the_rules_names_are_masked_regardless():
    plain = PiiRedactor()
    text = "At Contoso, the benefits team answers. Contact Maria Garcia for details."
    assert "At [PERSON]," in plain.redact(text).text  # the tagger's false positive, without the corpus's words
    known = PiiRedactor(known=lambda word: word in {"contoso", "maria", "garcia"})
    masked = known.redact(text).text
    assert masked.startswith("At Contoso,") and "Contact [PERSON] for details." in masked


@pytest.fixture
def home(tmp_path):
    docs = {f"policy_{n}.md": f"# Policy {n}\n\n" + "\n\n".join(
        f"## Part {p}\n\n" + SENTENCE.format(n=n + p) for p in range(2)) for n in range(4)}
    docs["contacts.md"] = "# Contacts\n\n## Payroll\n\nPayroll questions go to Maria Garcia on the second floor.\n"
    root = tmp_path
    settings = load_settings(profile="test", overrides={"home": str(root / "home")})
    assert assembly.ingest_job(settings).run([make_corpus(root / "docs", docs)]).exit_code() == 0
    return settings


def test_the_served_guard_keeps_the_corpus_words_and_masks_a_name_it_holds_once(home):
    store = assembly.index_store(home, readonly=True)
    words = assembly.corpus_words(home, store)
    assert words("Contoso") and words("X-rays") and not words("Garcia")
    guard = assembly.guard(home, store.embedder, store)
    answer = "At Contoso, the benefits team answers. Maria Garcia handles payroll."
    assert guard.mask_output_text(answer).startswith("At Contoso,")  # what answers and citations show
    assert "Maria Garcia" not in guard.mask_output_text(answer)
    assert guard.check_input(f"{answer} What else?").text.startswith("At Contoso,")  # the question as retrieved
    off = home.model_copy(update={"guardrails": home.guardrails.model_copy(update={"pii_corpus_word_min_chunks": 0})})
    assert assembly.corpus_words(off, store) is None
    assert "At [PERSON]," in assembly.guard(off, store.embedder, store).mask_output_text(answer)
    redact = assembly.pii_redactor(home, store)  # training data is redacted the same way
    assert redact(answer).startswith("At Contoso,") and "Garcia" not in redact(answer)


def test_the_count_follows_an_ingest(home, tmp_path):
    store = assembly.index_store(home, readonly=True)
    words = assembly.corpus_words(home, store)
    assert not words("Fabrikam")
    more = {f"fabrikam_{n}.md": f"# Fabrikam {n}\n\nFabrikam supplies the parts for site {n}.\n" for n in range(6)}
    assert assembly.ingest_job(home).run([make_corpus(tmp_path / "more", more)]).exit_code() == 0
    assert words("Fabrikam")


def test_guard_check_masks_as_the_server_does(home):
    from typer.testing import CliRunner

    from assistant.cli import app

    result = CliRunner().invoke(app, ["--home", str(home.home), "--profile", "test", "guard", "check", "--json",
                                      "At Contoso, the benefits team answers. Maria Garcia handles payroll."],
                                env={"RAGTUNE_GUARDRAILS__TOPICS_ENABLED": "false"})
    masked = json.loads(result.stdout.splitlines()[0])["masked"]
    assert masked.startswith("At Contoso,") and "Garcia" not in masked, result.output
