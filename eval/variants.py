"""What an evaluation compares: a model version (adapter or none) with or without retrieval.

    base            the base model, closed book (no documents)
    rag             the base model with retrieval
    lora            the adapter, closed book
    rag+lora        the adapter with retrieval
    adapter:REF     the adapter version REF (NAME or NAME@vN) with retrieval, named after REF

"The adapter" of lora / rag+lora is `--adapter REF` when given, else the promoted default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


class VariantError(ValueError):
    pass


@dataclass(frozen=True)
class Variant:
    name: str
    adapter: str  # "base" = no adapter, else a registry reference
    retrieval: bool

    def to_dict(self) -> dict:
        return asdict(self)


def parse_variants(spec: str, adapter: str | None) -> list[Variant]:
    """`spec` is comma-separated; `adapter` is what lora / rag+lora use (None = none available)."""
    variants: list[Variant] = []
    for name in [part.strip() for part in spec.split(",") if part.strip()]:
        if name in ("base", "rag"):
            variants.append(Variant(name, "base", name == "rag"))
        elif name in ("lora", "rag+lora", "lora+rag"):
            if not adapter:
                raise VariantError(f"variant {name!r} needs an adapter: train one (ragtune finetune), promote it, "
                                   "or name one with --adapter NAME@vN")
            variants.append(Variant("rag+lora" if "rag" in name else "lora", adapter, "rag" in name))
        elif name.startswith("adapter:") and name[len("adapter:"):]:
            ref = name[len("adapter:"):]
            variants.append(Variant(ref, ref, True))
        else:
            raise VariantError(f"unknown variant {name!r}: use base, rag, lora, rag+lora or adapter:NAME@vN")
    if not variants:
        raise VariantError("no variants given")
    if len({v.name for v in variants}) != len(variants):
        raise VariantError(f"a variant is listed twice in {spec!r}")
    return variants
