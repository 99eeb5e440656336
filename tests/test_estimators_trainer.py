"""The advantage estimators, KL in the loss, the adaptive KL coefficient and the per-token
ratio records inside the trainer, on the tiny random model.

Run: .venv/bin/python -m pytest -q tests/test_estimators_trainer.py
"""

import math

import pytest
import torch

from ppo_demo import ppo
from ppo_demo import trainer as trainer_module
from ppo_demo.config import ConfigError, TrainConfig
from ppo_demo.reward import RewardConfig
from ppo_demo.tasks import Task
from ppo_demo.trainer import PPOTrainer
from tolerances import EXACT_ATOL

TASKS = [Task("say hi", "h"), Task("count", "1"), Task("name a colour", "e")]
REWARD = RewardConfig(match_mode="contains")
ESTIMATORS = ["gae", "grpo", "rloo", "reinforce"]


def make(tiny, **knobs):
    base = dict(steps=2, batch_size=6, group_size=2, max_new_tokens=6, ppo_epochs=1, num_minibatches=1, seed=7)
    return PPOTrainer(tiny, TrainConfig(**{**base, **knobs}).validate(), TASKS, REWARD)


@pytest.mark.parametrize("estimator,kl_in", [(e, "reward") for e in ESTIMATORS] + [("grpo", "loss"), ("gae", "loss")])
def test_ratio_is_one_before_each_steps_update_for_every_estimator(tiny64, estimator, kl_in):
    """Step 2 starts from a trained adapter; its single update still sees rho = 1 on every token
    (sampling pass against update forward: compared in float64, see tests/tolerances.py)."""
    trainer = make(tiny64, advantage_estimator=estimator, kl_in=kl_in, learning_rate=1e-2)
    first, second = list(trainer.train(2))
    assert first.updated and second.updated
    for result in (first, second):
        assert result.metrics["ratio_mean"] == pytest.approx(1.0, abs=EXACT_ATOL)
        assert result.metrics["approx_kl"] == pytest.approx(0.0, abs=EXACT_ATOL)
        assert result.metrics["clip_frac"] == 0.0
        for record in result.rollouts:  # one pass: every recorded rho is 1, so no token is clipped
            assert record.ratios == pytest.approx([1.0] * len(record.tokens), abs=EXACT_ATOL)
            assert set(record.clip_cases) <= {1, 4, 6}
    assert second.metrics["kl_mean"] != 0.0  # the adapter did move, so the test could fail


def test_groups_are_consecutive_rows_of_one_prompt(tiny):
    trainer = make(tiny, batch_size=12, group_size=4, advantage_estimator="grpo")
    tasks = trainer._choose_tasks(seed=3)
    groups = [tasks[k:k + 4] for k in range(0, 12, 4)]
    assert all(len(set(g)) == 1 for g in groups)  # each group one prompt
    assert sorted(g[0] for g in groups) == [0, 1, 2]  # 3 prompts, every task once


@pytest.mark.parametrize("estimator", ["grpo", "rloo", "reinforce"])
def test_without_a_critic_the_value_head_is_not_trained_and_reports_nan(tiny, estimator):
    trainer = make(tiny, advantage_estimator=estimator, learning_rate=1e-2)
    before = {n: p.detach().clone() for n, p in trainer.actor_critic.named_parameters() if n.startswith("value_head")}
    results = list(trainer.train(2))
    after = dict(trainer.actor_critic.named_parameters())
    assert before and all(torch.equal(after[n], p) for n, p in before.items())
    for result in results:
        assert math.isnan(result.metrics["explained_variance"])
        assert math.isnan(result.metrics["value_loss"])


def test_with_the_critic_the_value_head_does_train(tiny):
    trainer = make(tiny, advantage_estimator="gae", learning_rate=1e-2)
    before = {n: p.detach().clone() for n, p in trainer.actor_critic.named_parameters() if n.startswith("value_head")}
    list(trainer.train(2))
    after = dict(trainer.actor_critic.named_parameters())
    assert any(not torch.equal(after[n], p) for n, p in before.items())


def test_grpo_group_advantages_in_the_records(tiny):
    """The records' advantages are (score - group mean) / (group std + eps), same on every token."""
    trainer = make(tiny, advantage_estimator="grpo", kl_in="loss", whiten="none")
    records = next(trainer.train(1)).rollouts
    for k in range(0, 6, 2):
        a, b = records[k], records[k + 1]
        mean, std = (a.score + b.score) / 2, abs(a.score - b.score) / math.sqrt(2)
        for record in (a, b):
            expected = (record.score - mean) / (std + 1e-4)
            assert record.advantages == pytest.approx([expected] * len(record.tokens), abs=1e-4)


def test_grpo_with_equal_rewards_gives_zero_advantages_and_no_nan(tiny, monkeypatch):
    monkeypatch.setattr(trainer_module, "rule_reward", lambda *a, **k: 0.5)
    trainer = make(tiny, advantage_estimator="grpo", kl_in="loss", whiten="none")
    result = next(trainer.train(1))
    assert result.updated
    assert all(a == 0.0 for r in result.rollouts for a in r.advantages)
    assert result.metrics["policy_loss"] == 0.0
    assert all(c == 6 for r in result.rollouts for c in r.clip_cases)  # A = 0: no push anywhere


def test_kl_in_the_loss_takes_it_out_of_the_reward(tiny):
    trainer = make(tiny, advantage_estimator="gae", kl_in="loss", learning_rate=1e-2, kl_coef=0.5)
    second = list(trainer.train(2))[1]
    assert second.metrics["kl_loss"] > 0  # the adapter moved, so pi != pi_ref
    for record in second.rollouts:  # the score alone, at the last token
        assert record.rewards[:-1] == [0.0] * (len(record.tokens) - 1)
        assert record.rewards[-1] == pytest.approx(record.score, abs=1e-5)
        assert any(k != 0 for k in record.kl)  # while the KL itself is measured and non-zero


def test_adaptive_kl_coefficient_follows_the_controller(tiny):
    trainer = make(tiny, kl_target=0.01, kl_horizon=10, learning_rate=1e-2, kl_coef=0.1)
    steps = [r.metrics for r in trainer.train(3)]
    assert steps[0]["kl_coef"] == 0.1
    for before, after in zip(steps, steps[1:]):
        expected = ppo.adaptive_kl_coef(before["kl_coef"], before["kl_sum_mean"], 0.01, 10, n_steps=6)
        assert after["kl_coef"] == pytest.approx(expected, rel=1e-9)
    assert steps[2]["kl_coef"] != 0.1  # it moved (the KL is far from the target)
    assert trainer.state().meta["kl_coef"] == pytest.approx(trainer.kl_coef)


def test_fixed_kl_coefficient_stays(tiny):
    steps = [r.metrics for r in make(tiny, kl_coef=0.07, learning_rate=1e-2).train(2)]
    assert [m["kl_coef"] for m in steps] == [0.07, 0.07]


def test_recorded_ratio_and_clip_cases_after_several_passes(tiny):
    trainer = make(tiny, ppo_epochs=3, num_minibatches=2, learning_rate=5e-2, clip_eps=0.05)
    result = next(trainer.train(1))
    ratios = [rho for r in result.rollouts for rho in r.ratios]
    assert any(abs(rho - 1) > 1e-3 for rho in ratios)  # later passes see a moved policy
    for record in result.rollouts:
        assert len(record.ratios) == len(record.clip_cases) == len(record.tokens)
        codes = ppo.clip_cases(torch.tensor([record.ratios]), torch.tensor([record.train_advantages]),
                               torch.ones(1, len(record.tokens)), 0.05)
        assert codes[0].tolist() == record.clip_cases


@pytest.mark.parametrize("knobs,message", [
    (dict(advantage_estimator="grpo", group_size=1), "GRPO .* group size G of at least 2"),
    (dict(advantage_estimator="rloo", group_size=1), "RLOO .* at least 2"),
    (dict(batch_size=10, group_size=4), r"batch size \(10\) must be a multiple of the group size G \(4\)"),
    (dict(kl_target=0.0), "Target KL must be above 0"),
    (dict(kl_target=-1.0), "Target KL must be above 0"),
])
def test_bad_estimator_settings_get_a_clear_message(knobs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**knobs).validate()


def test_target_kl_is_optional_in_untyped_input():
    assert TrainConfig.from_dict({"kl_target": ""}).kl_target is None
    assert TrainConfig.from_dict({"kl_target": "6"}).kl_target == 6.0
    with pytest.raises(ConfigError, match="Target KL must be a number"):
        TrainConfig.from_dict({"kl_target": "lots"})
