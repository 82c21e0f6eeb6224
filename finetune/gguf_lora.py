"""A registry version as a GGUF LoRA adapter: the file llama.cpp (and llama-cpp-python's `lora_path`) loads.

Same layout as llama.cpp's convert_lora_to_gguf.py: `general.type = adapter`, `adapter.type = lora`,
`adapter.lora.alpha`, and for each adapted weight `<base tensor>.lora_a` (peft's lora_A, numpy shape (r, in))
and `<base tensor>.lora_b` (lora_B, (out, r)), named like the base GGUF's tensors (`blk.3.attn_q.weight.lora_a`).
llama.cpp scales by alpha / r with r read from the tensors, as peft does; rsLoRA's alpha / sqrt(r) is written as
alpha * sqrt(r) so the product is the same.

Every name and shape is checked against the base GGUF's own tensors before anything is written (the check
llama.cpp does at load, moved to export time, so a mismatch is an error here and not a refusal in the engine).

Cached: `<cache>/<name>-<version>-<key>.gguf`, the key hashing the adapter's files (SHA-256 of the weights and
config) and the base GGUF's identity (path, size, mtime, as the checkpoint conversion does), so an unchanged
version is never rebuilt and a changed file gets a new file. Written to a temporary name and renamed, so a crash
mid-write leaves no half file under the final name.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from assistant import integrity
from finetune.registry import AdapterVersion

FORMAT = 1  # bump when the written file changes for the same inputs: old cache entries are then ignored
_WEIGHTS = "adapter_model.safetensors"
_CONFIG = "adapter_config.json"
# after peft's "base_model.model.": Gemma 3's multimodal checkpoints nest the text model (as llama.cpp's converter)
_LANGUAGE_MODEL = (("model.language_model.", "model."), ("language_model.", ""))


class ExportError(ValueError):
    """An adapter that cannot be exported for this base model; the message is for users."""


def cache_key(adapter_dir: Path, base_gguf: Path) -> str:
    stat = base_gguf.stat()
    parts = [f"format={FORMAT}", f"base={base_gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"]
    for name in (_CONFIG, _WEIGHTS):
        path = adapter_dir / name
        if not path.is_file():
            raise ExportError(f"{adapter_dir} has no {name} (only peft safetensors adapters can be exported)")
        parts.append(f"{name}={integrity.sha256_file(path)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def export_gguf_lora(version: AdapterVersion, base_gguf: Path, cache_dir: Path) -> Path:
    """The version's GGUF adapter in `cache_dir`, written now unless an identical one is already there."""
    key = cache_key(version.path, base_gguf)
    target = cache_dir / f"{version.name}-{version.version}-{key}.gguf"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_gguf_lora(version.path, base_gguf, target, {"ragtune.adapter": version.ref, "ragtune.cache_key": key})
    return target


def write_gguf_lora(adapter_dir: Path, base_gguf: Path, out: Path, extra: dict[str, str] | None = None) -> None:
    import gguf

    config = json.loads((adapter_dir / _CONFIG).read_text())
    alpha = _alpha(config)
    arch, blocks, base_shapes = _base_layout(base_gguf)
    names = gguf.get_tensor_name_map(_arch_enum(arch), blocks)
    pairs = _pairs(adapter_dir / _WEIGHTS)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(tmp, arch)
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for key, value in (extra or {}).items():
            writer.add_string(key, value)
        for module in sorted(pairs):
            a, b = pairs[module]
            target = names.get_name(module + ".weight", try_suffixes=(".weight",))
            if target is None or target not in base_shapes:
                raise ExportError(f"{module}: no tensor of the {arch} base model matches it (got {target!r})")
            # ggml's dims are numpy's reversed: a base weight (out, in) is stored as [in, out]
            want_in, want_out = base_shapes[target][0], base_shapes[target][1]
            if a.shape[1] != want_in or b.shape[0] != want_out or a.shape[0] != b.shape[1]:
                raise ExportError(f"{module}: lora_A {a.shape} / lora_B {b.shape} do not fit {target} "
                                  f"(in {want_in}, out {want_out})")
            writer.add_tensor(f"{target}.lora_a", a)
            writer.add_tensor(f"{target}.lora_b", b)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())  # on disk before the rename makes it visible under its final name
        os.replace(tmp, out)
    finally:
        writer.close()
        tmp.unlink(missing_ok=True)


def _alpha(config: dict[str, Any]) -> float:
    """The alpha llama.cpp needs for peft's scale: alpha / r (rsLoRA: alpha / sqrt(r), so alpha * sqrt(r) here)."""
    refused = [k for k in ("use_dora", "rank_pattern", "alpha_pattern", "modules_to_save", "fan_in_fan_out")
               if config.get(k)]
    if config.get("bias", "none") != "none":
        refused.append("bias")
    if refused:
        raise ExportError(f"the adapter uses {', '.join(refused)}, which a GGUF LoRA adapter cannot express")
    alpha, rank = float(config["lora_alpha"]), int(config["r"])
    return alpha * math.sqrt(rank) if config.get("use_rslora") else alpha


def _pairs(weights: Path) -> dict[str, tuple[Any, Any]]:
    """{"model.layers.0.self_attn.q_proj": (lora_A float32 (r, in), lora_B float32 (out, r))}."""
    from safetensors import safe_open

    found: dict[str, dict[str, Any]] = {}
    with safe_open(str(weights), framework="pt") as handle:
        for name in handle.keys():
            module, part = _split(name)
            found.setdefault(module, {})[part] = handle.get_tensor(name).float().numpy()
    incomplete = [m for m, parts in found.items() if set(parts) != {"A", "B"}]
    if incomplete:
        raise ExportError(f"{weights}: lora_A or lora_B missing for {', '.join(sorted(incomplete)[:3])}")
    return {m: (parts["A"], parts["B"]) for m, parts in found.items()}


def _split(name: str) -> tuple[str, str]:
    for suffix, part in ((".lora_A.weight", "A"), (".lora_B.weight", "B")):
        if name.endswith(suffix):
            module = name[: -len(suffix)].removeprefix("base_model.model.")
            for prefix, replacement in _LANGUAGE_MODEL:
                if module.startswith(prefix):
                    module = replacement + module[len(prefix):]
                    break
            return module, part
    raise ExportError(f"unexpected tensor {name!r} in the adapter (only lora_A/lora_B weights can be exported)")


def _base_layout(base_gguf: Path) -> tuple[str, int, dict[str, tuple[int, ...]]]:
    stat = base_gguf.stat()
    return _read_layout(str(base_gguf.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _read_layout(path: str, size: int, mtime_ns: int) -> tuple[str, int, dict[str, tuple[int, ...]]]:
    """(architecture, block count, {tensor name: ggml dims}) from the base GGUF's header: about 8 s for the
    270M Q4_K_M on a busy 2-core machine, so read once per process per file version."""
    import gguf

    reader = gguf.GGUFReader(path)
    field = reader.fields.get(gguf.Keys.General.ARCHITECTURE)
    if field is None:
        raise ExportError(f"{path} names no general.architecture")
    arch = field.contents()
    blocks = reader.fields.get(f"{arch}.block_count")
    shapes = {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors}
    return arch, int(blocks.contents()) if blocks is not None else 0, shapes


def _arch_enum(arch: str):
    import gguf

    for enum, name in gguf.MODEL_ARCH_NAMES.items():
        if name == arch:
            return enum
    raise ExportError(f"gguf-py does not know the architecture {arch!r}")
