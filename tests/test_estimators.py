"""Critic-free advantage estimators, the KL loss term, the adaptive KL controller and the clip
cases, each against an example worked out by hand (the arithmetic is in the comments).

Run: .venv/bin/python -m pytest -q tests/test_estimators.py
"""

import math

import pytest
import torch

from ppo_demo import ppo


def t(x):
    return torch.tensor(x, dtype=torch.float32)


def score_only_rewards(scores, mask):
    """The per-token rewards with the KL in the loss: beta 0, the score at the last real token."""
    return ppo.per_token_rewards(t(scores), torch.zeros_like(mask), mask, kl_coef=0.0)


# --- return-to-go ------------------------------------------------------------------------------

def test_returns_to_go_hand_example_with_padding():
    rewards = t([[0.1, -0.2, 1.0, 0.0]])
    mask = t([[1, 1, 1, 0]])
    # gamma 1: G2 = 1.0, G1 = -0.2 + 1.0 = 0.8, G0 = 0.1 + 0.8 = 0.9
    assert torch.allclose(ppo.returns_to_go(rewards, mask), t([[0.9, 0.8, 1.0, 0.0]]), atol=1e-6)
    # gamma 0.5: G2 = 1.0, G1 = -0.2 + 0.5 = 0.3, G0 = 0.1 + 0.15 = 0.25
    assert torch.allclose(ppo.returns_to_go(rewards, mask, 0.5), t([[0.25, 0.3, 1.0, 0.0]]), atol=1e-6)


def test_returns_to_go_is_gae_without_a_critic():
    generator = torch.Generator().manual_seed(3)
    rewards = torch.randn(4, 6, generator=generator)
    mask = t([[1] * 6, [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [1] * 5 + [0]])
    rewards = rewards * mask
    _, gae_returns = ppo.gae(rewards, torch.zeros_like(rewards), mask, gamma=0.9, lam=1.0)
    assert torch.allclose(ppo.returns_to_go(rewards, mask, 0.9), gae_returns, atol=1e-5)


# --- GRPO --------------------------------------------------------------------------------------

def test_grpo_two_groups_of_four_one_with_equal_rewards():
    # group 1 scores 1, -1, 1, 1: mean 0.5, deviations 0.5, -1.5, 0.5, 0.5;
    #   squares sum to 0.25 + 2.25 + 0.25 + 0.25 = 3, unbiased variance 3 / (4 - 1) = 1, std 1
    # group 2 scores all 0.5: deviations 0, std 0 -> A = 0 / (0 + 1e-4) = 0, not NaN
    mask = t([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0],
              [1, 0, 0], [1, 1, 1], [1, 1, 0], [1, 0, 0]])
    rewards = score_only_rewards([1.0, -1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5], mask)
    advantages, returns = ppo.grpo_advantages(rewards, mask, group_size=4)
    per_response = t([0.5, -1.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0]) / (1.0 + 1e-4)
    assert torch.allclose(advantages, per_response.unsqueeze(-1) * mask, atol=1e-6)  # same A on every token
    assert not torch.isnan(advantages).any()
    assert torch.all(advantages[4:] == 0)
    assert torch.allclose(returns[:, 0], t([1.0, -1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]))


def test_grpo_group_of_two():
    # scores 1, -1: mean 0, unbiased std sqrt((1 + 1) / 1) = sqrt 2 -> A = ±1 / (sqrt 2 + 1e-4)
    mask = t([[1, 1], [1, 0]])
    advantages, _ = ppo.grpo_advantages(score_only_rewards([1.0, -1.0], mask), mask, group_size=2)
    a = 1.0 / (math.sqrt(2.0) + 1e-4)
    assert torch.allclose(advantages, t([[a, a], [-a, 0.0]]), atol=1e-6)


def test_grpo_with_kl_in_the_reward_uses_each_responses_whole_return():
    # row 0 rewards -0.1, 0.9 (score 1 - 0.1): G = 0.8, 0.9
    # row 1 rewards -0.2, -0.2, -1.2 (score -1 - 0.2): G = -1.6, -1.4, -1.2
    # whole returns 0.8, -1.6: mean -0.4, unbiased std sqrt(1.2^2 + 1.2^2) = 1.2 sqrt 2
    # A = (G_0 - mean) / (std + eps) on every token: +-1.2 / s (as veRL: one number per response)
    rewards = t([[-0.1, 0.9, 0.0], [-0.2, -0.2, -1.2]])
    mask = t([[1, 1, 0], [1, 1, 1]])
    advantages, returns = ppo.grpo_advantages(rewards, mask, group_size=2)
    s = 1.2 * math.sqrt(2.0) + 1e-4
    assert torch.allclose(returns, t([[0.8, 0.9, 0.0], [-1.6, -1.4, -1.2]]), atol=1e-6)
    assert torch.allclose(advantages, t([[1.2 / s, 1.2 / s, 0.0], [-1.2 / s, -1.2 / s, -1.2 / s]]), atol=1e-5)
    # Dr. GRPO: no division by the std -> A = G_0 - mean = +-1.2
    dr, _ = ppo.grpo_advantages(rewards, mask, group_size=2, std_norm=False)
    assert torch.allclose(dr, t([[1.2, 1.2, 0.0], [-1.2, -1.2, -1.2]]), atol=1e-6)


def test_identical_answers_with_kl_in_the_reward_get_zero_advantage_and_a_bounded_loss():
    """The bug a teacher met: three identical answers, KL in the reward. Their whole returns
    G_0 tie (std 0), but the return-to-go G_t differs from G_0 by the KL rewards already passed;
    (G_t - mean G_0) / (0 + 1e-4) gave advantages near +1000. With G_0 as the term, A = 0."""
    kl = t([[0.3, -0.2, 0.5, 0.1]] * 3)  # the same tokens, so the same KL
    mask = torch.ones(3, 4)
    rewards = ppo.per_token_rewards(t([1.0, 1.0, 1.0]), kl, mask, kl_coef=0.05)
    for estimator in ("grpo", "rloo"):
        if estimator == "grpo":
            advantages, returns = ppo.grpo_advantages(rewards, mask, group_size=3)
        else:
            advantages, returns = ppo.rloo_advantages(rewards, mask, group_size=3)
        assert not torch.allclose(returns[:, 0], returns[:, 1])  # G_t does vary along the tokens
        assert torch.all(advantages == 0), estimator
        logprobs = torch.full((3, 4), -1.0, requires_grad=True)
        loss, _ = ppo.ppo_policy_loss(logprobs + 0.5, logprobs.detach(), advantages, mask, clip_eps=0.2)
        assert loss.item() == 0.0
    # the old per-token form, for contrast: it does explode
    G = returns
    old = (G - G[:, :1].mean()) / (G[:, 0].std() + 1e-4)
    assert old.abs().max() > 100


def test_group_size_must_divide_the_batch():
    mask = torch.ones(6, 2)
    rewards = score_only_rewards([1.0] * 6, mask)
    with pytest.raises(ValueError, match="groups of 4"):
        ppo.grpo_advantages(rewards, mask, group_size=4)
    with pytest.raises(ValueError, match="groups of 1"):
        ppo.rloo_advantages(rewards, mask, group_size=1)


# --- RLOO --------------------------------------------------------------------------------------

def test_rloo_groups_of_three():
    # group 1 scores 1, 0, -1: baselines (0 - 1)/2 = -0.5, (1 - 1)/2 = 0, (1 + 0)/2 = 0.5
    #   -> A = 1.5, 0, -1.5 (= 3/2 times the deviation from the mean 0)
    # group 2 scores all 2: each baseline is 2 -> A = 0
    mask = t([[1, 1, 0], [1, 1, 1], [1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]])
    advantages, _ = ppo.rloo_advantages(score_only_rewards([1.0, 0.0, -1.0, 2.0, 2.0, 2.0], mask), mask, 3)
    per_response = t([1.5, 0.0, -1.5, 0.0, 0.0, 0.0])
    assert torch.allclose(advantages, per_response.unsqueeze(-1) * mask, atol=1e-6)


def test_rloo_with_kl_in_the_reward_uses_each_responses_whole_return():
    # whole returns 0.8, -1.6 (the GRPO example): A = 0.8 - (-1.6) = 2.4 and -2.4 on every token
    rewards = t([[-0.1, 0.9, 0.0], [-0.2, -0.2, -1.2]])
    mask = t([[1, 1, 0], [1, 1, 1]])
    advantages, _ = ppo.rloo_advantages(rewards, mask, 2)
    assert torch.allclose(advantages, t([[2.4, 2.4, 0.0], [-2.4, -2.4, -2.4]]), atol=1e-6)


def test_rloo_group_of_two_is_the_difference():
    # G = 2: the baseline of each response is the other one's reward: 0.7 - (-0.3) = 1
    mask = t([[1, 0], [1, 1]])
    advantages, _ = ppo.rloo_advantages(score_only_rewards([0.7, -0.3], mask), mask, 2)
    assert torch.allclose(advantages, t([[1.0, 0.0], [-1.0, -1.0]]), atol=1e-6)


# --- REINFORCE ---------------------------------------------------------------------------------

def test_reinforce_with_and_without_the_batch_mean_baseline():
    # the same rewards as the GRPO KL example: G = [0.8, 0.9, 0] and [-1.6, -1.4, -1.2]
    # baseline = mean(0.8, -1.6) = -0.4 -> A = G + 0.4 on real tokens
    rewards = t([[-0.1, 0.9, 0.0], [-0.2, -0.2, -1.2]])
    mask = t([[1, 1, 0], [1, 1, 1]])
    advantages, returns = ppo.reinforce_advantages(rewards, mask, baseline=True)
    assert torch.allclose(advantages, t([[1.2, 1.3, 0.0], [-1.2, -1.0, -0.8]]), atol=1e-6)
    plain, _ = ppo.reinforce_advantages(rewards, mask, baseline=False)
    assert torch.allclose(plain, returns)
    assert torch.allclose(plain, t([[0.8, 0.9, 0.0], [-1.6, -1.4, -1.2]]), atol=1e-6)


# --- KL in the loss ----------------------------------------------------------------------------

def test_kl_penalty_loss_value_and_gradient_sign():
    # token 0: pi 0.5, pi_ref 0.25 -> q = 0.5, k3 = -0.5 + ln 2, d k3 / d log pi = 1 - q = +0.5
    # token 1: pi 0.25, pi_ref 0.5 -> q = 2, k3 = 1 - ln 2, d k3 / d log pi = 1 - q = -1
    # token 2: padding. Mean over 2 tokens: (0.5 + ln 2 - ln 2) / 2 = 0.25; gradients halved.
    logprobs = torch.tensor([[math.log(0.5), math.log(0.25), 0.0]], requires_grad=True)
    ref_logprobs = t([[math.log(0.25), math.log(0.5), -5.0]])
    loss = ppo.kl_penalty_loss(logprobs, ref_logprobs, t([[1, 1, 0]]))
    assert loss.item() == pytest.approx(0.25, abs=1e-6)
    loss.backward()
    assert torch.allclose(logprobs.grad, t([[0.25, -0.5, 0.0]]), atol=1e-6)
    # a descent step moves log pi toward log pi_ref on both tokens, and the loss falls
    with torch.no_grad():
        stepped = logprobs - 0.1 * logprobs.grad
    assert ppo.kl_penalty_loss(stepped, ref_logprobs, t([[1, 1, 0]])).item() < 0.25


def test_kl_penalty_loss_is_zero_at_the_reference():
    logprobs = t([[-1.0, -2.0]])
    assert ppo.kl_penalty_loss(logprobs, logprobs.clone(), t([[1, 1]])).item() == 0.0


# --- adaptive KL controller --------------------------------------------------------------------

def test_adaptive_kl_controller_hand_sequence():
    # beta 0.1, target 1, horizon 10, 2 responses per step: n_steps / horizon = 0.2
    beta = 0.1
    expected = [
        (2.0, 0.1 * (1 + 0.2 * 0.2)),          # error 1 clipped to 0.2      -> 0.104
        (1.05, 0.104 * (1 + 0.05 * 0.2)),      # error 0.05                  -> 0.10504
        (0.5, 0.10504 * (1 - 0.2 * 0.2)),      # error -0.5 clipped to -0.2  -> 0.1008384
        (1.0, 0.1008384),                      # on target: unchanged
    ]
    for current_kl, beta_after in expected:
        beta = ppo.adaptive_kl_coef(beta, current_kl, target_kl=1.0, horizon=10, n_steps=2)
        assert beta == pytest.approx(beta_after, rel=1e-9)


# --- clip cases --------------------------------------------------------------------------------

def test_clip_cases_table_matches_codes():
    assert [c["code"] for c in ppo.CLIP_CASES] == list(range(7))
    assert [c["code"] for c in ppo.CLIP_CASES if not c["pushes"]] == [2, 3, 6]


def test_clip_cases_hand_picked_and_agree_with_the_gradient():
    # eps 0.2; rho 0.5 / 1.0 / 1.5 for A = +1 and A = -1, one A = 0, one padding token
    rho = t([[0.5, 1.0, 1.5, 0.5, 1.0, 1.5, 1.5, 1.0]])
    advantages = t([[1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 0.0, 1.0]])
    mask = t([[1, 1, 1, 1, 1, 1, 1, 0]])
    codes = ppo.clip_cases(rho, advantages, mask, clip_eps=0.2)
    assert codes.tolist() == [[0, 1, 2, 3, 4, 5, 6, -1]]
    pushes = torch.tensor([[code >= 0 and ppo.CLIP_CASES[code]["pushes"] for code in row] for row in codes.tolist()])
    assert pushes.tolist() == [[True, True, False, False, True, True, False, False]]
    # the classification must say what autograd says: a non-zero gradient exactly where it pushes
    new_logprobs = rho.log().requires_grad_(True)
    loss, _ = ppo.ppo_policy_loss(new_logprobs, torch.zeros_like(rho), advantages, mask, clip_eps=0.2)
    loss.backward()
    assert ((new_logprobs.grad != 0) == pushes).all()
