"""PPO trainer invariants on the tiny random model."""

import threading

import pytest
import torch

from ppo_demo import trainer as trainer_module
from ppo_demo.config import TrainConfig
from ppo_demo.evaluation import compare, evaluate
from ppo_demo.policy import AdapterError, load_policy_state, save_policy_state
from ppo_demo.reward import RewardConfig, rule_reward
from ppo_demo.tasks import Task
from ppo_demo.trainer import PPOTrainer, TrainingError
from tolerances import EXACT_ATOL, EXACT_RTOL

TASKS = [Task("say hi", "h"), Task("count", "1")]
REWARD = RewardConfig(match_mode="contains")


def make(tiny, **knobs):
    base = dict(steps=2, batch_size=4, max_new_tokens=6, ppo_epochs=1, num_minibatches=1, seed=7)
    return PPOTrainer(tiny, TrainConfig(**{**base, **knobs}).validate(), TASKS, REWARD)


def evaluate_with(trainer, samples_per_task):
    """The evaluation of ``trainer``'s current policy on its own tasks, reward and sampling."""
    return evaluate(trainer.runtime, trainer.tasks, trainer.reward, trainer.config, samples_per_task=samples_per_task)


# The ratio checks below compare the sampling pass's log-probs with the update's forward: two
# computation orders of the same numbers, so they run in float64 (tests/tolerances.py).


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_first_update_has_ratio_one(tiny64, mode):
    result = next(make(tiny64, mode=mode).train(1))
    m = result.metrics
    assert result.updated
    assert m["ratio_mean"] == pytest.approx(1.0, abs=EXACT_ATOL)
    assert m["approx_kl"] == pytest.approx(0.0, abs=EXACT_ATOL)
    assert m["clip_frac"] == 0.0
    # and the KL to pi_ref is zero before any update (LoRA B = 0; full: exact copy)
    assert m["kl_mean"] == pytest.approx(0.0, abs=EXACT_ATOL)


@pytest.mark.parametrize("dropout_in_ppo", [False, True])
def test_ratio_is_one_at_each_steps_first_update_unless_dropout_is_on(tiny64, dropout_in_ppo):
    """Step 2 starts from a trained adapter (B != 0). With dropout off its first update sees
    rho = 1 exactly; with the seed's dropout on during PPO passes it does not (so the check can fail)."""
    trainer = make(tiny64, learning_rate=1e-2, lora_dropout=0.5, dropout_in_ppo=dropout_in_ppo)
    second = list(trainer.train(2))[1].metrics
    if dropout_in_ppo:
        assert second["approx_kl"] > 1e-6
    else:
        assert second["ratio_mean"] == pytest.approx(1.0, abs=EXACT_ATOL)
        assert second["approx_kl"] == pytest.approx(0.0, abs=EXACT_ATOL)


def test_only_trainable_parameters_change(tiny):
    trainer = make(tiny, learning_rate=1e-2)
    before = {n: p.detach().clone() for n, p in trainer.actor_critic.named_parameters()}
    list(trainer.train(2))
    changed = {n for n, p in trainer.actor_critic.named_parameters() if not torch.equal(p, before[n])}
    assert changed, "training changed nothing"
    assert all(n.endswith(("lora_A", "lora_B")) or n.startswith("value_head") for n in changed), changed
    assert any(n.endswith("lora_B") for n in changed)


def test_same_seed_same_run(tiny):
    from ppo_demo.models import load_model
    a = [r.metrics["reward_mean"] for r in make(tiny).train(2)]
    b = [r.metrics["reward_mean"] for r in make(load_model("tiny-random"), ).train(2)]
    ra = next(make(load_model("tiny-random")).train(1)).rollouts
    rb = next(make(load_model("tiny-random")).train(1)).rollouts
    assert a == b
    assert [r.response for r in ra] == [r.response for r in rb]


def test_reward_rises_on_a_learnable_task(tiny):
    """One-token answers from a lowercase letter: ~10% by chance, learnable in a few steps."""
    config = TrainConfig(mode="full", learning_rate=1e-2, steps=25, batch_size=16, max_new_tokens=1,
                         kl_coef=0.0, top_p=1.0, seed=1)
    trainer = PPOTrainer(tiny, config, [Task("pick", "^[a-z]$")], RewardConfig(match_mode="regex", length_penalty=0.0))
    success = [r.metrics["success_rate"] for r in trainer.train()]
    assert sum(success[:5]) / 5 < 0.5
    assert sum(success[-5:]) / 5 > 0.8


def test_rollout_records_carry_per_token_quantities(tiny):
    result = next(make(tiny).train(1))
    assert len(result.rollouts) == 4
    for record in result.rollouts:
        n = len(record.tokens)
        assert n >= 1
        for values in (record.logprobs, record.ref_logprobs, record.kl, record.values, record.advantages):
            assert len(values) == n
        assert record.rewards[-1] == pytest.approx(record.score - 0.05 * record.kl[-1], abs=1e-4)


def test_save_load_round_trip(tiny, tmp_path):
    trainer = make(tiny, learning_rate=1e-2)
    list(trainer.train(2))
    state = trainer.state()
    save_policy_state(state, tmp_path)
    loaded_state = load_policy_state(tmp_path)
    assert loaded_state.steps_trained == 2
    assert set(loaded_state.tensors) == set(state.tensors)
    assert all(torch.equal(loaded_state.tensors[k], state.tensors[k]) for k in state.tensors)
    again = PPOTrainer(tiny, trainer.config, TASKS, REWARD, state=loaded_state)
    sampling = dict(seed=3, temperature=0.7, top_p=0.9, max_new_tokens=trainer.config.max_new_tokens)
    assert compare(again.runtime, "say hi", **sampling) == compare(trainer.runtime, "say hi", **sampling)
    (tmp_path / "adapter.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(AdapterError):
        load_policy_state(tmp_path)


def test_mismatched_adapter_is_rejected(tiny):
    trainer = make(tiny)
    state = trainer.state()
    with pytest.raises(AdapterError, match="LoRA"):
        PPOTrainer(tiny, trainer.config.replace(lora_r=4), TASKS, REWARD, state=state)


def test_non_finite_loss_skips_updates_then_stops_keeping_weights(tiny, monkeypatch):
    trainer = make(tiny, learning_rate=1e-2, max_bad_updates=2)
    list(trainer.train(1))
    good = trainer.state().tensors
    real = trainer_module.ppo.ppo_policy_loss

    def broken(*args, **kwargs):
        loss, stats = real(*args, **kwargs)
        return loss * float("nan"), stats

    monkeypatch.setattr(trainer_module.ppo, "ppo_policy_loss", broken)
    results = []
    with pytest.raises(TrainingError, match="not finite"):
        for result in trainer.train(5):
            results.append(result)
    assert [r.updated for r in results] == [False, False]
    assert all(r.metrics["skipped_updates"] == 1 for r in results)
    after = trainer.state().tensors
    assert all(torch.equal(after[k], good[k]) for k in good)


def test_stop_event_ends_the_run_between_steps(tiny):
    stop = threading.Event()
    trainer = make(tiny)
    seen = []
    for result in trainer.train(10, stop_event=stop):
        seen.append(result.step)
        stop.set()
    assert seen == [1]
    assert trainer.steps_done == 1


def test_evaluate_reports_every_task(tiny):
    report = evaluate_with(make(tiny), 3)
    assert [t.prompt for t in report.tasks] == [t.prompt for t in TASKS]
    for t in report.tasks:
        assert len(t.base_samples) == len(t.adapted_samples) == 3
        assert 0.0 <= t.base_success <= 1.0
    # before training the adapted model is the base model: same seed, same answers
    assert all(t.base_samples == t.adapted_samples for t in report.tasks)


def test_evaluation_reward_includes_the_missing_eos_penalty(tiny):
    """The table's mean reward is the reward PPO trained on: answers cut at max_new_tokens
    lose the missing-EOS penalty there too."""
    plain = evaluate_with(make(tiny), 3)
    penalised = evaluate_with(make(tiny, missing_eos_penalty=0.5), 3)
    gaps = []
    for a, b in zip(plain.tasks, penalised.tasks):
        assert a.base_samples == b.base_samples  # same seed, same answers
        gap = a.base_reward - b.base_reward  # 0.5 x the share of the 3 answers that never ended
        assert gap * 3 / 0.5 == pytest.approx(round(gap * 3 / 0.5), abs=1e-5)
        gaps.append(gap)
    assert max(gaps) > 0  # the random tiny model rarely says EOS within 6 tokens


def test_full_mode_keeps_reference_frozen(tiny):
    trainer = make(tiny, mode="full", learning_rate=1e-2)
    ref_before = {n: p.detach().clone() for n, p in tiny.model.named_parameters()}
    results = list(trainer.train(2))
    assert all(torch.equal(p, ref_before[n]) for n, p in tiny.model.named_parameters())
    assert results[-1].metrics["kl_mean"] != 0.0


# --- batches whose responses end at different lengths ---------------------------------------

def varied_trainer(**knobs):
    from varied_lengths import tiny_with_varied_lengths

    config = dict(steps=2, batch_size=8, max_new_tokens=8, ppo_epochs=1, num_minibatches=1, seed=3,
                  learning_rate=1e-2, missing_eos_penalty=0.5)
    return PPOTrainer(tiny_with_varied_lengths(float64=True), TrainConfig(**{**config, **knobs}).validate(), TASKS, REWARD)


def test_mixed_lengths_ratio_one_and_rewards_only_on_real_tokens():
    trainer = varied_trainer(kl_coef=0.3)
    first, second = list(trainer.train(2))
    lengths = {len(r.tokens) for r in first.rollouts}
    assert len(lengths) > 1 and 0 < first.metrics["eos_rate"] < 1  # mixed: some end, some are cut
    assert first.metrics["ratio_mean"] == pytest.approx(1.0, abs=EXACT_ATOL)
    assert first.metrics["approx_kl"] == pytest.approx(0.0, abs=EXACT_ATOL)
    for record in second.rollouts:  # step 2: the adapter has moved, so KL_t != 0
        n = len(record.tokens)
        assert n == len(record.kl) == len(record.rewards) == len(record.advantages)
        # r_t = -beta KL_t on every token, plus the score at the last real one
        expected = [-0.3 * kl for kl in record.kl]
        expected[-1] += record.score
        assert record.rewards == pytest.approx(expected, abs=1e-4)
        # the score is the rule reward, missing-EOS penalty included for a response that was cut
        assert record.score == pytest.approx(rule_reward(record.response, record.expected, REWARD,
                                                         ended_with_eos=record.ended_with_eos,
                                                         missing_eos_penalty=0.5), abs=1e-6)
        assert record.ended_with_eos == (record.tokens[-1] == trainer.tokenizer.eos_token)
        # GAE's last step: A_T = r_T - V_T (nothing after the last real token)
        assert record.advantages[-1] == pytest.approx(record.rewards[-1] - record.values[-1], abs=1e-4)
    assert any(abs(kl) > 1e-4 for r in second.rollouts for kl in r.kl)


def test_k3_kl_is_never_negative_and_k1_is_somewhere():
    def kls(estimator):
        second = list(varied_trainer(kl_estimator=estimator).train(2))[1]
        return [kl for r in second.rollouts for kl in r.kl]

    k1, k3 = kls("k1"), kls("k3")
    assert min(k1) < 0  # log pi - log pi_ref is negative where pi_ref is likelier
    assert min(k3) >= 0 and max(k3) > 0


@pytest.mark.parametrize("whiten", ["batch", "sequence", "none"])
def test_whitening_of_the_advantages_the_loss_sees(whiten):
    result = next(varied_trainer(whiten=whiten).train(1))
    raw = [r.advantages for r in result.rollouts]
    used = [r.train_advantages for r in result.rollouts]
    flat = torch.tensor([a for row in used for a in row])
    if whiten == "none":
        assert used == raw
    elif whiten == "batch":  # over every real token of the batch
        assert flat.mean().item() == pytest.approx(0.0, abs=1e-4)
        assert flat.var().item() == pytest.approx(1.0, abs=1e-3)
    else:  # per response, as the seed
        for row in used:
            if len(row) > 1:
                assert sum(row) / len(row) == pytest.approx(0.0, abs=1e-4)
                assert torch.tensor(row).std().item() == pytest.approx(1.0, abs=1e-3)


def test_old_logprobs_and_values_from_sampling_equal_a_separate_scoring_pass(monkeypatch):
    """In fp32 the sampling pass supplies the old log-probs and values. They must equal what a
    separate no-grad policy forward over the same batch gives (compared in float64, so up to
    rounding on any CPU), at top-p < 1 too (the full tempered softmax, not the truncated one),
    on a batch with ragged responses."""
    from varied_lengths import tiny_with_varied_lengths

    def first_step_scores(from_sampling):
        monkeypatch.setattr(PPOTrainer, "_scores_from_sampling", property(lambda self: from_sampling))
        trainer = PPOTrainer(tiny_with_varied_lengths(float64=True), TrainConfig(batch_size=6, max_new_tokens=8, top_p=0.8, ppo_epochs=1,
                                                                     temperature=0.7, seed=5).validate(), TASKS, REWARD)
        torch.manual_seed(0)
        with torch.no_grad():  # a trained-looking policy and critic, so values and KL are not all 0
            torch.nn.init.normal_(trainer.actor_critic.value_head.weight, std=0.5)
            for name, p in trainer.actor_critic.named_parameters():
                if name.endswith("lora_B"):
                    torch.nn.init.normal_(p, std=0.05)
        seen = {}
        original = trainer._logprobs_and_values

        def spy(batch, policy_scores=None):
            seen["batch"] = batch
            seen["out"] = original(batch, policy_scores)
            return seen["out"]

        trainer._logprobs_and_values = spy
        result = trainer.step()
        return seen, result.metrics

    separate, _ = first_step_scores(False)
    kept, metrics = first_step_scores(True)
    assert torch.equal(kept["batch"].input_ids, separate["batch"].input_ids)
    assert len(set(kept["batch"].response_lengths.tolist())) > 1
    for name, a, b in zip(("old_logprobs", "old_values", "ref_logprobs"), kept["out"], separate["out"]):
        assert (a != 0).any(), name
        torch.testing.assert_close(a, b, rtol=EXACT_RTOL, atol=EXACT_ATOL, msg=name)
    assert not torch.allclose(kept["out"][0], kept["out"][2])  # the policy differs from pi_ref
    assert metrics["ratio_mean"] == pytest.approx(1.0, abs=EXACT_ATOL)
    assert metrics["clip_frac"] == 0.0
