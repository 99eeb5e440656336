"""Per-step numbers a lesson needs that the trainer's metrics do not carry, read from the
step's rollouts (the per-token lists the Tokens view shows). Pure functions over
:class:`~ppo_demo.trainer.RolloutRecord` lists: no model, no tensors.

    kl_neg_frac       fraction of real tokens whose KL_t estimate is below -NEG_KL_TOL
    kl_token_min      the smallest per-token KL_t estimate of the step
    adv_rms           sqrt(mean_t A_t^2) over real tokens: the size of the advantages the
                      policy loss multiplies (the gradient's noise grows with it)
    adv_mean          mean_t A_t over real tokens (a baseline pulls it toward 0)
    zero_adv_frac     fraction of real tokens with A_t exactly 0
    tied_group_frac   fraction of groups (G answers to one prompt) whose scores are all equal
    exact_success     fraction of responses equal to the expected answer (the 'exact' rule),
                      a truth check held out from whatever rule the run is rewarded by
"""

from __future__ import annotations

import math

from ..reward import RewardConfig, is_hit

# k1 on two identical networks differs from 0 only by float rounding of log-probs (|x| < 1e-5
# for fp32 log-softmax of a 49k vocabulary); a token counts as negative below this bound.
NEG_KL_TOL = 1e-4
_EXACT = RewardConfig(match_mode="exact")

PROBE_KEYS = ("kl_neg_frac", "kl_token_min", "adv_rms", "adv_mean", "zero_adv_frac", "tied_group_frac",
              "exact_success")


def step_probes(rollouts, group_size: int = 1) -> dict[str, float]:
    """The probe numbers of one step from its rollouts (see the module docstring)."""
    kl = [v for r in rollouts for v in r.kl]
    adv = [v for r in rollouts for v in r.train_advantages]
    out = {
        "kl_neg_frac": sum(v < -NEG_KL_TOL for v in kl) / len(kl) if kl else math.nan,
        "kl_token_min": min(kl) if kl else math.nan,
        "adv_rms": math.sqrt(sum(v * v for v in adv) / len(adv)) if adv else math.nan,
        "adv_mean": sum(adv) / len(adv) if adv else math.nan,
        "zero_adv_frac": sum(v == 0.0 for v in adv) / len(adv) if adv else math.nan,
        "tied_group_frac": tied_group_fraction([r.score for r in rollouts], group_size),
        "exact_success": (sum(is_hit(r.response, r.expected, _EXACT) for r in rollouts) / len(rollouts)
                          if rollouts else math.nan),
    }
    return out


def tied_group_fraction(scores: list[float], group_size: int) -> float:
    """Fraction of consecutive groups of ``group_size`` scores that are all equal (NaN for G = 1:
    a single answer has nothing to tie with)."""
    if group_size < 2 or len(scores) < group_size:
        return math.nan
    groups = [scores[i:i + group_size] for i in range(0, len(scores) - group_size + 1, group_size)]
    return sum(max(g) == min(g) for g in groups) / len(groups)
