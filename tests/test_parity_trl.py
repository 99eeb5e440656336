"""Our clipped loss against TRL 1.16's GRPO loss, on random ragged batches (hypothesis, float64).

TRL computes its loss inside ``GRPOTrainer._compute_loss(model, inputs)``; the only part that
needs a model is ``_get_per_token_logps_and_entropies``. The test calls the real method with a
stand-in ``self`` that returns the given log-probs for it and supplies the attributes the loss
reads (one process, no gradient accumulation), so every line of TRL's loss arithmetic runs as
shipped. TRL's loss types map onto our aggregations: bnpo and dapo = token-mean, grpo =
seq-mean-token-mean, dr_grpo = seq-mean-token-sum-norm with L = max_completion_length; its KL
term is beta·k3 inside the aggregation, ours beta·kl_penalty_loss(k3) with the same mode.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_parity_trl.py
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ppo_demo import ppo

grpo_trainer = pytest.importorskip("trl.trainer.grpo_trainer", reason="trl not installed (requirements-dev.txt)")

TRL_LOSS_TYPES = {"bnpo": "token-mean", "dapo": "token-mean", "grpo": "seq-mean-token-mean",
                  "dr_grpo": "seq-mean-token-sum-norm"}


def trl_loss(loss_type, logps, old, ref, advantages, mask, eps_low, eps_high, beta, max_len):
    """TRL's own _compute_loss on tensors; returns (loss, its logged metrics)."""
    identity = SimpleNamespace(reduce=lambda x, reduction="sum": x, gather=lambda x: x,
                               gather_for_metrics=lambda x: x, num_processes=1, sync_gradients=True)
    fake = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logps, torch.zeros_like(logps), None),
        aux_loss_enabled=False, top_entropy_quantile=1.0, off_policy_mask_threshold=None,
        importance_sampling_level="token", beta=beta, loss_type=loss_type, epsilon_low=eps_low,
        epsilon_high=eps_high, use_vllm=False, vllm_importance_sampling_correction=False,
        model=SimpleNamespace(training=True), current_gradient_accumulation_steps=1,
        max_completion_length=max_len, _entropy_bonus_enabled=False, accelerator=identity,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
        _metrics=defaultdict(lambda: defaultdict(list)))
    B, T = mask.shape
    inputs = {"prompt_ids": torch.zeros(B, 1, dtype=torch.long), "prompt_mask": torch.ones(B, 1, dtype=torch.long),
              "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": mask,
              "advantages": advantages, "old_per_token_logps": old, "ref_per_token_logps": ref,
              "num_items_in_batch": mask.sum()}
    loss = grpo_trainer.GRPOTrainer._compute_loss(fake, None, inputs)
    return loss, {k: v[-1] for k, v in fake._metrics["train"].items()}


@st.composite
def batch(draw):
    B, T = draw(st.integers(1, 6)), draw(st.integers(1, 7))
    lengths = draw(st.lists(st.integers(1, T), min_size=B, max_size=B))
    mask = torch.tensor([[1.0] * n + [0.0] * (T - n) for n in lengths], dtype=torch.float64)
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    old = torch.randn(B, T, generator=g, dtype=torch.float64) - 2.0
    new = old + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.3
    ref = old + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.5
    advantages = torch.randn(B, generator=g, dtype=torch.float64)  # one per answer, as GRPO's
    return mask, old, new, ref, advantages


@settings(max_examples=60, deadline=None)
@given(batch(), st.sampled_from(sorted(TRL_LOSS_TYPES)), st.sampled_from([(0.2, 0.2), (0.2, 0.28)]),
       st.sampled_from([0.0, 0.04]))
def test_grpo_loss_and_clip_ratios_equal_trls(data, loss_type, clip, beta):
    mask, old, new, ref, advantages = data
    L = mask.shape[1] + 2
    theirs, metrics = trl_loss(loss_type, new, old, ref, advantages, mask, *clip, beta, L)
    mode = TRL_LOSS_TYPES[loss_type]
    ours, stats = ppo.ppo_policy_loss(new, old, advantages.unsqueeze(-1) * mask, mask, clip[0], clip[1], mode,
                                      norm_length=L)
    if beta:
        ours = ours + beta * ppo.kl_penalty_loss(new, ref, mask, "k3", mode, norm_length=L)
    assert abs(float(ours) - float(theirs)) <= 1e-9
    # TRL counts the tokens in float32 (mask.sum().float()): its shares are float32-exact only
    assert abs(float(stats["clip_frac_low"]) - metrics["clip_ratio/low_mean"]) <= 1e-6
    assert abs(float(stats["clip_frac_high"]) - metrics["clip_ratio/high_mean"]) <= 1e-6
