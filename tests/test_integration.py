"""The real embedded SmolLM2-135M-Instruct: it loads offline, answers a chat prompt, and a few
PPO steps run with the PPO invariants intact. About a minute on two CPU cores."""

import math

import pytest

from ppo_demo.config import preset_config
from ppo_demo.evaluation import compare
from ppo_demo.reward import RewardConfig
from ppo_demo.tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS
from ppo_demo.trainer import PPOTrainer
from tolerances import EMBEDDED_FP32_ATOL

pytestmark = pytest.mark.integration


def test_embedded_model_answers_and_trains(embedded):
    tasks = TASK_PRESETS["english"]
    config = preset_config("quick-cpu", steps=2, batch_size=4, ppo_epochs=1, num_minibatches=1)
    trainer = PPOTrainer(embedded, config, tasks, RewardConfig(match_mode=TASK_PRESET_MATCH_MODE["english"]))
    answer = trainer.runtime.answers(["What is the capital of France?"], adapters=False, seed=0, greedy=True,
                                     temperature=0.7, top_p=0.9, max_new_tokens=24)[0][0]
    assert "paris" in answer.lower()  # a real chat model, not random weights

    first, second = list(trainer.train())
    # The sampling pass (packed fp32 weights, cached decode) against the update's forward: two
    # fp32 orders of the same numbers, within a high-probability bound (tests/tolerances.py).
    assert first.metrics["ratio_mean"] == pytest.approx(1.0, abs=EMBEDDED_FP32_ATOL)  # before any update
    assert first.metrics["kl_mean"] == pytest.approx(0.0, abs=EMBEDDED_FP32_ATOL)  # pi == pi_ref at the start
    for result in (first, second):
        assert result.updated
        for key in ("policy_loss", "value_loss", "entropy", "approx_kl"):
            assert math.isfinite(result.metrics[key]), key
    assert second.metrics["kl_mean"] != 0.0  # the adapter moved the policy
    base, adapted = compare(trainer.runtime, tasks[0].prompt, seed=1, temperature=0.7, top_p=0.9,
                            max_new_tokens=config.max_new_tokens)
    assert isinstance(base, str) and isinstance(adapted, str)
