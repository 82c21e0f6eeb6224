"""Greedy picks from the output layer at bfloat16 cost, with the float32 answer.

The output layer of Gemma 3 270M is a 262,144 × 640 float32 matrix (670 MB): a verify pass of prompt lookup
multiplies 3-16 hidden rows by it, about as long as the rest of the model (prompt_lookup.py). Multiplied in
bfloat16 (a copy of the matrix, +335 MB) the same rows take half the time or less on a CPU with bfloat16
units, but bfloat16 logits can reorder near ties, and an adapter's answers turn on near ties (README: the
OpenVINO scorecards). So bfloat16 only *shortlists*: per row, the `shortlist` best bfloat16 logits are
recomputed in float32 from the float32 rows, and the best of those is the pick when a bound proves that no
token off the shortlist can beat it; otherwise the row takes the full float32 product. The pick is therefore
the float32 argmax (up to the summation order of one dot product, as with any multi-row matmul).

The bound, per hidden row h and any token j off the shortlist (its bfloat16 logit at most the first one
left off, `edge`): true logit a_j ≤ g(edge) + E, where g(x) = x + |x|·2⁻⁷ undoes the rounding of the
bfloat16 output (g is increasing, so the edge bounds every token below it) and
E = max‖W_j − bf16(W_j)‖·‖h‖ + max‖bf16(W_j)‖·‖h − bf16(h)‖
    + (float32 accumulation, 640·2⁻²⁴·max‖W_j‖·‖h‖)
covers the rounding of the inputs. `checked` / `fallbacks` count rows and full-product rows (benches read them).
"""

from __future__ import annotations

# Relative rounding of a bfloat16 result: 2⁻⁸ for 8 significant bits, doubled so that the bound also holds
# when it is applied to the rounded value instead of the exact one.
BF16_OUTPUT = 2.0 ** -7


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); elsewhere oneDNN emulates it, slower
    than float32, and the shortlist would cost time."""
    import torch

    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


class GreedyHead:
    def __init__(self, weight, shortlist: int = 8, low=None):
        """`low`: the bfloat16 matrix that shortlists (default: `weight` rounded); the bound is taken from it."""
        import torch

        self.torch, self.weight, self.shortlist = torch, weight, shortlist
        with torch.no_grad():
            self.low = weight.detach().to(torch.bfloat16) if low is None else low
            norms = weight.detach().norm(dim=1)
            self.rounding = float((weight.detach() - self.low.float()).norm(dim=1).max())  # max ‖W_j − bf16(W_j)‖
            self.low_norm = float(self.low.float().norm(dim=1).max())
            self.accumulation = weight.shape[1] * 2.0 ** -24 * float(norms.max())
        self.checked = self.fallbacks = 0

    @classmethod
    def of(cls, model, shortlist: int = 8) -> "GreedyHead | None":
        """For a model whose output layer is a plain float32 Linear without bias (else None: use its logits)."""
        import torch

        causal = model.get_base_model() if hasattr(model, "get_base_model") else model
        head = causal.get_output_embeddings()
        if type(head) is not torch.nn.Linear or head.bias is not None or head.weight.dtype != torch.float32:
            return None
        return cls(head.weight, shortlist)

    def picks(self, hidden) -> list[int]:
        """The float32 greedy token of each row of `hidden` (rows × hidden size, float32)."""
        torch = self.torch
        with torch.no_grad():
            rounded = hidden.to(torch.bfloat16)
            # topk of the bfloat16 logits themselves: converting rows × 262k values to float32 first cost more than
            # the selection (40 rows: 19.5 vs 7.6 ms); the values and so the bound are the same.
            approx = torch.nn.functional.linear(rounded, self.low)
            top, index = approx.topk(self.shortlist + 1, dim=-1)
            top = top.float()
            listed = index[:, : self.shortlist]
            exact = torch.einsum("rd,rkd->rk", hidden, self.weight[listed])
            best, where = exact.max(dim=-1)
            edge = top[:, self.shortlist]
            size = hidden.norm(dim=-1)
            slack = (self.rounding * size + self.low_norm * (hidden - rounded.float()).norm(dim=-1)
                     + self.accumulation * size * 2 + 1e-4)
            proven = best > edge + edge.abs() * BF16_OUTPUT + slack
            picks = listed.gather(1, where[:, None])[:, 0]
            for row in (~proven).nonzero()[:, 0].tolist():  # rare: a near tie at the shortlist's edge
                picks[row] = torch.nn.functional.linear(hidden[row], self.weight).argmax()
        self.checked += int(hidden.shape[0])
        self.fallbacks += int((~proven).sum())
        return [int(t) for t in picks]
