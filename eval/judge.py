"""The optional LLM judge for RAGAS's judged metrics: an OpenAI-compatible server or a local model.

A judge must be able to follow RAGAS's structured prompts; Gemma 3 270M (the default generator)
returns unparseable output for every row (measured, see ../shared/OFFLINE-NOTES.md), so small
local models are refused rather than reported as scores.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from assistant.settings import EvalSettings

MIN_JUDGE_PARAMETERS = 1_000_000_000  # below this no model we tried produced parseable RAGAS judgments


class JudgeError(ValueError):
    pass


@dataclass
class Judge:
    name: str  # named in every report
    llm: Any  # ragas LLM wrapper
    embeddings: Any  # ragas embeddings wrapper (response relevancy compares generated questions)


def build_judge(cfg: EvalSettings, embed: Callable[[list[str]], Any], generator_model: str) -> Judge | None:
    if not cfg.judge:
        return None
    from ragas.embeddings import LangchainEmbeddingsWrapper
    from ragas.llms import LangchainLLMWrapper

    from eval.metrics import _LangchainEmbeddings

    embeddings = LangchainEmbeddingsWrapper(_LangchainEmbeddings(embed))
    if cfg.judge.startswith("openai:"):
        from langchain_openai import ChatOpenAI

        if not cfg.judge_model:
            raise JudgeError("an openai: judge needs eval.judge_model (the model name on that server)")
        llm = ChatOpenAI(base_url=cfg.judge[len("openai:"):], model=cfg.judge_model, temperature=0,
                         api_key=os.environ.get(cfg.judge_api_key_env) or "not-needed")
        return Judge(f"{cfg.judge_model} at {cfg.judge[len('openai:'):]}", LangchainLLMWrapper(llm), embeddings)
    path = Path(cfg.judge)
    if cfg.judge in ("base", generator_model) or not (path / "config.json").is_file():
        raise JudgeError(f"judge {cfg.judge!r}: give openai:URL or a local transformers model directory with config.json; "
                         "the default generator is not a judge")
    size = approx_parameters(json.loads((path / "config.json").read_text()))
    if size < MIN_JUDGE_PARAMETERS:
        raise JudgeError(f"judge {cfg.judge!r} has about {size / 1e6:.0f}M parameters; RAGAS judgments need a model of "
                         f"at least {MIN_JUDGE_PARAMETERS / 1e9:.0f}B (or an openai: server)")
    from langchain_community.llms.huggingface_pipeline import HuggingFacePipeline

    llm = HuggingFacePipeline.from_model_id(model_id=str(path), task="text-generation",
                                            pipeline_kwargs={"max_new_tokens": 512, "return_full_text": False})
    return Judge(str(path), LangchainLLMWrapper(llm), embeddings)


def approx_parameters(config: dict[str, Any]) -> float:
    """Embedding + transformer blocks (about 12·d² each) from a transformers config.json."""
    text = config.get("text_config", config)
    hidden, layers = text.get("hidden_size", 0), text.get("num_hidden_layers", 0)
    return text.get("vocab_size", 0) * hidden + 12 * layers * hidden * hidden
