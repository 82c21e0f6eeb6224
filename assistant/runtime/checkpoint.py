"""Resolve `generator.model` to a plain transformers checkpoint directory, converting a GGUF once.

transformers can read a GGUF file directly, but it dequantizes on every load (about 60 s for Gemma
3 270M on 2 cores). We do that once and save an ordinary safetensors checkpoint in the cache, after
which loads take seconds. A GGUF-quantized model refuses `save_pretrained`, so the weights move into
a fresh model built from the same config without its `quantization_config`.

Integrity: the GGUF is checked before conversion against the hash its package publishes, or, for a
file given by path, against the hash recorded the first time that path was converted
(`<cache>/gguf-sha256.json`). The conversion writes a SHA-256 manifest of every file it saved, and
every load checks the checkpoint against it (about 1 s for Gemma 3 270M's 1.1 GB): a mismatch refuses
the load; deleting the checkpoint directory makes the next start convert again.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

from assistant import integrity
from assistant.runtime.base import GeneratorError

log = logging.getLogger(__name__)


def resolve_model_dir(model: str, cache_dir: Path) -> Path:
    """A directory `from_pretrained` loads quickly: the model itself, or its converted copy in `cache_dir`."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise GeneratorError(f"{path} is not a transformers model directory (no config.json)")
        _verify(path, legacy_ok=True)  # a directory of the user's: checked only if it carries a manifest
        return path
    gguf = path if path.suffix == ".gguf" else packaged_gguf(model)
    if not gguf.is_file():
        raise GeneratorError(f"GGUF file {gguf} does not exist")
    stat = gguf.stat()
    digest = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_dir / f"{gguf.stem}-{digest}"
    if (target / "config.json").is_file() and _verify(target, legacy_ok=False):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".convert.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two servers starting at once convert only once
        if not (target / "config.json").is_file():
            _check_gguf(gguf, model if path.suffix != ".gguf" else None, cache_dir)
            _convert(gguf, target)
        elif integrity.read_manifest(target) is None:
            # Converted before manifests existed: record what is there now (trust on first use), once.
            log.warning("recording SHA-256 hashes of %s (converted before hash manifests existed)", target)
            try:
                integrity.write_manifest(target, {"gguf": gguf.name, "recorded": "after conversion"})
            except OSError as exc:  # a read-only cache: load as before, unverified, and say so
                log.warning("cannot write the hash manifest into %s (%s): loading it unverified", target, exc)
    _verify(target, legacy_ok=False)
    return target


def _verify(directory: Path, legacy_ok: bool) -> bool:
    """Refuse pickle weights and files that differ from the manifest; False if there is no manifest yet.

    `legacy_ok`: a directory of the user's, where stray files (training_args.bin) are tolerated: the loaders are
    told to read safetensors only."""
    try:
        if not legacy_ok:
            integrity.refuse_pickle_files(directory, "model checkpoint")
        checked = integrity.verify_manifest(directory, "model checkpoint")
    except integrity.IntegrityError as exc:
        remedy = "" if legacy_ok else f"; delete {directory} to convert the model again"
        raise GeneratorError(f"refusing to load: {exc}{remedy}") from None
    return checked or legacy_ok


def _check_gguf(gguf: Path, package: str | None, cache_dir: Path) -> None:
    """Before converting: the GGUF matches its package's published hash, or the hash recorded when this path was
    first converted with the same size and mtime (a file replaced on purpose has a new mtime: a new model)."""
    actual, stat = integrity.sha256_file(gguf), gguf.stat()
    records_path = cache_dir / "gguf-sha256.json"
    records = json.loads(records_path.read_text()) if records_path.is_file() else {}
    key, seen = str(gguf.resolve()), records.get(str(gguf.resolve()))
    if package is not None:
        expected, origin = getattr(importlib.import_module(package.replace("-", "_")), "EXPECTED_SHA256", None), "its package"
    elif seen and (seen.get("size"), seen.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns):
        expected, origin = seen.get("sha256"), f"its first conversion ({records_path})"
    else:
        expected, origin = None, ""
    if expected and actual != expected:
        raise GeneratorError(
            f"refusing to convert {gguf}: its SHA-256 is {actual[:16]}…, {origin} says {expected[:16]}…: the file is "
            "corrupt or was modified; restore it (or replace it with a new file on purpose)"
        )
    if seen is None or seen.get("sha256") != actual:
        if seen is not None:
            log.warning("%s changed since it was first converted; converting it as a new model", gguf)
        records[key] = {"sha256": actual, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "recorded_at": time.time()}
        tmp = records_path.with_name(f".{records_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(records, indent=2))
        os.replace(tmp, records_path)


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
    integrity.write_manifest(staging, {"gguf": gguf.name, "gguf_sha256": integrity.sha256_file(gguf)})
    if target.exists():  # a directory without config.json (copied by hand, half deleted): not ours to trust
        shutil.rmtree(target)
    os.replace(staging, target)  # a crash mid-save leaves only the staging dir, never a half checkpoint
    log.warning("converted checkpoint ready: %s", target)
