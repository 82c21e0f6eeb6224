"""The registry as an engine's model list: llama-cpp-python's server `--config_file`, one entry per version.

Every entry loads the same base GGUF; the base is served under `generator.openai_model` and each registry
version under its ref `NAME@vN` with `lora_path` = its GGUF export (finetune/gguf_lora.py, cached). ragtune's
openai backend sends a request's adapter as the model name and points each adapter NAME at its promoted
version's ref, so promoting or rolling back between served versions needs no restart of either process; a
version trained after the engine started is served once this file is written again and the engine restarted.

llama-cpp-python keeps one model in memory: a request for another entry closes the current one and loads the
base with that adapter (a second or two for the 270M model; README "Scaling out" has the measurement), so it
suits serving the promoted versions, not mixing many adapters request by request under load.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.runtime.base import GeneratorError
from assistant.runtime.checkpoint import packaged_gguf
from assistant.settings import Settings
from finetune.gguf_lora import ExportError, export_gguf_lora
from finetune.registry import AdapterRegistry, RegistryError

log = logging.getLogger(__name__)


@dataclass
class ServeConfig:
    config: dict[str, Any]
    served: list[str] = field(default_factory=list)  # refs with an entry
    skipped: dict[str, str] = field(default_factory=dict)  # ref -> why it has none (corrupt, not exportable)


def base_gguf(settings: Settings, override: Path | None = None) -> Path:
    """The GGUF the engine loads: `override`, else `generator.model` as a .gguf file or an installed GGUF package."""
    model = Path(override or settings.generator.model).expanduser()
    path = model if model.suffix == ".gguf" else None
    if path is None and not model.is_dir():
        try:
            path = packaged_gguf(str(model))
        except GeneratorError as exc:
            raise ExportError(str(exc)) from None
    if path is None or not path.is_file():
        raise ExportError(f"llama.cpp loads a GGUF; generator.model {str(model)!r} is not one (pass --base FILE.gguf)")
    return path


def llama_cpp_config(settings: Settings, registry: AdapterRegistry, adapters_dir: Path, base: Path,
                     refs: list[str] | None = None, n_ctx: int = 0, n_threads: int = 0,
                     host: str = "127.0.0.1", port: int = 8080) -> ServeConfig:
    """The config for `python -m llama_cpp.server --config_file FILE`; exports every version it names."""
    common: dict[str, Any] = {"model": str(base.resolve()),
                              "n_ctx": n_ctx or settings.generator.openai_context_window_tokens
                              or settings.generator.context_window_tokens}
    if n_threads:
        common["n_threads"] = common["n_threads_batch"] = n_threads
    result = ServeConfig({"host": host, "port": port,
                          "models": [{**common, "model_alias": settings.generator.openai_model}]})
    versions = [registry.get(r) for r in refs] if refs else registry.list()
    for version in versions:
        try:
            registry.verify(version)  # a corrupt version is never exported, so never served
            path = export_gguf_lora(version, base, adapters_dir)
        except (RegistryError, ExportError) as exc:
            result.skipped[version.ref] = str(exc)
            log.error("adapter %s is not served: %s", version.ref, exc)
            continue
        result.config["models"].append({**common, "model_alias": version.ref, "lora_path": str(path.resolve())})
        result.served.append(version.ref)
    return result


def write_config(config: dict[str, Any], out: Path) -> Path:
    """JSON (or YAML for .yaml/.yml), written to a temporary name and renamed: an engine never reads half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(config, sort_keys=False)
    else:
        text = json.dumps(config, indent=2)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    return out
