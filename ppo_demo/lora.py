"""LoRA written by hand (no peft): y = x Wᵀ + (alpha/r) · dropout(x) Aᵀ Bᵀ.

Shapes: x (..., d_in), W (d_out, d_in), A (r, d_in), B (d_out, r).

Invariants the tests check:
* B starts at zero, so a fresh adapter leaves the model's output unchanged;
* the base weight is frozen; only A and B train;
* ``merge`` folds (alpha/r)·B·A into W and ``unmerge`` takes it out again: same outputs,
  either way (up to float rounding);
* with adapters disabled the model is exactly the base model, which is how the reference
  policy pi_ref is computed in LoRA mode: no second copy of the network.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F


class LoRAError(ValueError):
    """LoRA cannot be applied as asked (e.g. no layer matches the target names)."""


class LoRALinear(torch.nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update.

    A and B are kept in at least float32 whatever the base dtype, so AdamW updates on a bf16
    model do not lose precision; the update is cast back to the base output's dtype. A float64
    base (the tests' exact-equality runs) keeps them in float64.
    """

    def __init__(self, base: torch.nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.05):
        super().__init__()
        if not isinstance(base, torch.nn.Linear):
            raise TypeError("LoRALinear only wraps torch.nn.Linear")
        if r < 1:
            raise LoRAError(f"LoRA rank must be at least 1; got {r}.")
        self.base = base
        self.r = int(r)
        self.alpha = float(alpha)
        self.scaling = self.alpha / self.r
        self.dropout = torch.nn.Dropout(dropout) if dropout > 0 else torch.nn.Identity()
        device = base.weight.device
        dtype = torch.promote_types(base.weight.dtype, torch.float32)  # bf16/fp16/fp32 -> fp32; fp64 stays
        self.lora_A = torch.nn.Parameter(torch.empty(r, base.in_features, device=device, dtype=dtype))
        self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, r, device=device, dtype=dtype))
        # Same init as nn.Linear's weight (and microsoft/LoRA): A random, B zero => ΔW = 0.
        torch.nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)
        self.enabled = True  # False: behave exactly as the base layer (pi_ref)
        self.merged = False  # True: ΔW is folded into base.weight

    def delta_weight(self) -> torch.Tensor:
        """ΔW = (alpha/r)·B·A, shape (d_out, d_in), in the base weight's dtype."""
        return (self.lora_B @ self.lora_A * self.scaling).to(self.base.weight.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base.weight.add_(self.delta_weight())
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight.sub_(self.delta_weight())
            self.merged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled or self.merged:
            return self.base(x)  # when merged this already includes ΔW
        if x.dtype != self.lora_A.dtype:  # bf16 base: the update in fp32, cast back
            h = (self.dropout(x).to(self.lora_A.dtype) @ self.lora_A.t()) * self.scaling  # (..., r)
            return self.base(x) + (h @ self.lora_B.t()).to(x.dtype)
        # Flattened to 2-D so the whole update is two matrix products, the second one adding
        # scaling·(h Bᵀ) into the base output in place (addmm): ~5 fewer operations per layer
        # than matmul, scale, matmul, add, i.e. ~1000 fewer per forward over SmolLM2's 210
        # adapted layers. Same numbers up to float rounding (exactly the same when alpha/r is a
        # power of two, as with the default 16/8).
        flat = x.reshape(-1, x.shape[-1])  # (N, d_in)
        out = F.linear(flat, self.base.weight, self.base.bias)  # (N, d_out)
        dropped = self.dropout(flat) if self.dropout.training else flat  # eval-mode dropout: identity
        h = torch.mm(dropped, self.lora_A.t())  # (N, r)
        out = torch.addmm(out, h, self.lora_B.t(), alpha=self.scaling)  # out + scaling·h Bᵀ
        return out.view(*x.shape[:-1], out.shape[-1])

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, enabled={self.enabled}, merged={self.merged}"


def _parent_and_child(root: torch.nn.Module, name: str) -> tuple[torch.nn.Module, str]:
    parent_name, _, child = name.rpartition(".")
    return (root.get_submodule(parent_name) if parent_name else root), child


def inject_lora(model: torch.nn.Module, targets, r: int = 8, alpha: float = 16.0,
                dropout: float = 0.05) -> list[str]:
    """Freeze every base parameter and wrap each ``nn.Linear`` whose name ends with one of
    ``targets`` in a :class:`LoRALinear`. Returns the wrapped module names."""
    targets = tuple(t.strip() for t in targets if t.strip())
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise LoRAError("This model already has LoRA adapters; remove them first.")
    chosen = [
        name for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and any(name.endswith(t) for t in targets)
    ]
    if not chosen:
        linear_names = sorted({n.rpartition(".")[2] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise LoRAError(
            f"No Linear layer matches the LoRA targets {', '.join(targets)}. "
            f"This model's Linear layers are named: {', '.join(linear_names) or 'none'}."
        )
    for p in model.parameters():
        p.requires_grad_(False)
    for name in chosen:
        parent, child = _parent_and_child(model, name)
        setattr(parent, child, LoRALinear(getattr(parent, child), r=r, alpha=alpha, dropout=dropout))
    return chosen


def remove_lora(model: torch.nn.Module) -> int:
    """Put the original Linear layers back (unmerging first). Returns how many were removed."""
    removed = 0
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            module.unmerge()
            parent, child = _parent_and_child(model, name)
            setattr(parent, child, module.base)
            removed += 1
    return removed


def lora_layers(model: torch.nn.Module) -> Iterator[tuple[str, LoRALinear]]:
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear):
            yield name, module


def lora_signature(model: torch.nn.Module) -> tuple | None:
    """(r, alpha, dropout, wrapped names) of the injected adapters, or None if there are none."""
    layers = list(lora_layers(model))
    if not layers:
        return None
    first = layers[0][1]
    p = first.dropout.p if isinstance(first.dropout, torch.nn.Dropout) else 0.0
    return (first.r, first.alpha, p, tuple(name for name, _ in layers))


@contextmanager
def adapters_disabled(model: torch.nn.Module):
    """Run the base model: every LoRA layer passes its input straight to the frozen Linear."""
    layers = [m for _, m in lora_layers(model)]
    was_merged = [m.merged for m in layers]
    for m in layers:
        m.unmerge()
        m.enabled = False
    try:
        yield model
    finally:
        for m, merged in zip(layers, was_merged):
            m.enabled = True
            if merged:
                m.merge()


@contextmanager
def adapters_merged(model: torch.nn.Module):
    """Fold ΔW into the weights for the duration (generation then costs no extra matmuls).

    The app never does this to the shared model: in fp32, W + ΔW − ΔW is not W again, so pi_ref
    would drift run after run. Sampling merges into packed copies instead
    (:mod:`ppo_demo.packed_linears`). This is the textbook merge, kept as the reference the
    tests hold that path (and the unmerged forward) against."""
    layers = [m for _, m in lora_layers(model)]
    for m in layers:
        m.merge()
    try:
        yield model
    finally:
        for m in layers:
            m.unmerge()


def lora_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors, keyed '<module>.lora_A' / '<module>.lora_B', as CPU copies."""
    state = {}
    for name, m in lora_layers(model):
        state[f"{name}.lora_A"] = m.lora_A.detach().to("cpu", copy=True)
        state[f"{name}.lora_B"] = m.lora_B.detach().to("cpu", copy=True)
    return state


@torch.no_grad()
def load_lora_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy adapter tensors into the injected layers; any missing, extra or mis-shaped key is
    a :class:`LoRAError` and nothing is changed."""
    layers = dict(lora_layers(model))
    expected = {f"{n}.lora_{ab}" for n in layers for ab in "AB"}
    missing, extra = expected - set(state), set(state) - expected
    if missing or extra:
        raise LoRAError(
            f"The adapter does not fit this model: {len(missing)} missing and {len(extra)} unexpected tensors "
            f"(e.g. {next(iter(sorted(missing or extra)))})."
        )
    for key, tensor in state.items():
        module_name, _, param = key.rpartition(".")
        target = getattr(layers[module_name], param)
        if tuple(target.shape) != tuple(tensor.shape):
            raise LoRAError(f"The adapter tensor {key} has shape {tuple(tensor.shape)}; this model needs {tuple(target.shape)}.")
    for key, tensor in state.items():
        module_name, _, param = key.rpartition(".")
        layer = layers[module_name]
        was_merged = layer.merged
        layer.unmerge()
        getattr(layer, param).copy_(tensor)
        if was_merged:
            layer.merge()
