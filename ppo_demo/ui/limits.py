"""Limits for a public deployment, read once from environment variables.

A Space serves strangers on two CPU cores, so the server (not the sliders, which the API
bypasses) caps the work one request may ask for. Locally every limit has a default that suits a
laptop. On a Hugging Face Space (the platform sets ``SPACE_ID``) the defaults are public-safe
instead (:data:`SPACE_DEFAULTS`): only the two known chat models, short runs, a compute budget per
Train press. The owner overrides any of them by setting its variable. A malformed value stops
the app at start-up with a message naming the variable.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

from ..models import DEFAULT_MODEL, TINY_RANDOM, resolve_model_name
from ..text import LocalizedError


class LimitsError(ValueError):
    """An environment variable holds an unusable value (read by whoever deploys: English)."""


class ServerLimitError(LocalizedError, LimitsError):
    """A visitor asked for something this server does not offer (in the page's language)."""


@dataclass(frozen=True)
class Limits:
    max_steps: int = 200  # PPO_DEMO_MAX_STEPS: steps per Train press
    max_batch: int = 64  # PPO_DEMO_MAX_BATCH: responses per step
    max_new_tokens: int = 256  # PPO_DEMO_MAX_NEW_TOKENS
    max_tasks: int = 32  # PPO_DEMO_MAX_TASKS: rows in the task table
    max_prompt_chars: int = 1000  # PPO_DEMO_MAX_PROMPT_CHARS
    max_eval_samples: int = 16  # PPO_DEMO_MAX_EVAL_SAMPLES: K in "Evaluate all tasks"
    # PPO_DEMO_ALLOWED_MODELS: None = any name or path (fine locally; a Space defaults to a list).
    allowed_models: tuple[str, ...] | None = None
    queue_size: int = 32  # PPO_DEMO_QUEUE_SIZE: requests waiting for the model
    max_runs: int = 6  # PPO_DEMO_MAX_RUNS: runs a tab keeps side by side (each holds its adapter in memory)
    start_model: str = DEFAULT_MODEL  # PPO_DEMO_MODEL: loaded at start, selected in the UI
    # PPO_DEMO_MAX_RUN_SECONDS: compute budget of one Train press; the run stops cleanly after the
    # step that reaches it. None = no budget ("0" or "none" in the variable).
    max_run_seconds: float | None = None
    # PPO_DEMO_MAX_UPLOAD_MB: Gradio refuses larger uploads while they arrive (launch's
    # max_file_size). 2 GB locally: a full fine-tune of a 0.5B model is about that big.
    max_upload_mb: int = 2048
    # PPO_DEMO_ALLOW_FULL_FINETUNE: full mode keeps a private copy of every weight (and twice that
    # in AdamW moments) per session: 2.2 GB for SmolLM2, 8 GB for Qwen2-0.5B.
    allow_full_finetune: bool = True
    on_space: bool = False  # SPACE_ID was set: the defaults above were the public-safe ones

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 ** 2

    def launch_kwargs(self) -> dict:
        """What ``demo.launch`` must get so Gradio itself enforces these limits (app.py passes it)."""
        return dict(max_file_size=self.max_upload_bytes)

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
            raise ServerLimitError("error.model_not_offered", name=name, choices=", ".join(self.allowed_models))
        return canonical

    def check_mode(self, mode: str) -> None:
        if mode == "full" and not self.allow_full_finetune:
            raise ServerLimitError("error.full_finetune_off")


# Public-safe defaults on a Hugging Face Space (free CPU hardware: 2 vCPU, 16 GB RAM), chosen so
# one PPO step, the unit the model is shared in, stays short: on two cores SmolLM2-135M takes about
# 10 s per step at batch 8 and 48 tokens (forced length, a quiet machine: docs/measurements.md), most of it sampling,
# which grows with batch x tokens. A cap of 16 x 96 keeps one step under half a minute on SmolLM2,
# so a Compare waits at most about one step of each other visitor. The caps are at or above the
# app's default knobs (40 steps, batch 8, 48 tokens), so the page's defaults stay valid. 600 s per
# press: the default 40-step run fits; a longer one continues with another press.
SPACE_DEFAULTS = dict(
    max_steps=40, max_batch=16, max_new_tokens=96, max_tasks=32, max_prompt_chars=1000,
    max_eval_samples=8, queue_size=32, max_run_seconds=600.0, max_upload_mb=100,
    allow_full_finetune=False,
    allowed_models=(DEFAULT_MODEL, resolve_model_name("qwen2-0.5b-instruct")),
)

_INT_VARS = {
    "max_steps": "PPO_DEMO_MAX_STEPS",
    "max_batch": "PPO_DEMO_MAX_BATCH",
    "max_new_tokens": "PPO_DEMO_MAX_NEW_TOKENS",
    "max_tasks": "PPO_DEMO_MAX_TASKS",
    "max_prompt_chars": "PPO_DEMO_MAX_PROMPT_CHARS",
    "max_eval_samples": "PPO_DEMO_MAX_EVAL_SAMPLES",
    "queue_size": "PPO_DEMO_QUEUE_SIZE",
    "max_upload_mb": "PPO_DEMO_MAX_UPLOAD_MB",
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


def _seconds_or_none(env: dict, var: str, default: float | None) -> float | None:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    if raw.lower() in ("0", "none", "off"):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise LimitsError(f"{var} must be a number of seconds (or 0 / none for no budget); got {raw!r}.") from None
    if not math.isfinite(value) or value < 1:
        raise LimitsError(f"{var} must be at least 1 second (or 0 / none for no budget); got {raw!r}.")
    return value


def _flag(env: dict, var: str, default: bool) -> bool:
    raw = env.get(var, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise LimitsError(f"{var} must be true or false; got {raw!r}.")


def limits_from_env(env: dict | None = None) -> Limits:
    """Read every PPO_DEMO_* limit; raise LimitsError naming the first bad variable."""
    env = os.environ if env is None else env
    on_space = bool(env.get("SPACE_ID", "").strip())
    defaults = replace(Limits(), **SPACE_DEFAULTS) if on_space else Limits()
    values = {field: _positive_int(env, var, getattr(defaults, field)) for field, var in _INT_VARS.items()}
    start_model = resolve_model_name(env.get("PPO_DEMO_MODEL", ""))
    allowed = list(defaults.allowed_models) if defaults.allowed_models is not None else None
    raw_allowed = env.get("PPO_DEMO_ALLOWED_MODELS", "").strip()
    if raw_allowed:
        allowed = [resolve_model_name(part) for part in raw_allowed.split(",") if part.strip()]
        if not allowed:
            raise LimitsError("PPO_DEMO_ALLOWED_MODELS is set but names no model; "
                              "use e.g. smollm2-135m-instruct,qwen2-0.5b-instruct.")
    if allowed is not None:
        # The tests start the server on the tiny model; it must stay usable whatever the list says.
        if start_model == TINY_RANDOM and TINY_RANDOM not in allowed:
            allowed.append(TINY_RANDOM)
        if start_model not in allowed:
            source = "PPO_DEMO_ALLOWED_MODELS" if raw_allowed else "the Space's default model list"
            raise LimitsError(f"PPO_DEMO_MODEL={start_model} is not in {source} ({', '.join(allowed)})"
                              + ("" if raw_allowed else "; set PPO_DEMO_ALLOWED_MODELS to offer it") + ".")
        allowed = tuple(dict.fromkeys(allowed))
    return Limits(**values, allowed_models=allowed, start_model=start_model,
                  max_run_seconds=_seconds_or_none(env, "PPO_DEMO_MAX_RUN_SECONDS", defaults.max_run_seconds),
                  allow_full_finetune=_flag(env, "PPO_DEMO_ALLOW_FULL_FINETUNE", defaults.allow_full_finetune),
                  on_space=on_space)
