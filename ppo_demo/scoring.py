"""Scoring passes: log-probs, entropy and hidden states of each response token under a model.

The reference pass, the policy's scoring pass (when sampling did not yield it) and every update
pass call :func:`response_scores`. Only the response positions are pushed through the LM head,
and only the last layer's hidden state is kept (the critic's input), unlike the seed's
``output_hidden_states=True`` which keeps every layer's. Answers to one prompt can share it, or
run packed with no padding (:mod:`ppo_demo.prefix_sharing`): the same numbers up to float
rounding.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.utils.checkpoint

from .ppo import logprobs_and_entropy_from_logits, logprobs_from_logits, upcast
from .prefix_sharing import can_pack, packed_response_hidden, prompt_groups, shared_prompt_logits_and_hidden
from .rollout import RolloutBatch, has_plain_lm_head


def response_logits_and_hidden(model, batch: RolloutBatch, temperature: float,
                               share_prompts: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits / temperature (B, T, V) and last hidden states (B, T, H) at the positions that
    predict each response token: column P-1+t predicts response token t.

    ``share_prompts``: rows with the same prompt run it once and reuse its keys and values
    (:mod:`ppo_demo.prefix_sharing`; same numbers up to float rounding, gradients included).
    The caller must not ask for it under gradient checkpointing or with dropout active."""
    if share_prompts and has_plain_lm_head(model):
        groups = prompt_groups(batch)
        if groups is not None:
            return shared_prompt_logits_and_hidden(model, batch, temperature, groups)
    P = batch.prompt_len
    kwargs = dict(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                  position_ids=batch.position_ids, use_cache=False)
    if not has_plain_lm_head(model):
        out = model(**kwargs, output_hidden_states=True)
        hidden = out.hidden_states[-1][:, P - 1:-1]  # (B, T, H)
        logits = out.logits[:, P - 1:-1]  # (B, T, V)
    else:
        trunk_out = model.get_decoder()(**kwargs)
        # contiguous: on a strided 3-D input, a bf16 matmul broadcasts the (V, H) head weight
        # into one copy per row (8 x 57 MB for SmolLM2), which took most of a bf16 forward.
        hidden = trunk_out.last_hidden_state[:, P - 1:-1].contiguous()  # (B, T, H)
        logits = model.get_output_embeddings()(hidden)  # (B, T, V): response positions only
    return upcast(logits) / temperature, hidden


@dataclass
class ResponseScores:
    """What a scoring or update pass yields for each response token, (B, T) or (B, T, H)."""

    logprobs: torch.Tensor  # (B, T) log softmax(logits / temperature)[y_t]
    entropy: torch.Tensor | None  # (B, T) entropy of that distribution, when asked for
    hidden: torch.Tensor  # (B, T, H) last hidden state at the position predicting y_t (the critic's input)
    log_probs: torch.Tensor | None = None  # (B, T, V) the whole tempered log-softmax, when asked for


def response_scores(model, batch: RolloutBatch, temperature: float, *, share_prompts: bool = False,
                    entropy: bool = False, entropy_grad: bool = True, distribution: bool = False) -> ResponseScores:
    """Log-probs (and entropy) of each response token under ``model`` at ``temperature``, with
    the hidden states the critic reads. Callers mask past EOS; the packed pass leaves 0 there.

    ``share_prompts`` (no dropout, no checkpointing: see :func:`response_logits_and_hidden`):
    each distinct prompt runs once, and where the model allows it
    (:func:`ppo_demo.prefix_sharing.can_pack`) the responses run packed, real tokens only, so
    neither the trunk nor the LM head and its log-softmax over the vocabulary spends anything
    on padding past EOS. Same numbers up to float rounding, gradients included.
    ``distribution``: also the whole log-softmax (B, T, V) (no-grad passes: the exact KL)."""
    if share_prompts and can_pack(model):
        hidden, rows, cols = packed_response_hidden(model, batch)  # (N, H), (N,), (N,)
        logits = upcast(model.get_output_embeddings()(hidden)) / temperature  # (N, V)
        tokens = batch.response_ids[rows, cols]
        full = torch.log_softmax(logits, dim=-1) if distribution and not entropy else None  # (N, V)
        if entropy:
            logprobs, ent = logprobs_and_entropy_from_logits(logits, tokens, entropy_grad)
            full = torch.log_softmax(logits, dim=-1) if distribution else None
        elif full is not None:
            logprobs, ent = full.gather(-1, tokens.unsqueeze(-1)).squeeze(-1), None
        else:
            logprobs, ent = logprobs_from_logits(logits, tokens), None
        B, T = batch.response_mask.shape

        def unpack(x):  # (N, ...) -> (B, T, ...), 0 at padding; differentiable
            return x.new_zeros(B, T, *x.shape[1:]).index_put((rows, cols), x)
        return ResponseScores(unpack(logprobs), unpack(ent) if ent is not None else None, unpack(hidden),
                              unpack(full) if full is not None else None)
    logits, hidden = response_logits_and_hidden(model, batch, temperature, share_prompts=share_prompts)
    full = torch.log_softmax(logits, dim=-1) if distribution else None  # (B, T, V)
    if entropy:
        logprobs, ent = logprobs_and_entropy_from_logits(logits, batch.response_ids, entropy_grad)
        return ResponseScores(logprobs, ent, hidden, full)
    logprobs = (full.gather(-1, batch.response_ids.unsqueeze(-1)).squeeze(-1) if full is not None
                else logprobs_from_logits(logits, batch.response_ids))
    return ResponseScores(logprobs, None, hidden, full)


def decoder_layers(model) -> list[torch.nn.Module]:
    """The transformer blocks of a causal LM, found structurally (``layers`` / ``h`` / ``blocks``
    ModuleList of its decoder), so checkpointing needs no per-architecture code."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    for name in ("layers", "h", "blocks"):
        blocks = getattr(decoder, name, None)
        if isinstance(blocks, torch.nn.ModuleList) and len(blocks) > 0:
            return list(blocks)
    raise ValueError(f"Cannot find the decoder layers of {type(model).__name__} for gradient checkpointing.")


@contextmanager
def layer_checkpointing(model, enabled: bool = True):
    """Inside this block, each decoder layer run with gradients enabled keeps only its inputs;
    its activations are recomputed during backward (``torch.utils.checkpoint``, non-reentrant,
    RNG state preserved so dropout masks repeat). Gradients are unchanged.

    Why not ``model.gradient_checkpointing_enable()``: transformers only checkpoints in
    training mode, and our PPO passes run in eval mode (dropout off) by default.
    """
    if not enabled:
        yield
        return
    layers = decoder_layers(model)

    def wrap(forward):
        def checkpointed(*args, **kwargs):
            if not torch.is_grad_enabled():
                return forward(*args, **kwargs)
            return torch.utils.checkpoint.checkpoint(forward, *args, use_reentrant=False, **kwargs)
        return checkpointed

    # An instance attribute shadows the class's forward. Hooks (e.g. accelerate's) may have set
    # one already: keep it to put back.
    previous = [vars(layer).get("forward") for layer in layers]
    for layer in layers:
        layer.forward = wrap(layer.forward)
    try:
        yield
    finally:
        for layer, forward in zip(layers, previous):
            if forward is None:
                del layer.forward
            else:
                layer.forward = forward


def autocast_context(device: torch.device):
    """bf16 autocast on CUDA (as in the seed); plain fp32 on CPU."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return nullcontext()
