"""LoRA invariants (as PEFT tests them), each preceded by a check that the test can fail."""

import pytest
import torch

from ppo_demo.config import LORA_TARGETS_DEFAULT
from ppo_demo.lora import (LoRAError, LoRALinear, adapters_disabled, adapters_merged, inject_lora,
                           load_lora_state_dict, lora_layers, lora_state_dict, remove_lora)
from tolerances import EXACT_ATOL, EXACT_RTOL


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.fixture
def ids():
    return torch.tensor([[5, 17, 99, 3, 42, 7]])


def _randomise_b(model, scale=0.5):
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=generator) * scale)


def test_fresh_adapter_changes_nothing_and_a_trained_one_does(tiny, ids):
    model = tiny.model
    before = _logits(model, ids)
    wrapped = inject_lora(model, LORA_TARGETS_DEFAULT, r=4, alpha=8, dropout=0.0)
    assert len(wrapped) == 2 * 7  # 2 layers x 7 projections
    assert torch.equal(_logits(model, ids), before)  # B = 0  =>  ΔW = 0
    _randomise_b(model)
    assert not torch.allclose(_logits(model, ids), before, atol=1e-3)  # the check above can fail


def test_disabled_adapters_give_the_base_model(tiny, ids):
    model = tiny.model
    before = _logits(model, ids)
    inject_lora(model, LORA_TARGETS_DEFAULT, r=4, alpha=8, dropout=0.0)
    _randomise_b(model)
    with adapters_disabled(model):
        assert torch.equal(_logits(model, ids), before)
    assert not torch.allclose(_logits(model, ids), before, atol=1e-3)  # enabled again afterwards


def test_merge_equals_unmerged_forward_and_unmerge_restores(tiny64, ids):
    """In float64: W + ΔW (merged) and W x + ΔW x (unmerged) round differently, and unmerging
    rounds again; in float64 that stays far below the tolerance on any CPU (tests/tolerances.py)."""
    model = tiny64.model
    base_weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    _base_logits = _logits(model, ids)
    inject_lora(model, LORA_TARGETS_DEFAULT, r=4, alpha=8, dropout=0.0)
    _randomise_b(model)
    unmerged = _logits(model, ids)
    with adapters_merged(model):
        assert all(layer.merged for _, layer in lora_layers(model))
        torch.testing.assert_close(_logits(model, ids), unmerged, rtol=EXACT_RTOL, atol=EXACT_ATOL)
        assert not torch.allclose(_logits(model, ids), _base_logits, atol=1e-3)  # guard: the adapter matters
    assert not any(layer.merged for _, layer in lora_layers(model))
    torch.testing.assert_close(_logits(model, ids), unmerged, rtol=EXACT_RTOL, atol=EXACT_ATOL)
    remove_lora(model)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, base_weights[name], rtol=EXACT_RTOL, atol=EXACT_ATOL, msg=name)


def test_lora_layer_math_hand_example():
    base = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        base.weight.copy_(torch.eye(2))
    layer = LoRALinear(base, r=1, alpha=2.0, dropout=0.0)  # scaling = alpha / r = 2
    with torch.no_grad():
        layer.lora_A.copy_(torch.tensor([[1.0, 1.0]]))
        layer.lora_B.copy_(torch.tensor([[0.5], [0.0]]))
    # ΔW = 2 * [[0.5], [0]] @ [[1, 1]] = [[1, 1], [0, 0]];  (I + ΔW) @ [1, 2] = [4, 2]
    out = layer(torch.tensor([[1.0, 2.0]]))
    assert torch.allclose(out, torch.tensor([[4.0, 2.0]]))
    assert torch.allclose(layer.delta_weight(), torch.tensor([[1.0, 1.0], [0.0, 0.0]]))


def test_only_adapter_parameters_are_trainable(tiny):
    model = tiny.model
    inject_lora(model, ["q_proj", "v_proj"], r=2)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    assert len(trainable) == 2 * 2 * 2  # 2 layers x 2 targets x (A, B)


def test_no_matching_target_is_a_clear_error(tiny):
    with pytest.raises(LoRAError, match="q_proj") as info:
        inject_lora(tiny.model, ["c_attn", "attn.c_proj"])
    assert "No Linear layer matches" in str(info.value)
    assert not list(lora_layers(tiny.model))  # nothing half-injected


def test_state_dict_round_trip_and_mismatch_changes_nothing(tiny, ids):
    model = tiny.model
    inject_lora(model, LORA_TARGETS_DEFAULT, r=4, alpha=8, dropout=0.0)
    _randomise_b(model)
    saved = lora_state_dict(model)
    trained = _logits(model, ids)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B.zero_()
    assert not torch.allclose(_logits(model, ids), trained, atol=1e-3)
    load_lora_state_dict(model, saved)
    assert torch.equal(_logits(model, ids), trained)

    wrong = dict(saved)
    key = next(k for k in wrong if k.endswith("lora_A"))
    wrong[key] = torch.zeros(3, 3)
    with pytest.raises(LoRAError, match="shape"):
        load_lora_state_dict(model, wrong)
    missing = {k: v for k, v in saved.items() if "q_proj" not in k}
    with pytest.raises(LoRAError, match="missing"):
        load_lora_state_dict(model, missing)
    assert torch.equal(_logits(model, ids), trained)


@pytest.mark.parametrize("alpha", [16.0, 5.0])  # scaling 2 (a power of two) and 0.625
def test_fused_lora_forward_and_gradients_equal_the_textbook_formula(alpha):
    """y = x Wᵀ + b + (alpha/r)·(x Aᵀ) Bᵀ, written out op by op, against the layer's fused
    addmm form: outputs and gradients of A, B and x agree to rounding (3-D input). In float64,
    so the tolerance holds on any CPU (tests/tolerances.py); the fused code is dtype-agnostic."""
    torch.manual_seed(0)
    base = torch.nn.Linear(12, 7, dtype=torch.float64)
    layer = LoRALinear(base, r=8, alpha=alpha, dropout=0.0)
    assert layer.lora_A.dtype == torch.float64  # the fused path, not the cast-back one
    with torch.no_grad():
        torch.nn.init.normal_(layer.lora_B)
    x = torch.randn(3, 5, 12, requires_grad=True, dtype=torch.float64)
    x_ref = x.detach().clone().requires_grad_(True)
    A_ref = layer.lora_A.detach().clone().requires_grad_(True)
    B_ref = layer.lora_B.detach().clone().requires_grad_(True)
    expected = x_ref @ base.weight.t() + base.bias + (alpha / 8) * ((x_ref @ A_ref.t()) @ B_ref.t())
    out = layer(x)
    assert out.shape == (3, 5, 7)
    torch.testing.assert_close(out, expected, rtol=EXACT_RTOL, atol=EXACT_ATOL)
    weights = torch.randn(3, 5, 7, dtype=torch.float64)
    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    torch.testing.assert_close(layer.lora_A.grad, A_ref.grad, rtol=EXACT_RTOL, atol=EXACT_ATOL)
    torch.testing.assert_close(layer.lora_B.grad, B_ref.grad, rtol=EXACT_RTOL, atol=EXACT_ATOL)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=EXACT_RTOL, atol=EXACT_ATOL)
