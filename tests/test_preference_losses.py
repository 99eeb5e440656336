"""The preference losses against hand-worked numbers and against TRL's own loss code on the same
tensors (float64). Run: OMP_NUM_THREADS=1 python -m pytest tests/test_preference_losses.py -q"""

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from ppo_demo.preference_losses import (LOG_2, bradley_terry_loss, combine_scores, dpo_loss, normalize_scores,
                                        pairwise_accuracy, sequence_logprobs)

F64 = torch.float64


def test_bradley_terry_loss_by_hand():
    # margins r_w - r_l = [2-1, 0-1] = [1, -1]
    # -log σ(1) = log(1 + e^-1) = 0.3132617;  -log σ(-1) = log(1 + e) = 1.3132617;  mean 0.8132617
    loss = bradley_terry_loss(torch.tensor([2.0, 0.0], dtype=F64), torch.tensor([1.0, 1.0], dtype=F64))
    assert float(loss) == pytest.approx(0.8132616875, abs=1e-9)


def test_bradley_terry_loss_is_log_2_at_a_tie_and_finite_at_huge_margins():
    equal = torch.zeros(3, dtype=F64)
    assert float(bradley_terry_loss(equal, equal)) == pytest.approx(LOG_2, abs=1e-12)
    wide = bradley_terry_loss(torch.tensor([-500.0], dtype=F64), torch.tensor([500.0], dtype=F64))
    assert float(wide) == pytest.approx(1000.0, rel=1e-12)  # softplus(1000), no inf
    assert float(bradley_terry_loss(torch.tensor([500.0]), torch.tensor([-500.0]))) == pytest.approx(0.0, abs=1e-30)


def test_bradley_terry_gradient_is_sigmoid_of_minus_margin():
    # dL/dr_w = -σ(-(r_w - r_l)) / B ; with one pair of margin 0: -1/2
    chosen = torch.tensor([0.3], dtype=F64, requires_grad=True)
    rejected = torch.tensor([0.3], dtype=F64, requires_grad=True)
    bradley_terry_loss(chosen, rejected).backward()
    assert float(chosen.grad) == pytest.approx(-0.5, abs=1e-12)
    assert float(rejected.grad) == pytest.approx(0.5, abs=1e-12)


def test_pairwise_accuracy_counts_a_tie_as_half():
    chosen = torch.tensor([1.0, 0.0, 2.0, 5.0])
    rejected = torch.tensor([0.0, 1.0, 2.0, 4.0])
    assert pairwise_accuracy(chosen, rejected) == pytest.approx((1 + 0 + 0.5 + 1) / 4)


def test_sequence_logprobs_sum_only_real_tokens():
    token = torch.tensor([[-1.0, -2.0, -9.0], [-0.5, -9.0, -9.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=F64)
    assert sequence_logprobs(token, mask).tolist() == [-3.0, -0.5]


def test_dpo_loss_by_hand():
    # beta 0.1. Pair 1: chosen log-ratio -10 - (-12) = 2, rejected -8 - (-7) = -1
    #   r̂_w = 0.2, r̂_l = -0.1, margin 0.3, -log σ(0.3) = log(1 + e^-0.3) = 0.5543552
    # Pair 2: chosen -5 - (-5) = 0, rejected -6 - (-4) = -2: r̂_w = 0, r̂_l = -0.2, margin 0.2,
    #   -log σ(0.2) = 0.5981389.  Mean 0.5762471.
    loss, stats = dpo_loss(torch.tensor([-10.0, -5.0], dtype=F64), torch.tensor([-8.0, -6.0], dtype=F64),
                           torch.tensor([-12.0, -5.0], dtype=F64), torch.tensor([-7.0, -4.0], dtype=F64), beta=0.1)
    assert float(loss) == pytest.approx(0.5762470569, abs=1e-9)
    assert float(stats["chosen_reward"]) == pytest.approx((0.2 + 0.0) / 2, abs=1e-12)
    assert float(stats["rejected_reward"]) == pytest.approx((-0.1 - 0.2) / 2, abs=1e-12)
    assert float(stats["reward_margin"]) == pytest.approx(0.25, abs=1e-12)
    assert float(stats["reward_accuracy"]) == 1.0


def test_dpo_loss_is_log_2_when_the_policy_is_the_reference():
    logps = torch.tensor([-3.0, -7.5], dtype=F64)
    loss, stats = dpo_loss(logps, logps - 1, logps, logps - 1, beta=0.5)
    assert float(loss) == pytest.approx(LOG_2, abs=1e-12)
    assert float(stats["reward_accuracy"]) == 0.0  # a tie is not a win (as TRL counts it)


def test_combine_scores_each_source():
    rule = torch.tensor([1.0, -1.0])
    rm = torch.tensor([0.25, 0.5])
    assert combine_scores(rule, None, "rule").tolist() == [1.0, -1.0]
    assert combine_scores(rule, rm, "reward_model").tolist() == [0.25, 0.5]
    assert combine_scores(rule, rm, "both").tolist() == [1.25, -0.5]
    with pytest.raises(ValueError):
        combine_scores(rule, None, "both")
    with pytest.raises(ValueError):
        combine_scores(rule, rm, "oracle")


def test_normalize_scores():
    assert normalize_scores(torch.tensor([3.0, 1.0]), mean=2.0, std=0.5).tolist() == [2.0, -2.0]


# --- parity with TRL: its loss code called on our tensors --------------------------------------
class _Accelerator:
    device = torch.device("cpu")

    @staticmethod
    def gather(x):
        return x

    gather_for_metrics = gather


def _trl_self(**attributes):
    return SimpleNamespace(model=SimpleNamespace(training=False), accelerator=_Accelerator(),
                           _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
                           _total_train_tokens=0, _tp_size=1, **attributes)


def test_bradley_terry_matches_trl_reward_trainer():
    trl = pytest.importorskip("trl")
    generator = torch.Generator().manual_seed(0)
    chosen, rejected = torch.randn(6, generator=generator, dtype=F64), torch.randn(6, generator=generator, dtype=F64)
    outputs = SimpleNamespace(logits=torch.cat([chosen, rejected]).unsqueeze(-1))  # TRL's batch: [chosen; rejected]
    fake_self = _trl_self(args=SimpleNamespace(center_rewards_coefficient=None))
    theirs = trl.RewardTrainer.compute_loss(fake_self, lambda **_: outputs, {"input_ids": None})
    assert float(bradley_terry_loss(chosen, rejected)) == pytest.approx(float(theirs), abs=1e-12)
    assert pairwise_accuracy(chosen, rejected) == pytest.approx(fake_self._metrics["eval"]["accuracy"][0], abs=1e-12)


def test_dpo_matches_trl_dpo_trainer():
    """TRL 1.x computes the loss inside DPOTrainer._compute_loss; given a model whose per-token
    log-probs are ours (0 on prompt and padding, as its fused head gives for masked labels) and
    precomputed reference log-probs, it must return our loss and reward statistics."""
    trl = pytest.importorskip("trl")
    generator = torch.Generator().manual_seed(1)
    B, L, beta = 4, 7, 0.2
    completion_mask = torch.zeros(2 * B, L, dtype=torch.long)
    for row, start in enumerate([2, 3, 2, 4, 1, 2, 3, 3]):
        completion_mask[row, start:L - row % 3] = 1
    token_logps = -torch.rand(2 * B, L - 1, generator=generator, dtype=F64) * 3  # predicts tokens 1..L-1
    token_logps = token_logps * completion_mask[:, 1:]
    ref = -torch.rand(2 * B, generator=generator, dtype=F64) * 10
    outputs = SimpleNamespace(log_probs=token_logps, entropy=torch.zeros(2 * B, L - 1, dtype=F64),
                              mean_logits=torch.zeros(2 * B, L - 1, dtype=F64),
                              is_top1=torch.zeros(2 * B, L - 1, dtype=torch.bool))
    inputs = {"input_ids": torch.zeros(2 * B, L, dtype=torch.long), "attention_mask": torch.ones(2 * B, L),
              "completion_mask": completion_mask, "ref_chosen_logps": ref[:B], "ref_rejected_logps": ref[B:]}
    fake_self = _trl_self(aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True,
                          f_divergence_type="reverse_kl", loss_types=["sigmoid"], loss_weights=[1.0], beta=beta,
                          use_weighting=False)
    theirs = trl.DPOTrainer._compute_loss(fake_self, lambda **_: outputs, inputs, return_outputs=False)
    logps = sequence_logprobs(token_logps, completion_mask[:, 1:].to(F64))
    ours, stats = dpo_loss(logps[:B], logps[B:], ref[:B], ref[B:], beta)
    assert float(ours) == pytest.approx(float(theirs), abs=1e-12)
    metrics = fake_self._metrics["eval"]
    assert float(stats["chosen_reward"]) == pytest.approx(metrics["rewards/chosen"][0], abs=1e-12)
    assert float(stats["rejected_reward"]) == pytest.approx(metrics["rewards/rejected"][0], abs=1e-12)
    assert float(stats["reward_margin"]) == pytest.approx(metrics["rewards/margins"][0], abs=1e-12)
    assert float(stats["reward_accuracy"]) == pytest.approx(metrics["rewards/accuracies"][0], abs=1e-12)
