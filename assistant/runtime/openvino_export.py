"""Export a transformers causal LM (the cached GGUF conversion) to the OpenVINO IR that GenAI loads.

Why our own exporter: `optimum-cli export openvino` (optimum-intel 2.2.0) refuses transformers newer than 5.0 and
would pull another torch; the lock has transformers 5.23 and torch 2.13 CPU. OpenVINO's own converter traces the
model here; the two graph edits that make it a GenAI "stateful" LLM are the ones optimum-intel applies
(optimum/exporters/openvino/stateful.py: `fuse_cache_reorder`, `make_stateful`, `build_state_initializer`),
re-implemented below in a few lines on OpenVINO's public API.

The IR GenAI expects: inputs `input_ids`, `attention_mask` (past + new tokens), `position_ids`, `beam_idx`; output
`logits`; the KV cache held as model state (ReadValue/Assign pairs), plus `openvino_tokenizer.xml` /
`openvino_detokenizer.xml` from openvino-tokenizers and the checkpoint's config.json / generation_config.json.
The KV cache keeps every position (no sliding-window truncation): Gemma 3's local layers apply their window
through the mask transformers builds from absolute positions, so the result equals transformers' own decoding.
That mask reaches each attention op as a boolean tensor, which sends the CPU plugin's prefill attention to a slow
path (a 1,396-token prefill spent 2.6 of its 3.1 s there in bfloat16); the same mask as an additive float tensor
(0 where allowed, -65504 where not: finite in every precision, so a fully padded row stays a uniform row, not NaN)
takes the fast kernel: 0.39 s (`_additive_masks`; README "Measured numbers").

Weights: `fp32`, `fp16` (stored half, computed fp32 on CPU), `int8` / `int4` (nncf weight-only compression, a
second quantisation on top of the GGUF's Q4_K_M). The export is done once per (checkpoint, format), under a file
lock, into a staging directory renamed into place, with a SHA-256 manifest verified on every load.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator

from assistant import integrity
from assistant.runtime.base import GeneratorError

log = logging.getLogger(__name__)

WEIGHT_FORMATS = ("fp32", "fp16", "int8", "int4")
MODEL_XML = "openvino_model.xml"
EXPORT_VERSION = 3  # in the directory name: a change to the exported graph makes a new export, never reuses an old one


def export_dir(checkpoint: Path, cache_dir: Path, weights: str) -> Path:
    return cache_dir / f"{checkpoint.name}-ov{EXPORT_VERSION}-{weights}"


def ensure_exported(checkpoint: Path, cache_dir: Path, weights: str) -> Path:
    """The OpenVINO export of `checkpoint` in `cache_dir`, exporting it first if needed (once, under a lock)."""
    if weights not in WEIGHT_FORMATS:
        raise GeneratorError(f"unknown OpenVINO weight format {weights!r}; one of {', '.join(WEIGHT_FORMATS)}")
    target = export_dir(checkpoint, cache_dir, weights)
    try:
        export_once(target, lambda: _export(checkpoint, target, weights), "OpenVINO export")
    except integrity.IntegrityError as exc:
        raise GeneratorError(f"refusing to load: {exc}; delete {target} to export the model again") from None
    return target


def export_once(target: Path, export: Callable[[], None], what: str) -> None:
    """Run `export` unless `target` already holds a model, once across processes (a lock beside it), then check
    `target` against its manifest: integrity.IntegrityError when it does not match or has none. Shared by the
    generator's and the embedder's exports."""
    if not (target / MODEL_XML).is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.parent / ".openvino-export.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once export only once
            if not (target / MODEL_XML).is_file():
                export()
    if not integrity.verify_manifest(target, what):
        raise integrity.IntegrityError(f"{what} {target} has no hash manifest")


@contextlib.contextmanager
def staged(target: Path, source: dict) -> Iterator[Path]:
    """A staging directory beside `target` (the caller holds export_once's lock, so leftovers of a crashed export are
    removed first); on success its files are hashed into a manifest naming `source` and it is renamed into place, on
    failure deleted: a crash mid-export never leaves a half export where `target` is read."""
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging.mkdir(parents=True)
    try:
        yield staging
        integrity.write_manifest(staging, source)
        if target.exists():  # a directory without the model file (half deleted by hand): not ours to trust
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def telemetry_off() -> None:
    """Make OpenVINO send no telemetry from this process (called at import, before openvino is imported).

    `import openvino` posts an "import" event through openvino-telemetry, and ov.convert_model and nncf post
    more; all create its Telemetry with `enable_opt_in_dialog=False`, which counts a missing consent file as
    consent (DO_NOT_TRACK is not read). Both callers fall back to their own no-op stubs when openvino_telemetry
    cannot be imported, so it is made unimportable here (a None entry in sys.modules); if openvino was imported
    before us, the consent check is made to answer DECLINED for every later event."""
    if "openvino_telemetry" not in sys.modules:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # import raises ImportError
        return
    module = sys.modules["openvino_telemetry"]
    if module is None:
        return
    from openvino_telemetry import main
    from openvino_telemetry.utils import opt_in_checker

    opt_in_checker.OptInChecker.check = lambda self, *args, **kwargs: opt_in_checker.ConsentCheckResult.DECLINED
    instance = getattr(main.Telemetry, "_SingletonMetaClass__single_instance", None)
    if instance is not None:
        instance.consent = False


telemetry_off()


def _export(checkpoint: Path, target: Path, weights: str) -> None:
    started = time.monotonic()
    log.warning("exporting %s to OpenVINO (%s weights) at %s, once (a minute or two on 2 cores)", checkpoint.name,
                weights, target)
    source_manifest = integrity.read_manifest(checkpoint) or {}
    source = {"checkpoint": str(checkpoint), "weights": weights, "checkpoint_source": source_manifest.get("source", {})}
    with staged(target, source) as staging:
        import openvino as ov

        traced = export_dir(checkpoint, target.parent, "fp32")
        reuse = weights != "fp32" and (traced / MODEL_XML).is_file() and _intact(traced)
        if reuse:  # the fp32 export holds the same graph and tokenizer: no new trace or tokenizer conversion
            model = ov.Core().read_model(traced / MODEL_XML)
        else:
            model = convert_model(checkpoint)
        log.warning("OpenVINO export: graph ready (%.0f s); compressing weights (%s)", time.monotonic() - started, weights)
        if weights in ("int8", "int4"):
            import nncf

            mode = nncf.CompressWeightsMode.INT8_ASYM if weights == "int8" else nncf.CompressWeightsMode.INT4_ASYM
            # int4: group size 128, every layer (ratio 1.0); nncf keeps the embedding/output head in int8 by default.
            extra = {} if weights == "int8" else {"group_size": 128, "ratio": 1.0}
            model = nncf.compress_weights(model, mode=mode, **extra)
        ov.save_model(model, staging / MODEL_XML, compress_to_fp16=weights == "fp16")
        del model
        log.warning("OpenVINO export: model saved (%.0f s); converting the tokenizer", time.monotonic() - started)
        if reuse:
            for name in ("openvino_tokenizer", "openvino_detokenizer"):
                for suffix in (".xml", ".bin"):
                    shutil.copy2(traced / (name + suffix), staging / (name + suffix))
        else:
            _export_tokenizer(checkpoint, staging)
        for name in ("config.json", "generation_config.json"):
            if (checkpoint / name).is_file():
                shutil.copy2(checkpoint / name, staging / name)
    log.warning("OpenVINO export ready in %.0f s: %s", time.monotonic() - started, target)


def _intact(directory: Path) -> bool:
    try:
        return integrity.verify_manifest(directory, "OpenVINO export")
    except integrity.IntegrityError as exc:
        log.warning("not reusing %s: %s", directory, exc)
        return False


def _export_tokenizer(checkpoint: Path, staging: Path) -> None:
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    encoder, decoder = convert_tokenizer(tokenizer, with_detokenizer=True)
    ov.save_model(encoder, staging / "openvino_tokenizer.xml")
    ov.save_model(decoder, staging / "openvino_detokenizer.xml")


@contextlib.contextmanager
def quiet_tracing() -> Iterator[None]:
    """The tracer's notes on the model's Python branches (TracerWarning) and the deprecation notices of the tracing
    APIs (a dozen lines a model) are not for users: the exports are checked against torch's outputs by tests (tokens
    for the generator, vectors for the embedder)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def convert_model(checkpoint: Path):
    """Trace the checkpoint into a stateful OpenVINO model (fp32), as GenAI's LLMPipeline expects it."""
    import openvino as ov
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32, attn_implementation="sdpa",
                                                 use_safetensors=True).eval()
    config = model.config
    layers = config.num_hidden_layers
    heads, head_dim = config.num_key_value_heads, getattr(config, "head_dim", config.hidden_size // config.num_attention_heads)
    # Batch 2, 5 new tokens after 3 cached ones: no dimension is 1, so the tracer keeps every axis dynamic.
    batch, new, cached = 2, 5, 3
    example = {
        "input_ids": torch.ones(batch, new, dtype=torch.long),
        "attention_mask": torch.ones(batch, cached + new, dtype=torch.long),
        "position_ids": torch.arange(cached, cached + new).repeat(batch, 1),
        "past": [torch.zeros(batch, heads, cached, head_dim) for _ in range(2 * layers)],
    }
    with torch.no_grad(), quiet_tracing():
        ov_model = ov.convert_model(_FlatCacheModel(model), example_input=example)
    del model
    kv_inputs, kv_outputs = [], []
    for index, port in enumerate(ov_model.inputs):
        if index < 3:
            port.get_tensor().set_names({("input_ids", "attention_mask", "position_ids")[index]})
        else:
            layer, kind = divmod(index - 3, 2)
            name = f"past_key_values.{layer}.{'value' if kind else 'key'}"
            port.get_tensor().set_names({name})
            kv_inputs.append(name)
    for index, port in enumerate(ov_model.outputs):
        if index == 0:
            port.get_tensor().set_names({"logits"})
        else:
            layer, kind = divmod(index - 1, 2)
            name = f"present.{layer}.{'value' if kind else 'key'}"
            port.get_tensor().set_names({name})
            kv_outputs.append(name)
    _additive_masks(ov_model)
    _make_stateful(ov_model, kv_inputs, kv_outputs)
    return ov_model


def _additive_masks(ov_model) -> None:
    """Feed every attention op its mask as 0 / -65504 floats instead of booleans (the fast CPU kernel's input)."""
    import numpy as np
    from openvino import opset13

    additive: dict[tuple[str, int], object] = {}  # one Select per distinct mask (the full and the sliding-window one)
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() != "ScaledDotProductAttention" or op.get_input_size() < 4:
            continue
        mask = op.input(3).get_source_output()
        if mask.get_element_type().get_type_name() != "boolean":
            continue
        key = (mask.get_node().get_friendly_name(), mask.get_index())
        if key not in additive:
            additive[key] = opset13.select(mask, opset13.constant(np.float32(0.0)),
                                           opset13.constant(np.float32(-65504.0))).output(0)
        op.input(3).replace_source_output(additive[key])
    ov_model.validate_nodes_and_infer_types()


class _FlatCacheModel:
    """Wraps the HF model so the KV cache goes in and out as flat tensors (what a traced graph can carry)."""

    def __new__(cls, model):
        import torch
        from transformers.cache_utils import DynamicCache, DynamicLayer

        class Flat(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.model = inner  # module path "model.model.layers.N..." keeps the weight names LoRA matches on

            def forward(self, input_ids, attention_mask, position_ids, past):
                cache = DynamicCache()
                # Pre-filled layers: DynamicLayer's lazy start (an empty tensor concatenated) does not trace.
                cache.layers = []
                for layer in range(len(past) // 2):
                    entry = DynamicLayer()
                    entry.dtype, entry.device, entry.is_initialized = past[0].dtype, past[0].device, True
                    entry.keys, entry.values = past[2 * layer], past[2 * layer + 1]
                    cache.layers.append(entry)
                # logits_to_keep=1: generation reads only the last position; all of them would be a 262k-word
                # output layer run over every prompt token (~0.6 GB and most of the prefill time at 600 tokens).
                out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                 past_key_values=cache, use_cache=True, logits_to_keep=1)
                flat = []
                for entry in out.past_key_values.layers:
                    flat += [entry.keys, entry.values]
                return (out.logits, *flat)

        return Flat(model)


def _make_stateful(ov_model, kv_inputs: list[str], kv_outputs: list[str]) -> None:
    """Hide the KV tensors as model state, with a `beam_idx` gather in front (GenAI's stateful LLM contract)."""
    import numpy as np
    import openvino as ov
    from openvino import opset13
    from openvino._offline_transformations import apply_make_stateful_transformation

    batch = ov_model.input("input_ids").get_partial_shape()[0]
    beam_idx = opset13.parameter(name="beam_idx", dtype=ov.Type.i32, shape=ov.PartialShape([batch]))
    beam_idx.output(0).get_tensor().add_names({"beam_idx"})
    ov_model.add_parameters([beam_idx])
    for name in kv_inputs:  # GenAI reorders the cache for beam search through this gather (identity for us)
        port = ov_model.input(name)
        consumers = port.get_target_inputs()
        gather = opset13.gather(port, beam_idx, opset13.constant(0))
        for consumer in consumers:
            consumer.replace_source_output(gather.output(0))
    ov_model.validate_nodes_and_infer_types()
    apply_make_stateful_transformation(ov_model, dict(zip(kv_inputs, kv_outputs)))
    # Each state starts as zeros of shape [batch, heads, 0, head_dim], batch taken from input_ids.
    ids = ov_model.input("input_ids")
    batch_size = opset13.gather(opset13.shape_of(ids, output_type="i64"), opset13.constant([0]), opset13.constant(0))
    for op in ov_model.get_ops():
        if op.get_type_name() == "ReadValue":
            dims = [dim.min_length for dim in list(op.get_output_partial_shape(0))]
            dims[0] = batch_size
            dims = [opset13.constant(np.array([d], dtype=np.int64)) if isinstance(d, int) else d for d in dims]
            zeros = opset13.broadcast(opset13.constant(0.0, dtype=op.get_output_element_type(0)), opset13.concat(dims, 0))
            op.set_arguments([zeros])
    ov_model.validate_nodes_and_infer_types()
