"""Token-level PPO for language models as pure functions.

Shape letters: B batch (responses), T response length (padded), V vocabulary.
``mask`` is a (B, T) float tensor: 1 for real response tokens (up to and including the first
EOS), 0 for everything after. Every mean below is over real tokens only.

The pieces, in the order a PPO step uses them::

    log pi(a_t|s_t)      = log_softmax(logits_t / temperature)[a_t]
    KL_t (k1)            = log pi(a_t) - log pi_ref(a_t)
    KL_t (k3)            = (q - 1) - log q,  q = pi_ref(a_t) / pi(a_t)
    r_t                  = -beta * KL_t  (+ r_rm at the last real token)
    delta_t              = r_t + gamma * V_{t+1} - V_t          (V = 0 after the last token)
    A_t                  = delta_t + gamma * lambda * A_{t+1}
    R_t                  = A_t + V_t
    rho_t                = exp(log pi_new - log pi_old)
    L_clip               = E_t[min(rho_t A_t, clip(rho_t, 1-eps, 1+eps) A_t)]
    L_V                  = 1/2 E_t[max((V - R)^2, (V_old + clip(V - V_old, -eps_v, eps_v) - R)^2)]
    loss                 = -L_clip + c_V L_V - c_ent E_t[H_t]
"""

from __future__ import annotations

import torch


def logprobs_from_logits(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[token] for each position.

    logits (B, T, V) already divided by the sampling temperature; tokens (B, T) -> (B, T).
    """
    log_p = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    return log_p.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """H = -sum_v p_v log p_v per position: (B, T, V) -> (B, T)."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def logprobs_and_entropy_from_logits(logits: torch.Tensor, tokens: torch.Tensor,
                                     entropy_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Both of the above from one log-softmax: (B, T, V), (B, T) -> logprobs, entropy (B, T).

    Why: the update needs both, and each pass over the vocabulary costs a (B, T, V) tensor
    (9 MB per 48-token response of SmolLM2). With ``entropy_grad`` False (entropy coef 0) the
    entropy is only reported, so autograd keeps nothing for it.
    """
    log_p = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    logprobs = log_p.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # (B, T)
    with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
        entropy = -(log_p.exp() * log_p).sum(-1)  # (B, T)
    return logprobs, entropy


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    return (x * mask).sum() if dim is None else (x * mask).sum(dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    """Mean of x over positions where mask is 1 (over all of them, or along ``dim``)."""
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp_min(1.0)
    return (x * mask).sum(dim) / mask.sum(dim).clamp_min(1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of x over the masked positions (Bessel-corrected when ``unbiased``)."""
    mean = masked_mean(x, mask)
    count = mask.sum()
    var = masked_mean((x - mean) ** 2, mask)
    if unbiased and count > 1:
        var = var * count / (count - 1)
    return var


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) over the batch's real tokens; padding stays 0. (B, T)."""
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    return (x - mean) * torch.rsqrt(var + eps) * mask


def whiten_per_sequence(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """The seed's whitening, one response at a time: (x - mean_i) / max(std_i, eps).

    std is the unbiased one (torch.std); for a one-token response it is undefined, and we
    divide by 1 (the seed would produce NaN there). (B, T) -> (B, T).
    """
    count = mask.sum(-1, keepdim=True)  # (B, 1)
    mean = masked_sum(x, mask, -1).unsqueeze(-1) / count.clamp_min(1.0)
    sq = masked_sum((x - mean) ** 2, mask, -1).unsqueeze(-1)
    std = torch.where(count > 1, (sq / (count - 1).clamp_min(1.0)).sqrt(), torch.ones_like(sq))
    return (x - mean) / std.clamp_min(eps) * mask


def kl_per_token(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from the sampled tokens' logprobs. (B, T).

    k1 = log pi - log pi_ref: unbiased, but negative wherever pi_ref is the likelier one.
    k3 = (q - 1) - log q with q = pi_ref / pi: also unbiased, and never negative.
    """
    log_ratio = logprobs - ref_logprobs  # log(pi / pi_ref)
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio  # (q - 1) - log q
    raise ValueError(f"unknown KL estimator {estimator!r}")


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token: (B, T) -> (B,). A row with no token gives 0."""
    return (mask.sum(-1).long() - 1).clamp_min(0)


def per_token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """r_t = -beta·KL_t on every real token, plus the rule score at the last real token.

    scores (B,), kl (B, T), mask (B, T) -> rewards (B, T), 0 on padding.
    """
    rewards = -kl_coef * kl * mask
    rows = torch.arange(mask.shape[0], device=mask.device)
    rewards[rows, last_token_index(mask)] += scores.to(rewards.dtype)
    return rewards


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation, right to left over each response's real tokens.

    rewards, values, mask (B, T) -> advantages, returns (B, T), both 0 on padding.
    The value after the last real token is 0 (the episode ends there).
    """
    B, T = rewards.shape
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros(B, dtype=rewards.dtype, device=rewards.device)  # A_{t+1}
    next_value = torch.zeros(B, dtype=rewards.dtype, device=rewards.device)  # V_{t+1}
    for t in reversed(range(T)):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = (delta + gamma * lam * next_advantage) * mask[:, t]
        advantages[:, t] = next_advantage
        next_value = values[:, t] * mask[:, t]
    returns = (advantages + values) * mask
    return advantages, returns


def ppo_policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                    mask: torch.Tensor, clip_eps: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate loss -E_t[min(rho·A, clip(rho, 1-eps, 1+eps)·A)] and its diagnostics.

    All inputs (B, T). Returns the scalar loss and, detached: ``ratio_mean``, ``clip_frac``
    (share of tokens with |rho - 1| > eps) and ``approx_kl`` (k3 form, E[(rho-1) - log rho],
    an estimate of KL(pi_old || pi_new) that is never negative; CleanRL uses the same).
    """
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    surrogate = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    loss = -masked_mean(torch.min(surrogate, clipped), mask)
    with torch.no_grad():
        stats = {
            "ratio_mean": masked_mean(ratio, mask),
            "clip_frac": masked_mean(((ratio - 1.0).abs() > clip_eps).float(), mask),
            "approx_kl": masked_mean((ratio - 1.0) - log_ratio, mask),
        }
    return loss, stats


def ppo_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                   mask: torch.Tensor, clip_eps: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """1/2 E_t[max((V - R)^2, (V_clipped - R)^2)], V_clipped = V_old + clip(V - V_old, ±eps).

    All inputs (B, T). The clip is around the *old* values (those of the rollout).
    Returns the loss and ``value_clip_frac`` (share of tokens where the clipped term won).
    """
    clipped_values = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
    loss_unclipped = (values - returns) ** 2
    loss_clipped = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.max(loss_unclipped, loss_clipped), mask)
    with torch.no_grad():
        stats = {"value_clip_frac": masked_mean((loss_clipped > loss_unclipped).float(), mask)}
    return loss, stats


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - Var[R - V] / Var[R] over real tokens: 1 = perfect critic, 0 = no better than a
    constant, < 0 = worse. NaN when the returns do not vary."""
    var_returns = masked_var(returns, mask)
    if var_returns <= 0:
        return torch.tensor(float("nan"))
    return 1.0 - masked_var(returns - values, mask) / var_returns
