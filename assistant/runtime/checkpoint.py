"""Resolve `generator.model` to a plain transformers checkpoint directory, converting a GGUF once.

transformers can read a GGUF file directly, but it dequantizes on every load (about 60 s for Gemma
3 270M on 2 cores). We do that once and save an ordinary safetensors checkpoint in the cache, after
which loads take seconds. A GGUF-quantized model refuses `save_pretrained`, so the weights move into
a fresh model built from the same config without its `quantization_config`.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import logging
import os
import shutil
from pathlib import Path

from assistant.runtime.base import GeneratorError

log = logging.getLogger(__name__)


def resolve_model_dir(model: str, cache_dir: Path) -> Path:
    """A directory `from_pretrained` loads quickly: the model itself, or its converted copy in `cache_dir`."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise GeneratorError(f"{path} is not a transformers model directory (no config.json)")
        return path
    gguf = path if path.suffix == ".gguf" else packaged_gguf(model)
    if not gguf.is_file():
        raise GeneratorError(f"GGUF file {gguf} does not exist")
    stat = gguf.stat()
    digest = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_dir / f"{gguf.stem}-{digest}"
    if (target / "config.json").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".convert.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two servers starting at once convert only once
        if not (target / "config.json").is_file():
            _convert(gguf, target)
    return target


def packaged_gguf(name: str) -> Path:
    """An installed package that ships a GGUF exposes `assemble()` returning its path."""
    try:
        module = importlib.import_module(name.replace("-", "_"))
    except ImportError as exc:
        raise GeneratorError(
            f"generator.model {name!r} is neither a model directory, a .gguf file, nor an installed model package"
        ) from exc
    if not hasattr(module, "assemble"):
        raise GeneratorError(f"package {name!r} has no assemble() returning a GGUF path")
    return Path(module.assemble())


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.warning("converting %s into a transformers checkpoint at %s, once (about a minute on 2 cores)", gguf.name, target)
    source = dict(pretrained_model_name_or_path=str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(**source)
    quantized = AutoModelForCausalLM.from_pretrained(**source, dtype=torch.float32)
    config = AutoConfig.from_pretrained(**source)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    tied = {"lm_head.weight"}  # Gemma ties the output head to the embeddings
    if set(missing) - tied or unexpected:
        raise GeneratorError(f"converting {gguf.name}: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    model.tie_weights()
    model.generation_config = quantized.generation_config
    # We hold the conversion lock, so any staging dir left here is a crashed conversion's: remove it.
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if target.exists():  # a directory without config.json (copied by hand, half deleted): not ours to trust
        shutil.rmtree(target)
    os.replace(staging, target)  # a crash mid-save leaves only the staging dir, never a half checkpoint
    log.warning("converted checkpoint ready: %s", target)
