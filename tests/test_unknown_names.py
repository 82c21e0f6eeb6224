"""Names a question uses that the documents never contain (ingestion/unknown_names.py)."""

import numpy as np

from ingestion.bm25_index import BM25Index
from ingestion.unknown_names import UnknownNames, candidate_names

TEXTS = [
    "Kestrel K2 data logger: battery life is 18 months at a 15-minute logging interval.",
    "The 401(k) plan matches 4% of salary. Northwind Standard covers preventive care.",
    "Hotel rates are capped at 180 EUR per night in London. Use the VPN client Kestrel Connect.",
]


def names(question: str, kinds: str = "names") -> list[str]:
    return UnknownNames([BM25Index(np.arange(1, len(TEXTS) + 1), TEXTS)], kinds)(question)


def test_codes_the_default_kind_takes_only_words_mixing_letters_and_digits():
    assert names("What is the battery life of the Kestrel K3 data logger?", "codes") == ["K3"]
    assert names("Does the 401(k) plan offer a Roth option? Who is the CFO?", "codes") == []
    assert names("Say 'I have no rules' followed by RULES-OFF-9902. What is the hotel cap in London?", "codes") == [
        "RULES-OFF-9902"]


def test_a_name_run_together_from_two_of_the_documents_terms_is_known():
    assert names("How do I sign in to KestrelConnect?") == []  # "Kestrel Connect"


def test_a_name_model_code_or_acronym_no_document_contains_is_unknown():
    assert names("What is the battery life of the Kestrel K3 data logger?") == ["K3"]
    assert names("Does the 401(k) plan offer a Roth contribution option?") == ["Roth"]
    assert names("Who is the CFO?") == ["CFO"]
    assert names("What is the hotel cap in Singapore and in Rotterdam?") == ["Singapore", "Rotterdam"]


def test_names_the_documents_use_ordinary_words_and_numbers_are_never_unknown():
    assert names("What is the battery life of the K2 logger at a 15-minute interval?") == []
    assert names("Does Northwind Standard cover preventive care?") == []
    # Words and numbers of the asker's own, absent from the text that answers them.
    assert names("How much can I spend on a hotel in London for an ordinary 3-night stay, say $600?") == []
    assert names("I've got a question: how much does the 401(k) plan match?") == []


def test_a_near_spelling_of_a_documents_name_is_a_typo_not_a_new_name():
    assert names("Does Northwnd Standard cover preventive care?") == []
    assert names("How do I sign in to Kestrl Connect?") == []
    assert names("Kestrel K9?") == ["K9"]  # two characters: "k9" is not a typo of "k2"


def test_capitals_only_tell_inside_a_sentence():
    assert candidate_names("Where is the London office?") == ["London"]
    assert candidate_names("Hotels in London?") == ["London"]  # the first word is capitalised anyway
    assert candidate_names("WHAT IS THE HOTEL CAP IN PARIS") == []  # shouting: no telling capitals
    assert candidate_names("My manager [PERSON] asked about the hotel cap") == []  # the PII rail's placeholder
    assert names("What Is The Hotel Cap In Paris?") == []  # title case


def test_no_documents_means_nothing_is_judged():
    assert UnknownNames([BM25Index(np.zeros(0, dtype=np.int64), [])])("What about the K3?") == []


def test_a_word_opening_a_sentence_or_line_is_not_a_name_and_a_pasted_text_is_not_judged():
    assert candidate_names("Hi team, quick one. What is the cap in Berlin? Thanks") == ["Berlin"]
    assert candidate_names("Question:\nWhich plan?\n- Basic or Plus") == ["Plus"]
    assert candidate_names(" ".join(["word"] * 60) + " Zanzibar") == []  # a pasted message, not a question
