"""The loss variants inside the trainer, on tiny random models: loss aggregation (micro-batches
still give the update of one pass), clip-higher, Dr. GRPO, the KL estimators in the reward and
in the loss, the exact KL, and the metrics the field reports.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_loss_variants.py
"""

import math

import pytest
import torch

from ppo_demo import ppo
from ppo_demo import trainer as trainer_module
from ppo_demo.config import ConfigError, TrainConfig
from ppo_demo.reward import RewardConfig
from ppo_demo.tasks import Task
from ppo_demo.text import LocalizedError
from ppo_demo.trainer import PPOTrainer
from test_memory_knobs import assert_same_run, run_two_steps

TASKS = [Task("say hi", "h"), Task("count", "1"), Task("name a colour", "e")]
REWARD = RewardConfig(match_mode="contains")


def make(tiny, **knobs):
    base = dict(steps=2, batch_size=6, group_size=2, max_new_tokens=6, ppo_epochs=1, num_minibatches=1, seed=7)
    return PPOTrainer(tiny, TrainConfig(**{**base, **knobs}).validate(), TASKS, REWARD)


# --- aggregation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"])
def test_micro_batches_give_the_same_update_in_every_aggregation_mode(mode):
    """A micro-batch's share is its share of responses here, not of tokens (responses of
    different lengths, so a token-weighted sum would give another update)."""
    assert_same_run(run_two_steps(micro_batch_tokens=0, loss_agg_mode=mode),
                    run_two_steps(micro_batch_tokens=1, loss_agg_mode=mode))


def test_the_aggregation_mode_changes_the_update():
    """Guards the test above: the modes do weigh the tokens differently on this batch."""
    token_mean = run_two_steps(loss_agg_mode="token-mean")[0][0]["policy_loss"]
    seq_mean = run_two_steps(loss_agg_mode="seq-mean-token-mean")[0][0]["policy_loss"]
    assert abs(token_mean - seq_mean) > 1e-6


def test_agg_loss_hand_example():
    # row 0: losses 1, 3 (2 tokens); row 1: loss 6 (1 token); L = 4
    loss = torch.tensor([[1.0, 3.0], [6.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    assert ppo.agg_loss(loss, mask, "token-mean").item() == pytest.approx(10 / 3)
    assert ppo.agg_loss(loss, mask, "seq-mean-token-mean").item() == pytest.approx((2 + 6) / 2)
    assert ppo.agg_loss(loss, mask, "seq-mean-token-sum").item() == pytest.approx((4 + 6) / 2)
    assert ppo.agg_loss(loss, mask, "seq-mean-token-sum-norm", norm_length=4).item() == pytest.approx(10 / 2 / 4)
    with pytest.raises(ValueError, match="unknown loss aggregation"):
        ppo.agg_loss(loss, mask, "token-sum")


# --- clip-higher ---------------------------------------------------------------------------------

def test_clip_higher_hand_example():
    # A = +1 on both tokens: rho 1.25 is clipped at 1 + 0.2 but not at 1 + 0.28; rho 0.7 with
    # A > 0 is never clipped (min takes rho A). Symmetric: -(1.2 + 0.7)/2; clip-higher: -(1.25 + 0.7)/2
    old = torch.zeros(1, 2)
    new = torch.log(torch.tensor([[1.25, 0.7]]))
    adv, mask = torch.ones(1, 2), torch.ones(1, 2)
    sym, s_stats = ppo.ppo_policy_loss(new, old, adv, mask, 0.2)
    high, h_stats = ppo.ppo_policy_loss(new, old, adv, mask, 0.2, 0.28)
    assert sym.item() == pytest.approx(-(1.2 + 0.7) / 2) and high.item() == pytest.approx(-(1.25 + 0.7) / 2)
    assert s_stats["clip_frac_high"].item() == 0.5 and h_stats["clip_frac_high"].item() == 0.0
    assert s_stats["clip_frac"].item() == 1.0  # CleanRL's count: both outside [0.8, 1.2]
    assert s_stats["clip_frac_low"].item() == 0.0  # rho 0.7 < 0.8 but A > 0: still pushes
    codes = ppo.clip_cases(torch.tensor([[1.25, 0.7]]), adv, mask, 0.2, 0.28)
    assert codes.tolist() == [[1, 0]]  # 1.25 inside [0.8, 1.28]


def test_clip_eps_high_is_validated_in_both_languages():
    with pytest.raises(ConfigError) as raised:
        TrainConfig(clip_eps_high=-0.1).validate()
    assert isinstance(raised.value, LocalizedError)
    assert "Clip ε high" in str(raised.value) and "ε_high" in raised.value.in_lang("zh")
    assert raised.value.in_lang("zh") != str(raised.value)
    assert TrainConfig.from_dict({"clip_eps_high": ""}).clip_eps_high is None
    assert TrainConfig.from_dict({"clip_eps_high": "0.28"}).clip_eps_high == 0.28


# --- the trainer ---------------------------------------------------------------------------------

@pytest.mark.parametrize("knobs", [
    dict(advantage_estimator="grpo", grpo_std_norm=False, loss_agg_mode="seq-mean-token-sum-norm"),
    dict(advantage_estimator="grpo", clip_eps_high=0.28, kl_in="loss", kl_loss_estimator="k2"),
    dict(advantage_estimator="gae", kl_estimator="k2", loss_agg_mode="seq-mean-token-mean"),
    dict(advantage_estimator="rloo", kl_in="loss", kl_loss_estimator="k1", loss_agg_mode="seq-mean-token-sum"),
])
def test_every_variant_trains(tiny, knobs):
    results = list(make(tiny, learning_rate=1e-2, **knobs).train(2))
    assert all(r.updated for r in results)
    m = results[-1].metrics
    for key in ("policy_loss", "clip_frac", "clip_frac_low", "clip_frac_high", "entropy", "kl_exact",
                "frac_reward_zero_std"):
        assert math.isfinite(m[key]), key
    assert m["clip_frac_low"] + m["clip_frac_high"] <= m["clip_frac"] + 1e-9


def test_k2_in_the_reward(tiny):
    trainer = make(tiny, kl_estimator="k2", learning_rate=1e-2, kl_coef=0.5)
    second = list(trainer.train(2))[1]
    for r in second.rollouts:
        expected = [0.5 * (lp - ref) ** 2 for lp, ref in zip(r.logprobs, r.ref_logprobs)]
        assert r.kl == pytest.approx(expected, abs=1e-4)
        assert r.rewards[0] == pytest.approx(-0.5 * r.kl[0] + (r.score if len(r.tokens) == 1 else 0.0), abs=1e-4)


def test_frac_reward_zero_std(tiny, monkeypatch):
    assert ppo.frac_reward_zero_std(torch.tensor([1.0, 1.0, 0.0, 1.0, 0.5, 0.5]), 2) == pytest.approx(2 / 3)
    assert math.isnan(ppo.frac_reward_zero_std(torch.tensor([1.0, 0.0]), 1))
    monkeypatch.setattr(trainer_module, "rule_reward", lambda *a, **k: 0.5)
    result = next(make(tiny, advantage_estimator="rloo").train(1))
    assert result.metrics["frac_reward_zero_std"] == 1.0
    assert all(a == 0.0 for r in result.rollouts for a in r.advantages)  # KL in the reward, yet A = 0


# --- exact KL ------------------------------------------------------------------------------------

def test_exact_kl_is_zero_before_training_and_never_negative_after(tiny):
    trainer = make(tiny, learning_rate=5e-2, kl_estimator="k1")
    first, second = list(trainer.train(2))
    assert first.metrics["kl_exact"] == pytest.approx(0.0, abs=1e-6)  # fresh LoRA: pi = pi_ref
    assert second.metrics["kl_exact"] > 1e-4
    values = [v for r in second.rollouts for v in r.kl_exact]
    assert min(values) >= -1e-6
    assert len(values) == sum(len(r.tokens) for r in second.rollouts)


def test_exact_kl_is_the_same_from_the_sampling_pass_and_from_a_scoring_pass(tiny, monkeypatch):
    """fp32 on CPU takes pi's distribution from the sampling pass; bf16/CUDA from a separate
    scoring pass. Both must give the same exact KL (to float rounding)."""
    def run():
        trainer = make(tiny, learning_rate=5e-2)
        return [r.kl_exact for r in list(trainer.train(2))[1].rollouts]

    from_sampling = run()
    monkeypatch.setattr(PPOTrainer, "_scores_from_sampling", property(lambda self: False))
    from_scoring = run()
    for a, b in zip(from_sampling, from_scoring):
        assert a == pytest.approx(b, abs=1e-4)


def test_exact_kl_off_reports_nan_and_no_token_values(tiny):
    result = next(make(tiny, exact_kl=False).train(1))
    assert math.isnan(result.metrics["kl_exact"])
    assert all(r.kl_exact == [] for r in result.rollouts)


def test_exact_kl_heatmap_view(tiny):
    from ppo_demo.ui.heatmap import heatmap_html, token_values

    record = next(make(tiny).train(1)).rollouts[0]
    assert token_values(record, "kl_exact") == record.kl_exact
    assert "exact KL" in heatmap_html(record, "kl_exact")
    record.kl_exact = []
    assert "not computed" in heatmap_html(record, "kl_exact")
    assert "没有计算精确 KL" in heatmap_html(record, "kl_exact", "zh")


def test_entropy_is_reported_per_token_in_every_aggregation_mode():
    """The entropy bonus follows the loss aggregation, but the reported entropy is always the
    mean per token (TRL's "entropy"), so runs with different modes can be compared."""
    a = run_two_steps(loss_agg_mode="token-mean")[0][0]["entropy"]
    b = run_two_steps(loss_agg_mode="seq-mean-token-sum")[0][0]["entropy"]
    assert a == pytest.approx(b, rel=1e-4)


def test_exact_kl_is_skipped_above_its_memory_cap(tiny, monkeypatch):
    monkeypatch.setattr(trainer_module, "EXACT_KL_MAX_BYTES", 1024)
    result = next(make(tiny).train(1))
    assert math.isnan(result.metrics["kl_exact"]) and all(r.kl_exact == [] for r in result.rollouts)
