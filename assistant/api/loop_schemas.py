"""Request bodies of the improvement loop's admin routes (reviews, rollouts, retrain)."""

from __future__ import annotations

from pydantic import Field

from assistant.api.schemas import _Body


class SourceBody(_Body):
    document: str = Field(min_length=1, max_length=500, description="File name as cited, e.g. `handbook.pdf`.")
    page: int | None = Field(None, ge=1, le=100_000, description="1-based page; omit for the whole document.")


class ReviewAcceptBody(_Body):
    reference: str | None = Field(None, max_length=4000, description="The right answer (masked before it is stored). "
                                  "Required unless `answerable` is false.")
    sources: list[SourceBody] = Field(default_factory=list, max_length=20, description="Pages that answer it.")
    answerable: bool = Field(True, description="false: the documents do not answer this; the right reply is a refusal.")
    training: bool = Field(False, description="Also offer the row to the next `retrain` dataset (weighted up).")
    note: str = Field("", max_length=2000, description="Why: kept with the golden row (who/when/why).")


class ReviewRejectBody(_Body):
    note: str = Field("", max_length=2000, description="Why the item needs no golden row.")


class RolloutBody(_Body):
    candidate: str = Field(min_length=1, max_length=200, description="Adapter version to try: NAME@vN (local "
                           "runtime) or a model name the OpenAI-compatible server serves.")
    share: float = Field(0.1, gt=0, lt=1, description="Share of conversations (or keys, without a conversation) "
                         "sent to the candidate.")


class RetrainBody(_Body):
    eval_limit: int | None = Field(None, ge=0, le=100_000, description="First N questions of each golden file "
                                   "(default: pipeline.eval_limit; 0 = all).")
