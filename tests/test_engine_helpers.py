"""The engine's one-place helpers: the step seed, the bad-update check, saving an adapter.

Run: ``python -m pytest tests/test_engine_helpers.py -q`` (tiny-random, seconds)."""

import pytest
import torch

from ppo_demo import trainer as trainer_module
from ppo_demo.config import TrainConfig
from ppo_demo.peft_format import load_any_adapter, save_adapter
from ppo_demo.policy import OPTIMIZER_FILE
from ppo_demo.reward import RewardConfig
from ppo_demo.tasks import Task
from ppo_demo.trainer import PPOTrainer, TrainingError, check_bad_updates, seed_of_step

TASKS = [Task("Say hi", "hi"), Task("Say yes", "yes")]


def make(tiny, **knobs):
    config = TrainConfig(steps=1, batch_size=2, max_new_tokens=3, ppo_epochs=1, num_minibatches=1, **knobs)
    return PPOTrainer(tiny, config, TASKS, RewardConfig())


def test_seed_of_step_hand_values_and_distinct_steps():
    assert seed_of_step(0, 0) == 0
    assert seed_of_step(1, 0) == 1_000_003
    assert seed_of_step(1, 2) == 1_000_005
    seeds = {seed_of_step(seed, done) for seed in range(5) for done in range(200)}
    assert len(seeds) == 5 * 200  # no two (seed, step) pairs of a plausible run share a seed


def test_check_bad_updates_stops_at_the_limit_only():
    check_bad_updates(0, 3)
    check_bad_updates(2, 3)  # below the limit: the run goes on
    with pytest.raises(TrainingError, match="not finite in 3 steps in a row"):
        check_bad_updates(3, 3)
    with pytest.raises(TrainingError, match="not finite in 1 steps"):
        check_bad_updates(1, 1)


def test_a_step_takes_every_seed_from_seed_of_step(tiny, monkeypatch):
    calls = []

    def recorded(seed, steps_done):
        calls.append((seed, steps_done))
        return seed_of_step(seed, steps_done)

    monkeypatch.setattr(trainer_module, "seed_of_step", recorded)
    list(make(tiny, seed=7).train(2))
    # each step asks twice (the global RNG for dropout, then the step's own draws), same answer
    assert calls == [(7, 0), (7, 0), (7, 1), (7, 1)]


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_save_adapter_writes_one_format_per_mode_and_loads_back(tiny, tmp_path, mode):
    trainer = make(tiny, mode=mode, learning_rate=1e-2)
    list(trainer.train(1))
    state = trainer.state()
    names = save_adapter(state, tmp_path)
    assert sorted(names) == sorted(p.name for p in tmp_path.iterdir())  # names = exactly what was written
    assert OPTIMIZER_FILE in names  # trained: AdamW's state goes with it, so training continues exactly
    assert ("adapter_model.safetensors" in names) == (mode == "lora")  # PEFT format only for LoRA
    back = load_any_adapter(tmp_path, hidden_size=tiny.model.config.hidden_size)
    assert back.mode == mode and back.steps_trained == 1
    assert set(back.tensors) == set(state.tensors)
    assert all(torch.equal(back.tensors[k], state.tensors[k]) for k in state.tensors)
    assert back.optimizer is not None


def test_save_adapter_without_optimizer_state_writes_no_optimizer_file(tiny, tmp_path):
    state = make(tiny).state()
    state.optimizer = None
    names = save_adapter(state, tmp_path)
    assert OPTIMIZER_FILE not in names and not (tmp_path / OPTIMIZER_FILE).exists()


def test_policy_still_offers_the_names_moved_to_scoring_and_policy_state():
    # policy.py was split (scoring passes, the state and its files); imports from it keep working
    from ppo_demo import policy, policy_state, scoring

    for module, names in ((scoring, ["response_scores", "response_logits_and_hidden", "ResponseScores",
                                     "decoder_layers", "layer_checkpointing", "autocast_context"]),
                          (policy_state, ["PolicyState", "AdapterError", "ADAPTER_FILE", "ADAPTER_CONFIG_FILE",
                                          "OPTIMIZER_FILE", "VALUE_HEAD_PREFIX", "lora_settings", "check_state_fits",
                                          "optimizer_state_on_cpu", "load_optimizer_state", "save_policy_state",
                                          "save_optimizer_state", "load_optimizer_file", "load_policy_state"])):
        for name in names:
            assert getattr(policy, name) is getattr(module, name), name
