"""Each PPO function against a small example worked out by hand (numbers in the comments)."""

import math

import pytest
import torch

from ppo_demo import ppo


def t(x):
    return torch.tensor(x, dtype=torch.float32)


def test_logprobs_from_logits_hand_example():
    # softmax([0, ln 3]) = [1/4, 3/4]
    logits = t([[[0.0, math.log(3.0)], [0.0, math.log(3.0)]]])  # (B=1, T=2, V=2)
    tokens = torch.tensor([[1, 0]])
    expected = t([[math.log(0.75), math.log(0.25)]])
    assert torch.allclose(ppo.logprobs_from_logits(logits, tokens), expected, atol=1e-6)


def test_entropy_uniform_and_peaked():
    logits = t([[[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]]])
    entropy = ppo.entropy_from_logits(logits)
    assert entropy[0, 0].item() == pytest.approx(math.log(4.0), abs=1e-6)
    assert entropy[0, 1].item() == pytest.approx(0.0, abs=1e-6)


def test_logprobs_and_entropy_together_match_the_hand_example():
    # softmax([0, ln 3]) = [1/4, 3/4]; H = -(1/4 ln 1/4 + 3/4 ln 3/4)
    logits = t([[[0.0, math.log(3.0)], [0.0, math.log(3.0)]]]).requires_grad_(True)  # (1, 2, 2)
    tokens = torch.tensor([[1, 0]])
    entropy_by_hand = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    logprobs, entropy = ppo.logprobs_and_entropy_from_logits(logits, tokens, entropy_grad=False)
    assert torch.allclose(logprobs, t([[math.log(0.75), math.log(0.25)]]), atol=1e-6)
    assert torch.allclose(entropy, t([[entropy_by_hand, entropy_by_hand]]), atol=1e-6)
    assert logprobs.requires_grad and not entropy.requires_grad  # entropy only reported
    _, entropy = ppo.logprobs_and_entropy_from_logits(logits, tokens, entropy_grad=True)
    entropy.sum().backward()  # dH/dz_1 = -p_0 p_1 (z_1 - z_0) = -(3/16) ln 3 for each position
    assert torch.allclose(logits.grad[0, :, 1], t([-3 / 16 * math.log(3.0)] * 2), atol=1e-6)


def test_masked_mean_and_var_hand_example():
    x = t([[1.0, 2.0, 99.0], [4.0, 99.0, 99.0]])
    mask = t([[1, 1, 0], [1, 0, 0]])
    # real values 1, 2, 4: mean 7/3; squared deviations 16/9 + 1/9 + 25/9 = 42/9
    assert ppo.masked_mean(x, mask).item() == pytest.approx(7 / 3, abs=1e-6)
    assert ppo.masked_var(x, mask).item() == pytest.approx(42 / 9 / 2, abs=1e-5)  # Bessel: /(n-1)
    assert ppo.masked_var(x, mask, unbiased=False).item() == pytest.approx(42 / 9 / 3, abs=1e-5)
    assert torch.allclose(ppo.masked_mean(x, mask, dim=-1), t([1.5, 4.0]))


def test_masked_whiten_zero_mean_unit_var_padding_zero():
    torch.manual_seed(0)
    x = torch.randn(4, 7) * 3 + 5
    mask = (torch.rand(4, 7) > 0.3).float()
    white = ppo.masked_whiten(x, mask)
    assert ppo.masked_mean(white, mask).item() == pytest.approx(0.0, abs=1e-5)
    assert ppo.masked_var(white, mask).item() == pytest.approx(1.0, abs=1e-4)
    assert torch.all(white[mask == 0] == 0)


def test_whiten_per_sequence_hand_example():
    x = t([[1.0, 3.0, 50.0], [7.0, 0.0, 0.0]])
    mask = t([[1, 1, 0], [1, 0, 0]])
    white = ppo.whiten_per_sequence(x, mask)
    # row 0: mean 2, unbiased std sqrt(2); row 1: one token, x - mean = 0 (the seed gives NaN)
    s = 1 / math.sqrt(2)
    assert torch.allclose(white, t([[-s, s, 0.0], [0.0, 0.0, 0.0]]), atol=1e-6)


def test_kl_estimators_hand_example():
    logp, ref = t([[math.log(0.5)]]), t([[math.log(0.25)]])
    assert ppo.kl_per_token(logp, ref, "k1").item() == pytest.approx(math.log(2.0), abs=1e-6)
    # k3: rho = pi_ref / pi = 0.5 -> (0.5 - 1) - ln 0.5 = 0.193147
    assert ppo.kl_per_token(logp, ref, "k3").item() == pytest.approx(-0.5 + math.log(2.0), abs=1e-6)
    # k1 is negative where pi_ref is likelier; k3 never is
    assert ppo.kl_per_token(ref, logp, "k1").item() < 0
    assert ppo.kl_per_token(ref, logp, "k3").item() > 0
    # k2 = 1/2 (ln 2)^2 = 0.240227, the same whichever side is likelier
    assert ppo.kl_per_token(logp, ref, "k2").item() == pytest.approx(0.5 * math.log(2.0) ** 2, abs=1e-6)
    assert ppo.kl_per_token(ref, logp, "k2").item() == pytest.approx(0.5 * math.log(2.0) ** 2, abs=1e-6)
    with pytest.raises(ValueError):
        ppo.kl_per_token(logp, ref, "k4")


def test_per_token_rewards_puts_score_on_last_real_token():
    scores = t([1.0, -1.0])
    kl = t([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    mask = t([[1, 1, 0], [1, 1, 1]])
    rewards = ppo.per_token_rewards(scores, kl, mask, kl_coef=0.5)
    expected = t([[-0.05, -0.1 + 1.0, 0.0], [-0.2, -0.25, -0.3 - 1.0]])
    assert torch.allclose(rewards, expected, atol=1e-6)


def test_gae_hand_example_with_padding():
    # gamma 1, lambda 0.5. t=1: delta = 1 + 0 - 0.8 = 0.2, A1 = 0.2
    #                      t=0: delta = 0 + 0.8 - 0.5 = 0.3, A0 = 0.3 + 0.5 * 0.2 = 0.4
    rewards = t([[0.0, 1.0, 0.0]])
    values = t([[0.5, 0.8, 9.0]])  # 9.0 sits on padding and must be ignored
    mask = t([[1, 1, 0]])
    advantages, returns = ppo.gae(rewards, values, mask, gamma=1.0, lam=0.5)
    assert torch.allclose(advantages, t([[0.4, 0.2, 0.0]]), atol=1e-6)
    assert torch.allclose(returns, t([[0.9, 1.0, 0.0]]), atol=1e-6)


def _gae_reference(rewards, values, lengths, gamma, lam):
    """Plain per-response loop over lists, as a textbook writes GAE."""
    out_adv, out_ret = [], []
    for r, v, n in zip(rewards.tolist(), values.tolist(), lengths):
        adv = [0.0] * len(r)
        running = 0.0
        for step in reversed(range(n)):
            next_value = v[step + 1] if step + 1 < n else 0.0
            delta = r[step] + gamma * next_value - v[step]
            running = delta + gamma * lam * running
            adv[step] = running
        out_adv.append(adv)
        out_ret.append([a + val if i < n else 0.0 for i, (a, val) in enumerate(zip(adv, v))])
    return torch.tensor(out_adv), torch.tensor(out_ret)


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.9, 0.5), (1.0, 1.0), (0.99, 0.0)])
def test_gae_matches_reference_loop_on_random_masked_batches(gamma, lam):
    generator = torch.Generator().manual_seed(int(gamma * 100 + lam * 10))
    B, T = 6, 9
    rewards = torch.randn(B, T, generator=generator)
    values = torch.randn(B, T, generator=generator)
    lengths = torch.randint(1, T + 1, (B,), generator=generator).tolist()
    mask = torch.zeros(B, T)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    advantages, returns = ppo.gae(rewards * mask, values, mask, gamma, lam)
    ref_adv, ref_ret = _gae_reference(rewards * mask, values, lengths, gamma, lam)
    assert torch.allclose(advantages, ref_adv, atol=1e-5)
    assert torch.allclose(returns, ref_ret, atol=1e-5)


def test_policy_loss_hand_example():
    # token 1: rho = 1.5, A = +1 -> min(1.5, 1.2) = 1.2
    # token 2: rho = 0.5, A = -1 -> min(-0.5, -0.8) = -0.8
    old = t([[0.0, 0.0]])
    new = t([[math.log(1.5), math.log(0.5)]])
    advantages = t([[1.0, -1.0]])
    mask = t([[1, 1]])
    loss, stats = ppo.ppo_policy_loss(new, old, advantages, mask, clip_eps=0.2)
    assert loss.item() == pytest.approx(-(1.2 - 0.8) / 2, abs=1e-6)
    assert stats["ratio_mean"].item() == pytest.approx(1.0, abs=1e-6)
    assert stats["clip_frac"].item() == pytest.approx(1.0)
    approx_kl = ((0.5 - math.log(1.5)) + (-0.5 - math.log(0.5))) / 2
    assert stats["approx_kl"].item() == pytest.approx(approx_kl, abs=1e-6)


def test_policy_loss_takes_the_unclipped_term_where_it_is_smaller():
    # token 1: rho = 0.5, A = +1 -> min(0.5, clip 0.8) = 0.5 (unclipped: a worse action is not rescued)
    # token 2: rho = 1.5, A = -1 -> min(-1.5, -1.2) = -1.5 (unclipped: the pessimistic bound)
    # token 3: rho = 1.1, A = +2 -> inside the clip range: 2.2
    old = t([[0.0, 0.0, 0.0]])
    new = torch.tensor([[math.log(0.5), math.log(1.5), math.log(1.1)]], requires_grad=True)
    advantages = t([[1.0, -1.0, 2.0]])
    loss, stats = ppo.ppo_policy_loss(new, old, advantages, t([[1, 1, 1]]), clip_eps=0.2)
    assert loss.item() == pytest.approx(-(0.5 - 1.5 + 2.2) / 3, abs=1e-6)
    assert stats["ratio_mean"].item() == pytest.approx((0.5 + 1.5 + 1.1) / 3, abs=1e-6)
    assert stats["clip_frac"].item() == pytest.approx(2 / 3)  # |rho - 1| > 0.2 at tokens 1 and 2
    loss.backward()  # d(-rho A / 3)/d log rho = -rho A / 3 wherever the unclipped term is taken
    assert torch.allclose(new.grad, t([[-0.5 / 3, 1.5 / 3, -2.2 / 3]]), atol=1e-6)


def test_policy_loss_at_ratio_one_is_minus_mean_advantage_and_ignores_padding():
    logprobs = t([[-1.0, -2.0, -3.0]])
    advantages = t([[0.5, 1.5, 100.0]])
    mask = t([[1, 1, 0]])
    loss, stats = ppo.ppo_policy_loss(logprobs, logprobs.clone(), advantages, mask, clip_eps=0.2)
    assert loss.item() == pytest.approx(-1.0)
    assert stats["ratio_mean"].item() == 1.0
    assert stats["clip_frac"].item() == 0.0
    assert stats["approx_kl"].item() == 0.0


def test_policy_loss_gradient_is_zero_once_clipped():
    old = t([[0.0]])
    new = torch.tensor([[math.log(1.5)]], requires_grad=True)
    loss, _ = ppo.ppo_policy_loss(new, old, t([[1.0]]), t([[1]]), clip_eps=0.2)
    loss.backward()
    assert new.grad.item() == 0.0  # rho > 1 + eps with A > 0: no more push


def test_value_loss_hand_example():
    # V = 1.0, V_old = 0.5, R = 1.0, eps 0.2: clipped V = 0.7 -> (0.7 - 1)^2 = 0.09 beats 0
    values, old_values, returns = t([[1.0, 0.6]]), t([[0.5, 0.5]]), t([[1.0, 1.0]])
    mask = t([[1, 0]])
    loss, stats = ppo.ppo_value_loss(values, old_values, returns, mask, clip_eps=0.2)
    assert loss.item() == pytest.approx(0.5 * 0.09, abs=1e-6)
    assert stats["value_clip_frac"].item() == pytest.approx(1.0)


def test_value_loss_takes_the_unclipped_term_where_it_is_larger():
    # V = 1.0, V_old = 0.5, R = 0.0, eps 0.2: unclipped (1 - 0)^2 = 1 beats clipped (0.7 - 0)^2 = 0.49
    # V = 0.4, V_old = 0.5, R = 0.0: inside the clip range, both are 0.16
    values, old_values, returns = t([[1.0, 0.4]]), t([[0.5, 0.5]]), t([[0.0, 0.0]])
    loss, stats = ppo.ppo_value_loss(values, old_values, returns, t([[1, 1]]), clip_eps=0.2)
    assert loss.item() == pytest.approx(0.5 * (1.0 + 0.16) / 2, abs=1e-6)
    assert stats["value_clip_frac"].item() == 0.0


def test_value_clip_is_around_the_old_values_not_the_returns():
    # V_old = 0, V = 1, R = 1, eps 0.2: clipped V = 0.2 (around V_old), so the loss is 0.5 * 0.8^2
    loss, _ = ppo.ppo_value_loss(t([[1.0]]), t([[0.0]]), t([[1.0]]), t([[1]]), clip_eps=0.2)
    assert loss.item() == pytest.approx(0.5 * 0.64, abs=1e-6)


def test_explained_variance():
    returns = t([[1.0, 2.0, 3.0, 50.0]])
    mask = t([[1, 1, 1, 0]])
    assert ppo.explained_variance(returns.clone(), returns, mask).item() == pytest.approx(1.0)
    # constant predictor at the mean: 1 - Var[R - c] / Var[R] = 0
    assert ppo.explained_variance(torch.full_like(returns, 2.0), returns, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(ppo.explained_variance(returns, torch.ones_like(returns), mask).item())


def test_last_token_index():
    mask = t([[1, 1, 0], [1, 1, 1], [0, 0, 0]])
    assert ppo.last_token_index(mask).tolist() == [1, 2, 0]


def test_upcast_gives_at_least_float32_and_keeps_float64():
    """bf16/fp16 logits go to fp32 before a log-softmax; fp64 (exact-equality tests) stays fp64."""
    for dtype, expected in [(torch.bfloat16, torch.float32), (torch.float16, torch.float32),
                            (torch.float32, torch.float32), (torch.float64, torch.float64)]:
        assert ppo.upcast(torch.zeros(2, dtype=dtype)).dtype == expected
    logits = torch.tensor([[[0.1, 0.2, 0.3]]], dtype=torch.float64)
    assert ppo.logprobs_from_logits(logits, torch.tensor([[1]])).dtype == torch.float64
