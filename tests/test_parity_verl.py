"""Our PPO math against veRL 0.9.1's ``verl.trainer.ppo.core_algos``, on random ragged batches.

Each test draws a batch with hypothesis (groups of 2-4 answers, 1-7 columns, every row with
1..T real tokens, right padding), in float64, and asserts that our function equals veRL's on
every real token within 1e-6. Where the lab differs from veRL on purpose (no dual-clip, no
clamping of k3, eps 1e-4 in GRPO's denominator), a test asserts the difference itself, so a
change on either side shows. docs/parity.md has the table and the reasons.

veRL is a test-only dependency (requirements-dev.txt; scripts/setup.sh --dev installs it with
--no-deps, plus the pinned ray, tensordict and codetiming its module imports need). Without it
the whole file is skipped with the reason; CI installs it, so there the tests run.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_parity_verl.py
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ppo_demo import ppo

core_algos = pytest.importorskip("verl.trainer.ppo.core_algos",
                                 reason="veRL 0.9.1 not installed (bash scripts/setup.sh --dev installs it)")
verl_F = pytest.importorskip("verl.utils.torch_functional")
from verl.trainer.config import AlgoConfig  # noqa: E402
from verl.workers.config import ActorConfig  # noqa: E402

TOL = 1e-6
AGG_MODES = ppo.LOSS_AGG_MODES
SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def ragged(draw):
    """A batch of groups: (mask (B, T) float64, group size G, torch generator for the values)."""
    G = draw(st.integers(2, 4))
    B = G * draw(st.integers(1, 3))
    T = draw(st.integers(1, 7))
    lengths = draw(st.lists(st.integers(1, T), min_size=B, max_size=B))
    mask = torch.tensor([[1.0] * n + [0.0] * (T - n) for n in lengths], dtype=torch.float64)
    # scores from a small set, so that some groups tie (GRPO/RLOO's A = 0 case)
    scores = torch.tensor(draw(st.lists(st.sampled_from([-1.0, 0.0, 0.5, 1.0]), min_size=B, max_size=B)),
                          dtype=torch.float64)
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    return mask, G, scores, generator


def randn(generator, *shape, scale=1.0):
    return torch.randn(*shape, generator=generator, dtype=torch.float64) * scale


def close_on(mask, ours, theirs, tol=TOL):
    """Max |ours - theirs| over real tokens, asserted <= tol; returned for the report."""
    diff = float(((ours - theirs).abs() * mask).max()) if mask.numel() else 0.0
    assert diff <= tol, diff
    return diff


def token_rewards(scores, mask, generator, kl_in_reward: bool):
    """Outcome-only rewards (score at the last real token), or with -beta*k1 on every token."""
    kl = randn(generator, *mask.shape, scale=0.5) * mask if kl_in_reward else torch.zeros_like(mask)
    return ppo.per_token_rewards(scores, kl, mask, kl_coef=0.1 if kl_in_reward else 0.0)


def group_index(B, G):
    return np.array([i // G for i in range(B)])


def actor_config(clip_low=0.2, clip_high=0.2, clip_c=1e9, loss_scale_factor=None):
    """veRL's actor config for its policy loss; clip_ratio_c huge switches its dual-clip off."""
    config = ActorConfig(strategy="fsdp", rollout_n=2, clip_ratio=clip_low, clip_ratio_low=clip_low,
                         clip_ratio_high=clip_high, clip_ratio_c=clip_c, ppo_mini_batch_size=2,
                         ppo_micro_batch_size_per_gpu=1, use_dynamic_bsz=False)
    if loss_scale_factor is not None:
        config.global_batch_info["loss_scale_factor"] = loss_scale_factor
    return config


# --- advantages ----------------------------------------------------------------------------------

@SETTINGS
@given(ragged(), st.floats(0.5, 1.0), st.floats(0.0, 1.0))
def test_gae_returns_and_whitened_advantages(batch, gamma, lam):
    mask, _, scores, g = batch
    rewards = token_rewards(scores, mask, g, kl_in_reward=True)
    values = randn(g, *mask.shape) * mask
    theirs_adv, theirs_ret = core_algos.compute_gae_advantage_return(rewards, values, mask, gamma, lam)
    ours_adv, ours_ret = ppo.gae(rewards, values, mask, gamma, lam)
    close_on(mask, ours_ret, theirs_ret)
    if mask.sum() > 1:  # veRL's whitening needs two tokens
        close_on(mask, ppo.masked_whiten(ours_adv, mask), theirs_adv)


@SETTINGS
@given(ragged(), st.booleans(), st.booleans())
def test_grpo(batch, kl_in_reward, std_norm):
    mask, G, scores, g = batch
    rewards = token_rewards(scores, mask, g, kl_in_reward)
    theirs, _ = core_algos.compute_grpo_outcome_advantage(rewards, mask, group_index(len(mask), G),
                                                          epsilon=1e-6, norm_adv_by_std_in_grpo=std_norm)
    ours, _ = ppo.grpo_advantages(rewards, mask, G, eps=1e-6, std_norm=std_norm)
    close_on(mask, ours, theirs)


def test_grpo_default_eps_differs_from_verls_on_purpose():
    """Our default eps is TRL's 1e-4, veRL's 1e-6: A differs by the factor (s + 1e-6)/(s + 1e-4)."""
    mask = torch.ones(2, 1, dtype=torch.float64)
    rewards = torch.tensor([[1.0], [0.0]], dtype=torch.float64)  # std sqrt(1/2)
    ours, _ = ppo.grpo_advantages(rewards, mask, 2)
    theirs, _ = core_algos.compute_grpo_outcome_advantage(rewards, mask, group_index(2, 2))
    s = 0.5 ** 0.5
    assert torch.allclose(ours / theirs, torch.full_like(ours, (s + 1e-6) / (s + 1e-4)), atol=1e-12)
    assert (ours - theirs).abs().max() > 1e-5


@SETTINGS
@given(ragged(), st.booleans())
def test_rloo(batch, kl_in_reward):
    mask, G, scores, g = batch
    rewards = token_rewards(scores, mask, g, kl_in_reward)
    theirs, _ = core_algos.compute_rloo_outcome_advantage(rewards, mask, group_index(len(mask), G))
    ours, _ = ppo.rloo_advantages(rewards, mask, G)
    close_on(mask, ours, theirs)


@SETTINGS
@given(ragged(), st.booleans(), st.floats(0.5, 1.0), st.booleans())
def test_reinforce_whitened_is_reinforce_plus_plus(batch, kl_in_reward, gamma, baseline):
    """veRL's REINFORCE++ = the return-to-go whitened over the batch. Ours with whiten="batch":
    the batch-mean baseline is a shift, which whitening removes, so either form matches."""
    mask, _, scores, g = batch
    if mask.sum() < 2:
        return
    rewards = token_rewards(scores, mask, g, kl_in_reward)
    theirs, theirs_ret = core_algos.compute_reinforce_plus_plus_outcome_advantage(
        rewards, mask, config=AlgoConfig(gamma=gamma))
    ours, ours_ret = ppo.reinforce_advantages(rewards, mask, gamma, baseline=baseline)
    close_on(mask, ours_ret, theirs_ret)
    if float(ppo.masked_var(ours_ret, mask)) > 1e-6:  # whitening a constant divides 0 by ~1e-4
        close_on(mask, ppo.masked_whiten(ours, mask), theirs)


# --- losses --------------------------------------------------------------------------------------

@SETTINGS
@given(ragged(), st.sampled_from(AGG_MODES))
def test_agg_loss(batch, mode):
    mask, _, _, g = batch
    loss_mat = randn(g, *mask.shape)
    L = mask.shape[-1] + 3  # a constant L (the trainer's max_new_tokens), not the batch width
    theirs = core_algos.agg_loss(loss_mat, mask, mode, loss_scale_factor=L)
    assert abs(float(ppo.agg_loss(loss_mat, mask, mode, norm_length=L)) - float(theirs)) <= TOL


@SETTINGS
@given(ragged(), st.sampled_from(AGG_MODES), st.sampled_from([(0.2, 0.2), (0.2, 0.28), (0.1, 0.3)]))
def test_clipped_policy_loss_and_clip_fractions(batch, mode, clip):
    mask, _, _, g = batch
    old = randn(g, *mask.shape) - 2.0
    new = old + randn(g, *mask.shape, scale=0.3)  # ratios from about 0.4 to 2.5: many clipped
    advantages = randn(g, *mask.shape)
    L = mask.shape[-1] + 2
    theirs, metrics = core_algos.compute_policy_loss_vanilla(
        old, new, advantages, mask, loss_agg_mode=mode, config=actor_config(*clip, loss_scale_factor=L))
    ours, stats = ppo.ppo_policy_loss(new, old, advantages, mask, clip[0], clip[1], mode, norm_length=L)
    assert abs(float(ours) - float(theirs)) <= TOL
    # veRL's pg_clipfrac = tokens whose gradient the clip stopped = our low + high
    assert abs(float(stats["clip_frac_low"] + stats["clip_frac_high"]) - metrics["actor/pg_clipfrac"]) <= TOL
    assert abs(float(stats["approx_kl"]) - float(ppo.masked_mean(ppo.kl_per_token(old, new, "k3"), mask))) <= TOL
    # veRL's ppo_kl is E[k1] of old vs new, ours the k3 form (CleanRL's): not compared


def test_dual_clip_is_verls_and_not_ours():
    """veRL bounds the loss of a token with A < 0 at -A·c (dual-clip, c = 3 by default); the
    lab keeps the textbook clip. A = -1, rho = 4: ours -min(-4, -1.2) = 4, veRL's min(4, 3) = 3."""
    mask, advantages = torch.ones(1, 1, dtype=torch.float64), -torch.ones(1, 1, dtype=torch.float64)
    old, new = torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), np.log(4.0), dtype=torch.float64)
    ours, _ = ppo.ppo_policy_loss(new, old, advantages, mask, 0.2)
    theirs, _ = core_algos.compute_policy_loss_vanilla(old, new, advantages, mask, config=actor_config(clip_c=3.0))
    assert float(ours) == pytest.approx(4.0) and float(theirs) == pytest.approx(3.0)


@SETTINGS
@given(ragged(), st.sampled_from(AGG_MODES), st.floats(0.05, 1.0))
def test_clipped_value_loss(batch, mode, clip):
    mask, _, _, g = batch
    old_values, returns = randn(g, *mask.shape), randn(g, *mask.shape)
    values = old_values + randn(g, *mask.shape, scale=0.5)
    L = mask.shape[-1] + 1
    theirs, theirs_frac = core_algos.compute_value_loss(values, returns, old_values, mask, clip,
                                                        loss_agg_mode=mode, loss_scale_factor=L)
    ours, stats = ppo.ppo_value_loss(values, old_values, returns, mask, clip, mode, norm_length=L)
    assert abs(float(ours) - float(theirs)) <= TOL
    assert abs(float(stats["value_clip_frac"]) - float(theirs_frac)) <= TOL


# --- KL ------------------------------------------------------------------------------------------

VERL_KL_NAMES = {"k1": "kl", "k2": "mse", "k3": "low_var_kl"}


@SETTINGS
@given(ragged(), st.sampled_from(sorted(VERL_KL_NAMES)), st.sampled_from(AGG_MODES))
def test_kl_estimators_in_the_reward_and_in_the_loss(batch, estimator, mode):
    """Log-ratios within ±2, where veRL's clamps (k3 to [-10, 10]) do not act."""
    mask, _, _, g = batch
    logprobs = randn(g, *mask.shape) - 2.0
    ref = logprobs + (torch.rand(*mask.shape, generator=g, dtype=torch.float64) * 4 - 2)
    theirs = core_algos.kl_penalty(logprobs, ref, VERL_KL_NAMES[estimator])
    close_on(mask, ppo.kl_per_token(logprobs, ref, estimator), theirs)
    L = mask.shape[-1] + 1
    theirs_loss = core_algos.agg_loss(theirs, mask, mode, loss_scale_factor=L)
    ours_loss = ppo.kl_penalty_loss(logprobs, ref, mask, estimator, mode, norm_length=L)
    assert abs(float(ours_loss) - float(theirs_loss)) <= TOL


def test_k3_is_not_clamped_unlike_verls():
    """q = pi_ref/pi = e^3: k3 = e^3 - 3 - 1 = 16.09; veRL clamps it to 10 (for stability)."""
    logprobs, ref = torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), 3.0, dtype=torch.float64)
    assert float(ppo.kl_per_token(logprobs, ref, "k3")) == pytest.approx(np.exp(3.0) - 4.0)
    assert float(core_algos.kl_penalty(logprobs, ref, "low_var_kl")) == 10.0


def test_entropy_from_logits():
    g = torch.Generator().manual_seed(0)
    logits = randn(g, 3, 5, 11, scale=3.0)
    assert (ppo.entropy_from_logits(logits.double()).double() - verl_F.entropy_from_logits(logits)).abs().max() < 1e-5


def test_exact_kl_is_the_expectation_of_k1_and_k3_and_never_negative():
    """No veRL counterpart ("full" raises NotImplementedError there): checked against its
    definition instead. Over the whole vocabulary, E_{v~pi}[k1] = E_{v~pi}[k3] = KL(pi||pi_ref)."""
    g = torch.Generator().manual_seed(1)
    log_p = torch.log_softmax(randn(g, 4, 6, 13), -1)
    log_q = torch.log_softmax(randn(g, 4, 6, 13), -1)
    exact = ppo.exact_kl(log_p, log_q)  # (4, 6)
    k1 = ppo.kl_per_token(log_p, log_q, "k1")  # each vocabulary entry as if it were sampled
    k3 = ppo.kl_per_token(log_p, log_q, "k3")
    assert torch.allclose((log_p.exp() * k1).sum(-1), exact, atol=1e-12)
    assert torch.allclose((log_p.exp() * k3).sum(-1), exact, atol=1e-12)
    assert (exact >= 0).all() and (k1 < 0).any()  # k1 goes negative token by token, the KL never
    assert torch.allclose(ppo.exact_kl(log_p, log_p), torch.zeros(4, 6, dtype=torch.float64))
