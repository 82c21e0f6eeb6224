"""DP fine-tuning: unreachable (ε, δ) refused, clipping bounds each example, ε recorded is the accountant's."""

from __future__ import annotations

import json

import pytest

from finetune.dp import DpStep, PrivacyError, PrivacyPlan, plan, spent
from finetune.finetune_job import run_finetune
from tests.test_finetune import dataset, recipe, settings_for, tiny  # noqa: F401 - the tiny model fixture


def test_unreachable_budgets_are_refused_and_sigma_spends_at_most_epsilon():
    with pytest.raises(PrivacyError, match="cannot be reached"):
        plan(0.01, 1e-3, 1.0, lot_size=4, examples=35, epochs=20)
    with pytest.raises(PrivacyError, match="not below 1/N"):
        plan(8.0, 0.05, 1.0, lot_size=4, examples=35, epochs=2)
    loose, tight = plan(8.0, 1e-3, 1.0, 4, 35, 2), plan(1.0, 1e-3, 1.0, 4, 35, 2)
    assert tight.noise_multiplier > loose.noise_multiplier > 0 and loose.steps == 18
    for chosen in (loose, tight):
        assert chosen.target_epsilon * 0.9 < spent(chosen, chosen.steps) <= chosen.target_epsilon * 1.01


def test_each_example_is_clipped_to_c_and_the_mean_uses_the_expected_lot():
    import torch

    w = torch.zeros(3, requires_grad=True)
    privacy = PrivacyPlan(1.0, 1e-5, max_grad_norm=1.0, noise_multiplier=0.0, sample_rate=0.5, steps=1)
    step = DpStep(torch, [w], privacy, examples=4, seed=0)  # expected lot 2
    big = (w * torch.tensor([30.0, 40.0, 0.0])).sum()  # gradient norm 50, clipped to 1
    small = (w * torch.tensor([0.0, 0.0, 0.5])).sum()  # norm 0.5, kept
    step.gradients(iter([big, small]))
    assert torch.allclose(w.grad, torch.tensor([0.6, 0.8, 0.5]) / 2)
    noisy = DpStep(torch, [w], PrivacyPlan(1.0, 1e-5, 1.0, 2.0, 0.5, 1), examples=4, seed=0)
    noisy.gradients(iter([(w * torch.tensor([1.0, 0.0, 0.0])).sum()]))
    assert not torch.allclose(w.grad, torch.tensor([0.5, 0.0, 0.0]))  # noise added


def test_a_dp_finetune_records_epsilon_and_delta_the_accountant_reports(tiny, tmp_path):  # noqa: F811
    chosen = recipe(dp_epsilon=8.0, epochs=1, batch_size=1, gradient_accumulation=2)
    version, result, _ = run_finetune(settings_for(tmp_path, tiny), dataset(tmp_path), chosen, "private")
    privacy = version.metadata["privacy"]
    assert privacy["delta"] == pytest.approx(1 / (10 * 7)) and privacy["target_epsilon"] == 8.0
    recomputed = spent(PrivacyPlan(**{k: privacy[k] for k in PrivacyPlan.__dataclass_fields__}), privacy["steps"])
    assert privacy["epsilon_spent"] == pytest.approx(recomputed, abs=1e-3) and recomputed <= 8.0 * 1.01
    assert result.steps == privacy["steps"] and json.loads((version.path / "metadata.json").read_text())["privacy"]
    (tmp_path / "b").mkdir()
    with pytest.raises(PrivacyError, match="cannot be reached"):
        run_finetune(settings_for(tmp_path / "b", tiny), dataset(tmp_path / "b"), recipe(dp_epsilon=1e-4, epochs=5), "p2")


def test_the_scorecard_header_states_the_privacy_of_a_dp_adapter():
    from eval.summary_markdown import run_facts

    privacy = {"epsilon_spent": 7.93, "target_epsilon": 8.0, "delta": 0.001, "accountant": "rdp (opacus 1.6.0)"}
    facts = dict(run_facts({"run": {"privacy": {"assistant@v4": privacy}}}))
    assert facts["Privacy of assistant@v4"] == "DP-SGD, ε = 7.93 (target 8), δ = 0.001, rdp (opacus 1.6.0)"
