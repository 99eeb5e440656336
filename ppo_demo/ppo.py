"""Token-level PPO for language models as pure functions.

Shape letters: B batch (responses), T response length (padded), V vocabulary.
``mask`` is a (B, T) float tensor: 1 for real response tokens (up to and including the first
EOS), 0 for everything after. Every mean below is over real tokens only.

The pieces, in the order a PPO step uses them::

    log pi(a_t|s_t)      = log_softmax(logits_t / temperature)[a_t]
    KL_t (k1)            = log pi(a_t) - log pi_ref(a_t)
    KL_t (k2)            = 1/2 (log pi(a_t) - log pi_ref(a_t))^2
    KL_t (k3)            = (q - 1) - log q,  q = pi_ref(a_t) / pi(a_t)
    KL_t (exact)         = sum_v pi(v|s_t) (log pi(v|s_t) - log pi_ref(v|s_t))   (all V tokens)
    r_t                  = -beta * KL_t  (+ r_rm at the last real token)
    delta_t              = r_t + gamma * V_{t+1} - V_t          (V = 0 after the last token)
    A_t                  = delta_t + gamma * lambda * A_{t+1}
    R_t                  = A_t + V_t
    rho_t                = exp(log pi_new - log pi_old)
    L_clip               = E_t[min(rho_t A_t, clip(rho_t, 1-eps_low, 1+eps_high) A_t)]
    L_V                  = 1/2 E_t[max((V - R)^2, (V_old + clip(V - V_old, -eps_v, eps_v) - R)^2)]
    loss                 = -L_clip + c_V L_V - c_ent E_t[H_t]

E_t is the loss aggregation (``agg_loss``, veRL's names): token-mean (every real token of the
batch weighs the same), seq-mean-token-mean (each response's mean, then the mean over
responses), seq-mean-token-sum, seq-mean-token-sum-norm (each response's sum divided by a
constant length, then the mean over responses: Dr. GRPO).

Without a critic (GRPO, RLOO, REINFORCE) the GAE lines are replaced by a return-to-go and a
baseline from the other responses (see the section below), and L_V is dropped. With the KL in
the loss instead of the reward, r_t has no KL term and the loss gains + beta E_t[KL_t] (k3 by
default, as veRL's ``low_var_kl``).
"""

from __future__ import annotations

import torch


def upcast(x: torch.Tensor) -> torch.Tensor:
    """``x`` in at least float32: bf16/fp16 logits go to fp32 before a log-softmax; fp64 (the
    tests' exact-equality runs) stays fp64."""
    return x if x.dtype == torch.float64 else x.float()


def logprobs_from_logits(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[token] for each position.

    logits (B, T, V) already divided by the sampling temperature; tokens (B, T) -> (B, T).
    """
    log_p = torch.log_softmax(upcast(logits), dim=-1)  # (B, T, V)
    return log_p.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """H = -sum_v p_v log p_v per position: (B, T, V) -> (B, T)."""
    log_p = torch.log_softmax(upcast(logits), dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def logprobs_and_entropy_from_logits(logits: torch.Tensor, tokens: torch.Tensor,
                                     entropy_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Both of the above from one log-softmax: (B, T, V), (B, T) -> logprobs, entropy (B, T).

    Why: the update needs both, and each pass over the vocabulary costs a (B, T, V) tensor
    (9 MB per 48-token response of SmolLM2). With ``entropy_grad`` False (entropy coef 0) the
    entropy is only reported, so autograd keeps nothing for it.
    """
    log_p = torch.log_softmax(upcast(logits), dim=-1)  # (B, T, V)
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


KL_ESTIMATORS = ("k1", "k2", "k3")  # veRL's kl_penalty / kl_loss_type names: kl, mse, low_var_kl


def kl_per_token(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from the sampled tokens' logprobs. (B, T).

    k1 = log pi - log pi_ref: unbiased, but negative wherever pi_ref is the likelier one.
    k2 = 1/2 (log pi - log pi_ref)^2: never negative, biased (its *gradient* is the KL's).
    k3 = (q - 1) - log q with q = pi_ref / pi: also unbiased, and never negative.
    (Schulman, "Approximating KL divergence", 2020.) No clamping: veRL clamps k3 to [-10, 10]
    and its log q to [-20, 20] for stability; the lab shows the unclamped value.
    """
    log_ratio = logprobs - ref_logprobs  # log(pi / pi_ref)
    if estimator == "k1":
        return log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio.square()
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio  # (q - 1) - log q
    raise ValueError(f"unknown KL estimator {estimator!r}")


def exact_kl(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    """The true KL(pi || pi_ref) at each position, summed over the whole vocabulary:

        KL_t = sum_v pi(v|s_t) (log pi(v|s_t) - log pi_ref(v|s_t))  >= 0

    log_probs, ref_log_probs (..., V): full log-softmax of each distribution -> (...).
    The sampled-token estimators (k1, k2, k3) are one-sample estimates of it (k1, k3 unbiased).
    """
    return (log_probs.exp() * (log_probs - ref_log_probs)).sum(-1)


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


LOSS_AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


def agg_loss(loss_mat: torch.Tensor, mask: torch.Tensor, mode: str = "token-mean",
             norm_length: float | None = None) -> torch.Tensor:
    """Aggregate a per-token loss (B, T) into a scalar, with veRL's ``loss_agg_mode`` names:

        token-mean               sum_i sum_t l_it / sum_i |y_i|         every token weighs the same
        seq-mean-token-mean      1/B sum_i (1/|y_i| sum_t l_it)          every response weighs the same
        seq-mean-token-sum       1/B sum_i sum_t l_it                    longer responses weigh more
        seq-mean-token-sum-norm  1/(B L) sum_i sum_t l_it                L a constant (Dr. GRPO)

    B counts the responses with at least one real token. L is ``norm_length`` (the trainer passes
    max_new_tokens: veRL divides by the padded response length, which its rollout pads to the
    configured maximum); without it, T. token-mean and seq-mean-token-mean give a response's
    tokens less weight the longer it is (a long wrong answer is pushed down less per token: the
    length bias Dr. GRPO, Liu et al. 2025, points out); the token-sum modes do not.
    """
    if mode == "token-mean":
        return masked_mean(loss_mat, mask)
    seq_tokens = mask.sum(-1)  # (B,)
    seq_sum = masked_sum(loss_mat, mask, -1)  # (B,)
    seqs = (seq_tokens > 0).to(loss_mat.dtype).sum().clamp_min(1.0)
    if mode == "seq-mean-token-mean":
        return (seq_sum / seq_tokens.clamp_min(1.0)).sum() / seqs
    if mode == "seq-mean-token-sum":
        return seq_sum.sum() / seqs
    if mode == "seq-mean-token-sum-norm":
        return seq_sum.sum() / seqs / float(norm_length if norm_length is not None else mask.shape[-1])
    raise ValueError(f"unknown loss aggregation {mode!r}; choose one of {', '.join(LOSS_AGG_MODES)}")


def agg_count(mask: torch.Tensor, mode: str = "token-mean") -> torch.Tensor:
    """What ``agg_loss`` divides by (besides the constant L): real tokens for token-mean, else
    responses with at least one token. A mini-batch's loss is the sum of its micro-batches'
    losses, each weighted by its share of this count. mask (B, T) -> scalar."""
    return mask.sum() if mode == "token-mean" else (mask.sum(-1) > 0).to(mask.dtype).sum()


def ppo_policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                    mask: torch.Tensor, clip_eps: float, clip_eps_high: float | None = None,
                    loss_agg_mode: str = "token-mean",
                    norm_length: float | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate loss -E_t[min(rho·A, clip(rho, 1-eps_low, 1+eps_high)·A)] and its diagnostics.

    eps_low = ``clip_eps``; eps_high = ``clip_eps_high`` (None: the same, symmetric PPO; DAPO's
    clip-higher sets it above eps_low so unlikely tokens can still grow). E_t is ``agg_loss``
    with ``loss_agg_mode``. All inputs (B, T). Returns the scalar loss and, detached, each a
    mean over real tokens: ``ratio_mean``; ``clip_frac`` (share with rho outside
    [1-eps_low, 1+eps_high], CleanRL's); ``clip_frac_low`` (rho < 1-eps_low with A < 0) and
    ``clip_frac_high`` (rho > 1+eps_high with A > 0): the tokens whose gradient the clip
    stopped, TRL's clip_ratio/low_mean and /high_mean, together veRL's pg_clipfrac; and
    ``approx_kl`` (k3 form, E[(rho-1) - log rho], an estimate of KL(pi_old || pi_new) that is
    never negative; CleanRL uses the same).
    """
    eps_low, eps_high = clip_eps, clip_eps if clip_eps_high is None else clip_eps_high
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    surrogate = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * advantages
    loss = -agg_loss(torch.min(surrogate, clipped), mask, loss_agg_mode, norm_length)
    with torch.no_grad():
        below, above = ratio < 1.0 - eps_low, ratio > 1.0 + eps_high
        stats = {
            "ratio_mean": masked_mean(ratio, mask),
            "clip_frac": masked_mean((below | above).float(), mask),
            "clip_frac_low": masked_mean((below & (advantages < 0)).float(), mask),
            "clip_frac_high": masked_mean((above & (advantages > 0)).float(), mask),
            "approx_kl": masked_mean((ratio - 1.0) - log_ratio, mask),
        }
    return loss, stats


def ppo_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                   mask: torch.Tensor, clip_eps: float, loss_agg_mode: str = "token-mean",
                   norm_length: float | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """1/2 E_t[max((V - R)^2, (V_clipped - R)^2)], V_clipped = V_old + clip(V - V_old, ±eps).

    All inputs (B, T). The clip is around the *old* values (those of the rollout). E_t is
    ``agg_loss`` (veRL's critic takes the actor's loss_agg_mode too).
    Returns the loss and ``value_clip_frac`` (share of tokens where the clipped term won).
    """
    clipped_values = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
    loss_unclipped = (values - returns) ** 2
    loss_clipped = (clipped_values - returns) ** 2
    loss = 0.5 * agg_loss(torch.max(loss_unclipped, loss_clipped), mask, loss_agg_mode, norm_length)
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


# --- Advantages without a critic: GRPO, RLOO, REINFORCE ---------------------------------------
#
# All three read the same (B, T) per-token rewards GAE reads. With
#
#     G_t = sum_{t' >= t} gamma^(t'-t) r_t'        the return-to-go (score + KL rewards from t on)
#
# each response's whole return is G_0 (score + all its KL rewards), and:
#     reinforce  A_t = G_t - b,  b = mean of G_0 over the batch (or 0)     per token
#     rloo       A_t = G_0 - mean of G_0 over the *other* responses to the prompt
#     grpo       A_t = (G_0 - mean of G_0 over the group) / (std of G_0 over the group + eps)
#
# GRPO and RLOO compare whole responses: one number per response, broadcast on its tokens,
# term and baseline both from G_0 (veRL's compute_grpo/rloo_outcome_advantage sum each
# response's token-level rewards the same way). So a group of identical answers gets A = 0
# even with the KL in the reward. (Subtracting the group mean of G_0 from the per-token G_t
# instead would mix two different quantities: with the std near 0 it explodes.) REINFORCE has no
# group and keeps the return-to-go, as veRL's REINFORCE++: a token is charged the KL of the
# tokens from it to the end, never that of the tokens before it.
#
# With the KL in the loss (kl_in="loss") the trainer passes rewards built with beta 0: the only
# reward is the score at the last token, G_t = score for every t.
#
# Groups are consecutive rows: rows [k*G, (k+1)*G) are G samples of one prompt.


def returns_to_go(rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """G_t = r_t + gamma * G_{t+1} over each response's real tokens, 0 on padding.

    rewards, mask (B, T) -> (B, T). This is GAE with V = 0 and lambda = 1.
    """
    B, T = rewards.shape
    out = torch.zeros_like(rewards)
    running = torch.zeros(B, dtype=rewards.dtype, device=rewards.device)  # G_{t+1}
    for t in reversed(range(T)):
        running = (rewards[:, t] + gamma * running) * mask[:, t]
        out[:, t] = running
    return out


def _groups(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B,) -> (B/G, G): consecutive rows form a group."""
    if group_size < 2 or x.shape[0] % group_size:
        raise ValueError(f"a batch of {x.shape[0]} responses cannot be split into groups of {group_size} "
                         "(need a group size of at least 2 that divides the batch)")
    return x.view(-1, group_size)


def _from_first(whole: torch.Tensor) -> torch.Tensor:
    """(B/G, G) -> each group minus its first value. Means, stds and differences are unchanged
    (up to rounding), but a group whose values all tie becomes exactly 0: (x + x + x) / 3 can
    miss x by one rounding step, which divided by std + 1e-4 (std ~1e-8) would give identical
    answers an advantage of ~1e-3 instead of 0."""
    return whole - whole[:, :1]


def reinforce_advantages(rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
                         baseline: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE (Williams 1992): A_t = G_t - b with b the batch mean of the whole returns G_0.

    rewards, mask (B, T) -> advantages, returns (B, T), 0 on padding. ``returns`` is G_t.
    Without ``baseline`` the advantage is the raw return: unbiased, but every token of a
    response with a positive score is pushed up, good answer or merely less bad.
    """
    returns = returns_to_go(rewards, mask, gamma)  # (B, T)
    b = returns[:, 0].mean() if baseline else torch.zeros((), dtype=returns.dtype, device=returns.device)
    return (returns - b) * mask, returns


def rloo_advantages(rewards: torch.Tensor, mask: torch.Tensor, group_size: int,
                    gamma: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE leave-one-out (Kool et al. 2019; Ahmadian et al. 2024).

    A_{i,t} = G_{i,0} - 1/(G-1) sum_{j != i} G_{j,0} on every real token of response i, the j
    running over its group; = G/(G-1) * (G_{i,0} - mean_group). The baseline never sees
    response i itself, so it stays unbiased. rewards, mask (B, T) -> advantages (B, T) and
    returns (B, T): the return-to-go G_t (shown per token; the advantage uses G_0 only).
    """
    returns = returns_to_go(rewards, mask, gamma)  # (B, T)
    d = _from_first(_groups(returns[:, 0], group_size))  # (B/G, G) each G_0, shifted (see below)
    baseline = (d.sum(-1, keepdim=True) - d) / (group_size - 1)  # (B/G, G)
    return (d - baseline).reshape(-1, 1) * mask, returns


def grpo_advantages(rewards: torch.Tensor, mask: torch.Tensor, group_size: int, gamma: float = 1.0,
                    eps: float = 1e-4, std_norm: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Group-relative advantages (GRPO, Shao et al. 2024, DeepSeekMath).

    A_{i,t} = (G_{i,0} - mean_group G_0) / (std_group G_0 + eps), the same on every real token
    of response i. std is the unbiased one (divides by G - 1), as TRL's GRPOTrainer
    (``.std(dim=1)``) and veRL's (``torch.std``); eps 1e-4 as TRL's (veRL: 1e-6). A group whose
    returns all agree gets A = 0 (no signal, and no NaN). ``std_norm`` False is Dr. GRPO (Liu et
    al. 2025): A = G_{i,0} - mean_group G_0, no division, so a group that nearly agrees is not
    blown up to unit scale. rewards, mask (B, T) -> advantages (B, T) and returns (B, T): the
    return-to-go G_t (shown per token; the advantage uses G_0 only).
    """
    returns = returns_to_go(rewards, mask, gamma)  # (B, T)
    d = _from_first(_groups(returns[:, 0], group_size))  # (B/G, G) each G_0, shifted (see below)
    centred = d - d.mean(-1, keepdim=True)  # (B/G, G)
    if std_norm:
        centred = centred / (d.std(-1, correction=1, keepdim=True) + eps)
    return centred.reshape(-1, 1) * mask, returns


def frac_reward_zero_std(scores: torch.Tensor, group_size: int) -> float:
    """Share of groups whose G scores all tie (TRL's ``frac_reward_zero_std``): GRPO and RLOO
    give every answer of such a group A = 0, so they learn nothing from it. scores (B,) ->
    a number in [0, 1]; NaN when there are no groups (G < 2)."""
    if group_size < 2 or scores.shape[0] % group_size:
        return float("nan")
    groups = scores.view(-1, group_size)  # (B/G, G)
    return float((groups == groups[:, :1]).all(-1).float().mean())


# --- KL as a loss term, and the adaptive coefficient ------------------------------------------


def kl_penalty_loss(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor,
                    estimator: str = "k3", loss_agg_mode: str = "token-mean",
                    norm_length: float | None = None) -> torch.Tensor:
    """E_t[KL_t], the KL term GRPO adds to the loss (times beta) instead of to the reward.

    KL_t is ``kl_per_token`` with ``estimator`` (veRL's kl_loss_type; its default low_var_kl
    is k3) and E_t is ``agg_loss``. k3 = (q - 1) - log q with q = pi_ref / pi: >= 0, and 0 only
    where pi = pi_ref. logprobs (B, T) with gradient, ref_logprobs (B, T) without, mask (B, T)
    -> scalar. d k3 / d log pi = 1 - q: positive where pi is likelier than pi_ref, so a descent
    step lowers log pi there (and raises it where pi_ref is the likelier one). d k2 / d log pi
    = log pi - log pi_ref, the gradient of the true KL in expectation; d k1 / d log pi = 1
    pushes every sampled token down whatever pi_ref says (its expected gradient is 0).
    """
    return agg_loss(kl_per_token(logprobs, ref_logprobs.detach(), estimator), mask, loss_agg_mode, norm_length)


def adaptive_kl_coef(kl_coef: float, current_kl: float, target_kl: float, horizon: float,
                     n_steps: int) -> float:
    """One update of the adaptive KL controller (Ziegler et al. 2019, "Fine-Tuning Language
    Models from Human Preferences", section 2.2), as TRL's former ``AdaptiveKLController``:

        e     = clip(KL / KL_target - 1, -0.2, 0.2)      proportional error, bounded
        beta <- beta * (1 + e * n_steps / horizon)

    TRL calls it once per step with the step's mean *per-response* KL (summed over tokens) and
    n_steps = responses in the step; the trainer does the same. beta grows while the policy is
    further than the target from pi_ref and shrinks while it is closer; ``horizon`` (in
    responses) sets how slowly: at most a factor 1.2^(n_steps/horizon) per step.
    """
    error = min(max(current_kl / target_kl - 1.0, -0.2), 0.2)
    return kl_coef * (1.0 + error * n_steps / horizon)


# --- Which tokens the clip stops ---------------------------------------------------------------
#
# The clipped objective min(rho A, clip(rho, 1-eps, 1+eps) A) has six cases per token: the
# sign of A times where rho sits. In two of them the clipped term is the smaller one and is
# constant in theta: the token has already moved far enough *in the direction A asks for*,
# and its gradient is exactly 0. In the other four the unclipped rho·A is taken (or both agree)
# and the token still pushes. A = 0 gets its own code: no push at all (a GRPO group whose
# answers all scored the same).

CLIP_BELOW, CLIP_INSIDE, CLIP_ABOVE = 0, 1, 2  # where rho sits, relative to [1-eps, 1+eps]

CLIP_CASES: tuple[dict, ...] = (
    # code = 3 * (0 if A > 0 else 1) + region; code 6: A = 0; -1: padding
    dict(code=0, advantage="A > 0", rho="rho < 1-eps", pushes=True,
         why="a good token that became less likely: rho·A is the smaller term, it is pushed back up"),
    dict(code=1, advantage="A > 0", rho="inside", pushes=True,
         why="a good token, ratio in range: pushed up"),
    dict(code=2, advantage="A > 0", rho="rho > 1+eps", pushes=False,
         why="a good token already made likelier by more than eps: clipped, gradient 0"),
    dict(code=3, advantage="A < 0", rho="rho < 1-eps", pushes=False,
         why="a bad token already made less likely by more than eps: clipped, gradient 0"),
    dict(code=4, advantage="A < 0", rho="inside", pushes=True,
         why="a bad token, ratio in range: pushed down"),
    dict(code=5, advantage="A < 0", rho="rho > 1+eps", pushes=True,
         why="a bad token that became likelier: rho·A is the smaller term, it is pushed back down"),
    dict(code=6, advantage="A = 0", rho="any", pushes=False,
         why="no advantage: nothing to push (e.g. every answer in the group scored the same)"),
)


def clip_cases(ratio: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
               clip_eps: float, clip_eps_high: float | None = None) -> torch.Tensor:
    """Case code of each token (see ``CLIP_CASES``): ratio, advantages, mask (B, T) -> long (B, T).

    Regions use the same strict inequalities as ``clip_frac`` (rho < 1 - eps_low or
    rho > 1 + eps_high is outside; eps_high = ``clip_eps_high``, or ``clip_eps`` when None).
    Padding gets -1.
    """
    eps_high = clip_eps if clip_eps_high is None else clip_eps_high
    region = torch.full_like(ratio, CLIP_INSIDE, dtype=torch.long)
    region[ratio < 1.0 - clip_eps] = CLIP_BELOW
    region[ratio > 1.0 + eps_high] = CLIP_ABOVE
    codes = torch.where(advantages > 0, region, region + 3)
    codes = torch.where(advantages == 0, torch.full_like(codes, 6), codes)
    return torch.where(mask > 0, codes, torch.full_like(codes, -1))
