"""Memory knobs change how an update is computed, never what it computes.

micro_batch_tokens splits forward/backward into token-weighted chunks; gradient_checkpointing
recomputes each layer's activations during backward. Both must leave the trained weights and
the reported losses equal to a single whole-mini-batch pass. The runs compute in float64, so
"equal" means equal up to float64 rounding whatever the CPU's kernels (see tests/tolerances.py).
"""

import pytest
import torch

from ppo_demo.config import TrainConfig
from ppo_demo.models import load_model
from ppo_demo.policy import decoder_layers, layer_checkpointing
from ppo_demo.reward import RewardConfig
from ppo_demo.tasks import Task
from ppo_demo.trainer import PPOTrainer
from tolerances import EXACT_ATOL, EXACT_RTOL
from varied_lengths import tiny_with_varied_lengths

# Prompts of different lengths, so the rows of a batch carry different amounts of padding and
# micro-batches get different token counts (a plain mean over micro-batches would be wrong).
TASKS = [Task("say hi", "h"), Task("count from one to three, slowly and carefully", "1")]
REWARD = RewardConfig(match_mode="contains")


def run_two_steps(**knobs):
    model = tiny_with_varied_lengths(float64=True)
    config = TrainConfig(**{**dict(steps=2, batch_size=6, max_new_tokens=8, ppo_epochs=2, num_minibatches=2,
                                   learning_rate=1e-2, seed=3, micro_batch_tokens=0), **knobs}).validate()
    trainer = PPOTrainer(model, config, TASKS, REWARD)
    metrics = [r.metrics for r in trainer.train(2)]
    weights = {n: p.detach().clone() for n, p in trainer.actor_critic.named_parameters() if p.requires_grad}
    return metrics, weights


def assert_same_run(a, b):
    metrics_a, weights_a = a
    metrics_b, weights_b = b
    for ma, mb in zip(metrics_a, metrics_b):
        for key in ("policy_loss", "value_loss", "entropy", "approx_kl", "ratio_mean", "grad_norm", "reward_mean"):
            # O(1) terms (whitened advantages times ratios near 1): the absolute bound applies
            # to losses that are small differences of them, such as the policy loss.
            assert ma[key] == pytest.approx(mb[key], rel=EXACT_RTOL, abs=EXACT_ATOL), key
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        # AdamW divides by sqrt(v) + 1e-8: a gradient off by d moves a weight by at most
        # lr * d / 1e-8 per update; d ~ 1e-15 in float64, so 8 updates of lr 1e-2 stay < 1e-8.
        torch.testing.assert_close(weights_a[name], weights_b[name], rtol=0, atol=1e-8, msg=name)


def test_the_comparison_can_fail():
    """Guards the tolerances: a learning rate 0.01 % larger is a real difference, and is seen."""
    with pytest.raises(AssertionError):
        assert_same_run(run_two_steps(), run_two_steps(learning_rate=1e-2 * 1.0001))


@pytest.mark.parametrize("budget", [1, 40])  # one row per micro-batch; a few rows per micro-batch
def test_micro_batches_give_the_same_update(budget):
    assert_same_run(run_two_steps(micro_batch_tokens=0), run_two_steps(micro_batch_tokens=budget))


def test_the_runs_have_responses_of_different_lengths():
    """Guards the test above: with equal token counts per row, an unweighted mean over
    micro-batches would equal the token-weighted one and the weighting would go untested."""
    config = TrainConfig(steps=2, batch_size=6, max_new_tokens=8, seed=3).validate()
    for result in PPOTrainer(tiny_with_varied_lengths(), config, TASKS, REWARD).train(2):
        assert len({len(r.tokens) for r in result.rollouts}) > 1


def test_gradient_checkpointing_gives_the_same_update():
    assert_same_run(run_two_steps(), run_two_steps(gradient_checkpointing=True))


def test_gradient_checkpointing_with_dropout_repeats_the_masks():
    """With the seed's dropout on in PPO passes, the recomputation must draw the same masks."""
    knobs = dict(dropout_in_ppo=True, lora_dropout=0.3)
    assert_same_run(run_two_steps(**knobs), run_two_steps(gradient_checkpointing=True, **knobs))


def saved_bytes(model, batch_ids, checkpointing):
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with layer_checkpointing(model, checkpointing), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=batch_ids).logits.sum().backward()
    return total


def test_gradient_checkpointing_keeps_fewer_activations():
    torch.manual_seed(0)
    model = load_model("tiny-random", device="cpu").model
    ids = torch.randint(0, 100, (4, 32))
    plain, checkpointed = saved_bytes(model, ids, False), saved_bytes(model, ids, True)
    assert checkpointed < 0.7 * plain, (plain, checkpointed)


def test_layer_checkpointing_restores_the_layers_even_after_an_error():
    torch.manual_seed(0)
    model = load_model("tiny-random", device="cpu").model
    layers = decoder_layers(model)
    with pytest.raises(RuntimeError):
        with layer_checkpointing(model):
            assert all("forward" in vars(layer) for layer in layers)
            raise RuntimeError("boom")
    assert not any("forward" in vars(layer) for layer in layers)


def test_micro_batch_knob_is_validated():
    from ppo_demo.config import ConfigError
    with pytest.raises(ConfigError, match="Micro-batch tokens"):
        TrainConfig(micro_batch_tokens=-1).validate()


@pytest.mark.parametrize("packed", [True, False])  # real tokens only / the (B, T) response rectangle
@pytest.mark.parametrize("budget", [0, 250])  # whole mini-batches; chunks of two rows (byte-level prompts are ~110 tokens)
def test_shared_prompts_give_the_same_update(budget, packed, monkeypatch):
    """Each distinct prompt computed once per pass (reference scoring and every update forward,
    gradients flowing through the shared prefix), the responses packed without their padding
    or as a padded rectangle (models that cannot take a block mask): the same losses and
    trained weights as every row running its own prompt."""
    from ppo_demo import scoring

    unshared = run_two_steps(share_prompts=False, micro_batch_tokens=budget)
    calls = {True: 0, False: 0}  # by torch.is_grad_enabled(): update forwards / scoring passes
    name = "packed_response_hidden" if packed else "shared_prompt_logits_and_hidden"
    original = getattr(scoring, name)

    def counting(*args, **kwargs):
        calls[torch.is_grad_enabled()] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(scoring, name, counting)
    if not packed:
        monkeypatch.setattr(scoring, "can_pack", lambda model: False)
    shared = run_two_steps(share_prompts=True, micro_batch_tokens=budget)
    assert calls[True] > 0 and calls[False] > 0  # guard: the path under test really ran, both ways
    assert_same_run(unshared, shared)
