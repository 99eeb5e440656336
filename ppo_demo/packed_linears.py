"""Sampling on CPU with every Linear's weight pre-packed for oneDNN, for the span of one call.

Why: a KV-cached decode step multiplies a few rows (M = rows still running, 1-12) by every
weight of the network, and MKL's fp32 GEMM is slow at such small M on the AMD EPYC CPUs this
app runs on: x (8, 576) @ Wᵀ (576 -> 1536) took ~300 us with ``F.linear`` against ~180 us with
oneDNN on a weight reordered once into its blocked layout; the LM head (V x H = 49152 x 576,
applied to one position per row) ~54 ms against ~16 ms. Reordering all of SmolLM2-135M's
weights costs a few hundred ms, so it is paid once per sampling call and the copies are freed
when the call ends: nothing is kept between calls (a permanent copy would add ~0.5 GB). The
transient copies still raise the peak: ~0.7 GB more during the call (on exit the freed memory is
handed back to the OS, or it would stay resident and add to the update's peak). Gradient
checkpointing (the lean mode) turns packing off (see the trainer).

A LoRA layer with its adapter on is packed as ONE weight, W + (alpha/r)·B·A, computed into a
new tensor (the base weight is never touched, so pi_ref stays bit-exact): the decode step then
pays nothing for the adapter. With the adapter off (pi_ref) or already merged, W is packed as it
is. Outputs equal the unpacked forward up to fp32 rounding (a different summation order,
~1e-6 relative), the same order of difference as the cached decode against a full forward.

Only for no-grad fp32 on CPU with oneDNN available; elsewhere :func:`packed_linears` changes
nothing. The weights must not change inside the block (the packed copies would be stale).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from .cpu_tuning import release_freed_memory
from .lora import LoRALinear


def packing_applies(model: torch.nn.Module) -> bool:
    """Whether :func:`packed_linears` would pack ``model`` here: fp32 weights on CPU, gradients
    off, no autocast, and a PyTorch built with oneDNN (mkldnn)."""
    weight = next(model.parameters(), None)
    return (weight is not None and weight.device.type == "cpu" and weight.dtype == torch.float32
            and torch.backends.mkldnn.is_available() and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu"))


def _weight_to_pack(module: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(weight (d_out, d_in), bias (d_out,) or None) that one oneDNN call must apply in place of
    ``module``'s forward, or None to leave the module as it is."""
    base = module.base if isinstance(module, LoRALinear) else module
    if type(base) is not torch.nn.Linear or base.weight.dtype != torch.float32 or base.weight.device.type != "cpu":
        return None  # a Linear subclass may compute something else; oneDNN here is for fp32 on CPU
    weight = base.weight
    if isinstance(module, LoRALinear) and module.enabled and not module.merged:
        if module.dropout.training and not isinstance(module.dropout, torch.nn.Identity):
            return None  # dropout active on the adapter's input: no single weight computes that
        # W + (alpha/r)·B·A into a new tensor, in one pass (half the time of forming ΔW first)
        weight = torch.addmm(weight, module.lora_B, module.lora_A, alpha=module.scaling)
    # else: a plain Linear, an adapter off (pi_ref), or ΔW already folded into W
    bias = base.bias.detach() if base.bias is not None else None
    return weight.detach(), bias


def _packed_forward(packed: torch.Tensor, bias: torch.Tensor | None, unpacked):
    def forward(x: torch.Tensor) -> torch.Tensor:  # (..., d_in) -> (..., d_out)
        if x.dtype != torch.float32 or x.numel() == 0 or torch.is_grad_enabled():
            return unpacked(x)  # the packed copy is no-grad fp32 only
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
    return forward


@contextmanager
def packed_linears(model: torch.nn.Module, enabled: bool = True) -> Iterator[int]:
    """Inside the block, every ``nn.Linear`` of ``model`` (the LM head included) and every
    :class:`~ppo_demo.lora.LoRALinear` runs as one oneDNN product with a pre-packed weight.
    Yields how many modules were packed (0 when packing does not apply, see
    :func:`packing_applies`). On exit, even after an exception, every module's ``forward`` is
    what it was and the packed copies are released.

    How: an instance attribute ``forward`` shadows the class's; one already there (a hook
    library's) is kept and put back. The base Linear inside a LoRALinear is left alone, as its
    wrapper no longer calls it."""
    if not enabled or not packing_applies(model):
        yield 0
        return
    wrapped_bases = {id(m.base) for m in model.modules() if isinstance(m, LoRALinear)}
    patched: list[tuple[torch.nn.Module, object]] = []  # (module, its previous instance forward or None)
    try:
        for module in model.modules():
            found = None if id(module) in wrapped_bases else _weight_to_pack(module)
            if found is None:
                continue
            weight, bias = found
            packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)  # oneDNN's blocked layout, a copy
            del weight, found  # a merged weight is only needed until it is packed
            patched.append((module, vars(module).get("forward")))
            module.forward = _packed_forward(packed, bias, module.forward)
        yield len(patched)
    finally:
        for module, previous in patched:
            if previous is None:
                del module.forward
            else:
                module.forward = previous
        if patched:
            patched.clear()  # the last references to the packed copies
            release_freed_memory()  # or they stay resident and add to the update's peak
