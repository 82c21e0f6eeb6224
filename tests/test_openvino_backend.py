"""OpenVINO backend specifics on a tiny random Gemma 3 (the shared contract is in test_runtime_contract.py).

The two LoRA traps of OpenVINO GenAI are checked against transformers + peft greedy decoding:
1. GenAI ignores `lora_alpha`: the adapters here have lora_alpha != r, so a wrong scale changes the tokens.
2. A prefix cache shared across adapters: the same long prompt runs A -> B -> A -> base and must equal fresh
   pipelines holding one adapter each.
"""

import logging
import threading
import time

import pytest

from assistant.runtime.base import GenerationRequest, GenerationStats, GeneratorError
from assistant.settings import GeneratorSettings, Settings

pytest.importorskip("openvino_genai")

from assistant.runtime import openvino_export  # noqa: E402
from assistant.runtime.openvino_backend import OpenVINOGenerator, adapter_alpha  # noqa: E402
from tests.test_runtime_contract import WORDS, tiny_model_dir  # noqa: E402

# ~170 word tokens: longer than the tiny model's 64-token sliding window and than a KV-cache block.
EXACT = {"context_window_tokens": 512, "openvino_weights": "fp32", "openvino_precision": "f32"}  # f32 math: exact
LONG = "Documents:\n[1] travel.md\n" + " ".join(WORDS[i % len(WORDS)] for i in range(7 * 160)) [:900] + "\nAnswer:"


def make_adapter(base_dir, path, seed, alpha):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=4, lora_alpha=alpha, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
                        init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("ov")
    base, _ = tiny_model_dir(root)
    adapters = {"a": make_adapter(base, root / "a", 1, alpha=32), "b": make_adapter(base, root / "b", 2, alpha=2)}
    return root, base, adapters


def run(generator, adapter=None, prompt=LONG, n=16):
    stats = GenerationStats()
    text = "".join(generator.stream(GenerationRequest(prompt, n, [], adapter=adapter), threading.Event(), stats))
    return text, stats.completion_tokens


def test_adapters_equal_transformers_peft_and_survive_switches(tiny):
    from assistant.runtime.transformers_backend import TransformersGenerator

    root, base, adapters = tiny
    settings = GeneratorSettings(model=str(base), adapters=adapters, **EXACT)
    reference = TransformersGenerator(settings, root / "cache")
    expected = {name: run(reference, name) for name in (None, "a", "b")}
    assert len({text for text, _ in expected.values()}) == 3  # each adapter changes the answer
    served = OpenVINOGenerator(settings, root / "cache")
    # Trap 1 (alpha) shows as a difference from peft; trap 2 (prefix reuse) as a difference after a switch.
    for name in ("a", "b", "a", None, "b", None, "a"):
        assert run(served, name) == expected[name], name
    for name in ("a", "b"):  # a fresh pipeline holding only this adapter
        alone = OpenVINOGenerator(settings.model_copy(update={"adapters": {name: adapters[name]}}), root / "cache")
        assert run(alone, name) == expected[name]


def test_adapter_loaded_after_start_is_served(tiny):
    root, base, adapters = tiny
    served = OpenVINOGenerator(GeneratorSettings(model=str(base), **EXACT), root / "cache")
    before = run(served)
    served.load_adapter("a", adapters["a"])  # promotion without restart: the pipeline is rebuilt with "a"
    served.load_adapter("b", adapters["b"])
    fresh = OpenVINOGenerator(GeneratorSettings(model=str(base), adapters={"a": adapters["a"]}, **EXACT), root / "cache")
    assert run(served, "a") == run(fresh, "a") != before and run(served) == before
    with pytest.raises(GeneratorError, match="adapter_config"):
        served.load_adapter("bad", str(root))
    assert served.adapters() == ["a", "b"] and run(served, "b") != run(served, "a")


def test_batch_equals_one_at_a_time_with_padding_adapters_and_stops(tiny):
    """generate_batch left-pads prompts of different lengths into one GenAI batch: each row must equal `stream`."""
    root, base, adapters = tiny
    served = OpenVINOGenerator(GeneratorSettings(model=str(base), adapters=adapters, **EXACT), root / "cache")
    words = LONG.split()
    prompts = [" ".join(words[: 40 + 37 * i]) + " Answer:" for i in range(4)]  # 40..151 words: padding in every row
    alone = {adapter: [run(served, adapter, p, 12)[0] for p in prompts] for adapter in (None, "a")}
    assert len(set(alone[None])) > 1 and alone["a"] != alone[None]  # rows differ; the adapter changes them
    for adapter in (None, "a"):
        batch = served.generate_batch([GenerationRequest(p, 12, [], adapter=adapter) for p in prompts])
        assert [text for text, _ in batch] == alone[adapter], adapter
        assert all(s.prompt_tokens > 40 and 0 < s.completion_tokens <= 12 and s.finish_reason for _, s in batch)
    alone = alone[None]
    # A stop that ends some rows early while others run on (GenAI's own stop_strings mixed rows here).
    stop = alone[1].split()[2]
    assert any(stop not in row for row in alone) and stop in alone[1]
    batch = served.generate_batch([GenerationRequest(p, 12, [stop]) for p in prompts])
    for (text, stats), prompt in zip(batch, prompts):
        streamed = GenerationStats()
        assert text == "".join(served.stream(GenerationRequest(prompt, 12, [stop]), threading.Event(), streamed))
        assert stats.finish_reason == streamed.finish_reason and stop not in text
    mixed = served.generate_batch([GenerationRequest(prompts[0], 12, []), GenerationRequest(prompts[1], 12, [], adapter="b")])
    assert [t for t, _ in mixed] == [run(served, None, prompts[0], 12)[0], run(served, "b", prompts[1], 12)[0]]


def test_export_feeds_attention_additive_float_masks(tiny):
    """A boolean mask sends the CPU plugin's prefill attention to a path ~7x slower at 1,400 tokens."""
    import openvino as ov

    root, base, _ = tiny
    OpenVINOGenerator(GeneratorSettings(model=str(base), **EXACT), root / "cache")
    xml = next((root / "cache").glob(f"*-ov{openvino_export.EXPORT_VERSION}-fp32")) / openvino_export.MODEL_XML
    attention = [op for op in ov.Core().read_model(xml).get_ordered_ops()
                 if op.get_type_name() == "ScaledDotProductAttention"]
    assert attention and all(op.input(3).get_element_type() == ov.Type.f32 for op in attention)


def test_adapter_scale_is_peft_scale(tmp_path):
    (tmp_path / "adapter_config.json").write_text('{"r": 8, "lora_alpha": 32}')
    assert adapter_alpha(tmp_path) == 4.0
    (tmp_path / "adapter_config.json").write_text('{"r": 16, "lora_alpha": 32, "use_rslora": true}')
    assert adapter_alpha(tmp_path) == 8.0
    (tmp_path / "adapter_config.json").write_text('{"r": 8, "lora_alpha": 8, "alpha_pattern": {"q_proj": 4}}')
    with pytest.raises(GeneratorError, match="alpha_pattern"):
        adapter_alpha(tmp_path)


def test_export_once_under_a_lock_and_verified(tmp_path, monkeypatch):
    calls = []

    def slow_export(checkpoint, target, weights):
        calls.append(weights)
        time.sleep(0.3)  # long enough for the other loader to reach the lock
        target.mkdir(parents=True)
        (target / openvino_export.MODEL_XML).write_text("<net/>")
        openvino_export.integrity.write_manifest(target, {"weights": weights})

    monkeypatch.setattr(openvino_export, "_export", slow_export)
    checkpoint = tmp_path / "ck"
    found: list = []
    threads = [threading.Thread(target=lambda: found.append(openvino_export.ensure_exported(checkpoint, tmp_path / "c",
                                                                                             "int8"))) for _ in range(2)]
    [t.start() for t in threads]
    [t.join(10) for t in threads]
    assert calls == ["int8"] and len(found) == 2 and found[0] == found[1] == openvino_export.export_dir(checkpoint, tmp_path / "c", "int8")
    (found[0] / openvino_export.MODEL_XML).write_text("<net>tampered</net>")
    with pytest.raises(GeneratorError, match="delete"):
        openvino_export.ensure_exported(checkpoint, tmp_path / "c", "int8")
    with pytest.raises(GeneratorError, match="weight format"):
        openvino_export.ensure_exported(checkpoint, tmp_path / "c", "int3")


def test_auto_mode_falls_back_to_transformers_with_a_log_line(tiny, monkeypatch, caplog):
    from assistant.runtime import factory, openvino_backend
    from assistant.runtime.transformers_backend import TransformersGenerator

    root, base, _ = tiny

    def broken(*args, **kwargs):
        raise RuntimeError("Model wasn't fully converted")

    monkeypatch.setattr(openvino_backend, "OpenVINOGenerator", broken)
    settings = Settings(home=root, generator={"model": str(base), "cache_dir": str(root / "cache"), "mode": "auto"})
    with caplog.at_level(logging.WARNING):
        built = factory.build_generator(settings)
    assert isinstance(built, TransformersGenerator) and "using the transformers backend" in caplog.text
    with pytest.raises(RuntimeError, match="converted"):
        factory.build_generator(settings.model_copy(update={"generator": settings.generator.model_copy(
            update={"mode": "openvino"})}))
    monkeypatch.undo()
    assert isinstance(factory.build_generator(settings), OpenVINOGenerator)


def test_conversion_sends_no_telemetry(tmp_path):
    """With no consent file, `import openvino` counts the user as consenting (writes ~/intel/..., posts events)."""
    import os
    import subprocess
    import sys

    script = ("import torch\n"
              "import assistant.runtime.openvino_export\n"
              "import openvino as ov, openvino_genai, openvino_tokenizers, nncf\n"
              "ov.convert_model(torch.nn.Linear(2, 2), example_input=torch.ones(1, 2))\n")
    env = {**os.environ, "HOME": str(tmp_path), "CI": ""}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120, cwd=os.getcwd())
    assert not (tmp_path / "intel").exists()
