"""Prompt-lookup decoding: a greedy RAG answer copies runs of its documents, so guess the next tokens from the
prompt and check them all in one forward pass.

After each step the last three tokens (else two, else one) are looked up in the prompt and the answer so
far (transformers' `PromptLookupCandidateGenerator` does the n-gram search and takes the first match), the
tokens that followed them become a draft, and the model runs once over [last token] + draft. Its greedy pick
at every position accepts the draft up to the first disagreement, plus the model's own token there; the KV
cache is cut back to what was accepted
(`activate_past_recording` lets Gemma 3's sliding-window layers roll back too). The tokens are the ones
one-at-a-time greedy decoding gives: the same argmax of the same model; only the summation order inside a
multi-row matmul differs (bench/prompt_lookup.py compares them token by token).

Why our own loop and not `model.generate(prompt_lookup_num_tokens=...)`: the backend streams tokens on the
calling thread, checks the cancel event between steps and ends at stop text without a streamer thread
(transformers_backend.py); generate's assisted decoding would need all three plumbed back in.

Draft sizes (README "Measured numbers", 20 Contoso dev answers on 2 cores): a pass over 1-3 tokens costs about
what one token costs (every weight is read once either way), so a draft is `short` tokens; once a draft is
accepted whole the answer is copying, and the next draft is `long` tokens (16 rows cost about two single
steps). Between 4 and 12 rows a float32 matmul against the 262k-word output layer takes a slow kernel on
that CPU (4 rows 49 ms, 11 rows 107 ms, 16 rows 53 ms), so more than 3 rows are multiplied as W·hᵀ
(50-60 ms at any row count); with `head` (greedy_head.py) the rows are shortlisted in bfloat16 and
the picks proven in float32 instead. Three-token matches: 859 passes for the 20 answers' 2,382 tokens against 925 with
two (the library's default), 35.3 against 34.0 tok/s.
"""

from __future__ import annotations

import sys
from typing import Iterator


class PromptLookup:
    def __init__(self, short: int, long: int, eos_ids: set[int], ngram: int = 3, head=None):
        import torch
        from transformers.generation.candidate_generator import PromptLookupCandidateGenerator

        self.torch, self.short, self.long = torch, short, max(long, short)
        self.head = head  # a GreedyHead (greedy_head.py) over the model's output layer, or None: float32 only
        self.finder = PromptLookupCandidateGenerator(
            eos_token_id=torch.tensor(sorted(eos_ids)) if eos_ids else None,  # a draft never runs past an EOS
            num_output_tokens=self.long, max_matching_ngram_size=ngram, max_length=sys.maxsize)
        self.passes = self.tokens = 0  # forward passes after the first token, tokens they produced (benches read them)

    def continue_greedy(self, model, ids, past, first: int, budget: int) -> Iterator[int]:
        """Greedy tokens after `first` (already produced from the prefill that filled `past`), up to `budget`
        tokens in all, counting `first`. The caller stops consuming at EOS or a stop sequence."""
        torch = self.torch
        past.activate_past_recording()
        sequence, made, size = torch.cat([ids, torch.tensor([[first]], device=ids.device)], dim=1), 1, self.short
        while made < budget:
            draft = self._draft(sequence, min(size, budget - made - 1))
            picks = self._picks(model, torch.tensor([[int(sequence[0, -1])] + draft], device=ids.device), past)
            accepted = 0
            while accepted < len(draft) and picks[accepted] == draft[accepted]:
                accepted += 1
            past.crop(-(len(draft) - accepted))  # 0 still trims the sliding-window layers back to their window
            size = self.long if len(draft) >= self.short and accepted == len(draft) else self.short
            new = draft[:accepted] + [picks[accepted]]
            sequence = torch.cat([sequence, torch.tensor([new], device=ids.device)], dim=1)
            self.passes, self.tokens = self.passes + 1, self.tokens + len(new)
            for token in new:
                made += 1
                yield token

    def _draft(self, sequence, size: int) -> list[int]:
        if size <= 0:
            return []
        candidates, _ = self.finder.get_candidates(sequence)
        return [int(t) for t in candidates[0, sequence.shape[1]:][:size]]

    def _picks(self, model, inputs, past) -> list[int]:
        torch, rows = self.torch, int(inputs.shape[1])
        causal = model.get_base_model() if hasattr(model, "get_base_model") else model
        head = causal.get_output_embeddings()
        if type(head) is not torch.nn.Linear or getattr(head, "bias", None) is not None:
            # An adapter on the output layer (or an unusual head): the model's own forward, any row count.
            logits = model(input_ids=inputs, past_key_values=past, use_cache=True, logits_to_keep=rows).logits[0]
            return [int(t) for t in logits.float().argmax(-1)]
        hidden = causal.get_decoder()(input_ids=inputs, past_key_values=past, use_cache=True).last_hidden_state[0]
        return head_picks(causal, hidden, self.head)


def head_picks(causal, hidden, shortlist=None) -> list[int]:
    """The greedy token of each hidden row (rows × hidden size) through `causal`'s output layer: from the bfloat16
    `shortlist` (a GreedyHead, greedy_head.py) when it belongs to this layer, else from the float32 logits (shared by
    prompt lookup and batched_lookup.py)."""
    import torch

    head = causal.get_output_embeddings()
    cap = getattr(causal.config, "final_logit_softcapping", None)
    if shortlist is not None and shortlist.weight is getattr(head, "weight", None) and not cap:
        return shortlist.picks(hidden)
    if type(head) is torch.nn.Linear and head.bias is None:
        weight = head.weight
        logits = torch.nn.functional.linear(hidden, weight) if hidden.shape[0] <= 3 else (weight @ hidden.T).T
    else:  # an adapter on the output layer: its own forward
        logits = head(hidden)
    if cap:  # monotonic, but kept so near-ties round as the model's own logits do
        logits = torch.tanh(logits / cap) * cap
    return [int(t) for t in logits.float().argmax(-1)]
