"""One contract for every generation backend: the fake, transformers and OpenVINO (a tiny random model).

The openai backend runs the same checks against a real server in test_openai_backend_server.py.
Backend-specific behaviour (the fake's answers, checkpoint resolution, greedy decoding equal to
`model.generate`) follows the contract.
"""

import threading
import time

import pytest

from assistant import prompt
from assistant.runtime import checkpoint
from assistant.runtime.base import GenerationRequest, GenerationStats, GeneratorError, UnknownAdapterError
from assistant.runtime.factory import build_generator
from assistant.runtime.fake import FakeGenerator
from assistant.settings import GeneratorSettings, Settings

WORDS = "the a hotel rate is capped at per night in berlin london flight economy business class policy".split()
PROMPT = "Documents:\n[1] travel.md\nThe hotel rate is capped at 180 per night. More text.\n\nQuestion: hotel?\nAnswer:"


def tiny_gemma(root, tokenizer, seed=0):
    """A 2-layer Gemma 3 with random weights (about 0.1M parameters), saved with `tokenizer`."""
    import torch
    from transformers import AutoModelForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=32, max_position_embeddings=512, sliding_window=64,
        eos_token_id=1, bos_token_id=2, pad_token_id=0,
    )
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return model


def tiny_model_dir(root):
    """The tiny model with a word-level tokenizer, plus a LoRA adapter with non-zero weights for it."""
    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", *WORDS, *map(str, range(200))])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    model = tiny_gemma(root / "tiny", tokenizer)
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=256, target_modules=["q_proj", "v_proj", "o_proj"],
                                            init_lora_weights=False))
    adapter = root / "adapter"
    lora.save_pretrained(adapter)
    return root / "tiny", adapter


@pytest.fixture(scope="module", params=["fake", "transformers", "openvino"])
def backend(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "fake":
        adapter = root / "adapter"
        adapter.mkdir()
        return FakeGenerator(), adapter
    base, adapter = tiny_model_dir(root)
    settings = GeneratorSettings(model=str(base), context_window_tokens=512, openvino_weights="fp32",
                                 openvino_precision="f32")
    if request.param == "openvino":
        pytest.importorskip("openvino_genai")
        from assistant.runtime.openvino_backend import OpenVINOGenerator

        return OpenVINOGenerator(settings, root / "cache"), adapter  # exports the tiny model (seconds)
    from assistant.runtime.transformers_backend import TransformersGenerator

    return TransformersGenerator(settings, root / "cache"), adapter


def generate(generator, max_new_tokens=12, stop=(), adapter=None, cancel=None, prompt_text=PROMPT, **options):
    stats = GenerationStats()
    request = GenerationRequest(prompt_text, max_new_tokens, list(stop), adapter=adapter, **options)
    pieces = list(generator.stream(request, cancel or threading.Event(), stats))
    assert all(isinstance(p, str) and p for p in pieces)
    return "".join(pieces), stats


def test_generation_is_deterministic_capped_and_counted(backend):
    generator, _ = backend
    text, stats = generate(generator, max_new_tokens=5)
    assert text.strip() and (text, stats) == generate(generator, max_new_tokens=5)
    assert 0 < stats.completion_tokens <= 5 and stats.prompt_tokens > 0
    assert stats.finish_reason in {"length", "stop"}
    longer, _ = generate(generator, max_new_tokens=12)
    assert longer.startswith(text)
    assert generator.count_tokens("hotel rate") > 0 and generator.context_window > 0


def test_stop_sequence_ends_generation_and_is_never_emitted(backend):
    generator, _ = backend
    full, _ = generate(generator, max_new_tokens=12)
    words = full.split()
    assert len(words) >= 3, full
    stop = " " + words[2]
    text, stats = generate(generator, max_new_tokens=12, stop=["\nQuestion:", stop])
    assert stop not in text and full.startswith(text) and len(text) < len(full)
    assert stats.finish_reason == "stop" and stats.completion_tokens <= 3


def test_cancel_stops_within_a_token(backend):
    generator, _ = backend
    cancel, stats = threading.Event(), GenerationStats()
    stream = generator.stream(GenerationRequest(PROMPT, 50, []), cancel, stats)
    next(stream)
    cancel.set()
    produced = stats.completion_tokens
    rest = list(stream)
    assert len(rest) <= 1 and stats.finish_reason == "cancelled"
    assert stats.completion_tokens <= produced + 1  # no further forward passes once cancelled


def test_adapters_switch_per_request_without_reloading_the_base(backend):
    generator, adapter_dir = backend
    with pytest.raises(UnknownAdapterError):
        generate(generator, adapter="nope")
    base_text, _ = generate(generator)
    base_model = getattr(generator, "model", None)
    generator.load_adapter("v1", str(adapter_dir))
    assert "v1" in generator.adapters()
    tuned, _ = generate(generator, adapter="v1")
    assert tuned != base_text
    assert generate(generator)[0] == base_text  # None = the base model again
    assert generate(generator, adapter="v1")[0] == tuned
    if base_model is not None:  # transformers: the peft wrapper holds the very same base weights
        assert generator.model.get_base_model() is base_model

    # Requests on different threads at once: each gets its own adapter (the backend serialises them).
    results: dict[str | None, str] = {}

    def worker(name):
        results[name] = generate(generator, adapter=name)[0]

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("v1", None)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert results == {"v1": tuned, None: base_text}


# --- the fake ------------------------------------------------------------------------------------
def test_fake_answers_from_document_1_or_refuses():
    fake = FakeGenerator()
    docs = [prompt.PromptDoc("travel.md", 2, "Hotels", "Hotel rates are capped at 180 EUR. Berlin is cheaper."),
            prompt.PromptDoc("vpn.txt", None, "", "Install GlobalProtect.")]
    text, stats = generate(fake, 50, prompt_text=prompt.render(docs, "What is the hotel cap?"))
    assert text == "Hotel rates are capped at 180 EUR. [1]" and stats.finish_reason == "stop"
    assert generate(fake, 50, prompt_text=prompt.render([], "Anything?"))[0] == prompt.REFUSAL
    assert generate(fake, 3, prompt_text=prompt.render([], "Anything?"))[1].finish_reason == "length"


def test_fake_delay_adapters_and_errors(tmp_path):
    fake = FakeGenerator(delay_s=0.02)
    started = time.perf_counter()
    _, stats = generate(fake, 5)
    assert time.perf_counter() - started >= 5 * 0.02 and stats.completion_tokens == 5
    with pytest.raises(GeneratorError):
        fake.load_adapter("x", str(tmp_path / "missing"))
    assert fake.adapters() == []


def test_factory_builds_each_mode(tmp_path):
    fake = build_generator(Settings(home=tmp_path, generator={"mode": "fake", "context_window_tokens": 999}))
    assert isinstance(fake, FakeGenerator) and fake.context_window == 999
    remote = build_generator(Settings(home=tmp_path, generator={"mode": "openai", "openai_model": "m"}))
    assert remote.name == "m" and remote.context_window == 2048
    remote.close()


# --- transformers specifics ----------------------------------------------------------------------
def test_greedy_decoding_equals_model_generate_with_split_characters(tmp_path):
    """A byte-level tokenizer splits characters over tokens: the stream waits for whole characters,
    and its text and token count match `model.generate` exactly (same KV-cache decoding)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from assistant.runtime.transformers_backend import TransformersGenerator

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<eos>", "<bos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(["the hotel rate is capped at 180 per night, café 東京 ✓"] * 5, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")
    tiny_gemma(tmp_path / "bytes", tokenizer, seed=1)
    generator = TransformersGenerator(GeneratorSettings(model=str(tmp_path / "bytes"), context_window_tokens=256),
                                      tmp_path)
    text, stats = generate(generator, 40, prompt_text="café 東京: the hotel")
    ids = tokenizer("café 東京: the hotel", return_tensors="pt")["input_ids"]
    raw = generator.model.generate(ids, max_new_tokens=40, do_sample=False)[0, ids.shape[1]:].tolist()
    assert text == tokenizer.decode(raw, skip_special_tokens=True)
    assert stats.completion_tokens == len([t for t in raw if t != 1])
    assert any(tokenizer.decode(raw[:k]).endswith("\ufffd") for k in range(1, len(raw)))  # the case is covered

    with pytest.raises(GeneratorError, match="window"):
        generate(generator, 5, prompt_text="the hotel " * 200)  # 400+ tokens in a 256-token window
    with pytest.raises(GeneratorError, match="adapter_config"):
        generator.load_adapter("bad", str(tmp_path))


# --- checkpoint resolution -----------------------------------------------------------------------
def test_model_resolution_errors_are_clear(tmp_path):
    with pytest.raises(GeneratorError, match="config.json"):
        checkpoint.resolve_model_dir(str(tmp_path), tmp_path / "cache")
    with pytest.raises(GeneratorError, match="does not exist"):
        checkpoint.resolve_model_dir(str(tmp_path / "nope.gguf"), tmp_path / "cache")
    with pytest.raises(GeneratorError, match="neither"):
        checkpoint.resolve_model_dir("no-such-model-package", tmp_path / "cache")
    (tmp_path / "config.json").write_text("{}")
    assert checkpoint.resolve_model_dir(str(tmp_path), tmp_path / "cache") == tmp_path


def test_gguf_is_converted_once_even_by_concurrent_loaders(tmp_path, monkeypatch):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    calls = []

    def slow_convert(source, target):
        calls.append(source)
        time.sleep(0.3)  # long enough for the other loader to reach the lock
        target.mkdir()
        (target / "config.json").write_text("{}")

    monkeypatch.setattr(checkpoint, "_convert", slow_convert)
    found: list = []
    threads = [threading.Thread(target=lambda: found.append(checkpoint.resolve_model_dir(str(gguf), tmp_path / "c")))
               for _ in range(2)]
    [t.start() for t in threads]
    [t.join(10) for t in threads]
    assert len(calls) == 1 and len(found) == 2 and found[0] == found[1]
    assert found[0].parent == tmp_path / "c" and found[0].name.startswith("m-")
    gguf.write_bytes(b"GGUF v2")  # a changed file (size, mtime) is a different model
    assert checkpoint.resolve_model_dir(str(gguf), tmp_path / "c") != found[0] and len(calls) == 2


def test_many_generations_equal_one_at_a_time_in_batches_of_mixed_lengths(backend):
    """The evaluation path (padded batches where the backend batches) gives the streamed answers."""
    from assistant.runtime.batching import generate_many

    generator, _ = backend
    prompts = [PROMPT, PROMPT + " Berlin", "Question: hotel?\nAnswer:", PROMPT.replace("hotel", "flight")]
    stop = ["\nQuestion:"]
    one_by_one = [generate(generator, max_new_tokens=6, stop=stop, prompt_text=p) for p in prompts]
    done = []
    many = generate_many(generator, [GenerationRequest(p, 6, stop) for p in prompts], batch_size=3, on_done=done.append)
    assert [text.strip() for text, _ in many] == [text.strip() for text, _ in one_by_one]
    assert [s.completion_tokens for _, s in many] == [s.completion_tokens for _, s in one_by_one]
    assert sum(done) == len(prompts)


def test_prompt_lookup_gives_one_at_a_time_tokens_in_fewer_passes(tmp_path):
    """Greedy answers through prompt lookup equal plain one-token decoding, base and adapter, past the tiny model's
    64-token sliding window (the KV cache is rolled back there too), while some passes accept several tokens."""
    from assistant.runtime.transformers_backend import TransformersGenerator

    base, adapter = tiny_model_dir(tmp_path)
    generator = TransformersGenerator(GeneratorSettings(model=str(base), context_window_tokens=512), tmp_path / "c")
    generator.load_adapter("v1", str(adapter))
    lookup = generator.lookup
    assert lookup is not None  # on by default
    long_prompt = PROMPT + " " + " ".join(WORDS * 5) + "\nQuestion: hotel rate?\nAnswer:"  # > 64 tokens
    prompts = [PROMPT, long_prompt, PROMPT.replace("hotel", "flight economy")]
    for adapter_name in (None, "v1"):
        for text in prompts:
            generator.lookup = lookup
            fast = generate(generator, 48, prompt_text=text, adapter=adapter_name)
            generator.lookup = None
            plain = generate(generator, 48, prompt_text=text, adapter=adapter_name)
            assert fast == plain, (adapter_name, text[:40])
    generator.lookup = lookup
    assert generate(generator, 48, prompt_text=long_prompt)[1].prompt_tokens > 64
    assert lookup.tokens > lookup.passes > 0  # drafts were accepted: fewer passes than tokens
    # Sampled answers take one token per pass (lookup verifies greedy picks only).
    passes = lookup.passes
    generate(generator, 8, temperature=0.8, seed=1)
    assert lookup.passes == passes


def test_the_bf16_shortlist_follows_its_setting_and_the_cpu(tmp_path):
    """Prompt lookup's picks go through the bfloat16 shortlist where the CPU multiplies bfloat16 natively (the
    equality test above then covers it), and never when `generator.bf16_shortlist` is 0."""
    from assistant.runtime.greedy_head import native_bf16
    from assistant.runtime.transformers_backend import TransformersGenerator

    base, _ = tiny_model_dir(tmp_path)
    native = native_bf16()
    on = TransformersGenerator(GeneratorSettings(model=str(base), context_window_tokens=512), tmp_path / "c")
    assert (on.lookup.head is not None) == native
    if native:
        generate(on, 24)
        assert on.lookup.head.checked >= on.lookup.passes > 0
    off = TransformersGenerator(GeneratorSettings(model=str(base), context_window_tokens=512, bf16_shortlist=0),
                                tmp_path / "c")
    assert off.lookup.head is None
