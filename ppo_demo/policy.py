"""The actor-critic around a causal LM, and the runtime that puts one user's state on it.

``ActorCritic`` shares the LM's trunk between the policy (the LM head) and the critic (a value
head on the last hidden state).

``PolicyRuntime`` puts one state (:class:`~ppo_demo.policy_state.PolicyState`) on the shared
model and samples from it: ``with PolicyRuntime.for_config(loaded, config, state) as runtime:
runtime.answers(...)`` samples with that session's policy and takes its copies off the model
again when the block ends. pi_ref is the same network with the adapters off (LoRA mode) or the
untouched base (full fine-tuning).

The scoring passes are in :mod:`ppo_demo.scoring`, the state and its files in
:mod:`ppo_demo.policy_state`; their names are re-exported here.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING

import torch

from .lora import (LoRAError, adapters_disabled, inject_lora, load_lora_state_dict, lora_layers,
                   lora_signature, lora_state_dict, remove_lora)
from .packed_linears import packed_linears
from .policy_state import (ADAPTER_CONFIG_FILE, ADAPTER_FILE, OPTIMIZER_FILE, VALUE_HEAD_PREFIX,  # noqa: F401
                           AdapterError, PolicyState, check_state_fits, load_optimizer_file, load_optimizer_state,
                           load_policy_state, lora_settings, optimizer_state_on_cpu, save_optimizer_state,
                           save_policy_state)
from .rollout import (DEFAULT_SYSTEM_PROMPT, RolloutBatch, chat_prompt_ids, eos_token_ids, sample_and_score,
                      sample_responses)
from .scoring import (ResponseScores, autocast_context, decoder_layers, layer_checkpointing,  # noqa: F401
                      response_logits_and_hidden, response_scores)

if TYPE_CHECKING:
    from .models import LoadedModel


def hidden_size(model) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(config.hidden_size)


class ActorCritic(torch.nn.Module):
    """Policy pi_theta (the LM) and critic V (a linear value head) on one trunk."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        device = next(model.parameters()).device
        # Zero init: V = 0 everywhere at first, so the early value loss is just the returns².
        dtype = torch.promote_types(next(model.parameters()).dtype, torch.float32)  # at least fp32, as LoRA's
        self.value_head = torch.nn.Linear(hidden_size(model), 1, device=device, dtype=dtype)
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)

    def values(self, hidden: torch.Tensor) -> torch.Tensor:
        """V(s_t) from the hidden state before token t: (B, T, H) -> (B, T)."""
        return self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]


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
                         top_p: float, seed: int, distribution: bool = False) -> tuple:
        """:meth:`sample` from the policy (the same tokens for the same seed), plus the old
        log-probs log pi(y_t) and values V(s_t), each (B, T) and 0 past EOS, taken from the
        sampling pass itself instead of a second forward over the batch (equal to one up to
        float rounding, see :func:`ppo_demo.rollout.sample_and_score`). ``distribution``: a
        fourth item, the whole log-softmax at each position (B, T, V), for the exact KL."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        self.actor_critic.eval()
        with torch.no_grad(), autocast_context(self.device), \
                packed_linears(self.policy_model, self._pack_for(prompt_ids)):
            batch, sampled = sample_and_score(self.policy_model, prompt_ids, pad_id=self.tokenizer.pad_token_id,
                                              eos_ids=self.eos_ids, max_new_tokens=max_new_tokens,
                                              temperature=temperature, top_p=top_p, generator=generator,
                                              keep_distribution=distribution)
            values = self.actor_critic.values(sampled.hidden) * batch.response_mask  # (B, T)
        if distribution:
            return batch, sampled.logprobs, values, sampled.log_probs
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

