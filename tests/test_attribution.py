"""Citations the service adds when the model cites nothing (assistant/attribution.py), through the chat service."""

import asyncio

from assistant import assembly, prompt
from assistant.attribution import attribute, with_citations
from assistant.chat_service import ChatRequest, ChatService
from assistant.inference_queue import InferenceQueue
from assistant.settings import load_settings
from tests.test_chat_service import home  # noqa: F401 - the module's indexed corpus (travel.md, plans.md)

CONTEXTS = [
    "Hotel rates are capped at 180 EUR per night in Berlin. Economy class is booked for flights under six hours.",
    "The Plus plan costs 25 EUR a month and adds priority support. The Basic plan costs 10 EUR a month.",
]


def test_each_sentence_goes_to_the_source_that_holds_its_words_first_supported_first():
    assert attribute("The Plus plan costs 25 EUR a month.", CONTEXTS, 0.4) == [2]
    assert attribute("The Plus plan costs 25 EUR a month. Hotels are capped at 180 EUR per night in Berlin.",
                     CONTEXTS, 0.4) == [2, 1]
    assert attribute("Parking at the office is free for every visitor.", CONTEXTS, 0.4) == []  # no source: no [n]
    assert attribute("", CONTEXTS, 0.4) == [] and attribute("Plus plan costs.", [], 0.4) == []
    assert with_citations("It costs 25 EUR.  ", [2, 1]) == "It costs 25 EUR. [2][1]" and with_citations("x", []) == "x"


def _service(home_dir, **chat):  # noqa: F811
    settings = load_settings(profile="test", overrides={"home": str(home_dir), "chat": chat})
    retriever, generator = assembly.retriever(settings), assembly.generator(settings)
    return settings, retriever, generator


def test_an_answer_without_citations_ends_with_its_sources_on_every_path(home, monkeypatch):  # noqa: F811
    """The model (here the fake, made to drop its [1]) cites nothing; JSON, the stream and the batch path alike end
    with the attributed [n], marked; a refusal and an unsupported answer get none; off means off."""
    settings, retriever, generator = _service(home)
    real = generator.completion
    monkeypatch.setattr(generator, "completion", lambda request: real(request).replace(" [1]", ""))
    for chat in (ChatService(retriever, generator, InferenceQueue(), settings.chat, settings.generator),
                 assembly.chat_service(settings, retriever, generator)):  # without and with rails (checked release)
        async def collect():
            return [e async for e in chat.stream(ChatRequest("What is the hotel rate cap in Berlin?"))]

        events = asyncio.run(collect())
        answer = events[-1].answer
        assert answer.attributed and answer.text.endswith("[1]") and answer.citations == answer.sources[:1]
        assert "".join(e.text for e in events[:-1]).strip() == answer.text  # the stream carries the [1] too
        batch = chat.answer_batch([ChatRequest("What is the hotel rate cap in Berlin?")])[0]
        assert batch.text == answer.text and batch.attributed
    monkeypatch.setattr(generator, "completion", lambda request: "Parking is free for visitors on Sundays.")
    bare = ChatService(retriever, generator, InferenceQueue(), settings.chat, settings.generator)
    unsupported = asyncio.run(bare.answer(ChatRequest("What is the hotel rate cap in Berlin?")))
    assert not unsupported.attributed and unsupported.citations == [] and "[" not in unsupported.text
    monkeypatch.setattr(generator, "completion", lambda request: prompt.REFUSAL)
    refusal = asyncio.run(bare.answer(ChatRequest("What is the hotel rate cap in Berlin?")))
    assert refusal.refused and not refusal.attributed and refusal.text == prompt.REFUSAL
    off_settings = load_settings(profile="test", overrides={"home": str(home), "chat": {"attribute_citations": False}})
    monkeypatch.setattr(generator, "completion", lambda request: real(request).replace(" [1]", ""))
    off = ChatService(retriever, generator, InferenceQueue(), off_settings.chat, off_settings.generator)
    plain = asyncio.run(off.answer(ChatRequest("What is the hotel rate cap in Berlin?")))
    assert not plain.attributed and plain.citations == [] and "[1]" not in plain.text


def test_the_model_s_own_citations_are_kept_as_they_are(home):  # noqa: F811
    settings, retriever, generator = _service(home)
    chat = ChatService(retriever, generator, InferenceQueue(), settings.chat, settings.generator)
    answer = asyncio.run(chat.answer(ChatRequest("What is the hotel rate cap in Berlin?")))
    assert "[1]" in answer.text and not answer.attributed and answer.text.count("[1]") == 1
