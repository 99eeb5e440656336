"""A policy's trainable state, as CPU tensors, and its files.

``PolicyState`` is what a user owns: the LoRA tensors (or, in full fine-tuning, every weight)
plus the value head, with the settings needed to put them back, and optionally AdamW's moments
and step count. The app keeps one per browser session over a single shared base model.

Files, in the lab's own format: ``adapter.safetensors`` + ``adapter_config.json``, and
``optimizer.safetensors`` beside either this format or PEFT's (:mod:`ppo_demo.peft_format`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

ADAPTER_FILE = "adapter.safetensors"
ADAPTER_CONFIG_FILE = "adapter_config.json"
OPTIMIZER_FILE = "optimizer.safetensors"  # optional: AdamW's moments and step count, for an exact continuation
VALUE_HEAD_PREFIX = "value_head."


class AdapterError(ValueError):
    """A saved adapter cannot be used with this model or these settings."""


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

