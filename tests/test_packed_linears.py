"""Sampling with oneDNN-packed weights (ppo_demo.packed_linears) computes what the unpacked
model computes, up to fp32 rounding, and leaves the model exactly as it was.

Packing exists for fp32 only, so these comparisons stay in fp32: each tolerance is a bound
computed from the magnitudes of the forward being compared (tests/tolerances.py), not a number
read off one machine's run, and each test checks that a real difference is far above it.

    python -m pytest -q tests/test_packed_linears.py
"""

import pytest
import torch

from ppo_demo.config import TrainConfig
from ppo_demo.lora import LoRALinear, adapters_disabled, adapters_merged, inject_lora, lora_layers
from ppo_demo.packed_linears import packed_linears, packing_applies
from ppo_demo.policy import PolicyRuntime, lora_settings
from ppo_demo.rollout import chat_prompt_ids, eos_token_ids, sample_and_score, sample_responses
from tolerances import float32_bound, float32_forward_bound

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN")


def with_trained_lora(tiny, dropout=0.0):
    """The tiny model with LoRA on every default target and a non-zero B (so ΔW != 0)."""
    model = tiny.model.eval()
    inject_lora(model, TrainConfig().lora_targets, r=4, alpha=8.0, dropout=dropout)
    torch.manual_seed(1)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            torch.nn.init.normal_(layer.lora_B, std=0.1)
    return model


def logits(model, ids):
    return model(input_ids=ids).logits


def test_packing_applies_only_to_no_grad_fp32_on_cpu(tiny):
    model = tiny.model
    assert not packing_applies(model)  # gradients on
    with torch.no_grad():
        assert packing_applies(model)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not packing_applies(model)
        with packed_linears(model, enabled=False) as count:
            assert count == 0
        with packed_linears(model) as count:  # 2 layers x 7 Linears + the LM head
            assert count == 15
        with packed_linears(model.to(torch.bfloat16)) as count:
            assert count == 0 and "forward" not in vars(model.lm_head)
    with packed_linears(model) as count:  # gradients on: nothing packed
        assert count == 0


@torch.no_grad()
def test_packed_model_gives_the_same_logits_with_adapters_on_off_and_merged(tiny):
    model = with_trained_lora(tiny)
    ids = torch.randint(0, model.config.vocab_size, (3, 9), generator=torch.Generator().manual_seed(0))
    adapted = logits(model, ids)
    with adapters_disabled(model):
        base = logits(model, ids)
    ATOL = float32_forward_bound(model, lambda: logits(model, ids))
    assert (adapted - base).abs().max() > 10 * ATOL  # guard: the adapter changes the output, beyond the bound

    with packed_linears(model) as count:
        assert count == 15
        torch.testing.assert_close(logits(model, ids), adapted, rtol=0, atol=ATOL)
    with adapters_disabled(model), packed_linears(model):  # pi_ref: W alone is packed
        torch.testing.assert_close(logits(model, ids), base, rtol=0, atol=ATOL)
    with adapters_merged(model), packed_linears(model):  # ΔW already in W: not added twice
        torch.testing.assert_close(logits(model, ids), adapted, rtol=0, atol=ATOL)


@torch.no_grad()
def test_one_layer_packed_merged_equals_the_unmerged_lora_forward():
    torch.manual_seed(0)
    layer = LoRALinear(torch.nn.Linear(48, 80), r=4, alpha=8.0, dropout=0.1).eval()
    torch.nn.init.normal_(layer.lora_B, std=0.1)
    x = torch.randn(5, 3, 48)  # (..., d_in): leading dims kept
    # one product of fan-in 48 + r (W x + scaling·B(A x) or (W + ΔW) x), plus ΔW's own r terms
    magnitude = float((x.abs() @ (layer.base.weight.abs() + layer.delta_weight().abs()).t()
                       + layer.base.bias.abs()).max())
    ATOL = float32_bound(48 + 4, magnitude, depth=2)
    expected = layer(x)
    base_only = layer.base(x)
    with packed_linears(layer):
        assert "forward" in vars(layer) and "forward" not in vars(layer.base)  # one product, the base not packed again
        packed = layer(x)
        layer.enabled = False
        packed_base_only = layer(x)  # the packed weight is W + ΔW: enabling after entry is not seen
        layer.enabled = True
    assert packed.shape == (5, 3, 80)
    torch.testing.assert_close(packed, expected, rtol=0, atol=ATOL)
    torch.testing.assert_close(packed_base_only, expected, rtol=0, atol=ATOL)
    with adapters_disabled(layer), packed_linears(layer):
        torch.testing.assert_close(layer(x), base_only, rtol=0, atol=ATOL)
    assert (expected - base_only).abs().max() > 10 * ATOL


@torch.no_grad()
def test_active_lora_dropout_is_left_unpacked(tiny):
    model = with_trained_lora(tiny, dropout=0.5)
    model.train()
    with packed_linears(model) as count:
        assert count == 1  # only the LM head: a merged weight cannot apply dropout to x
    model.eval()
    with packed_linears(model) as count:
        assert count == 15


def test_weights_and_forwards_are_restored_even_after_an_exception(tiny):
    model = with_trained_lora(tiny)
    before = {name: t.detach().clone() for name, t in model.state_dict().items()}
    own_forward = model.lm_head.forward
    model.lm_head.forward = own_forward  # an instance forward set by someone else: kept, not deleted
    with torch.no_grad(), pytest.raises(RuntimeError, match="inside"):
        with packed_linears(model):
            assert model.lm_head.forward is not own_forward
            raise RuntimeError("failure inside the block")
    with torch.no_grad(), packed_linears(model):
        pass
    assert model.lm_head.forward is own_forward
    patched = [name for name, m in model.named_modules() if "forward" in vars(m) and m is not model.lm_head]
    assert patched == []
    after = model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)  # bit-identical, not just close


@torch.no_grad()
def test_grad_enabled_inside_the_block_falls_back_to_the_plain_forward(tiny):
    model = with_trained_lora(tiny)
    ids = torch.tensor([[5, 6, 7]])
    with packed_linears(model):
        with torch.enable_grad():
            out = logits(model, ids)
    assert out.requires_grad  # the LoRA tensors got gradients: the unpacked path ran


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.9)])
def test_sampling_packed_draws_the_same_tokens_and_log_probs(temperature, top_p):
    from varied_lengths import tiny_with_varied_lengths

    loaded = tiny_with_varied_lengths()  # its EOS boost is a forward hook on the LM head: still runs
    tok, model = loaded.tokenizer, with_trained_lora(loaded)
    prompts = [chat_prompt_ids(tok, p) for p in ["hi", "a longer prompt here", "hi", "x y z"]]
    kwargs = dict(pad_id=tok.pad_token_id, eos_ids=eos_token_ids(tok, model), max_new_tokens=10,
                  temperature=temperature, top_p=top_p)

    def run(pack):
        with torch.no_grad(), packed_linears(model, enabled=pack) as count:
            assert bool(count) == pack
            scored = sample_and_score(model, prompts, generator=torch.Generator().manual_seed(3), **kwargs)
            plain = sample_responses(model, prompts, generator=torch.Generator().manual_seed(3), **kwargs)
        return scored, plain

    (batch, scores), plain = run(False)
    (packed_batch, packed_scores), packed_plain = run(True)
    ids = batch.input_ids
    # log-softmax moves by at most twice its logits' error; the hidden states by the trunk's
    ATOL = 2 * float32_forward_bound(model, lambda: model(input_ids=ids, attention_mask=batch.attention_mask))
    assert len(set(batch.response_lengths.tolist())) > 1  # rows end at different steps
    for b in (packed_batch, packed_plain, plain):
        assert torch.equal(b.input_ids, batch.input_ids)
        assert torch.equal(b.response_mask, batch.response_mask)
    torch.testing.assert_close(packed_scores.logprobs, scores.logprobs, rtol=0, atol=ATOL)
    torch.testing.assert_close(packed_scores.hidden, scores.hidden, rtol=0, atol=ATOL)


def test_runtime_packs_for_batches_only_and_the_ratio_stays_one(tiny, monkeypatch):
    """PolicyRuntime.sample / sample_and_score pack (from 2 rows on); the trainer's old
    log-probs come from that packed pass, and its first update still sees rho = 1."""
    from ppo_demo import policy as policy_module
    from ppo_demo.tasks import Task
    from ppo_demo.reward import RewardConfig
    from ppo_demo.trainer import PPOTrainer

    counts = []
    original = policy_module.packed_linears

    def spy(model, enabled=True):
        cm = original(model, enabled)

        class Recorded:
            def __enter__(self):
                counts.append(cm.__enter__())
                return counts[-1]

            def __exit__(self, *exc):
                return cm.__exit__(*exc)
        return Recorded()

    monkeypatch.setattr(policy_module, "packed_linears", spy)
    trainer = PPOTrainer(tiny, TrainConfig(batch_size=4, max_new_tokens=6, ppo_epochs=1, num_minibatches=1,
                                           seed=7).validate(), [Task("say hi", "h"), Task("count", "1")],
                         RewardConfig(match_mode="contains"))
    result = trainer.step()
    metrics = result.metrics
    assert counts == [15]  # the sampling call, packed
    # rho = exp(log pi_unpacked - log pi_packed): |rho - 1| <~ twice the logits' bound, taken
    # here over a batch of the same model at a similar length (40 tokens)
    bound = 2 * float32_forward_bound(tiny.model, lambda: trainer.actor_critic.model(
        input_ids=torch.randint(0, 100, (4, 40), generator=torch.Generator().manual_seed(0))))
    assert metrics["ratio_mean"] == pytest.approx(1.0, abs=bound)
    assert metrics["clip_frac"] == 0.0

    runtime = PolicyRuntime(tiny.model, "lora", lora_settings(TrainConfig()), tokenizer=tiny.tokenizer)
    sampling = dict(max_new_tokens=3, temperature=1.0, top_p=1.0, seed=0)
    runtime.sample([[5, 6]], **sampling)  # one row: not worth packing
    runtime.sample([[5, 6], [7]], adapters=False, **sampling)
    runtime.pack_for_sampling = False
    runtime.sample_and_score([[5, 6], [7]], **sampling)
    assert counts[1:] == [0, 15, 0]
