from assistant import prompt
from assistant.prompt import PromptDoc, Turn


def words(text):
    return len(text.split())


def test_render_numbers_documents_with_name_page_heading_and_ends_with_the_cue():
    text = prompt.render(
        [PromptDoc("a.pdf", 3, "Leave > Parental", "Twelve weeks."), PromptDoc("b.md", None, "", "Other.")],
        "  How long\nis leave? ",
        [Turn("user", "hi"), Turn("assistant", "hello")],
    )
    assert "[1] a.pdf, page 3, Leave > Parental\nTwelve weeks." in text
    assert "[2] b.md\nOther." in text
    assert text.index("Conversation:") < text.index("Question: How long is leave?")
    assert text.endswith("Question: How long is leave?\nAnswer:")
    assert prompt.REFUSAL in text


def test_pack_keeps_best_documents_that_fit_and_newest_history():
    docs = [PromptDoc("a.md", None, "", "word " * 50), PromptDoc("b.md", None, "", "word " * 500), PromptDoc("c.md", None, "", "x")]
    history = [Turn("user", "old " * 40), Turn("assistant", "mid"), Turn("user", "new")]
    base = words(prompt.render([], "q"))
    kept, turns = prompt.pack(docs, "q", history, base + 70, words)
    # b is too large and skipped, c (smaller, later) still fits; the old long turn does not.
    assert [d.document for d in kept] == ["a.md", "c.md"]
    assert [t.content for t in turns] == ["mid", "new"]
    assert words(prompt.render(kept, "q", turns)) <= base + 70 + 4 * len(kept)  # headers are counted per doc


def test_cited_numbers_in_order_without_duplicates_or_out_of_range():
    assert prompt.cited_numbers("Yes [2], see also [1] and [2] and [9].", 3) == [2, 1]
    assert prompt.is_refusal("The documents do not answer this question.")
    assert not prompt.is_refusal("Twelve weeks [1].")
