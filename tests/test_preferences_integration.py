"""The reward model on the real embedded SmolLM2-135M-Instruct: trained on 32 pairs of its own
answers ranked by the rule reward, it ranks held-out pairs better than chance. A few minutes on
two CPU cores. Run: OMP_NUM_THREADS=1 python -m pytest tests/test_preferences_integration.py -q -s"""

import time

import pytest

from ppo_demo.config import DEFAULT_PRESET, preset_config
from ppo_demo.policy import PolicyRuntime
from ppo_demo.preferences import RewardModelConfig, rule_ranked_pairs
from ppo_demo.reward import RewardConfig, rule_reward
from ppo_demo.reward_model import RewardModelTrainer
from ppo_demo.tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS

pytestmark = pytest.mark.integration


def test_reward_model_learns_rule_ranked_pairs_above_chance(embedded):
    tasks = TASK_PRESETS["english"]
    reward = RewardConfig(match_mode=TASK_PRESET_MATCH_MODE["english"])
    sampling = preset_config(DEFAULT_PRESET)
    t0 = time.perf_counter()
    with PolicyRuntime.for_config(embedded, sampling) as runtime:
        pairs = rule_ranked_pairs(runtime, tasks, reward, pairs_per_task=8, seed=0, temperature=sampling.temperature,
                                  top_p=sampling.top_p, max_new_tokens=sampling.max_new_tokens,
                                  missing_eos_penalty=sampling.missing_eos_penalty, adapters=False)
    t_pairs = time.perf_counter() - t0
    assert len(pairs) >= 24  # a task whose answers always tie may give fewer than 8
    task_of = {t.prompt: t for t in tasks}
    for pair in pairs:  # the ranking is the rule's (missing-EOS aside, which the text cannot show)
        expected = task_of[pair.prompt].expected
        assert rule_reward(pair.chosen, expected, reward) >= rule_reward(pair.rejected, expected, reward) - 0.5

    trainer = RewardModelTrainer(embedded, pairs, RewardModelConfig())
    t1 = time.perf_counter()
    steps = list(trainer.train())
    t_train = time.perf_counter() - t1
    report = trainer.last_eval
    print(f"\n{len(pairs)} pairs sampled in {t_pairs:.1f}s; reward model trained in {t_train:.1f}s "
          f"({len(steps)} steps); held-out accuracy {report['pairwise_accuracy']:.3f} on {report['heldout_pairs']} "
          f"pairs (loss {report['heldout_loss']:.3f}), train accuracy {report['train_accuracy']:.3f} "
          f"(loss {report['train_loss']:.3f})")
    assert steps[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # the zero head: every pair a tie at first
    assert report["train_loss"] < 0.6931
    assert report["pairwise_accuracy"] > 0.5
