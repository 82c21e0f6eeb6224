"""Batched prompt lookup (assistant/runtime/batched_lookup.py) on a tiny random Gemma 3: several answers decoded in
one pass per step must be the tokens each answer gets alone, one token per pass through transformers' own cache.

The tiny model's sliding window is 8 positions, so prompts of 24-50 tokens cross it on every local layer: a wrong
window, causal mask, rotary position or cache write changes the tokens."""

import pytest
import torch

from assistant.runtime.batched_lookup import BatchedLookup, supports
from assistant.runtime.prompt_lookup import PromptLookup

WINDOW = 8


@pytest.fixture(scope="module")
def model():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=48, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16, sliding_window=WINDOW,
        layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
        max_position_embeddings=256, attn_implementation="sdpa")
    return Gemma3ForCausalLM(config).eval()


def _prompts() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    prompts = []
    for length in (24, 37, 50):
        # Repeated phrases give the lookup something to draft from.
        phrase = torch.randint(1, 48, (7,), generator=generator)
        noise = torch.randint(1, 48, (length - 21,), generator=generator)
        prompts.append(torch.cat([phrase, noise, phrase, phrase])[None])
    return prompts


def _one_at_a_time(model, ids, count: int) -> list[int]:
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    past, tokens = out.past_key_values, [int(out.logits[0, -1].argmax())]
    while len(tokens) < count:
        out = model(input_ids=torch.tensor([[tokens[-1]]]), past_key_values=past, use_cache=True)
        past = out.past_key_values
        tokens.append(int(out.logits[0, -1].argmax()))
    return tokens


@pytest.fixture(scope="module")
def tuned(model):
    """The same model under a random LoRA adapter (peft) on the attention and MLP projections: the batched pass
    calls the layers' own modules, so the adapter must apply."""
    import copy

    from peft import LoraConfig, get_peft_model

    torch.manual_seed(2)
    config = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj"])
    return get_peft_model(copy.deepcopy(model), config).eval()


@pytest.mark.parametrize("which", ["base", "lora"])
@torch.inference_mode()
def test_answers_decoded_together_equal_each_answer_alone(model, tuned, which):
    model = model if which == "base" else tuned
    assert supports(model)
    count = 30
    prompts = _prompts()
    expected = [_one_at_a_time(model, ids, count) for ids in prompts]
    lookup = PromptLookup(short=2, long=6, eos_ids=set())
    together = BatchedLookup(model, lookup)
    answers, produced = [], []
    for ids in prompts:
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        first = int(out.logits[0, -1].argmax())
        answers.append(together.start(ids, out.past_key_values, first, count))
        produced.append([first])
    while not all(a.done for a in answers):
        for tokens, new in zip(produced, together.step(answers)):
            tokens += new
    assert produced == expected
    assert lookup.tokens > lookup.passes  # drafts were accepted: the passes checked several tokens at once
    assert all(a.budget == 0 for a in answers)


@torch.inference_mode()
def test_a_finished_answer_leaves_the_others_unchanged(model):
    prompts = _prompts()
    expected = _one_at_a_time(model, prompts[2], 24)
    together = BatchedLookup(model, PromptLookup(short=2, long=6, eos_ids=set()))
    answers = []
    for ids, budget in zip(prompts, (3, 24, 24)):  # the first ends after a pass or two
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        answers.append(together.start(ids, out.past_key_values, int(out.logits[0, -1].argmax()), budget))
    tokens = [answers[2].tokens[-1]]
    while not answers[2].done:
        tokens += together.step(answers)[2]
    assert answers[0].done and tokens == expected
