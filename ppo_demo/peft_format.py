"""Our LoRA as a PEFT adapter: a folder ``PeftModel.from_pretrained`` reads, and back.

Written here without importing peft (the product keeps its hand-written LoRA; peft is used in
the tests only, to prove the files are what it expects). A PEFT LoRA folder holds:

* ``adapter_config.json``: ``peft_type`` LORA, ``task_type`` CAUSAL_LM, ``r``, ``lora_alpha``,
  ``target_modules``... (the fields of peft's ``LoraConfig``);
* ``adapter_model.safetensors``: ``base_model.model.<module path>.lora_A.weight`` (r, d_in) and
  ``.lora_B.weight`` (d_out, r): the same shapes as ours, so the tensors are copied as they are.

Scaling, mapped exactly: ours is ``alpha / r`` (``ppo_demo.lora``); PEFT's is ``lora_alpha / r``
(or ``lora_alpha / sqrt(r)`` with ``use_rslora``). So ``lora_alpha = alpha`` and
``use_rslora = false``; a PEFT adapter with rsLoRA is read as ``alpha = lora_alpha * sqrt(r)``.

What PEFT has no place for goes into files beside it: the value head
(``value_head.safetensors``: ``weight`` (1, H), ``bias`` (1,)) and our own settings
(``ppo_lab.json``: steps trained, the exact target suffixes, the model name as typed).
:func:`save_adapter`, which the CLI's ``--out`` and the app's download use, adds
``optimizer.safetensors`` (AdamW's moments and step count,
:func:`~ppo_demo.policy_state.save_optimizer_state`), read back here when present, so that training a
saved adapter continues exactly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from .models import MODEL_ALIASES, DEFAULT_MODEL
from .policy import (ADAPTER_CONFIG_FILE, ADAPTER_FILE, OPTIMIZER_FILE, VALUE_HEAD_PREFIX, AdapterError, PolicyState,
                     load_optimizer_file, load_policy_state, save_optimizer_state, save_policy_state)

PEFT_WEIGHTS_FILE = "adapter_model.safetensors"
VALUE_HEAD_FILE = "value_head.safetensors"
LAB_SETTINGS_FILE = "ppo_lab.json"
PEFT_KEY_PREFIX = "base_model.model."
FORMAT_PEFT = "peft"
FORMAT_LAB = "ppo-lora-lab/1"

# Where the base weights of a model name come from on a machine with the hub: the embedded
# SmolLM2 is a de-quantised Q4_1 copy of this repository's weights, so an adapter trained on it
# fits the original (with the quantisation's small difference in the base).
HUB_IDS = {DEFAULT_MODEL: MODEL_ALIASES["smollm2-135m-instruct-hub"], **MODEL_ALIASES}

# LoraConfig fields whose non-default value changes the maths; we cannot represent them.
_UNSUPPORTED = {
    "use_dora": False, "fan_in_fan_out": False, "bias": "none", "modules_to_save": None,
    "lora_bias": False, "layer_replication": None, "target_parameters": None,
    "trainable_token_indices": None,
}


def base_model_id(model_name: str) -> str:
    """The name a PEFT user passes to from_pretrained for the base model."""
    return HUB_IDS.get(model_name, model_name)


def peft_adapter_config(state: PolicyState) -> dict:
    """adapter_config.json for a LoRA state; every key is a field of peft's LoraConfig."""
    lora = state.lora
    wrapped = _wrapped_modules(state)
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_id(state.model_name),
        "revision": None,
        "inference_mode": True,
        "r": int(lora["r"]),
        "lora_alpha": float(lora["alpha"]),  # scaling alpha/r on both sides
        "use_rslora": False,
        # PEFT matches a list entry when a module's name equals it or ends with "." + entry;
        # the leaf names of the layers we wrapped select exactly those layers.
        "target_modules": sorted({name.rpartition(".")[2] for name in wrapped}),
        "lora_dropout": float(lora["dropout"]),
        "fan_in_fan_out": False,
        "bias": "none",
        "modules_to_save": None,
        "init_lora_weights": True,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
        "use_dora": False,
        "lora_bias": False,
    }


def _wrapped_modules(state: PolicyState) -> list[str]:
    names = sorted({k.rpartition(".")[0] for k in state.tensors if not k.startswith(VALUE_HEAD_PREFIX)})
    if not names:
        raise AdapterError("This state has no LoRA tensors to save.")
    return names


def save_peft_adapter(state: PolicyState, directory: str | Path) -> Path:
    """Write a PEFT LoRA folder (plus value head and our settings) into ``directory``."""
    from safetensors.torch import save_file

    if state.mode != "lora":
        raise AdapterError("Only a LoRA state can be saved as a PEFT adapter; full fine-tuning saves "
                           "every weight in the lab's own format.")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lora_tensors, value_head = {}, {}
    for key, tensor in state.tensors.items():
        if key.startswith(VALUE_HEAD_PREFIX):
            value_head[key[len(VALUE_HEAD_PREFIX):]] = tensor.contiguous()
        else:
            module, _, ab = key.rpartition(".")  # "<module>.lora_A"
            lora_tensors[f"{PEFT_KEY_PREFIX}{module}.{ab}.weight"] = tensor.contiguous()
    save_file(lora_tensors, str(directory / PEFT_WEIGHTS_FILE), metadata={"format": "pt"})
    save_file(value_head, str(directory / VALUE_HEAD_FILE), metadata={"format": "pt"})
    config = peft_adapter_config(state)
    (directory / ADAPTER_CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False))
    lab = {"format": FORMAT_LAB, "mode": state.mode, "lora": state.lora, "model_name": state.model_name,
           "steps_trained": state.steps_trained, **state.meta}
    (directory / LAB_SETTINGS_FILE).write_text(json.dumps(lab, indent=2, ensure_ascii=False))
    return directory


def save_adapter(state: PolicyState, directory: str | Path) -> list[str]:
    """Save a run's trained state into ``directory``, the one way the CLI and the app do it;
    returns the names of the files written.

    LoRA mode: PEFT format (:func:`save_peft_adapter`: adapter, value head, our settings).
    Full fine-tuning: the lab's own format (every trained weight in ``adapter.safetensors``),
    which PEFT has no place for. Either way ``optimizer.safetensors`` joins them when the state
    has AdamW's moments, so that training the saved state continues exactly.
    """
    directory = Path(directory)
    if state.mode == "lora":
        save_peft_adapter(state, directory)
        save_optimizer_state(state, directory)
        names = [ADAPTER_CONFIG_FILE, PEFT_WEIGHTS_FILE, VALUE_HEAD_FILE, LAB_SETTINGS_FILE]
    else:
        save_policy_state(state, directory)  # with the optimizer's file
        names = [ADAPTER_FILE, ADAPTER_CONFIG_FILE]
    if (directory / OPTIMIZER_FILE).exists():
        names.append(OPTIMIZER_FILE)
    return names


def adapter_format(directory: str | Path) -> str:
    """'peft' or 'ppo-lora-lab/1', from the files present; an AdapterError if neither."""
    directory = Path(directory)
    if (directory / PEFT_WEIGHTS_FILE).is_file():
        return FORMAT_PEFT
    if (directory / ADAPTER_FILE).is_file():
        return FORMAT_LAB
    raise AdapterError(f"No adapter here: expected {PEFT_WEIGHTS_FILE} (PEFT) or {ADAPTER_FILE} (this lab's "
                       f"format), each with {ADAPTER_CONFIG_FILE}.")


def load_any_adapter(directory: str | Path, hidden_size: int | None = None) -> PolicyState:
    """Read a PEFT adapter or the lab's own format, whichever the folder holds."""
    if adapter_format(directory) == FORMAT_LAB:
        return load_policy_state(directory)
    return load_peft_adapter(directory, hidden_size)


def load_peft_adapter(directory: str | Path, hidden_size: int | None = None) -> PolicyState:
    """Read a PEFT LoRA folder, written by us or by peft itself.

    A folder without ``value_head.safetensors`` (e.g. made by peft) gets a zero value head, as a
    fresh critic starts; that needs ``hidden_size``. Anything PEFT can express but our LoRA
    cannot (DoRA, biases, per-layer ranks, ...) is an AdapterError naming the field.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    try:
        config = json.loads((directory / ADAPTER_CONFIG_FILE).read_text(encoding="utf-8"))
        peft_tensors = load_file(str(directory / PEFT_WEIGHTS_FILE))
    except FileNotFoundError as exc:
        raise AdapterError(f"Missing {Path(exc.filename).name}: a PEFT adapter needs {PEFT_WEIGHTS_FILE} "
                           f"and {ADAPTER_CONFIG_FILE}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AdapterError(f"{ADAPTER_CONFIG_FILE} is not valid JSON.") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise AdapterError(f"{PEFT_WEIGHTS_FILE} is not a readable safetensors file ({exc}).") from None
    lora = _lora_settings_from_peft(config)
    tensors = _lab_keys(peft_tensors)
    lab = _read_json(directory / LAB_SETTINGS_FILE)
    if lab.get("lora") and int(lab["lora"].get("r", -1)) == lora["r"]:
        lora["targets"] = list(lab["lora"]["targets"])  # the exact suffixes the run used
    tensors.update(_value_head(directory, hidden_size))
    model_name = str(lab.get("model_name") or config.get("base_model_name_or_path") or "")
    meta = {k: v for k, v in lab.items() if k not in ("format", "mode", "lora", "model_name", "steps_trained")}
    return PolicyState("lora", tensors, lora, model_name, int(lab.get("steps_trained", 0)), meta,
                       optimizer=load_optimizer_file(directory / OPTIMIZER_FILE))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _lora_settings_from_peft(config) -> dict:
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        found = config.get("peft_type") if isinstance(config, dict) else None
        raise AdapterError(f"{ADAPTER_CONFIG_FILE} is not a PEFT LoRA adapter (peft_type {found!r}); only LORA fits.")
    if config.get("task_type") not in (None, "CAUSAL_LM"):
        raise AdapterError(f"The adapter is for task {config['task_type']}; this lab trains CAUSAL_LM models.")
    for key, neutral in _UNSUPPORTED.items():
        value = config.get(key)
        if value not in (None, neutral, []):
            raise AdapterError(f"The adapter uses {key}={config[key]!r}, which this lab's LoRA does not support.")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise AdapterError("The adapter gives some layers their own rank or alpha (rank_pattern/alpha_pattern); "
                           "this lab's LoRA uses one r and alpha for every layer.")
    targets = config.get("target_modules")
    if isinstance(targets, str):
        raise AdapterError(f"target_modules is a regular expression ({targets!r}); this lab needs a list of layer names.")
    try:
        r = int(config["r"])
        lora_alpha = float(config["lora_alpha"])
        targets = sorted(str(t) for t in targets)  # peft writes a set: any order
    except (KeyError, TypeError, ValueError):
        raise AdapterError(f"{ADAPTER_CONFIG_FILE} lacks r, lora_alpha or target_modules.") from None
    # Our scaling is alpha/r; rsLoRA's is lora_alpha/sqrt(r): the same update with alpha = lora_alpha*sqrt(r).
    alpha = lora_alpha * math.sqrt(r) if config.get("use_rslora") else lora_alpha
    return {"r": r, "alpha": alpha, "dropout": float(config.get("lora_dropout") or 0.0), "targets": targets}


def _lab_keys(peft_tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """'base_model.model.<m>.lora_A.weight' -> '<m>.lora_A' (peft may also keep an adapter name,
    '<m>.lora_A.default.weight', in older files)."""
    tensors = {}
    for key, tensor in peft_tensors.items():
        name = key[len(PEFT_KEY_PREFIX):] if key.startswith(PEFT_KEY_PREFIX) else key
        parts = name.split(".")
        if len(parts) >= 3 and parts[-1] == "weight" and parts[-2] in ("lora_A", "lora_B"):
            module, ab = ".".join(parts[:-2]), parts[-2]
        elif len(parts) >= 4 and parts[-1] == "weight" and parts[-3] in ("lora_A", "lora_B"):
            module, ab = ".".join(parts[:-3]), parts[-3]
        else:
            raise AdapterError(f"{PEFT_WEIGHTS_FILE} holds {key!r}, which is not a LoRA A/B weight "
                               "(embedding adapters, biases and saved modules are not supported).")
        tensors[f"{module}.{ab}"] = tensor.float()
    return tensors


def _value_head(directory: Path, hidden_size: int | None) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = directory / VALUE_HEAD_FILE
    if path.is_file():
        head = load_file(str(path))
        if set(head) != {"weight", "bias"}:
            raise AdapterError(f"{VALUE_HEAD_FILE} should hold weight and bias; found {', '.join(sorted(head))}.")
        return {VALUE_HEAD_PREFIX + k: v for k, v in head.items()}
    if hidden_size is None:
        raise AdapterError(f"The adapter has no {VALUE_HEAD_FILE}; load it with a model so a fresh value head can be made.")
    # No critic came with it (e.g. made by peft): start it at zero, as a new run does.
    return {VALUE_HEAD_PREFIX + "weight": torch.zeros(1, hidden_size), VALUE_HEAD_PREFIX + "bias": torch.zeros(1)}
