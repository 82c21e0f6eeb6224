"""Builds ragtune's components from one Settings object; the only place that does.

Commands and (later) the server call these instead of constructing parts themselves, so a
profile or environment override reaches every part the same way.
"""

from __future__ import annotations

import logging

from assistant.chat_service import ChatService, ReleaseSettings
from assistant.db import Database
from assistant.inference_queue import InferenceQueue
from assistant.runtime.base import Generator, GeneratorError
from assistant.runtime.factory import build_generator
from assistant.settings import Settings
from finetune.registry import AdapterRegistry, RegistryError
from finetune.teacher import Teacher
from ingestion.embedder import Embedder, build_embedder
from ingestion.index_store import IndexStore
from ingestion.pipeline import IngestJob
from ingestion.retriever import Retriever

log = logging.getLogger(__name__)


def embedder(settings: Settings) -> Embedder:
    return build_embedder(settings.embedder, settings.models_dir)


def index_store(settings: Settings, readonly: bool = False, embed: Embedder | None = None) -> IndexStore:
    return IndexStore(settings.index_dir, embed or embedder(settings), settings.index, readonly=readonly)


def ingest_job(settings: Settings) -> IngestJob:
    embed = embedder(settings)
    return IngestJob(settings, embed, index_store(settings, embed=embed))


def retriever(settings: Settings) -> Retriever:
    return Retriever(index_store(settings, readonly=True), settings.retrieval)


def database(settings: Settings, migrate: bool = True) -> Database:
    """The server's database (keys, conversations, feedback, jobs), migrated to the current schema."""
    db = Database(settings.database_url)
    if migrate:
        db.migrate()
    return db


def generator(settings: Settings) -> Generator:
    """The answer-writing model (local: OpenVINO or transformers, seconds to load once converted/exported),
    with the adapter registry's versions resident: `name@vN` each, and `name` for the promoted one."""
    built = build_generator(settings)
    registry = adapter_registry(settings)
    if settings.generator.mode == "openai":  # the engine loads the adapters; each name answers with its promoted ref
        if registry.names() and not built.adapters():
            log.error("the generation server at %s lists no adapters (not reachable yet, or started without "
                      "`ragtune adapters serve-config`): adapter names are refused until it does and ragtune restarts",
                      settings.generator.openai_base_url)
            return built
        for name in registry.names():
            _serve_promoted(registry, name, built)
    else:
        for name in registry.names():
            for version in registry.versions(name):
                try:  # a corrupt or unloadable version is refused; the base model and the other versions serve
                    if not registry.verify(version):
                        log.warning("adapter %s has no recorded hashes (published before they were kept): unverified",
                                    version.ref)
                    built.load_adapter(version.ref, str(version.path))
                except (RegistryError, GeneratorError) as exc:
                    log.error("adapter %s not loaded: %s", version.ref, exc)
            _serve_promoted(registry, name, built)
    return built


def generation_slots(settings: Settings) -> int:
    """Generations the server runs at once: `server.max_concurrent_generations`, raised to `generator.batch_streams`
    where the local transformers model decodes greedy streams together (runtime/decode_loop.py); elsewhere on a
    CPU a second generation would only halve the speed of the first."""
    g = settings.generator
    together = (g.mode == "transformers" and g.device == "cpu" and g.prompt_lookup_tokens > 0 and g.temperature <= 0
                and g.batch_streams > 1)
    return max(settings.server.max_concurrent_generations, g.batch_streams if together else 1)


def _serve_promoted(registry, name: str, built: Generator) -> None:
    """`name` answers with its promoted version; if that one did not load (corrupt files), with the last version
    promoted before it that did, as a rollback would, rather than silently with the base model."""
    for version in reversed(registry.promotion_history(name)):
        if version.ref not in built.adapters():
            continue
        built.load_adapter(name, str(version.path))
        if not version.promoted:
            log.error("adapter %s: the promoted version did not load; serving %s, promoted before it (roll back or "
                      "promote another version to make that permanent)", name, version.ref)
        return
    if registry.promoted(name) is not None:
        log.error("adapter %s: no promoted version loads; requests for it fail until one is promoted", name)


def default_adapter(settings: Settings, built: Generator) -> str | None:
    """The adapter requests get when they name none: the configured name if it is resident."""
    name = settings.generator.default_adapter
    return name if name and name in built.adapters() else None


def guard(settings: Settings, embedder: Embedder | None = None, store: IndexStore | None = None):
    """The guardrails around every answer, or None when `guardrails.enabled` is off. With the index `store`, the
    corpus's own words are never masked as a person's name on their own (assistant/corpus_words.py)."""
    if not settings.guardrails.enabled:
        return None
    from guardrails.guard import Guard

    built = Guard.from_settings(settings, embedder, corpus_words(settings, store))
    if settings.guardrails.engine == "nemo":
        from guardrails.nemo_guard import NemoGuard

        return NemoGuard(built, settings.guardrails.nemo_config_dir or None)
    return built


def chat_service(settings: Settings, retriever: Retriever, built: Generator, queue: InferenceQueue | None = None) -> ChatService:
    """Grounded answering as every entry point gets it: promoted adapter by default, rails around it."""
    release = ReleaseSettings(settings.guardrails.stream_release, settings.guardrails.stream_unit_max_chars)
    return ChatService(retriever, built, queue or InferenceQueue(), settings.chat, settings.generator,
                       default_adapter(settings, built), guard(settings, retriever.store.embedder, retriever.store),
                       release)


def adapter_registry(settings: Settings) -> AdapterRegistry:
    return AdapterRegistry(settings.adapters_dir)


def teacher(settings: Settings, spec: str | None = None, model_name: str | None = None) -> Teacher:
    """The synthetic-QA teacher. `spec`: None/"base" = the `synth.teacher` section (default: the
    generator's base model), "fake", "openai:<base_url>" (with `model_name`), or a local model path."""
    base = (settings.synth.teacher or settings.generator).model_copy(update={"adapters": {}})
    if spec in (None, "", "base"):
        chosen = base
    elif spec == "fake":
        chosen = base.model_copy(update={"mode": "fake"})
    elif spec.startswith("openai:"):
        chosen = base.model_copy(update={"mode": "openai", "openai_base_url": spec[len("openai:"):],
                                         "openai_model": model_name or base.openai_model})
    else:
        local = base.mode if base.mode in ("auto", "openvino", "transformers") else "auto"
        chosen = base.model_copy(update={"mode": local, "model": spec})
    built = build_generator(settings.model_copy(update={"generator": chosen}))
    ident = {"fake": "fake", "openai": f"openai:{chosen.openai_base_url}@{chosen.openai_model}"}.get(
        chosen.mode, f"transformers:{chosen.model}")
    return Teacher(built, ident, want_answers=settings.synth.teacher_answers, seed=settings.synth.seed)


def corpus_words(settings: Settings, store: IndexStore | None):
    """Whether a word is the indexed corpus's own (never a person's name alone), or None: no index, or
    `guardrails.pii_corpus_word_min_chunks` is 0."""
    if store is None or not settings.guardrails.pii_corpus_word_min_chunks:
        return None
    from assistant.corpus_words import CorpusWords

    return CorpusWords(store, settings.guardrails.pii_corpus_word_min_chunks)


def pii_redactor(settings: Settings, store: IndexStore | None = None):
    """The redaction function applied to training data (identity when `synth.redact_pii` is off); with the index
    `store`, the corpus's own words are not masked as names (the synthetic data is made from that corpus)."""
    if not settings.synth.redact_pii:
        return lambda text: text
    from finetune.pii import PiiRedactor

    redactor = PiiRedactor(known=corpus_words(settings, store))
    return lambda text: redactor.redact(text).text


def review_masker(settings: Settings):
    """The PII masker applied to everything the review queue stores (the training-data redactor, all kinds)."""
    from finetune.pii import PiiRedactor

    redactor = PiiRedactor()
    return lambda text: redactor.redact(text).text


def reference_questions(settings: Settings, limit: int = 2000) -> list[str]:
    """What the drift watch compares incoming questions with: the golden questions of pipeline.golden and the
    training questions of the newest dataset (the ones the promoted adapter most likely learned from)."""
    import json as _json

    from eval import golden as golden_sets

    questions: list[str] = []
    for path in settings.pipeline.golden:
        try:
            questions += [r.question for r in golden_sets.load(path)]
        except (OSError, ValueError) as exc:
            log.warning("drift reference: golden set %s skipped: %s", path, exc)
    datasets = sorted((p for p in settings.datasets_dir.glob("*/train.jsonl")), key=lambda p: p.stat().st_mtime)
    if datasets:
        for line in datasets[-1].read_text(encoding="utf-8").splitlines():
            if line.strip():
                questions.append(_json.loads(line).get("question", ""))
    return [q for q in dict.fromkeys(questions) if q][:limit]


def loop_hooks(settings: Settings, db: Database, chat: ChatService, on_drift=None):
    """Review queue, rollout arms and drift watch around the chat path (see assistant/loop_hooks.py)."""
    from assistant.drift import DriftWatch
    from assistant.loop_hooks import LoopHooks
    from assistant.review_service import ReviewService

    reviews = ReviewService(db, review_masker(settings), settings.loop.review_min_refusal_score)
    reference = reference_questions(settings)
    drift = DriftWatch(chat.retriever.store.embedder.embed, reference, settings.loop.drift_window,
                       settings.loop.drift_alpha, on_drift) if reference else None
    return LoopHooks(db, reviews, rollout_state(settings), drift, chat.generator.adapters)


def rollout_state(settings: Settings):
    from assistant.rollout import RolloutState

    return RolloutState(settings.home / "rollout.json")
