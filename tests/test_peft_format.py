"""The PEFT-format adapter against the real peft (requirements-dev.txt), on tiny-random.

Run: .venv/bin/python -m pytest -q tests/test_peft_format.py

Tolerance: fp32 (the saved adapter is fp32), and the two libraries only order the same sums
differently (ours scales the (.., r) product before B, peft after): the logits agree to a bound
computed from this forward's magnitudes (tests/tolerances.py), which holds on any CPU. The
adapter moves them far more than that, so the checks can fail (see the first test).
"""

from __future__ import annotations

import json

import pytest
import torch

from ppo_demo.models import load_model
from ppo_demo.peft_format import (LAB_SETTINGS_FILE, PEFT_WEIGHTS_FILE, VALUE_HEAD_FILE, adapter_format,
                                  load_any_adapter, load_peft_adapter, save_peft_adapter)
from ppo_demo.policy import AdapterError, PolicyRuntime, save_policy_state
from tolerances import float32_forward_bound

peft = pytest.importorskip("peft")

LORA = {"r": 4, "alpha": 12.0, "dropout": 0.0, "targets": ["q_proj", "v_proj", "down_proj"]}


def _ids(tokenizer):
    return tokenizer(["Say only the word: hello", "2+2?"], return_tensors="pt", padding=True)


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def _trained_runtime(model, lora=LORA, seed=3):
    """Our LoRA with a random non-zero B (a fresh B is zero and would prove nothing)."""
    runtime = PolicyRuntime(model, "lora", lora, init_seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lora_B"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
        runtime.actor_critic.value_head.weight.copy_(torch.randn(1, 32, generator=gen))
    return runtime


def _atol(model, batch):
    """Two fp32 orders of ``model``'s forward on ``batch`` differ by at most this."""
    return float32_forward_bound(model, lambda: _logits(model, batch))


def _fresh_base():
    return load_model("tiny-random", device="cpu").model


def test_the_adapter_changes_the_logits(tiny):
    """Guard: the comparisons below are meaningful only if the adapter moves the output."""
    batch = _ids(tiny.tokenizer)
    base = _logits(tiny.model, batch)
    _trained_runtime(tiny.model)
    assert (base - _logits(tiny.model, batch)).abs().max() > 10 * _atol(tiny.model, batch)


def test_peft_loads_our_adapter_with_the_same_logits(tiny, tmp_path):
    batch = _ids(tiny.tokenizer)
    runtime = _trained_runtime(tiny.model)
    ours = _logits(tiny.model, batch)
    save_peft_adapter(runtime.state("tiny-random", 5), tmp_path)

    peft_model = peft.PeftModel.from_pretrained(_fresh_base(), tmp_path)
    torch.testing.assert_close(_logits(peft_model, batch), ours, atol=_atol(tiny.model, batch), rtol=0)
    # peft's own reading of the config: the same scaling, every layer we wrapped and no other.
    layers = {n: m for n, m in peft_model.named_modules() if hasattr(m, "scaling") and isinstance(m.scaling, dict)}
    assert {n.removeprefix("base_model.model.") for n in layers} == {n for n, _ in _lora_names(tiny.model)}
    assert all(m.scaling["default"] == pytest.approx(12.0 / 4) for m in layers.values())


def _lora_names(model):
    from ppo_demo.lora import lora_layers
    return list(lora_layers(model))


def test_every_config_key_is_a_loraconfig_field(tiny, tmp_path):
    runtime = _trained_runtime(tiny.model)
    save_peft_adapter(runtime.state("tiny-random", 1), tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    fields = set(peft.LoraConfig.__dataclass_fields__)
    assert set(config) <= fields, set(config) - fields
    parsed = peft.LoraConfig.from_pretrained(tmp_path)
    assert (parsed.peft_type, parsed.task_type, parsed.r, parsed.lora_alpha, parsed.use_rslora, parsed.bias) == \
        (peft.PeftType.LORA, "CAUSAL_LM", 4, 12.0, False, "none")
    assert set(parsed.target_modules) == {"q_proj", "v_proj", "down_proj"}
    assert sorted((tmp_path / f).name for f in (PEFT_WEIGHTS_FILE, VALUE_HEAD_FILE, LAB_SETTINGS_FILE)) == \
        sorted([PEFT_WEIGHTS_FILE, VALUE_HEAD_FILE, LAB_SETTINGS_FILE])


@pytest.mark.parametrize("use_rslora", [False, True])
def test_an_adapter_made_by_peft_loads_into_ours_with_the_same_logits(tiny, tmp_path, use_rslora):
    batch = _ids(tiny.tokenizer)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["k_proj", "o_proj", "up_proj"], lora_dropout=0.0,
                             task_type="CAUSAL_LM", use_rslora=use_rslora)
    peft_model = peft.get_peft_model(_fresh_base(), config)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    theirs = _logits(peft_model, batch)
    peft_model.save_pretrained(tmp_path)
    assert adapter_format(tmp_path) == "peft"

    state = load_any_adapter(tmp_path, hidden_size=32)
    assert state.lora["r"] == 4 and state.lora["alpha"] == pytest.approx(8 * (2.0 if use_rslora else 1.0))
    runtime = PolicyRuntime(tiny.model, "lora", state.lora, state=state)
    torch.testing.assert_close(_logits(runtime.base_model, batch), theirs, atol=_atol(runtime.base_model, batch), rtol=0)
    assert torch.equal(runtime.actor_critic.value_head.weight, torch.zeros(1, 32))  # no critic came with it


def test_round_trip_keeps_every_tensor_and_setting(tiny, tmp_path):
    state = _trained_runtime(tiny.model).state("tiny-random", 9)
    save_peft_adapter(state, tmp_path)
    back = load_any_adapter(tmp_path)
    assert back.lora == state.lora and back.steps_trained == 9 and back.model_name == "tiny-random"
    assert set(back.tensors) == set(state.tensors)
    assert all(torch.equal(back.tensors[k], state.tensors[k]) for k in state.tensors)


def test_the_old_format_still_loads(tiny, tmp_path):
    state = _trained_runtime(tiny.model).state("tiny-random", 2)
    save_policy_state(state, tmp_path)
    assert adapter_format(tmp_path) == "ppo-lora-lab/1"
    back = load_any_adapter(tmp_path)
    assert all(torch.equal(back.tensors[k], state.tensors[k]) for k in state.tensors)


def test_a_mismatched_adapter_is_a_clear_error(tiny, tmp_path):
    state = _trained_runtime(tiny.model).state("tiny-random", 1)
    save_peft_adapter(state, tmp_path)
    # The same layer names on a wider model: every shape differs.
    from ppo_demo.models import build_tiny_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM
    wide = LlamaForCausalLM(LlamaConfig(vocab_size=len(build_tiny_tokenizer()), hidden_size=48, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2))
    back = load_peft_adapter(tmp_path)
    with pytest.raises(AdapterError, match="value head does not fit|shape"):
        PolicyRuntime(wide, "lora", back.lora, state=back)


@pytest.mark.parametrize("change, message", [
    ({"peft_type": "IA3"}, "not a PEFT LoRA adapter"),
    ({"use_dora": True}, "use_dora"),
    ({"rank_pattern": {"q_proj": 2}}, "own rank"),
    ({"target_modules": ".*proj"}, "regular expression"),
    ({"task_type": "SEQ_CLS"}, "CAUSAL_LM"),
])
def test_a_foreign_adapter_config_is_refused_by_name(tiny, tmp_path, change, message):
    save_peft_adapter(_trained_runtime(tiny.model).state("tiny-random", 1), tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    (tmp_path / "adapter_config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(AdapterError, match=message):
        load_any_adapter(tmp_path)


def test_an_empty_folder_says_what_it_needs(tmp_path):
    with pytest.raises(AdapterError, match="adapter_model.safetensors"):
        load_any_adapter(tmp_path)
