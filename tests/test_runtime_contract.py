"""One contract for every generation backend: the fake and transformers (a tiny random model).

The openai backend runs the same checks against a real server in test_openai_backend_server.py.
"""

import threading

import pytest

from assistant.runtime.base import GenerationRequest, GenerationStats, UnknownAdapterError
from assistant.runtime.fake import FakeGenerator
from assistant.settings import GeneratorSettings

WORDS = "the a hotel rate is capped at per night in berlin london flight economy business class policy".split()
PROMPT = "Documents:\n[1] travel.md\nThe hotel rate is capped at 180 per night. More text.\n\nQuestion: hotel?\nAnswer:"


def tiny_model_dir(root):
    """A 2-layer Gemma 3 with random weights and a word-level tokenizer, built offline in a second."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", *WORDS, *map(str, range(200))])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=32, max_position_embeddings=512, sliding_window=64,
        eos_token_id=1, bos_token_id=2, pad_token_id=0,
    )
    model = AutoModelForCausalLM.from_config(config)
    base = root / "tiny"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=256, target_modules=["q_proj", "v_proj", "o_proj"],
                                            init_lora_weights=False))
    adapter = root / "adapter"
    lora.save_pretrained(adapter)
    return base, adapter


@pytest.fixture(scope="module", params=["fake", "transformers"])
def backend(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "fake":
        adapter = root / "adapter"
        adapter.mkdir()
        return FakeGenerator(), adapter
    from assistant.runtime.transformers_backend import TransformersGenerator

    base, adapter = tiny_model_dir(root)
    return TransformersGenerator(GeneratorSettings(model=str(base), context_window_tokens=512), root / "cache"), adapter


def generate(generator, max_new_tokens=12, stop=(), adapter=None, cancel=None):
    stats = GenerationStats()
    request = GenerationRequest(PROMPT, max_new_tokens, list(stop), adapter=adapter)
    pieces = list(generator.stream(request, cancel or threading.Event(), stats))
    assert all(isinstance(p, str) for p in pieces)
    return "".join(pieces), stats


def test_generation_is_deterministic_capped_and_counted(backend):
    generator, _ = backend
    text, stats = generate(generator, max_new_tokens=5)
    assert text.strip() and (text, stats) == generate(generator, max_new_tokens=5)
    assert 0 < stats.completion_tokens <= 5 and stats.prompt_tokens > 0
    assert stats.finish_reason in {"length", "stop"}
    assert generator.count_tokens("hotel rate") > 0 and generator.context_window > 0


def test_stop_sequence_ends_generation_and_is_never_emitted(backend):
    generator, _ = backend
    full, _ = generate(generator, max_new_tokens=12)
    words = full.split()
    assert len(words) >= 3, full
    stop = " " + words[2]
    text, stats = generate(generator, max_new_tokens=12, stop=[stop])
    assert stop not in text and full.startswith(text) and len(text) < len(full)
    assert stats.finish_reason == "stop"


def test_cancel_stops_within_a_token(backend):
    generator, _ = backend
    cancel, stats = threading.Event(), GenerationStats()
    stream = generator.stream(GenerationRequest(PROMPT, 50, []), cancel, stats)
    next(stream)
    cancel.set()
    rest = list(stream)
    assert len(rest) <= 1 and stats.finish_reason == "cancelled"


def test_adapters_switch_per_request_without_reloading_the_base(backend):
    generator, adapter_dir = backend
    with pytest.raises(UnknownAdapterError):
        generate(generator, adapter="nope")
    base_text, _ = generate(generator)
    generator.load_adapter("v1", str(adapter_dir))
    assert "v1" in generator.adapters()
    tuned, _ = generate(generator, adapter="v1")
    assert tuned != base_text
    assert generate(generator)[0] == base_text  # None = the base model again
    assert generate(generator, adapter="v1")[0] == tuned
