"""Limits for a public deployment, read once from environment variables.

A Space serves strangers on two CPU cores, so the server (not the sliders, which the API
bypasses) caps the work one request may ask for. Every limit has a default that suits a
laptop; a malformed value stops the app at start-up with a message naming the variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..models import DEFAULT_MODEL, TINY_RANDOM, resolve_model_name


class LimitsError(ValueError):
    """An environment variable holds an unusable value."""


@dataclass(frozen=True)
class Limits:
    max_steps: int = 200  # PPO_DEMO_MAX_STEPS: steps per Train press
    max_batch: int = 64  # PPO_DEMO_MAX_BATCH: responses per step
    max_new_tokens: int = 256  # PPO_DEMO_MAX_NEW_TOKENS
    max_tasks: int = 32  # PPO_DEMO_MAX_TASKS: rows in the task table
    max_prompt_chars: int = 1000  # PPO_DEMO_MAX_PROMPT_CHARS
    max_eval_samples: int = 16  # PPO_DEMO_MAX_EVAL_SAMPLES: K in "Evaluate all tasks"
    # PPO_DEMO_ALLOWED_MODELS: None = any name or path (fine locally; on a Space set a list).
    allowed_models: tuple[str, ...] | None = None
    queue_size: int = 32  # PPO_DEMO_QUEUE_SIZE: requests waiting for the model
    max_runs: int = 6  # PPO_DEMO_MAX_RUNS: runs a tab keeps side by side (each holds its adapter in memory)
    start_model: str = DEFAULT_MODEL  # PPO_DEMO_MODEL: loaded at start, selected in the UI

    def knob_caps(self) -> dict[str, int]:
        """The server's cap on each knob it limits: the controls' maximum and the check's bound,
        defined here only. (Mini-batches can never exceed the batch, so the batch cap binds them.)"""
        return {"steps": self.max_steps, "batch_size": self.max_batch, "num_minibatches": self.max_batch,
                "max_new_tokens": self.max_new_tokens}

    def model_allowed(self, name: str) -> bool:
        return self.allowed_models is None or resolve_model_name(name) in self.allowed_models

    def check_model(self, name: str) -> str:
        """The canonical name, or LimitsError if this server does not offer the model."""
        canonical = resolve_model_name(name)
        if not self.model_allowed(canonical):
            raise LimitsError(f"Model '{name}' is not available on this server. "
                              f"Choose one of: {', '.join(self.allowed_models)}.")
        return canonical


_INT_VARS = {
    "max_steps": "PPO_DEMO_MAX_STEPS",
    "max_batch": "PPO_DEMO_MAX_BATCH",
    "max_new_tokens": "PPO_DEMO_MAX_NEW_TOKENS",
    "max_tasks": "PPO_DEMO_MAX_TASKS",
    "max_prompt_chars": "PPO_DEMO_MAX_PROMPT_CHARS",
    "max_eval_samples": "PPO_DEMO_MAX_EVAL_SAMPLES",
    "queue_size": "PPO_DEMO_QUEUE_SIZE",
    "max_runs": "PPO_DEMO_MAX_RUNS",
}


def _positive_int(env: dict, var: str, default: int) -> int:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise LimitsError(f"{var} must be a whole number; got {raw!r}.") from None
    if value < 1:
        raise LimitsError(f"{var} must be at least 1; got {value}.")
    return value


def limits_from_env(env: dict | None = None) -> Limits:
    """Read every PPO_DEMO_* limit; raise LimitsError naming the first bad variable."""
    env = os.environ if env is None else env
    defaults = Limits()
    values = {field: _positive_int(env, var, getattr(defaults, field)) for field, var in _INT_VARS.items()}
    start_model = resolve_model_name(env.get("PPO_DEMO_MODEL", ""))
    allowed = None
    raw_allowed = env.get("PPO_DEMO_ALLOWED_MODELS", "").strip()
    if raw_allowed:
        allowed = [resolve_model_name(part) for part in raw_allowed.split(",") if part.strip()]
        if not allowed:
            raise LimitsError("PPO_DEMO_ALLOWED_MODELS is set but names no model; "
                              "use e.g. smollm2-135m-instruct,qwen2-0.5b-instruct.")
        # The tests start the server on the tiny model; it must stay usable whatever the list says.
        if start_model == TINY_RANDOM and TINY_RANDOM not in allowed:
            allowed.append(TINY_RANDOM)
        if start_model not in allowed:
            raise LimitsError(f"PPO_DEMO_MODEL={start_model} is not in PPO_DEMO_ALLOWED_MODELS "
                              f"({', '.join(allowed)}).")
        allowed = tuple(dict.fromkeys(allowed))
    return Limits(**values, allowed_models=allowed, start_model=start_model)
