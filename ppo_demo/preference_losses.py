"""Learning from preferences as pure functions: the reward model's loss, DPO's loss, and how a
learned score enters the PPO reward.

Shape letters: B pairs (one chosen and one rejected answer each), T response length (padded).
``mask`` is a (B, T) float tensor, 1 on real response tokens. Every loss is a mean over pairs.

The pieces::

    Bradley–Terry      P(y_w ≻ y_l | x)  = σ(r(x, y_w) − r(x, y_l))
    reward model loss  L_RM  = −E[ log σ(r_w − r_l) ]                          (Ouyang et al. 2022)
    sequence log-prob  log π(y | x)      = Σ_t log π(y_t | x, y_<t)             (response tokens only)
    implicit reward    r̂(x, y)           = β (log π(y|x) − log π_ref(y|x))
    DPO loss           L_DPO = −E[ log σ(r̂_w − r̂_l) ]                          (Rafailov et al. 2023)
                             = −E[ log σ(β [(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))]) ]
    PPO score          rule | (r − μ)/σ | rule + (r − μ)/σ   at the last real token

Both losses are the same logistic loss on a difference of scores: the reward model learns an
explicit score r, DPO reads an implicit one off the policy's own log-probabilities. At the start
of training both scores are equal for the two answers, so both losses start at log 2 ≈ 0.693.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

REWARD_SOURCES = ("rule", "reward_model", "both")
LOG_2 = math.log(2.0)


def bradley_terry_loss(chosen_scores: torch.Tensor, rejected_scores: torch.Tensor) -> torch.Tensor:
    """L_RM = mean_i −log σ(r_w,i − r_l,i): (B,), (B,) -> scalar.

    ``−log σ(z)`` is computed as ``softplus(−z)`` (``F.logsigmoid``), which stays finite for a
    large margin of either sign where ``log(sigmoid(z))`` would round to log 0.
    """
    return -F.logsigmoid(chosen_scores - rejected_scores).mean()


def pairwise_accuracy(chosen_scores: torch.Tensor, rejected_scores: torch.Tensor) -> float:
    """Share of pairs whose chosen answer scores higher: (B,), (B,) -> float in [0, 1].

    A tie counts one half (a coin flip), so a model that scores everything the same, as a fresh
    reward model with its zero head does, sits at chance, 0.5, not at 0. (TRL counts a tie as
    wrong; the two agree whenever no scores tie.)
    """
    wins = (chosen_scores > rejected_scores).float()
    ties = (chosen_scores == rejected_scores).float()
    return float((wins + 0.5 * ties).mean())


def sequence_logprobs(token_logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log π(y | x) = Σ_t mask_t · log π(y_t | ...): (B, T), (B, T) -> (B,)."""
    return (token_logprobs * mask).sum(-1)


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The DPO loss and its diagnostics. Each input (B,) is a sequence log-prob (summed over the
    response's tokens, :func:`sequence_logprobs`); ``beta`` > 0.

        r̂_w = β (log π(y_w) − log π_ref(y_w)),   r̂_l = β (log π(y_l) − log π_ref(y_l))
        L   = mean −log σ(r̂_w − r̂_l)

    Returns (loss, stats) with stats (detached scalars): ``chosen_reward`` mean r̂_w,
    ``rejected_reward`` mean r̂_l, ``reward_margin`` mean (r̂_w − r̂_l), ``reward_accuracy``
    share of pairs with r̂_w > r̂_l (TRL's rewards/accuracies, ties count as wrong, as there).
    """
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)  # (B,)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)  # (B,)
    margins = chosen_rewards - rejected_rewards  # (B,)
    loss = -F.logsigmoid(margins).mean()
    stats = {
        "chosen_reward": chosen_rewards.detach().mean(),
        "rejected_reward": rejected_rewards.detach().mean(),
        "reward_margin": margins.detach().mean(),
        "reward_accuracy": (margins.detach() > 0).float().mean(),
    }
    return loss, stats


def normalize_scores(scores: torch.Tensor, mean: float, std: float, eps: float = 1e-8) -> torch.Tensor:
    """(r − μ) / σ: a reward model's raw scale is arbitrary (the loss only sees differences),
    so its scores are put on the scale of the answers it was trained on (μ, σ over them) before
    they meet the rule's ±1. (B,) -> (B,)."""
    return (scores - mean) / max(std, eps)


def combine_scores(rule_scores: torch.Tensor, rm_scores: torch.Tensor | None, source: str) -> torch.Tensor:
    """The score PPO adds at each response's last real token, (B,):

    * ``rule``: the rule reward alone (``rm_scores`` may be None);
    * ``reward_model``: the reward model's (normalised) score alone;
    * ``both``: their sum.
    """
    if source == "rule":
        return rule_scores
    if source not in REWARD_SOURCES:
        raise ValueError(f"reward source must be one of {', '.join(REWARD_SOURCES)}; got {source!r}")
    if rm_scores is None:
        raise ValueError(f"reward source {source!r} needs the reward model's scores")
    rm_scores = rm_scores.to(rule_scores.dtype)
    return rm_scores if source == "reward_model" else rule_scores + rm_scores
