"""Prompt-lookup decoding of several answers at once: one pass reads every weight once for all of them.

A pass of prompt lookup (prompt_lookup.py) costs about the same for 1 or 16 rows on a CPU, because it is
bound by reading the weights, not by arithmetic. So the scorecard and the synthesis jobs decode up to
`eval.batch_size` answers together: each answer's [last token] + draft rows are stacked into one sequence of
rows for the linear layers and the output layer, and only attention is computed per answer, over that answer's
own key/value cache. Answers never see each other's rows, and nothing is padded: each row has its own absolute
position, so its rotary embedding, causal mask and sliding window are the ones it has when decoded alone, and
the tokens are the ones the streamed path gives (up to the summation order inside a multi-row matmul, as with
prompt lookup itself; tests/test_batched_lookup.py, test_runtime_real.py and bench/decode_together.py compare
them token by token).

Why not `model.generate` with padded batches: a padded batch decodes one token per pass for every row, and
answers that accept different numbers of drafted tokens fall out of step; per-answer caches keep them
independent. The caches are preallocated buffers indexed by absolute position: a rejected draft's keys are
overwritten by the next pass, so nothing is cropped or copied. Written for Gemma 3's decoder layout (every
model the embedded default serves); other architectures decode one answer at a time (`supports`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.runtime.prompt_lookup import head_picks


@dataclass
class Answer:
    """One answer being decoded: its prompt, its first token (from its own prefill) and its cache."""

    tokens: list[int]  # prompt + tokens produced so far (the last one not yet in the cache)
    filled: int  # cache positions holding keys and values (the prompt, then every accepted token)
    budget: int  # tokens it may still produce after the pending one
    keys: list = field(default_factory=list)  # per layer: [kv heads, capacity, head dim]
    values: list = field(default_factory=list)
    size: int = 0  # the next draft's length (short, or long after a draft was accepted whole)
    done: bool = False


def supports(model) -> bool:
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    return type(causal).__name__ == "Gemma3ForCausalLM" and getattr(causal.config, "attn_logit_softcapping", None) is None


class BatchedLookup:
    def __init__(self, model, lookup):
        """`lookup`: the PromptLookup whose drafting rule and output-layer head are shared."""
        import torch

        self.torch, self.lookup = torch, lookup
        self.causal = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.decoder = self.causal.get_decoder()
        config = self.causal.config
        self.layer_types = list(config.layer_types[: config.num_hidden_layers])
        self.window = config.sliding_window

    def start(self, ids, past, first: int, budget: int) -> Answer:
        """Take over an answer after its prefill: `past` (the prefill's DynamicCache) is copied into buffers
        indexed by absolute position. `budget` counts `first`, as PromptLookup.continue_greedy's does."""
        torch, width = self.torch, int(ids.shape[1])
        answer = Answer(tokens=[int(t) for t in ids[0]] + [first], filled=width, budget=budget - 1,
                        size=self.lookup.short, done=budget <= 1)
        capacity = width + budget + self.lookup.long + 2
        for layer in past.layers:
            kept = int(layer.keys.shape[2])  # a sliding layer keeps only the last window - 1 positions
            heads, dim = int(layer.keys.shape[1]), int(layer.keys.shape[3])
            keys = torch.empty(heads, capacity, dim, dtype=layer.keys.dtype)
            values = torch.empty(heads, capacity, dim, dtype=layer.values.dtype)
            keys[:, width - kept : width] = layer.keys[0]
            values[:, width - kept : width] = layer.values[0]
            answer.keys.append(keys)
            answer.values.append(values)
        return answer

    def step(self, answers: list[Answer]) -> list[list[int]]:
        """One pass over every unfinished answer: the tokens each one gains (its accepted draft and the
        model's own next token), in the order of `answers` ([] for a finished one)."""
        torch, lookup = self.torch, self.lookup
        live = [a for a in answers if not a.done]
        if not live:
            return [[] for _ in answers]
        drafts = [self._draft(a) for a in live]
        rows = [[a.tokens[-1]] + d for a, d in zip(live, drafts)]
        ids = torch.tensor([[t for r in rows for t in r]])
        positions = torch.tensor([[a.filled + j for a, r in zip(live, rows) for j in range(len(r))]])
        hidden = self._forward(live, rows, ids, positions)
        picks = head_picks(self.causal, hidden, self.lookup.head)
        gained, at = {}, 0
        for answer, draft, row in zip(live, drafts, rows):
            mine = picks[at : at + len(row)]
            at += len(row)
            accepted = 0
            while accepted < len(draft) and mine[accepted] == draft[accepted]:
                accepted += 1
            new = draft[:accepted] + [mine[accepted]]
            answer.filled += accepted + 1  # the last token and the accepted drafts now have keys; the rest is overwritten
            answer.size = lookup.long if len(draft) >= lookup.short and accepted == len(draft) else lookup.short
            answer.tokens += new
            answer.budget -= len(new)
            answer.done = answer.budget <= 0
            lookup.passes, lookup.tokens = lookup.passes + 1, lookup.tokens + len(new)
            gained[id(answer)] = new
        return [gained.get(id(a), []) for a in answers]

    def _draft(self, answer: Answer) -> list[int]:
        size = min(answer.size, answer.budget - 1)  # a pass yields the accepted draft + one token
        if size <= 0:
            return []
        candidates, _ = self.lookup.finder.get_candidates(self.torch.tensor([answer.tokens]))
        return [int(t) for t in candidates[0, len(answer.tokens):][:size]]

    def _forward(self, live: list[Answer], rows: list[list[int]], ids, positions):
        """Gemma 3's decoder over the stacked rows (modeling_gemma3's layer order, its own modules, so an active
        LoRA adapter applies), attention per answer. Returns the final-norm hidden rows."""
        from transformers.models.gemma3.modeling_gemma3 import apply_rotary_pos_emb

        torch, decoder = self.torch, self.decoder
        hidden = decoder.embed_tokens(ids)
        rotary = {kind: decoder.rotary_emb(hidden, positions, kind) for kind in set(self.layer_types)}
        spans, at = [], 0
        for row in rows:
            spans.append((at, at + len(row)))
            at += len(row)
        masks = {kind: [self._mask(a, len(r), kind) for a, r in zip(live, rows)] for kind in set(self.layer_types)}
        for index, layer in enumerate(decoder.layers[: len(self.layer_types)]):
            kind, attention = self.layer_types[index], layer.self_attn
            residual = hidden
            normed = layer.input_layernorm(hidden)
            shape = (1, int(normed.shape[1]), -1, attention.head_dim)
            query = attention.q_norm(attention.q_proj(normed).view(shape).transpose(1, 2))
            key = attention.k_norm(attention.k_proj(normed).view(shape).transpose(1, 2))
            value = attention.v_proj(normed).view(shape).transpose(1, 2)
            query, key = apply_rotary_pos_emb(query, key, *rotary[kind])
            outputs = []
            for answer, (a, b), (low, mask) in zip(live, spans, masks[kind]):
                end = answer.filled + (b - a)
                answer.keys[index][:, answer.filled : end] = key[0, :, a:b]
                answer.values[index][:, answer.filled : end] = value[0, :, a:b]
                outputs.append(self._attend(attention, query[:, :, a:b], answer.keys[index][None, :, low:end],
                                            answer.values[index][None, :, low:end], mask))
            attended = torch.cat(outputs, dim=1).reshape(1, int(normed.shape[1]), -1)
            hidden = residual + layer.post_attention_layernorm(attention.o_proj(attended))
            residual = hidden
            hidden = residual + layer.post_feedforward_layernorm(layer.mlp(layer.pre_feedforward_layernorm(hidden)))
        return decoder.norm(hidden)[0]

    def _attend(self, attention, query, keys, values, mask):
        """One answer's attention (1 × heads × rows × dim against 1 × kv heads × keys × dim) → 1 × rows × heads ×
        dim. With a mask, transformers' SDPA path repeats each key/value head for its query heads (a copy of the
        whole cache per layer, most of the attention's time at 1,000 positions); instead the query heads that
        share a key/value head are stacked as extra query rows, each with its own mask row: the same products per
        row, without the copy."""
        torch = self.torch
        _, heads, rows, dim = query.shape
        groups = heads // int(keys.shape[1])
        if mask is None or groups == 1:
            from transformers.integrations.sdpa_attention import sdpa_attention_forward

            return sdpa_attention_forward(attention, query, keys, values, mask, dropout=0.0, scaling=attention.scaling)[0]
        stacked = query.reshape(1, heads // groups, groups * rows, dim)  # query head h = kv head × groups + j
        out = torch.nn.functional.scaled_dot_product_attention(
            stacked, keys, values, attn_mask=mask.repeat(1, 1, groups, 1), scale=attention.scaling)
        return out.reshape(1, heads, rows, dim).transpose(1, 2)

    def _mask(self, answer: Answer, rows: int, kind: str):
        """(first key position, boolean mask rows × keys or None): causal, and for a sliding layer the last
        `window` positions up to each row's own (modeling_gemma3: kv > q − window)."""
        torch, start = self.torch, answer.filled
        low = max(0, start - self.window + 1) if kind == "sliding_attention" else 0
        if rows == 1:
            return low, None  # one query sees every key in [low, start]: no mask, as in the streamed path
        queries = torch.arange(start, start + rows)[:, None]
        keys = torch.arange(low, start + rows)[None, :]
        allowed = keys <= queries
        if kind == "sliding_attention":
            allowed &= keys > queries - self.window
        return low, allowed[None, None]
