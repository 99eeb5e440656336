"""The actor-critic around a causal LM, the reference policy, and the trainable state.

``ActorCritic`` shares the LM's trunk between the policy (the LM head) and the critic (a value
head on the last hidden state). Only the response positions are pushed through the LM head,
and only the last layer's hidden state is kept, unlike the seed's ``output_hidden_states=True``
which keeps every layer's.

``PolicyState`` is what a user owns: the LoRA tensors (or, in full fine-tuning, every weight)
plus the value head, as CPU tensors, with the settings needed to put them back. The app keeps
one per browser session over a single shared base model.

``PolicyRuntime`` puts one state on the shared model and samples from it: ``with
PolicyRuntime.for_config(loaded, config, state) as runtime: runtime.answers(...)`` samples
with that session's policy and takes its copies off the model again when the block ends.
"""

from __future__ import annotations

import copy
import json
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.utils.checkpoint

from .lora import (LoRAError, adapters_disabled, inject_lora, load_lora_state_dict, lora_layers,
                   lora_signature, lora_state_dict, remove_lora)
from .packed_linears import packed_linears
from .ppo import logprobs_and_entropy_from_logits, logprobs_from_logits, upcast
from .prefix_sharing import can_pack, packed_response_hidden, prompt_groups, shared_prompt_logits_and_hidden
from .rollout import (DEFAULT_SYSTEM_PROMPT, RolloutBatch, chat_prompt_ids, eos_token_ids, has_plain_lm_head,
                      sample_and_score, sample_responses)

if TYPE_CHECKING:
    from .models import LoadedModel

ADAPTER_FILE = "adapter.safetensors"
ADAPTER_CONFIG_FILE = "adapter_config.json"
OPTIMIZER_FILE = "optimizer.safetensors"  # optional: AdamW's moments and step count, for an exact continuation
VALUE_HEAD_PREFIX = "value_head."


class AdapterError(ValueError):
    """A saved adapter cannot be used with this model or these settings."""


def hidden_size(model) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(config.hidden_size)


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


def response_scores(model, batch: RolloutBatch, temperature: float, *, share_prompts: bool = False,
                    entropy: bool = False, entropy_grad: bool = True) -> ResponseScores:
    """Log-probs (and entropy) of each response token under ``model`` at ``temperature``, with
    the hidden states the critic reads. Callers mask past EOS; the packed pass leaves 0 there.

    ``share_prompts`` (no dropout, no checkpointing: see :func:`response_logits_and_hidden`):
    each distinct prompt runs once, and where the model allows it
    (:func:`ppo_demo.prefix_sharing.can_pack`) the responses run packed, real tokens only, so
    neither the trunk nor the LM head and its log-softmax over the vocabulary spends anything
    on padding past EOS. Same numbers up to float rounding, gradients included."""
    if share_prompts and can_pack(model):
        hidden, rows, cols = packed_response_hidden(model, batch)  # (N, H), (N,), (N,)
        logits = upcast(model.get_output_embeddings()(hidden)) / temperature  # (N, V)
        tokens = batch.response_ids[rows, cols]
        logprobs, ent = (logprobs_and_entropy_from_logits(logits, tokens, entropy_grad) if entropy
                         else (logprobs_from_logits(logits, tokens), None))
        B, T = batch.response_mask.shape

        def unpack(x):  # (N, ...) -> (B, T, ...), 0 at padding; differentiable
            return x.new_zeros(B, T, *x.shape[1:]).index_put((rows, cols), x)
        return ResponseScores(unpack(logprobs), unpack(ent) if ent is not None else None, unpack(hidden))
    logits, hidden = response_logits_and_hidden(model, batch, temperature, share_prompts=share_prompts)
    if entropy:
        logprobs, ent = logprobs_and_entropy_from_logits(logits, batch.response_ids, entropy_grad)
        return ResponseScores(logprobs, ent, hidden)
    return ResponseScores(logprobs_from_logits(logits, batch.response_ids), None, hidden)


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


class ActorCritic(torch.nn.Module):
    """Policy pi_theta (the LM) and critic V (a linear value head) on one trunk."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        weight = next(model.parameters())
        dtype = torch.promote_types(weight.dtype, torch.float32)  # at least fp32, as the LoRA factors
        # Zero init: V = 0 everywhere at first, so the early value loss is just the returns².
        self.value_head = torch.nn.Linear(hidden_size(model), 1, device=weight.device, dtype=dtype)
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)

    def values(self, hidden: torch.Tensor) -> torch.Tensor:
        """V(s_t) from the hidden state before token t: (B, T, H) -> (B, T)."""
        return self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]


@dataclass
class PolicyState:
    """The trained part of a policy as CPU tensors, independent of any live model."""

    mode: str  # "lora" or "full"
    tensors: dict[str, torch.Tensor]  # LoRA A/B (or all LM weights) + value_head.*
    lora: dict | None = None  # {"r", "alpha", "dropout", "targets"} in LoRA mode
    model_name: str = ""
    steps_trained: int = 0
    meta: dict = field(default_factory=dict)
    # AdamW's state_dict with CPU tensors ({"state": {i: {"step", "exp_avg", "exp_avg_sq"}},
    # "param_groups": [...]}), or None: a fresh optimizer (the moments start at zero).
    optimizer: dict | None = None

    def describe(self) -> str:
        if self.mode == "lora":
            n = sum(t.numel() for k, t in self.tensors.items() if not k.startswith(VALUE_HEAD_PREFIX))
            return f"LoRA r={self.lora['r']} on {len(self.tensors) // 2 - 1} layers ({n:,} params), {self.steps_trained} steps"
        return f"full fine-tune, {self.steps_trained} steps"


def lora_settings(config) -> dict:
    return {"r": int(config.lora_r), "alpha": float(config.lora_alpha),
            "dropout": float(config.lora_dropout), "targets": list(config.lora_targets)}


def check_state_fits(state: PolicyState, mode: str, lora: dict | None) -> None:
    """A trained state can only be continued in its own mode and LoRA shape (r, targets)."""
    if state.mode != mode:
        raise AdapterError(f"The trained state is for {state.mode} mode but {mode} mode is selected. "
                           "Press Reset to start over, or set the mode back.")
    if mode == "lora" and _lora_shape_key(state.lora) != _lora_shape_key(lora):
        raise AdapterError(
            f"The trained adapter has LoRA r={state.lora['r']} on {', '.join(state.lora['targets'])}; "
            "the LoRA settings now differ. Press Reset to start a new adapter, or set them back."
        )


class PolicyRuntime:
    """An ActorCritic set up on a (possibly shared) base model for one user's state.

    LoRA mode: adapters are injected into the base model itself; pi_ref is the same network
    with adapters disabled. Full mode: the policy is a deep copy of the base, which stays
    untouched and serves as pi_ref.
    """

    def __init__(self, base_model: torch.nn.Module, mode: str, lora: dict | None,
                 state: PolicyState | None = None, init_seed: int = 0, tokenizer=None):
        self.base_model = base_model
        self.mode = mode
        self.lora = lora
        self.tokenizer = tokenizer  # needed only to sample and decode
        self.device = next(base_model.parameters()).device
        # A benchmark may set [-1] here so that no token ends a response.
        self.eos_ids = eos_token_ids(tokenizer, base_model) if tokenizer is not None else []
        if state is not None:
            check_state_fits(state, mode, lora)
        if mode == "lora":
            signature = lora_signature(base_model)
            wanted = (lora["r"], float(lora["alpha"]), float(lora["dropout"]))
            if signature is None or signature[:3] != wanted or not _same_targets(signature[3], lora["targets"]):
                remove_lora(base_model)
                inject_lora(base_model, lora["targets"], r=lora["r"], alpha=lora["alpha"], dropout=lora["dropout"])
            policy_model = base_model
            self._reset_lora(init_seed)
        else:
            remove_lora(base_model)  # pi_ref must be the pristine base
            policy_model = copy.deepcopy(base_model)
            for p in base_model.parameters():
                p.requires_grad_(False)
            for p in policy_model.parameters():
                p.requires_grad_(True)
        self.actor_critic = ActorCritic(policy_model)
        if state is not None:
            self.load_state(state)

    @classmethod
    def for_config(cls, loaded: "LoadedModel", config, state: PolicyState | None = None) -> "PolicyRuntime":
        """The runtime a run's config asks for (mode, LoRA shape, init seed) on ``loaded``'s
        model. Use it as a context manager: the block's end always calls :meth:`release`."""
        lora = lora_settings(config) if config.mode == "lora" else None
        return cls(loaded.model, config.mode, lora, state, init_seed=config.seed, tokenizer=loaded.tokenizer)

    def __enter__(self) -> "PolicyRuntime":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def _reset_lora(self, seed: int) -> None:
        """A fresh adapter (A random, B = 0), reproducible from ``seed``: injected layers may
        still hold another user's weights."""
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for _, layer in lora_layers(self.base_model):
                layer.unmerge()
                torch.nn.init.kaiming_uniform_(layer.lora_A, a=5 ** 0.5)
                torch.nn.init.zeros_(layer.lora_B)
                layer.lora_A.requires_grad_(True)
                layer.lora_B.requires_grad_(True)

    @property
    def policy_model(self) -> torch.nn.Module:
        return self.actor_critic.model

    @contextmanager
    def reference(self):
        """Yields a model computing pi_ref: adapters off (LoRA) or the frozen base (full)."""
        if self.mode == "lora":
            with adapters_disabled(self.base_model):
                yield self.base_model
        else:
            yield self.base_model

    # --- sampling ------------------------------------------------------------------------------
    # Sampling on CPU in fp32 runs every Linear through oneDNN with weights packed once per call
    # (ppo_demo.packed_linears; measured in benchmarks/results/decode_packed_epyc.md). A single
    # row (the UI's one-prompt answers) is not packed: there MKL is about as fast, so the
    # packing would be pure cost. False: never pack (the benchmark compares both).
    pack_for_sampling: bool = True
    PACK_MIN_ROWS = 2

    def _pack_for(self, prompt_ids: list[list[int]]) -> bool:
        return self.pack_for_sampling and len(prompt_ids) >= self.PACK_MIN_ROWS

    def sample(self, prompt_ids: list[list[int]], *, max_new_tokens: int, temperature: float, top_p: float,
               seed: int, greedy: bool = False, adapters: bool = True) -> RolloutBatch:
        """One response per prompt from the policy (``adapters=True``) or from pi_ref, dropout
        off, reproducible from ``seed``."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        self.actor_critic.eval()
        with torch.no_grad(), autocast_context(self.device):
            with (nullcontext(self.policy_model) if adapters else self.reference()) as model, \
                    packed_linears(model, self._pack_for(prompt_ids)):
                return sample_responses(model, prompt_ids, pad_id=self.tokenizer.pad_token_id, eos_ids=self.eos_ids,
                                        max_new_tokens=max_new_tokens, temperature=temperature,
                                        top_p=top_p, greedy=greedy, generator=generator)

    def sample_and_score(self, prompt_ids: list[list[int]], *, max_new_tokens: int, temperature: float,
                         top_p: float, seed: int) -> tuple[RolloutBatch, torch.Tensor, torch.Tensor]:
        """:meth:`sample` from the policy (the same tokens for the same seed), plus the old
        log-probs log pi(y_t) and values V(s_t), each (B, T) and 0 past EOS, taken from the
        sampling pass itself instead of a second forward over the batch (equal to one up to
        float rounding, see :func:`ppo_demo.rollout.sample_and_score`)."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        self.actor_critic.eval()
        with torch.no_grad(), autocast_context(self.device), \
                packed_linears(self.policy_model, self._pack_for(prompt_ids)):
            batch, sampled = sample_and_score(self.policy_model, prompt_ids, pad_id=self.tokenizer.pad_token_id,
                                              eos_ids=self.eos_ids, max_new_tokens=max_new_tokens,
                                              temperature=temperature, top_p=top_p, generator=generator)
            values = self.actor_critic.values(sampled.hidden) * batch.response_mask  # (B, T)
        return batch, sampled.logprobs, values

    def decode(self, batch: RolloutBatch) -> list[str]:
        """Each response's text, up to and including its EOS (special tokens dropped)."""
        lengths = batch.response_lengths.tolist()
        return [self.tokenizer.decode(row[:n], skip_special_tokens=True)
                for row, n in zip(batch.response_ids.tolist(), lengths)]

    def prompt_ids(self, prompt: str, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> list[int]:
        return chat_prompt_ids(self.tokenizer, prompt, system_prompt)

    def answers(self, prompts: list[str], *, adapters: bool, seed: int, temperature: float, top_p: float,
                max_new_tokens: int, greedy: bool = False,
                system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> tuple[list[str], list[bool]]:
        """Sampled answers to chat prompts and, for each, whether it ended with EOS (the
        missing-EOS penalty needs it)."""
        batch = self.sample([self.prompt_ids(p, system_prompt) for p in prompts], max_new_tokens=max_new_tokens,
                            temperature=temperature, top_p=top_p, seed=seed, greedy=greedy, adapters=adapters)
        return self.decode(batch), batch.ended_with_eos.tolist()

    def state(self, model_name: str = "", steps_trained: int = 0) -> PolicyState:
        if self.mode == "lora":
            tensors = lora_state_dict(self.base_model)
        else:
            tensors = {k: v.detach().to("cpu", copy=True) for k, v in self.policy_model.state_dict().items()}
        for k, v in self.actor_critic.value_head.state_dict().items():
            tensors[VALUE_HEAD_PREFIX + k] = v.detach().to("cpu", copy=True)
        return PolicyState(self.mode, tensors, copy.deepcopy(self.lora) if self.mode == "lora" else None,
                           model_name, steps_trained)

    @torch.no_grad()
    def load_state(self, state: PolicyState) -> None:
        value_part = {k[len(VALUE_HEAD_PREFIX):]: v for k, v in state.tensors.items() if k.startswith(VALUE_HEAD_PREFIX)}
        model_part = {k: v for k, v in state.tensors.items() if not k.startswith(VALUE_HEAD_PREFIX)}
        head = self.actor_critic.value_head
        if set(value_part) != {"weight", "bias"} or tuple(value_part["weight"].shape) != tuple(head.weight.shape):
            raise AdapterError("The saved value head does not fit this model (was it trained on another model?).")
        if self.mode == "lora":
            try:
                load_lora_state_dict(self.base_model, model_part)
            except LoRAError as exc:
                raise AdapterError(str(exc)) from None
        else:
            own = self.policy_model.state_dict()
            if set(own) != set(model_part) or any(own[k].shape != model_part[k].shape for k in own):
                raise AdapterError("The saved weights do not fit this model (was it trained on another model?).")
            self.policy_model.load_state_dict(model_part)
        head.load_state_dict(value_part)

    def release(self) -> None:
        """Drop references to copies so their memory can be freed (full mode)."""
        if self.mode == "full":
            self.actor_critic.model = None  # type: ignore[assignment]


def _same_targets(wrapped_names, targets) -> bool:
    suffixes = tuple(targets)
    return all(name.endswith(suffixes) for name in wrapped_names) and all(
        any(name.endswith(t) for name in wrapped_names) for t in suffixes)


def _lora_shape_key(lora: dict | None):
    if not lora:
        return None
    return (int(lora["r"]), tuple(sorted(lora["targets"])))


# --- the optimizer's part of the state ---------------------------------------------------------

def optimizer_state_on_cpu(optimizer: torch.optim.Optimizer) -> dict:
    """A copy of the optimizer's state_dict with CPU tensors: later steps update the live
    moments in place, so the session must hold its own copy."""
    saved = optimizer.state_dict()
    return {"state": {int(i): {k: v.detach().to("cpu", copy=True) if torch.is_tensor(v) else v for k, v in s.items()}
                      for i, s in saved["state"].items()},
            "param_groups": copy.deepcopy(saved["param_groups"])}


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict, learning_rate: float) -> None:
    """Continue from ``saved`` (see :func:`optimizer_state_on_cpu`): same moments and step count.
    The learning rate is the current run's knob, not the saved one. AdapterError if it does not fit."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    groups = saved.get("param_groups") or []
    fits = (len(groups) == len(optimizer.param_groups)
            and [len(g.get("params", [])) for g in groups] == [len(g["params"]) for g in optimizer.param_groups])
    for index, entry in saved.get("state", {}).items():
        index = int(index)
        fits = fits and 0 <= index < len(params) and all(
            tuple(entry[k].shape) == tuple(params[index].shape) for k in ("exp_avg", "exp_avg_sq") if k in entry)
    if not fits:
        raise AdapterError("The saved optimizer state does not fit this adapter (was it saved with another "
                           "LoRA shape or model?). Remove optimizer.safetensors to continue with a fresh optimizer.")
    # Optimizer.load_state_dict keeps CPU tensors as they are and AdamW updates them in place:
    # give it copies, so the session's saved state stays the last good one if a step fails.
    optimizer.load_state_dict({"state": {int(i): {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()}
                                         for i, s in saved["state"].items()},
                               "param_groups": copy.deepcopy(groups)})
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


# --- saving and loading ----------------------------------------------------------------------

def save_policy_state(state: PolicyState, directory: str | Path) -> Path:
    """Write ``adapter.safetensors`` + ``adapter_config.json`` into ``directory``, and
    ``optimizer.safetensors`` when the state has the optimizer's (so training continues exactly)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.tensors.items()}, str(directory / ADAPTER_FILE))
    config = {"format": "ppo-lora-lab/1", "mode": state.mode, "lora": state.lora,
              "model_name": state.model_name, "steps_trained": state.steps_trained, **state.meta}
    (directory / ADAPTER_CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False))
    save_optimizer_state(state, directory)
    return directory


def save_optimizer_state(state: PolicyState, directory: str | Path) -> Path | None:
    """Write ``optimizer.safetensors`` (AdamW's moments and step count) when the state has the
    optimizer's; beside either adapter format. Returns the file, or None."""
    from safetensors.torch import save_file

    if state.optimizer is None:
        return None
    path = Path(directory) / OPTIMIZER_FILE
    tensors = {f"state.{i}.{k}": v.contiguous() for i, s in state.optimizer["state"].items()
               for k, v in s.items() if torch.is_tensor(v)}
    save_file(tensors, str(path), metadata={"format": "ppo-lora-lab/optimizer-1", "optimizer": "AdamW",
                                            "param_groups": json.dumps(state.optimizer["param_groups"])})
    return path


def load_optimizer_file(path: str | Path) -> dict | None:
    """The optimizer state :func:`save_optimizer_state` wrote, or None if there is no such file."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            groups = json.loads((f.metadata() or {})["param_groups"])
            state: dict[int, dict] = {}
            for key in f.keys():
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = f.get_tensor(key)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        raise AdapterError(f"{OPTIMIZER_FILE} is not a readable optimizer state.") from None
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise AdapterError(f"{OPTIMIZER_FILE} is not a readable optimizer state.")
    return {"state": state, "param_groups": groups}


def load_policy_state(directory: str | Path) -> PolicyState:
    """Read what :func:`save_policy_state` wrote; a corrupt or foreign file is an AdapterError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    try:
        config = json.loads((directory / ADAPTER_CONFIG_FILE).read_text(encoding="utf-8"))
        tensors = load_file(str(directory / ADAPTER_FILE))
    except FileNotFoundError as exc:
        raise AdapterError(f"Missing {Path(exc.filename).name}: an adapter needs {ADAPTER_FILE} and {ADAPTER_CONFIG_FILE}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AdapterError(f"{ADAPTER_CONFIG_FILE} is not valid JSON.") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise AdapterError(f"{ADAPTER_FILE} is not a readable safetensors file ({exc}).") from None
    if not isinstance(config, dict) or config.get("mode") not in ("lora", "full"):
        raise AdapterError(f"{ADAPTER_CONFIG_FILE} does not describe a PPO-LoRA Lab adapter.")
    lora = config.get("lora")
    if config["mode"] == "lora":
        if not isinstance(lora, dict) or not {"r", "alpha", "dropout", "targets"} <= set(lora):
            raise AdapterError(f"{ADAPTER_CONFIG_FILE} lacks the LoRA settings (r, alpha, dropout, targets).")
    extra = {k: v for k, v in config.items() if k not in ("format", "mode", "lora", "model_name", "steps_trained")}
    return PolicyState(config["mode"], tensors, lora, str(config.get("model_name", "")),
                       int(config.get("steps_trained", 0)), extra,
                       optimizer=load_optimizer_file(directory / OPTIMIZER_FILE))


def autocast_context(device: torch.device):
    """bf16 autocast on CUDA (as in the seed); plain fp32 on CPU."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return nullcontext()
