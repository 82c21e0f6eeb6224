"""Exporting a registry version as a GGUF LoRA adapter: layout, cache, atomic write, refusals.

A tiny crafted base GGUF (gemma3 layout, 2 blocks, small shapes) and a crafted peft adapter stand in for the
real ones; tests/test_multi_lora_server.py loads real exports into llama.cpp.
"""

import json
import math

import gguf
import numpy as np
import pytest
from safetensors.numpy import save_file

from finetune import gguf_lora
from finetune.gguf_lora import ExportError, export_gguf_lora
from finetune.registry import AdapterRegistry

HIDDEN, Q_OUT, RANK = 64, 128, 4


def make_base(path, blocks=2):
    writer = gguf.GGUFWriter(path, "gemma3")
    writer.add_block_count(blocks)
    for b in range(blocks):
        writer.add_tensor(f"blk.{b}.attn_q.weight", np.zeros((Q_OUT, HIDDEN), np.float32))  # numpy (out, in)
        writer.add_tensor(f"blk.{b}.attn_output.weight", np.zeros((HIDDEN, Q_OUT), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def make_adapter(directory, seed=0, layers=(0, 1), config=None, q_out=Q_OUT):
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in layers:
        for module, (out, inp) in (("self_attn.q_proj", (q_out, HIDDEN)), ("self_attn.o_proj", (HIDDEN, Q_OUT))):
            stem = f"base_model.model.model.layers.{layer}.{module}"
            tensors[f"{stem}.lora_A.weight"] = rng.standard_normal((RANK, inp)).astype(np.float32)
            tensors[f"{stem}.lora_B.weight"] = rng.standard_normal((out, RANK)).astype(np.float32)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "adapter_model.safetensors"))
    (directory / "adapter_config.json").write_text(json.dumps(
        {"r": RANK, "lora_alpha": 8, "peft_type": "LORA", "target_modules": ["q_proj", "o_proj"], **(config or {})}))
    return tensors


@pytest.fixture
def setup(tmp_path):
    base = make_base(tmp_path / "base.gguf")
    registry = AdapterRegistry(tmp_path / "adapters")
    staging = registry.staging_dir("hr")
    tensors = make_adapter(staging)
    version = registry.publish("hr", staging, {})
    return base, registry, version, tensors, tmp_path / "cache"


def read(path):
    reader = gguf.GGUFReader(path)
    fields = {name: f.contents() for name, f in reader.fields.items() if not name.startswith("GGUF.")}
    return fields, {t.name: t for t in reader.tensors}


def test_layout_matches_llama_cpp_conventions(setup):
    base, _, version, tensors, cache = setup
    out = export_gguf_lora(version, base, cache)
    fields, read_tensors = read(out)
    assert fields["general.architecture"] == "gemma3" and fields["general.type"] == "adapter"
    assert fields["adapter.type"] == "lora" and fields["adapter.lora.alpha"] == 8.0
    assert fields["ragtune.adapter"] == "hr@v1"
    assert sorted(read_tensors) == sorted(f"blk.{b}.{m}.weight.lora_{p}" for b in (0, 1)
                                          for m in ("attn_q", "attn_output") for p in "ab")
    a = read_tensors["blk.1.attn_q.weight.lora_a"]
    assert [int(d) for d in a.shape] == [HIDDEN, RANK]  # ggml dims: numpy (r, in) reversed, as llama.cpp checks
    assert np.array_equal(np.asarray(a.data), tensors["base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"])
    b = read_tensors["blk.0.attn_output.weight.lora_b"]
    assert np.array_equal(np.asarray(b.data), tensors["base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight"])


def test_cached_by_hash_and_rebuilt_when_the_weights_change(setup, monkeypatch):
    base, registry, version, _, cache = setup
    first = export_gguf_lora(version, base, cache)
    mtime = first.stat().st_mtime_ns
    monkeypatch.setattr(gguf_lora, "write_gguf_lora", lambda *a, **k: pytest.fail("rebuilt an unchanged adapter"))
    assert export_gguf_lora(version, base, cache) == first and first.stat().st_mtime_ns == mtime
    monkeypatch.undo()
    make_adapter(version.path, seed=1)  # the same version's weights edited in place: a new key, a new file
    second = export_gguf_lora(version, base, cache)
    assert second != first and second.is_file()
    staging = registry.staging_dir("hr")
    make_adapter(staging, seed=1)
    v2 = registry.publish("hr", staging, {})
    assert export_gguf_lora(v2, base, cache).name.startswith("hr-v2-")


def test_a_crash_mid_write_leaves_no_file(setup, monkeypatch):
    base, _, version, _, cache = setup

    def crash(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", crash)
    with pytest.raises(OSError, match="disk full"):
        export_gguf_lora(version, base, cache)
    assert list(cache.iterdir()) == []  # neither a final nor a temporary file
    monkeypatch.undo()
    assert export_gguf_lora(version, base, cache).is_file()


def test_rslora_alpha_keeps_peft_scale(setup, tmp_path):
    base, registry, _, _, cache = setup
    staging = registry.staging_dir("rs")
    make_adapter(staging, config={"use_rslora": True})
    fields, _ = read(export_gguf_lora(registry.publish("rs", staging, {}), base, cache))
    # peft: alpha / sqrt(r) = 4; llama.cpp: alpha' / r
    assert fields["adapter.lora.alpha"] / RANK == pytest.approx(8 / math.sqrt(RANK))


@pytest.mark.parametrize("kind, match", [
    ("dora", "use_dora"),
    ("layer beyond the base", "no tensor of the gemma3 base"),
    ("wrong shape", "do not fit blk.0.attn_q.weight"),
])
def test_refuses_what_llama_cpp_would_refuse_or_misapply(setup, kind, match):
    base, registry, _, _, cache = setup
    staging = registry.staging_dir("bad")
    make_adapter(staging, **{"dora": {"config": {"use_dora": True}}, "layer beyond the base": {"layers": (0, 5)},
                             "wrong shape": {"q_out": Q_OUT + 1}}[kind])
    with pytest.raises(ExportError, match=match):
        export_gguf_lora(registry.publish("bad", staging, {}), base, cache)
    assert not any(cache.glob("*.gguf")) if cache.exists() else True


def test_serve_config_serves_each_version_by_ref_and_never_a_corrupt_one(setup, tmp_path):
    from assistant.settings import Settings
    from finetune.serve_config import base_gguf, llama_cpp_config, write_config

    base, registry, _, _, cache = setup
    staging = registry.staging_dir("hr")
    make_adapter(staging, seed=2)
    registry.publish("hr", staging, {})
    staging = registry.staging_dir("hr")
    make_adapter(staging, seed=3)
    corrupt = registry.publish("hr", staging, {})
    (corrupt.path / "adapter_model.safetensors").write_bytes(b"edited")  # differs from its recorded hash
    settings = Settings(home=tmp_path / "home", generator={"model": str(base), "openai_model": "base-270m"})
    assert base_gguf(settings) == base
    built = llama_cpp_config(settings, registry, cache, base, n_threads=2, port=9001)
    models = built.config["models"]
    assert [m["model_alias"] for m in models] == ["base-270m", "hr@v1", "hr@v2"] and built.config["port"] == 9001
    assert list(built.skipped) == ["hr@v3"] and "hr@v3" not in json.dumps(models)
    assert {m["model"] for m in models} == {str(base.resolve())} and models[1]["n_threads"] == 2
    assert models[1]["lora_path"].endswith(".gguf") and "lora_path" not in models[0]
    out = write_config(built.config, tmp_path / "engine.json")
    assert json.loads(out.read_text()) == built.config
    with pytest.raises(ExportError, match="not one"):
        base_gguf(settings.model_copy(update={"generator": settings.generator.model_copy(
            update={"model": str(tmp_path)})}))
