"""Tolerances for tests that compare two computation orders, and why they hold on any CPU.

Floating-point addition is not associative: two orders of the same sums (packed vs padded
responses, micro-batched vs whole mini-batches, checkpointed vs not, shared vs unshared
prompts, batched vs one row, merged vs unmerged LoRA) round differently, and *how* differently
depends on the CPU's kernels: ATen's AVX-512 reductions add in another order than its AVX2 or
default ones, and MKL/oneDNN choose their blocking per instruction set. A tolerance read off one
machine's run is therefore not a bound. The tests use one of two ways instead:

1. **Mathematical equality: compare in float64.** :func:`float64_everywhere` makes a tiny model
   compute in float64 end to end (transformers' RMSNorm upcasts to float32 only, which would
   *downcast* a float64 model: it is replaced). The rounding of one operation is then
   u = 2**-53 ~ 1.1e-16, and a sum of n terms differs between two orders by at most
   2 * gamma_n * sum|x_i| with gamma_n = n*u / (1 - n*u) (Higham, *Accuracy and Stability of
   Numerical Algorithms*, 2nd ed., eq. 3.4 and section 4.2). The tiny model's sums have
   n <= 10**3 terms, so one sum is off by ~1e-13 of its terms' magnitude; through two layers,
   a softmax over the vocabulary and two PPO steps of four updates this grows by at most
   ~10**4 (a generous bound on the condition numbers of these small, well-scaled operations).
   EXACT_RTOL = 1e-9 leaves another factor 1e2 on top, and is still 10**5 times smaller than
   anything a real bug changes (a wrong mask, weight or position moves these numbers by
   >= 1e-4, as each test's guard shows). Kernels differ only in order, so the bound does not
   depend on the ISA.

2. **float32 where the float32 path itself is under test** (e.g. the packed fp32 linears,
   which only exist for fp32): :func:`float32_bound` scales the tolerance by the magnitude of
   the summed terms and their number, with the same gamma_n and u = 2**-24.
"""

from __future__ import annotations

import torch

FLOAT64_U = 2.0 ** -53
FLOAT32_U = 2.0 ** -24

# Relative (and, for quantities built from O(1) terms such as whitened advantages times ratios
# near 1, absolute) tolerance for float64 comparisons of two computation orders: see above.
EXACT_RTOL = 1e-9
EXACT_ATOL = 1e-9


def gamma(n: int, u: float) -> float:
    """Higham's gamma_n = n*u / (1 - n*u): the relative error bound of a sum of n terms."""
    assert n * u < 1, "bound meaningless: too many terms for this precision"
    return n * u / (1 - n * u)


def float32_bound(n_terms: int, magnitude: float, depth: int = 1) -> float:
    """Absolute bound on the difference between two float32 orders of a computation whose
    result is a chain of ``depth`` sums of ``n_terms`` terms each, the terms' absolute values
    summing to about ``magnitude``: 2 * depth * gamma_n * magnitude (two orders, each off by
    at most gamma_n * sum|x|, the errors of the chain adding up to first order)."""
    return 2 * depth * gamma(n_terms, FLOAT32_U) * magnitude


def float64_everywhere(model: torch.nn.Module) -> torch.nn.Module:
    """Cast ``model`` to float64 and make its RMSNorms compute in float64 too (transformers'
    compute in float32 whatever the input, which would round a float64 model's activations to
    float32 at every norm and bring float32's order-dependence back). In place; returns it."""
    model.to(torch.float64)
    for module in model.modules():
        if type(module).__name__.endswith("RMSNorm") and hasattr(module, "variance_epsilon"):
            module.forward = _rms_norm_forward.__get__(module)
    return model


def _rms_norm_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    """y = w * x / sqrt(mean(x^2) + eps), in the input's own dtype (here float64)."""
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


# A first-order allowance for how much the rounding of one layer's products can grow through
# the layers after it. The tiny models' activations pass an RMSNorm (or LayerNorm) before every
# block and their weights are ~N(0, 0.02): each layer maps a perturbation to one of at most the
# same size, and 10 covers the residual additions of a 2-layer model several times over.
AMPLIFICATION = 10.0


@torch.no_grad()
def float32_forward_bound(model: torch.nn.Module, run) -> float:
    """A bound on how much two float32 orders of ``model``'s forward (``run()`` performs it) can
    differ at the output: for every Linear (a LoRA layer counted with W + ΔW and fan-in
    d_in + r), Higham's 2 * gamma_n * max_j sum_i |x_i| |w_ji| over the product's outputs,
    summed over the layers and times :data:`AMPLIFICATION`. Read from the magnitudes of this
    very forward, so it scales with the model and the input, not with one CPU's run."""
    from ppo_demo.lora import LoRALinear

    total = 0.0
    lora_bases = {id(m.base) for m in model.modules() if isinstance(m, LoRALinear)}

    def hook(module, args, _out):
        nonlocal total
        x = args[0].detach().abs().double()
        if isinstance(module, LoRALinear):
            weight = module.base.weight.double().abs() + module.delta_weight().double().abs()
            n = weight.shape[1] + module.r
        elif id(module) in lora_bases:
            return  # counted with its LoRA layer
        else:
            weight, n = module.weight.double().abs(), module.weight.shape[1]
        magnitude = x @ weight.t()
        if getattr(module, "bias", None) is not None and not isinstance(module, LoRALinear):
            magnitude = magnitude + module.bias.double().abs()
        total += 2 * gamma(n, FLOAT32_U) * float(magnitude.max())

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Linear, LoRALinear))]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return AMPLIFICATION * total


# The embedded SmolLM2 (30 layers, fan-in up to 1536, logits O(10)) in fp32, where the packed
# sampling pass and the update's forward are two orders of the same numbers. Its worst-case bound
# (float32_forward_bound) is ~1e2 and says nothing; rounding errors of long dot products grow
# like sqrt(n)*u with high probability instead (Higham & Mary, SIAM J. Sci. Comput. 41(5), 2019):
# sqrt(1536) * 6e-8 ~ 2.4e-6 relative per product, ~1e-4 relative over 30 layers, ~1e-3 on an
# O(10) logit, so on a log-prob. The mean of rho - 1 = exp(d) - 1 over tokens is then within 1e-3
# (signs of d vary, so the mean is smaller still). A wrong pass (a shifted position, a missing
# mask, dropout left on) moves rho by >= 1e-2 on many tokens.
EMBEDDED_FP32_ATOL = 1e-3
