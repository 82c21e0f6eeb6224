"""The bfloat16 shortlist of prompt lookup's picks (assistant/runtime/greedy_head.py): float32 greedy's tokens."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from assistant.runtime.greedy_head import GreedyHead  # noqa: E402


def _rows(seed: int, vocab: int = 5000, dim: int = 64, rows: int = 200):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(vocab, dim, generator=generator) * 0.05
    hidden = torch.randn(rows, dim, generator=generator) * 30  # a Gemma hidden state's norm is ~100
    return weight, hidden


def test_picks_are_the_float32_argmax_and_mostly_need_no_full_product():
    weight, hidden = _rows(0)
    head = GreedyHead(weight, shortlist=8)
    assert head.picks(hidden) == (hidden @ weight.T).argmax(dim=-1).tolist()
    assert head.checked == 200 and head.fallbacks < 20


def test_near_ties_keep_the_float32_token():
    # Many tokens within bfloat16's rounding of the best one: the shortlist's order is noise there.
    weight, hidden = _rows(1, vocab=2000, rows=100)
    best = (hidden @ weight.T).argmax(dim=-1)
    for row, token in enumerate(best.tolist()):  # plant 30 rivals a hair below the winner of each row
        rivals = torch.randint(0, 2000, (30,), generator=torch.Generator().manual_seed(row))
        rivals = rivals[rivals != token]
        weight[rivals] = weight[token] * (1 - 1e-4 * torch.rand(len(rivals), 1))
    expected = (hidden @ weight.T).argmax(dim=-1).tolist()
    assert GreedyHead(weight, shortlist=4).picks(hidden) == expected


def test_a_shortlist_that_misses_the_winner_falls_back_to_the_full_product():
    weight, hidden = _rows(2, rows=50)
    winners = (hidden @ weight.T).argmax(dim=-1)
    low = weight.to(torch.bfloat16)
    low[winners] = (weight[winners] * 0.5).to(torch.bfloat16)  # the winners look weak to the shortlist
    head = GreedyHead(weight, shortlist=2, low=low)
    assert head.picks(hidden) == winners.tolist()
    assert head.fallbacks == head.checked == 50  # the bound cannot prove any shortlist's best


def test_only_a_plain_float32_output_layer_gets_a_shortlist():
    class Model(torch.nn.Module):
        def __init__(self, head):
            super().__init__()
            self.head = head

        def get_output_embeddings(self):
            return self.head

    assert GreedyHead.of(Model(torch.nn.Linear(8, 16, bias=False))) is not None
    assert GreedyHead.of(Model(torch.nn.Linear(8, 16, bias=True))) is None
    assert GreedyHead.of(Model(torch.nn.Linear(8, 16, bias=False).to(torch.bfloat16))) is None
